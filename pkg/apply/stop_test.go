package apply_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// heldCreates puts a handler in front of f's emulator that holds every
// conversation create until release is closed, telling arrived about each.
func heldCreates(t *testing.T, f *fixture) (arrived <-chan struct{}, release chan struct{}, creates func() int) {
	return heldRequests(t, f, http.MethodPost, "/Conversations")
}

// heldRequests holds every request of method to a path whose last part
// starts with prefix (a collection, or a SID prefix).
func heldRequests(t *testing.T, f *fixture, method, prefix string) (arrived <-chan struct{}, release chan struct{}, creates func() int) {
	t.Helper()
	arrive := make(chan struct{}, 100)
	release = make(chan struct{})
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == method && strings.HasPrefix(r.URL.Path[strings.LastIndex(r.URL.Path, "/"):], prefix) {
			mu.Lock()
			n++
			mu.Unlock()
			arrive <- struct{}{}
			<-release
		}
		f.emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	api, err := twilioapi.New(twilioapi.Config{AccountSID: accountSID, AuthToken: authToken, BaseURL: srv.URL, ActionsPerSecondPerService: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.api = api
	return arrive, release, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// TestStopLetsStepsInFlightFinish: once Options.Stop is closed, the creates
// in flight complete and are recorded, nothing else is sent, and every
// other step ends not started: one NotStarted event each, no "failed"
// outcome and no log line for them.
func TestStopLetsStepsInFlightFinish(t *testing.T) {
	f := newFixture(t)
	desired := []resource.Desired{service("s", "S")}
	for i := range 6 {
		desired = append(desired, conversation(fmt.Sprintf("c%d", i), "s", resource.Values{resource.FieldFriendlyName: fmt.Sprintf("C%d", i)}))
	}
	arrived, release, creates := heldCreates(t, f)
	e := &engine.Engine{API: f.api}
	plan, err := e.Plan(context.Background(), desired, "", f.store.State(), nil)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	stop := make(chan struct{})
	var mu sync.Mutex
	terminal := map[string][]apply.Phase{}
	done := make(chan *apply.Result, 1)
	go func() {
		done <- e.Apply(context.Background(), f.store, plan, apply.Options{
			Parallelism: 2, Stop: stop, Logger: zap.New(core),
			OnEvent: func(ev apply.Event) {
				if ev.Phase == apply.Started {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				terminal[ev.Address.String()] = append(terminal[ev.Address.String()], ev.Phase)
			},
		})
	}()
	<-arrived
	<-arrived // both workers are in a create
	close(stop)
	close(release)
	res := <-done

	if n := creates(); n != 2 {
		t.Errorf("%d conversation creates were sent, want the 2 in flight at the stop", n)
	}
	if !res.Stopped {
		t.Error("Result.Stopped is false")
	}
	got := res.Outcomes()
	if got[apply.OutcomeDone] != 3 || got[apply.OutcomeNotStarted] != 4 || got[apply.OutcomeFailed] != 0 || got[apply.OutcomeSkipped] != 0 {
		t.Errorf("outcomes %v, want 3 done (the service and the 2 in flight) and 4 not started", got)
	}
	for _, s := range res.Steps {
		if s.Outcome() == apply.OutcomeNotStarted && !errors.Is(s.Err, apply.ErrNotStarted) {
			t.Errorf("%s: %v", s.Address, s.Err)
		}
		if s.Outcome() == apply.OutcomeDone && f.store.Get(s.Address) == nil {
			t.Errorf("%s was done but is not in the state", s.Address)
		}
		phases := terminal[s.Address.String()]
		want := map[apply.Outcome]apply.Phase{apply.OutcomeDone: apply.Succeeded, apply.OutcomeNotStarted: apply.NotStarted}[s.Outcome()]
		if len(phases) != 1 || phases[0] != want {
			t.Errorf("%s: events %v, want exactly one %s", s.Address, phases, want)
		}
	}
	if n := logs.FilterMessage("step failed").Len(); n != 0 {
		t.Errorf("%d \"step failed\" log lines for steps that were never sent", n)
	}
	if len(f.store.State().Pending) != 0 {
		t.Errorf("create intents left for steps never sent: %v", f.store.State().PendingAddresses())
	}

	// The next apply does the rest, without a duplicate.
	res = f.apply(desired)
	if len(res.Failed()) > 0 || res.Stopped {
		t.Fatalf("second apply: %+v", res.Failed())
	}
	if n := creates(); n != 6 {
		t.Errorf("%d creates in all, want 6", n)
	}
	svc := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	if n := len(conversationsIn(t, f.emu, svc)); n != 6 {
		t.Errorf("Twilio holds %d conversations, want 6", n)
	}
}

// TestCancelBeforeStartSendsNothing: an apply whose context is already
// cancelled sends nothing and reports every step not started, never
// skipped or failed.
func TestCancelBeforeStartSendsNothing(t *testing.T) {
	f := newFixture(t)
	desired := []resource.Desired{service("s", "S"), conversation("c", "s", resource.Values{resource.FieldFriendlyName: "C"})}
	e := &engine.Engine{API: f.api}
	plan, err := e.Plan(context.Background(), desired, "", f.store.State(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var events []apply.Phase
	res := e.Apply(ctx, f.store, plan, apply.Options{OnEvent: func(ev apply.Event) { events = append(events, ev.Phase) }})
	if got := res.Outcomes(); got[apply.OutcomeNotStarted] != 2 || len(got) != 1 {
		t.Errorf("outcomes %v, want 2 not started", got)
	}
	if len(events) != 2 || events[0] != apply.NotStarted || events[1] != apply.NotStarted {
		t.Errorf("events %v, want two not_started", events)
	}
	if st := f.store.State(); len(st.Resources) != 0 || len(st.Pending) != 0 {
		t.Errorf("the state changed: %d resources, %d intents", len(st.Resources), len(st.Pending))
	}
}

// TestStopBetweenTheHalvesOfAReplace: a replace (a service's: delete,
// then create) stopped while its delete is in flight finishes the delete,
// sends no create, and ends not started saying which half was done; the
// next apply creates the new one.
func TestStopBetweenTheHalvesOfAReplace(t *testing.T) {
	f := newFixture(t)
	if res := f.apply([]resource.Desired{service("s", "Old")}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	addr := resource.Address{Kind: resource.KindService, Name: "s"}
	oldSID := f.store.Get(addr).SID
	arrived, release, _ := heldRequests(t, f, http.MethodDelete, "/IS")
	e := &engine.Engine{API: f.api}
	plan, err := e.Plan(context.Background(), []resource.Desired{service("s", "New")}, "", f.store.State(), nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan *apply.Result, 1)
	go func() { done <- e.Apply(context.Background(), f.store, plan, apply.Options{Stop: stop}) }()
	<-arrived
	close(stop)
	close(release)
	res := <-done
	if len(res.Steps) != 1 || res.Steps[0].Outcome() != apply.OutcomeNotStarted ||
		!strings.Contains(res.Steps[0].Err.Error(), "the old one was deleted and creating the new one was not started") {
		t.Fatalf("steps %+v, want the replace not started between its halves", res.Steps)
	}
	if hasService(f, oldSID) || len(f.emu.Services()) != 1 { // the default service
		t.Fatalf("services after the stop: %+v, want the old one deleted and no new one", f.emu.Services())
	}
	if r := f.store.Get(addr); r != nil {
		t.Fatalf("the state still holds %+v", r)
	}
	if res := f.apply([]resource.Desired{service("s", "New")}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	if r := f.store.Get(addr); r == nil || !hasService(f, r.SID) {
		t.Errorf("the next apply did not create the new service: %+v", r)
	}
}

func hasService(f *fixture, sid string) bool {
	for _, s := range f.emu.Services() {
		if s.SID == sid {
			return true
		}
	}
	return false
}
