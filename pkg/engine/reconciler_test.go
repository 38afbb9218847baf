package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/engine"
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
