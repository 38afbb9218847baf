package planner

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// TestSavedPlanWithChildrenOfAReplacedParent: a plan that re-creates a
// participant in its conversation's replacement shows the conversation as a
// field that forces the replacement; saved with plan --out, it loads again
// for apply FILE and renders as plan rendered it.
func TestSavedPlanWithChildrenOfAReplacedParent(t *testing.T) {
	alice := resource.Values{resource.FieldIdentity: "alice"}
	p := resource.Observed{Kind: resource.KindParticipant, SID: mbSID, ParentSID: vipKey, Values: alice.Clone(), DateCreated: t0}
	st, snap, desired := childrenWorld(t, true, []resource.Observed{p}, nil)
	st.Put(&state.Resource{Address: addr(resource.KindParticipant, "alice"), SID: mbSID, ParentSID: vipKey, Applied: alice.Clone()})
	desired[1].Values[resource.FieldFriendlyName] = "VIP desk" // closed: the edit replaces it
	desired = append(desired, desiredChild(resource.KindParticipant, "alice", alice))
	plan, err := Compute(desired, st, snap)
	if err != nil {
		t.Fatal(err)
	}
	if ch := findChange(t, plan, "participant.alice"); ch.Action != Replace || len(ch.Fields) == 0 || ch.Fields[0].Name != "conversation" {
		t.Fatalf("participant.alice: %s %+v; want a replace showing its conversation", ch.Action, ch.Fields)
	}
	data, err := Marshal(plan, SaveOptions{ConvsyncVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Unmarshal(data)
	if err != nil {
		t.Fatalf("the saved plan does not load: %v", err)
	}
	if got, want := findChange(t, loaded, "participant.alice").Fields, findChange(t, plan, "participant.alice").Fields; !reflect.DeepEqual(got, want) {
		t.Fatalf("fields after loading:\n got %+v\nwant %+v", got, want)
	}
	var a, b bytes.Buffer
	if err := RenderHuman(&a, plan); err != nil {
		t.Fatal(err)
	}
	if err := RenderHuman(&b, loaded); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("the loaded plan renders differently:\n got: %s\nwant: %s", b.String(), a.String())
	}
}
