package apply_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

const (
	accountSID = "AC22222222222222222222222222222222"
	authToken  = "applytesttoken"
)

// fixture is an emulator over HTTP, a client for it and a state file.
type fixture struct {
	t     *testing.T
	emu   *emulator.Server
	api   *twilioapi.Client
	store *state.File
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	emu, url := testenv.Emulator(t, accountSID, authToken)
	api, err := twilioapi.New(twilioapi.Config{
		AccountSID: accountSID, AuthToken: authToken, BaseURL: url,
		ActionsPerSecondPerService: -1, MaxAttempts: 3,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(t.TempDir(), "state.json"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &fixture{t: t, emu: emu, api: api, store: store}
}

func (f *fixture) apply(desired []resource.Desired) *apply.Result {
	f.t.Helper()
	e := &engine.Engine{API: f.api}
	plan, err := e.Plan(context.Background(), desired, "", f.store.State(), nil)
	if err != nil {
		f.t.Fatalf("plan: %v", err)
	}
	return e.Apply(context.Background(), f.store, plan, apply.Options{})
}

func service(name, friendly string) resource.Desired {
	return resource.Desired{Address: resource.Address{Kind: resource.KindService, Name: name}, Values: resource.Values{resource.FieldFriendlyName: friendly}}
}

func conversation(name, svc string, v resource.Values) resource.Desired {
	return resource.Desired{Address: resource.Address{Kind: resource.KindConversation, Name: name}, Parent: resource.Ref{Address: resource.Address{Kind: resource.KindService, Name: svc}}, Values: v}
}

func conversationsIn(t *testing.T, emu *emulator.Server, sid string) []emulator.Conversation {
	t.Helper()
	cs, err := emu.Conversations(sid)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestApplyCreatesClosedConversationActiveThenCloses(t *testing.T) {
	f := newFixture(t)
	res := f.apply([]resource.Desired{
		service("s", "S"),
		conversation("c", "s", resource.Values{resource.FieldState: resource.StateClosed, resource.FieldTimersInactive: "PT1H"}),
	})
	if failed := res.Failed(); len(failed) > 0 {
		t.Fatalf("failed steps: %+v", failed)
	}
	st := f.store.State()
	c, err := f.emu.Conversation(st.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID, st.Get(resource.Address{Kind: resource.KindConversation, Name: "c"}).SID)
	if err != nil || c.State != resource.StateClosed {
		t.Fatalf("conversation: %+v, %v", c, err)
	}
	if got := st.Get(resource.Address{Kind: resource.KindConversation, Name: "c"}).Applied[resource.FieldState]; got != resource.StateClosed {
		t.Fatalf("state records applied state %q, want closed", got)
	}
}

func TestApplyAdoptsCreateWhoseAnswerWasLost(t *testing.T) {
	f := newFixture(t)
	if res := f.apply([]resource.Desired{service("s", "S")}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	svcSID := f.store.State().Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	// Every write is carried out, then answered 500: the answer is lost.
	if err := f.emu.SetFaults(emulator.Faults{Error500AfterWrite: 1}); err != nil {
		t.Fatal(err)
	}
	res := f.apply([]resource.Desired{
		service("s", "S"),
		conversation("with-name", "s", resource.Values{resource.FieldUniqueName: "named", resource.FieldFriendlyName: "Named"}),
		conversation("without-name", "s", resource.Values{resource.FieldFriendlyName: "Anonymous", resource.FieldAttributes: `{"a":1}`}),
	})
	if failed := res.Failed(); len(failed) > 0 {
		t.Fatalf("failed steps: %+v", failed)
	}
	cs := conversationsIn(t, f.emu, svcSID)
	if len(cs) != 2 {
		t.Fatalf("Twilio holds %d conversations, want exactly 2 (no duplicates)", len(cs))
	}
	st := f.store.State()
	owned := map[string]bool{}
	for _, r := range st.Resources {
		owned[r.SID] = true
	}
	for _, c := range cs {
		if !owned[c.SID] {
			t.Errorf("conversation %s is in Twilio but not in the state", c.SID)
		}
	}
	if len(st.Pending) != 0 {
		t.Errorf("pending intents left behind: %v", st.PendingAddresses())
	}
}

func TestApplyGivesUpWhenCreatesNeverHappen(t *testing.T) {
	f := newFixture(t)
	if res := f.apply([]resource.Desired{service("s", "S")}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	svcSID := f.store.State().Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	if err := f.emu.SetFaults(emulator.Faults{Error500BeforeWrite: 1}); err != nil {
		t.Fatal(err)
	}
	res := f.apply([]resource.Desired{service("s", "S"), conversation("c", "s", resource.Values{resource.FieldFriendlyName: "C"})})
	failed := res.Failed()
	if len(failed) != 1 || !errors.Is(failed[0].Err, twilioapi.ErrOutcomeUnknown) {
		t.Fatalf("want one failure with an unknown outcome, got %+v", failed)
	}
	if n := len(conversationsIn(t, f.emu, svcSID)); n != 0 {
		t.Fatalf("%d conversations exist; the 500s came before any write", n)
	}
	// Once Twilio answers again, the next apply creates exactly one.
	if err := f.emu.SetFaults(emulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	if res := f.apply([]resource.Desired{service("s", "S"), conversation("c", "s", resource.Values{resource.FieldFriendlyName: "C"})}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	if n := len(conversationsIn(t, f.emu, svcSID)); n != 1 {
		t.Fatalf("%d conversations, want 1", n)
	}
}

func TestApplySkipsStepsThatDependOnAFailedOne(t *testing.T) {
	f := newFixture(t)
	// Twilio refuses a friendly_name over 256 characters; the spec loader
	// would too, but the applier must cope with any refusal.
	bad := service("s", strings.Repeat("x", 300))
	res := f.apply([]resource.Desired{bad, conversation("c", "s", resource.Values{resource.FieldFriendlyName: "C"}), service("ok", "Fine")})
	byAddr := map[string]apply.StepResult{}
	for _, s := range res.Steps {
		byAddr[s.Address.String()] = s
	}
	if err := byAddr["service.s"].Err; err == nil || !twilioapi.IsTerminal(err) {
		t.Fatalf("service.s: want Twilio's refusal, got %v", err)
	}
	if err := byAddr["conversation.c"].Err; !errors.Is(err, apply.ErrSkipped) {
		t.Fatalf("conversation.c: want skipped, got %v", err)
	}
	if err := byAddr["service.ok"].Err; err != nil {
		t.Fatalf("an unrelated step failed: %v", err)
	}
	_, failed := res.Counts()
	if failed != 2 {
		t.Fatalf("failed count %d, want 2", failed)
	}
}

// TestRenamedAddressKeepsItsUniqueNameAcrossTheSwap renames a spec's
// address while keeping its unique_name, and changes a closed conversation
// (which Twilio cannot update, so it is not moved but replaced): the old
// conversation's delete and the new one's create must not race (Twilio
// refuses the create with 50353 while the old one still holds the name).
// Deletes are answered slowly here, so a create that did not wait for the
// delete would always lose.
func TestRenamedAddressKeepsItsUniqueNameAcrossTheSwap(t *testing.T) {
	f := newFixture(t)
	slowDeletes := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			time.Sleep(200 * time.Millisecond) // injected latency, not synchronisation
		}
		f.emu.ServeHTTP(w, r)
	}))
	t.Cleanup(slowDeletes.Close)
	api, err := twilioapi.New(twilioapi.Config{AccountSID: accountSID, AuthToken: authToken, BaseURL: slowDeletes.URL, ActionsPerSecondPerService: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.api = api
	named := func(name, friendly string) resource.Desired {
		return conversation(name, "s", resource.Values{resource.FieldUniqueName: "the-name", resource.FieldFriendlyName: friendly, resource.FieldState: resource.StateClosed})
	}
	if res := f.apply([]resource.Desired{service("s", "S"), named("old", "Old")}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	if res := f.apply([]resource.Desired{service("s", "S"), named("new", "New")}); len(res.Failed()) > 0 {
		t.Fatalf("the create did not wait for the delete that frees its name: %+v", res.Failed())
	}
	svcSID := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	cs := conversationsIn(t, f.emu, svcSID)
	if len(cs) != 1 || cs[0].SID != f.store.Get(resource.Address{Kind: resource.KindConversation, Name: "new"}).SID {
		t.Fatalf("Twilio holds %+v", cs)
	}
}

// A plan whose steps wait for each other (here two conversations swapping
// their unique_names, each waiting for the other to free its name) is
// refused by the planner; the applier refuses it too instead of waiting
// forever, and sends nothing.
func TestApplyRefusesAPlanWhoseStepsWaitInACycle(t *testing.T) {
	f := newFixture(t)
	un := func(n string) resource.Values { return resource.Values{resource.FieldUniqueName: n} }
	if res := f.apply([]resource.Desired{service("s", "S"), conversation("a", "s", un("ua")), conversation("b", "s", un("ub"))}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	addr := func(n string) resource.Address { return resource.Address{Kind: resource.KindConversation, Name: n} }
	a, b := f.store.Get(addr("a")), f.store.Get(addr("b"))
	da, db := conversation("a", "s", un("ub")), conversation("b", "s", un("ua"))
	plan := &planner.Plan{StateLineage: f.store.Lineage(), StateSerial: f.store.Serial(), Changes: []planner.Change{
		{Address: addr("a"), Action: planner.Update, SID: a.SID, ParentSID: a.ParentSID, Desired: &da,
			Fields: []planner.FieldChange{{Name: resource.FieldUniqueName, Before: "ua", After: "ub"}}, AfterFree: []resource.Address{addr("b")}},
		{Address: addr("b"), Action: planner.Update, SID: b.SID, ParentSID: b.ParentSID, Desired: &db,
			Fields: []planner.FieldChange{{Name: resource.FieldUniqueName, Before: "ub", After: "ua"}}, AfterFree: []resource.Address{addr("a")}},
	}}
	before := f.emu.Stats()
	res := apply.Apply(context.Background(), f.api, f.store, plan, apply.Options{})
	if len(res.Steps) != 2 {
		t.Fatalf("steps: %+v", res.Steps)
	}
	for _, s := range res.Steps {
		if !errors.Is(s.Err, apply.ErrCycle) || !strings.Contains(s.Err.Error(), "conversation.a, conversation.b") {
			t.Errorf("%s: want the cycle refused naming both steps, got %v", s.Address, s.Err)
		}
	}
	if after := f.emu.Stats(); after.Total != before.Total {
		t.Errorf("%d requests reached Twilio", after.Total-before.Total)
	}
}

// A create Twilio carries out only after its timeout is found before it is
// sent again (1.5× the timeout), or, when it lands after the next attempt
// (3×), deleted as convsync's own copy: one conversation per spec either way.
func TestCreateThatLandsAfterItsTimeoutIsNotDuplicated(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, tt := range []struct {
		factor      float64
		wantDeleted int
	}{{1.5, 0}, {3, 1}} {
		t.Run(fmt.Sprintf("%gx", tt.factor), func(t *testing.T) {
			f := newFixture(t)
			var landings sync.WaitGroup
			late := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/Conversations") {
					f.emu.ServeHTTP(w, r)
					return
				}
				detached := r.WithContext(context.WithoutCancel(r.Context()))
				if err := detached.ParseForm(); err != nil {
					t.Error(err)
				}
				landings.Add(1)
				rec := httptest.NewRecorder()
				done := make(chan struct{})
				time.AfterFunc(time.Duration(tt.factor*float64(timeout)), func() { // injected slowness
					defer landings.Done()
					f.emu.ServeHTTP(rec, detached)
					close(done)
				})
				select {
				case <-done:
					w.WriteHeader(rec.Code)
					_, _ = w.Write(rec.Body.Bytes())
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(late.Close)
			api, err := twilioapi.New(twilioapi.Config{AccountSID: accountSID, AuthToken: authToken, BaseURL: late.URL, ActionsPerSecondPerService: -1})
			if err != nil {
				t.Fatal(err)
			}
			f.api = api
			c := conversation("c", "s", resource.Values{resource.FieldFriendlyName: "Room"})
			c.Timeouts = resource.Timeouts{Create: timeout}
			res := f.apply([]resource.Desired{service("s", "S"), c})
			if len(res.Failed()) > 0 {
				t.Fatalf("failed: %+v", res.Failed())
			}
			landings.Wait()
			svc := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
			cs := conversationsIn(t, f.emu, svc)
			if len(cs) != 1 || cs[0].SID != f.store.Get(resource.Address{Kind: resource.KindConversation, Name: "c"}).SID {
				t.Errorf("Twilio holds %d conversations (%+v) for one spec", len(cs), cs)
			}
			if res.LateDuplicatesDeleted != tt.wantDeleted {
				t.Errorf("late duplicates deleted: %d, want %d", res.LateDuplicatesDeleted, tt.wantDeleted)
			}
		})
	}
}
