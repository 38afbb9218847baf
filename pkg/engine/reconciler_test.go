package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

const (
	accountSID = "AC55555555555555555555555555555555"
	authToken  = "enginetesttoken"
)

type fixture struct {
	emu   *emulator.Server
	store *state.File
	rec   *engine.Reconciler
}

func newFixture(t *testing.T, maxDestroy int) *fixture {
	t.Helper()
	emu, url := testenv.Emulator(t, accountSID, authToken)
	api, err := twilioapi.New(twilioapi.Config{AccountSID: accountSID, AuthToken: authToken, BaseURL: url, ActionsPerSecondPerService: -1, MaxAttempts: 2,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(t.TempDir(), "state.json"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &fixture{emu: emu, store: store, rec: &engine.Reconciler{Engine: &engine.Engine{API: api}, Store: store, MaxDestroy: maxDestroy}}
}

func svc(name, friendly string) resource.Desired {
	return resource.Desired{Address: resource.Address{Kind: resource.KindService, Name: name}, Values: resource.Values{resource.FieldFriendlyName: friendly}}
}

func conv(name, service string) resource.Desired {
	return resource.Desired{Address: resource.Address{Kind: resource.KindConversation, Name: name}, Parent: resource.Ref{Address: resource.Address{Kind: resource.KindService, Name: service}}, Values: resource.Values{resource.FieldFriendlyName: name}}
}

func TestGuardCountsTheConversationsAServiceReplacementDeletes(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	if _, err := f.rec.Pass(ctx, []resource.Desired{svc("s", "S")}, "h1", true, -1); err != nil {
		t.Fatal(err)
	}
	sid := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	if _, err := f.emu.SeedConversations(sid, 20, "app-"); err != nil { // the app's own
		t.Fatal(err)
	}
	_, err := f.rec.Pass(ctx, []resource.Desired{svc("s", "Renamed")}, "h2", true, -1)
	var refused *engine.TooManyDestroysError
	if !errors.As(err, &refused) || refused.Count != 25 {
		t.Fatalf("want the pass refused for 25 destroys (the service, its 20 conversations and the 4 roles Twilio gave it), got %v", err)
	}
	if cs, _ := f.emu.Conversations(sid); len(cs) != 20 {
		t.Fatalf("the refused pass changed Twilio: %d conversations left", len(cs))
	}
}

func TestPassWithAPendingCreateIsFull(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	desired := []resource.Desired{svc("s", "S")}
	if _, err := f.rec.Pass(ctx, desired, "h1", true, -1); err != nil {
		t.Fatal(err)
	}
	sid := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	// A create that happened but was never recorded: Twilio has it, the
	// state has only the intent.
	if _, err := f.emu.SeedConversations(sid, 1, ""); err != nil {
		t.Fatal(err)
	}
	cs, _ := f.emu.Conversations(sid)
	if err := f.emu.EditConversation(sid, cs[0].SID, func(c *emulator.Conversation) { name := "c"; c.FriendlyName = &name; c.UniqueName = nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Update(func(s *state.State) error {
		s.AddPending(&state.Pending{Address: resource.Address{Kind: resource.KindConversation, Name: "c"}, Kind: resource.KindConversation, ParentSID: sid, Values: resource.Values{resource.FieldFriendlyName: "c"}, StartedAt: time.Now().UTC()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res, err := f.rec.Pass(ctx, append(desired, conv("c", "s")), "h2", false, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Full {
		t.Fatal("a pass with a pending intent must read Twilio in full")
	}
	if cs, _ := f.emu.Conversations(sid); len(cs) != 1 {
		t.Fatalf("%d conversations: the interrupted create was repeated instead of adopted", len(cs))
	}
	if got := f.store.Get(resource.Address{Kind: resource.KindConversation, Name: "c"}); got == nil || got.SID != cs[0].SID {
		t.Fatalf("state has %+v, want the adopted %s", got, cs[0].SID)
	}
}

func TestSizeHintsRoundTripAndDamage(t *testing.T) {
	path := engine.SizeHintsPath(filepath.Join(t.TempDir(), "state.json"))
	if got := engine.ReadSizeHints(path); got != nil {
		t.Fatalf("no file: got %v, want nil (Refresh then lists)", got)
	}
	want := map[string]int{"IS00000000000000000000000000000001": 50000}
	if err := engine.WriteSizeHints(path, want); err != nil {
		t.Fatal(err)
	}
	if got := engine.ReadSizeHints(path); len(got) != 1 || got["IS00000000000000000000000000000001"] != 50000 {
		t.Fatalf("got %v", got)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := engine.ReadSizeHints(path); got != nil {
		t.Fatalf("a damaged hints file must be ignored, got %v", got)
	}
}

func TestRemovedSpecIsDeletedOnlyWhenASecondLoadConfirmsIt(t *testing.T) {
	f := newFixture(t, 5)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.rec.Now = func() time.Time { return now }
	ctx := context.Background()
	both := []resource.Desired{svc("s", "S"), conv("a", "s"), conv("b", "s")}
	if _, err := f.rec.Pass(ctx, both, "h1", true, -1); err != nil {
		t.Fatal(err)
	}
	sid := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	count := func() int { cs, _ := f.emu.Conversations(sid); return len(cs) }

	// A load in the middle of a git pull misses b's spec.
	res, err := f.rec.Pass(ctx, both[:2], "h2", false, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deferred) != 1 || count() != 2 {
		t.Fatalf("the first load without b deleted it (deferred %v, %d conversations left)", res.Deferred, count())
	}
	if at, ok := f.rec.NextRetry(); !ok || !at.Equal(now.Add(2*time.Second)) {
		t.Fatalf("NextRetry = %v, %v: the confirming pass must be asked for", at, ok)
	}
	// The pull finishes and b is back: nothing is deleted, ever.
	if _, err := f.rec.Pass(ctx, both, "h1", false, -1); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, err := f.rec.Pass(ctx, both, "h1", false, -1); err != nil || count() != 2 {
		t.Fatalf("b was deleted although its spec came back (%v, %d left)", err, count())
	}
	// Really removed: deleted once a later load confirms it.
	if _, err := f.rec.Pass(ctx, both[:2], "h2", false, -1); err != nil || count() != 2 {
		t.Fatalf("deleted on the first load: %v, %d left", err, count())
	}
	now = now.Add(3 * time.Second)
	if _, err := f.rec.Pass(ctx, both[:2], "h2", false, -1); err != nil || count() != 1 {
		t.Fatalf("not deleted after the confirming load: %v, %d left", err, count())
	}
}

func TestIncrementalPassThatReplacesAServiceReadsItInFull(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	if _, err := f.rec.Pass(ctx, []resource.Desired{svc("s", "S")}, "h1", true, -1); err != nil {
		t.Fatal(err)
	}
	sid := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	// The app fills the service after the last full read.
	if _, err := f.emu.SeedConversations(sid, 20, "app-"); err != nil {
		t.Fatal(err)
	}
	res, err := f.rec.Pass(ctx, []resource.Desired{svc("s", "Renamed")}, "h2", false, -1)
	var refused *engine.TooManyDestroysError
	if !errors.As(err, &refused) || refused.Count != 25 || !res.Full {
		t.Fatalf("want a full pass refused for 25 destroys (service, 20 conversations, 4 default roles), got full=%v, %v", res != nil && res.Full, err)
	}
}

// A problem the plan finds holds back only the resources it touches and
// the steps that wait for them; everything else in the pass is applied.
func TestPassHoldsBackOnlyWhatAProblemTouches(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	named := func(name, service, unique string) resource.Desired {
		d := conv(name, service)
		d.Values[resource.FieldUniqueName] = unique
		return d
	}
	guarded := svc("guarded", "G")
	guarded.Lifecycle.PreventDestroy = true
	base := []resource.Desired{svc("s", "S"), guarded, conv("edited", "s"), conv("drifted", "s"), conv("inside", "guarded"), named("x", "s", "ux"), named("y", "s", "uy")}
	if _, err := f.rec.Pass(ctx, base, "h1", true, -1); err != nil {
		t.Fatal(err)
	}
	addr := func(kind resource.Kind, n string) resource.Address { return resource.Address{Kind: kind, Name: n} }
	sid := f.store.Get(addr(resource.KindService, "s")).SID
	// Someone else: a conversation holding the name a new spec wants, and
	// drift on a managed one.
	if _, err := f.emu.SeedConversations(sid, 1, "theirs-"); err != nil {
		t.Fatal(err)
	}
	drifted := f.store.Get(addr(resource.KindConversation, "drifted")).SID
	if err := f.emu.EditConversation(sid, drifted, func(c *emulator.Conversation) { n := "changed by hand"; c.FriendlyName = &n }); err != nil {
		t.Fatal(err)
	}

	edited := conv("edited", "s")
	edited.Values[resource.FieldFriendlyName] = "edited v2"
	renamed := svc("guarded", "G renamed") // a replace, which prevent_destroy refuses
	renamed.Lifecycle.PreventDestroy = true
	next := []resource.Desired{svc("s", "S"), renamed, edited, conv("drifted", "s"), conv("inside", "guarded"),
		named("x", "s", "uy"), named("y", "s", "ux"), // a swap: a cycle
		named("clash", "s", "theirs-0")} // held by a conversation convsync does not manage
	res, err := f.rec.Pass(ctx, next, "h2", true, -1)
	if err != nil {
		t.Fatalf("the pass failed as a whole: %v", err)
	}
	wantHeld := map[string]string{
		"conversation.clash":  "convsync import",
		"conversation.x":      "move in a cycle",
		"conversation.y":      "move in a cycle",
		"service.guarded":     "prevent_destroy",
		"conversation.inside": "waits for service.guarded, which is held back",
	}
	if len(res.HeldBack) != len(wantHeld) {
		t.Errorf("held back %v, want %v", res.HeldBack, wantHeld)
	}
	for a, want := range wantHeld {
		var why string
		for got, w := range res.HeldBack {
			if got.String() == a {
				why = w
			}
		}
		if !strings.Contains(why, want) {
			t.Errorf("%s held back with %q, want a message containing %q", a, why, want)
		}
	}
	if res.Applied == nil || len(res.Applied.Failed()) > 0 {
		t.Fatalf("applied: %+v", res.Applied)
	}
	for sidOrName, want := range map[string]string{f.store.Get(addr(resource.KindConversation, "edited")).SID: "edited v2", drifted: "drifted"} {
		c, err := f.emu.Conversation(sid, sidOrName)
		if err != nil || c.FriendlyName == nil || *c.FriendlyName != want {
			t.Errorf("%s: %+v %v, want friendly_name %q", sidOrName, c, err, want)
		}
	}
	if _, err := f.emu.Conversation(sid, "ux"); err != nil {
		t.Errorf("the held-back swap changed Twilio: %v", err)
	}
	failing := f.rec.Failing()
	if err := failing[addr(resource.KindConversation, "clash")]; err == nil || !strings.Contains(err.Error(), "held back") {
		t.Errorf("Failing does not report the held-back resource: %v", failing)
	}
	// Fixed in the specs: the next pass applies it and holds back nothing more.
	next[len(next)-1] = named("clash", "s", "ours")
	next[1] = guarded
	res, err = f.rec.Pass(ctx, next, "h3", false, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.HeldBack) != 2 { // the swap stays
		t.Errorf("held back after the fix: %v", res.HeldBack)
	}
	if _, err := f.emu.Conversation(sid, "ours"); err != nil {
		t.Errorf("the fixed spec was not applied: %v", err)
	}
}

// writes counts the emulator's answers to anything but a GET.
func writes(emu *emulator.Server) int64 {
	var n int64
	for route, c := range emu.Stats().ByRoute {
		if !strings.HasPrefix(route, "GET ") {
			n += c
		}
	}
	return n
}

func TestBeforeApplyFalsePlansWithoutWriting(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	var seen []int
	dry := true
	f.rec.BeforeApply = func(p *planner.Plan) bool {
		seen = append(seen, len(p.Changes))
		return !dry
	}
	desired := []resource.Desired{svc("s", "S")}
	for i := range 2 {
		res, err := f.rec.Pass(ctx, desired, "h1", i == 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if res.Applied != nil || res.Plan == nil || res.Plan.Summary().Create != 1 {
			t.Fatalf("pass %d: want the create planned and nothing applied, got applied=%v plan=%+v", i, res.Applied, res.Plan)
		}
	}
	if n := writes(f.emu); n != 0 {
		t.Fatalf("%d writes reached Twilio while BeforeApply said no", n)
	}
	if st := f.store.State(); len(st.Resources) != 0 || len(st.Pending) != 0 || st.Serial != 0 {
		t.Fatalf("the state changed: %+v", st)
	}
	if len(seen) != 2 || seen[0] != 1 {
		t.Fatalf("BeforeApply saw %v, want the one-step plan twice", seen)
	}

	dry = false
	res, err := f.rec.Pass(ctx, desired, "h1", false, -1)
	if err != nil || res.Applied == nil || len(res.Applied.Failed()) != 0 {
		t.Fatalf("once allowed, the pass must apply: %v %+v", err, res)
	}
	if f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}) == nil {
		t.Fatal("the service is not in the state after the allowed pass")
	}
}
