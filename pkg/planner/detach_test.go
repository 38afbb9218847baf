package planner

import (
	"slices"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// TestDetachOrphans: a participant's delete goes with its conversation's
// while the plan deletes both; once the conversation's step is cut from the
// plan (--target, the daemon holding it back), the participant's delete
// sends its own request and no longer waits for a step that is not there.
func TestDetachOrphans(t *testing.T) {
	alice := resource.Values{resource.FieldIdentity: "alice"}
	p := resource.Observed{Kind: resource.KindParticipant, SID: mbSID, ParentSID: vipKey, Values: alice.Clone(), DateCreated: t0}
	st, snap, desired := childrenWorld(t, false, []resource.Observed{p}, nil)
	st.Put(&state.Resource{Address: addr(resource.KindParticipant, "alice"), SID: mbSID, ParentSID: vipKey, Applied: alice.Clone()})
	plan, err := Compute(desired[:1], st, snap) // the conversation's spec and alice's are gone
	if err != nil {
		t.Fatal(err)
	}
	DetachOrphans(plan)
	if ch := findChange(t, plan, "participant.alice"); !ch.GoesWithParent {
		t.Fatalf("with its conversation's delete in the plan, alice's goes with it: %+v", ch)
	}
	plan.Changes = slices.DeleteFunc(plan.Changes, func(c Change) bool { return c.Address.String() == "conversation.vip" })
	DetachOrphans(plan)
	ch := findChange(t, plan, "participant.alice")
	if ch.GoesWithParent || has(ch.DependsOn, "conversation.vip") || strings.Contains(ch.Reason, "goes with") {
		t.Fatalf("without its conversation's delete, alice's still goes with it: %+v", ch)
	}
}
