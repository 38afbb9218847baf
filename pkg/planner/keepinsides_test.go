package planner

import (
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// TestKeepInsidesTakesAConversationsChildren: destroying a conversation with
// --target takes its participants along (their parent key is "IS…/CH…",
// two levels down), so none is left in the state after Twilio deleted it.
func TestKeepInsidesTakesAConversationsChildren(t *testing.T) {
	alice := resource.Values{resource.FieldIdentity: "alice"}
	p := resource.Observed{Kind: resource.KindParticipant, SID: mbSID, ParentSID: vipKey, Values: alice.Clone(), DateCreated: t0}
	st, snap, _ := childrenWorld(t, false, []resource.Observed{p}, nil)
	st.Put(&state.Resource{Address: addr(resource.KindParticipant, "alice"), SID: mbSID, ParentSID: vipKey, Applied: alice.Clone()})
	plan, err := Compute(nil, st, snap, Options{Destroy: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"conversation.vip", "service.support"} {
		got := KeepInsides([]Change{findChange(t, plan, target)}, plan.Changes)
		if !has(addresses(got), "participant.alice") {
			t.Errorf("destroy --target %s keeps %v, without participant.alice", target, addresses(got))
		}
	}
}

func addresses(cs []Change) []resource.Address {
	var out []resource.Address
	for _, c := range cs {
		out = append(out, c.Address)
	}
	return out
}
