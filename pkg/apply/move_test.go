package apply_test

import (
	"context"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

func convAddr(name string) resource.Address {
	return resource.Address{Kind: resource.KindConversation, Name: name}
}

// writes counts the requests that change something in Twilio.
func writes(before, after map[string]int64) int64 {
	n := int64(0)
	for route, count := range after {
		if strings.HasPrefix(route, "POST ") || strings.HasPrefix(route, "DELETE ") {
			n += count - before[route]
		}
	}
	return n
}

func (f *fixture) plan(desired []resource.Desired) *planner.Plan {
	f.t.Helper()
	e := &engine.Engine{API: f.api}
	plan, err := e.Plan(context.Background(), desired, "", f.store.State(), nil)
	if err != nil {
		f.t.Fatalf("plan: %v", err)
	}
	return plan
}

// A renamed spec is a move: the state entry is re-keyed, keeping the SID,
// the parent and what was applied (timers), and nothing is sent to Twilio.
func TestApplyMoveReKeysTheStateWithoutWriting(t *testing.T) {
	f := newFixture(t)
	v := resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP", resource.FieldTimersClosed: "P30D"}
	if res := f.apply([]resource.Desired{service("s", "S"), conversation("vip", "s", v)}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	old := f.store.Get(convAddr("vip")).Clone()
	plan := f.plan([]resource.Desired{service("s", "S"), conversation("vip-support", "s", v)})
	if s := plan.Summary(); s.Move != 1 || s.Create+s.Update+s.Replace+s.Delete != 0 {
		t.Fatalf("summary %+v, want one move and nothing else", s)
	}
	before := f.emu.Stats().ByRoute
	res := apply.Apply(context.Background(), f.api, f.store, plan, apply.Options{})
	if len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	if n := writes(before, f.emu.Stats().ByRoute); n != 0 {
		t.Fatalf("%d writes reached Twilio for a move", n)
	}
	if f.store.Get(convAddr("vip")) != nil {
		t.Fatal("the old address is still in the state")
	}
	got := f.store.Get(convAddr("vip-support"))
	if got == nil || got.SID != old.SID || got.ParentSID != old.ParentSID || got.Applied[resource.FieldTimersClosed] != "P30D" || !got.CreatedAt.Equal(old.CreatedAt) {
		t.Fatalf("moved entry %+v, want %+v under the new address", got, old)
	}
	if again := f.plan([]resource.Desired{service("s", "S"), conversation("vip-support", "s", v)}); again.HasChanges() {
		t.Fatalf("the next plan still has changes: %+v", again.Changes)
	}
}

// A move whose spec also changes fields re-keys, then updates the new
// address in place: one update, same SID.
func TestApplyMoveThenUpdatesWhatDiffers(t *testing.T) {
	f := newFixture(t)
	if res := f.apply([]resource.Desired{service("s", "S"), conversation("vip", "s", resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP"})}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	sid := f.store.Get(convAddr("vip")).SID
	svcSID := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	desired := []resource.Desired{service("s", "S"), conversation("desk", "s", resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP desk"})}
	before := f.emu.Stats().ByRoute
	res := f.apply(desired)
	if len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	if n := writes(before, f.emu.Stats().ByRoute); n != 1 {
		t.Fatalf("%d writes, want the one update", n)
	}
	got := f.store.Get(convAddr("desk"))
	if got == nil || got.SID != sid || got.Applied[resource.FieldFriendlyName] != "VIP desk" {
		t.Fatalf("state: %+v", got)
	}
	c, err := f.emu.Conversation(svcSID, sid)
	if err != nil || c.FriendlyName == nil || *c.FriendlyName != "VIP desk" {
		t.Fatalf("Twilio: %+v, %v", c, err)
	}
}

// A move whose old entry changed since the plan was made (state mv, state
// rm) fails instead of re-keying something else.
func TestApplyMoveRefusesAStateThatChanged(t *testing.T) {
	f := newFixture(t)
	v := resource.Values{resource.FieldUniqueName: "vip"}
	if res := f.apply([]resource.Desired{service("s", "S"), conversation("vip", "s", v)}); len(res.Failed()) > 0 {
		t.Fatal(res.Failed())
	}
	plan := f.plan([]resource.Desired{service("s", "S"), conversation("vip-support", "s", v)})
	if err := f.store.Update(func(s *state.State) error { s.Remove(convAddr("vip")); return nil }); err != nil {
		t.Fatal(err)
	}
	res := apply.Apply(context.Background(), f.api, f.store, plan, apply.Options{})
	if failed := res.Failed(); len(failed) != 1 || !strings.Contains(failed[0].Err.Error(), "the state no longer records") {
		t.Fatalf("failed: %+v", failed)
	}
	if f.store.Get(convAddr("vip-support")) != nil {
		t.Fatal("the move recorded the new address anyway")
	}
}
