package planner

import (
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// TestMessagingParticipantBecomingAChatOneIsReplaced: the spec trades the
// binding for an identity. The binding is then unmanaged, so no field
// forces the replacement, but Twilio refuses an identity on a messaging
// participant: the plan replaces it instead of a failing update.
func TestMessagingParticipantBecomingAChatOneIsReplaced(t *testing.T) {
	sms := resource.Values{resource.FieldBindingAddress: "+15551230000", resource.FieldBindingProxyAddress: "+15559870000"}
	p := resource.Observed{Kind: resource.KindParticipant, SID: mbSID, ParentSID: vipKey, Values: sms.Clone(), DateCreated: t0}
	st, snap, desired := childrenWorld(t, false, []resource.Observed{p}, nil)
	st.Put(&state.Resource{Address: addr(resource.KindParticipant, "bob"), SID: mbSID, ParentSID: vipKey, Applied: sms.Clone()})
	desired = append(desired, desiredChild(resource.KindParticipant, "bob", resource.Values{resource.FieldIdentity: "bob"}))
	plan, err := Compute(desired, st, snap)
	if err != nil {
		t.Fatal(err)
	}
	if ch := findChange(t, plan, "participant.bob"); ch.Action != Replace {
		t.Fatalf("participant.bob: %s (%s), want replace", ch.Action, ch.Reason)
	}
}
