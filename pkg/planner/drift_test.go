package planner

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// driftWorld: a service; vip renamed in Twilio (attributes reformatted
// only); calm made inactive by its own timer; gone deleted outside
// convsync; a role whose permissions were reordered and one dropped.
func driftWorld(t *testing.T) (*state.State, *Snapshot) {
	t.Helper()
	w := newWorld().service("support", svcSID, "Customer support", true).
		conversation("vip", convSID, svcSID,
			resource.Values{resource.FieldFriendlyName: "VIP (renamed)", resource.FieldAttributes: `{"b":2,"a":1}`},
			resource.Values{resource.FieldFriendlyName: "VIP", resource.FieldAttributes: `{"a":1,"b":2}`, resource.FieldTimersInactive: "PT1H"}).
		conversation("calm", "CH00000000000000000000000000000003", svcSID,
			resource.Values{resource.FieldState: resource.StateInactive},
			resource.Values{resource.FieldState: resource.StateActive, resource.FieldTimersInactive: "PT1H"}).
		conversation("gone", "", svcSID, nil, resource.Values{resource.FieldFriendlyName: "Gone"})
	snap := w.build()
	snap.SetListed(resource.KindRole, svcSID, []resource.Observed{{Kind: resource.KindRole, SID: roleSID, ParentSID: svcSID, Values: roleValues("service", `["sendMessage","editOwnMessage"]`), DateCreated: t0}})
	w.st.Put(&state.Resource{Address: addr(resource.KindRole, "agent"), SID: roleSID, ParentSID: svcSID, Applied: roleValues("service", perms)})
	return w.st, snap
}

func TestComputeDrift(t *testing.T) {
	st, snap := driftWorld(t)
	rep := ComputeDrift(st, snap)
	status := map[string]ResourceDrift{}
	for _, d := range rep.Resources {
		status[d.Address.String()] = d
	}
	for a, want := range map[string]string{"service.support": DriftNone, "conversation.vip": DriftChanged, "conversation.calm": DriftNone, "conversation.gone": DriftGone, "role.agent": DriftChanged} {
		if got := status[a].Status; got != want {
			t.Errorf("%s: %s, want %s (%+v)", a, got, want, status[a].Fields)
		}
	}
	if vip := status["conversation.vip"]; len(vip.Fields) != 1 || vip.Fields[0].Name != resource.FieldFriendlyName || len(vip.Unchecked) != 1 {
		t.Errorf("vip: %+v", vip)
	}
	if s := rep.Summary(); s != (DriftSummary{Managed: 5, Unchanged: 2, Drifted: 2, Gone: 1, UncheckedFields: 2}) || !rep.HasDrift() {
		t.Errorf("summary %+v", s)
	}

	var human, js bytes.Buffer
	if err := RenderDriftHuman(&human, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/drift.txt", human.Bytes())
	if err := RenderDriftJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/drift.json", js.Bytes())
	var parsed map[string]any
	if err := json.Unmarshal(js.Bytes(), &parsed); err != nil || parsed["format_version"] != DriftFormatVersion {
		t.Fatalf("JSON report: %v %v", err, parsed["format_version"])
	}
}

func TestNoDrift(t *testing.T) {
	w := newWorld().service("support", svcSID, "Customer support", true)
	rep := ComputeDrift(w.st, w.build())
	if rep.HasDrift() {
		t.Fatalf("drift: %+v", rep)
	}
	var human bytes.Buffer
	if err := RenderDriftHuman(&human, rep); err != nil {
		t.Fatal(err)
	}
	if want := "No drift. Twilio holds what convsync last applied to the 1 resource in the state.\n\nDrift: 0 changed, 0 gone, 1 unchanged.\n"; human.String() != want {
		t.Fatalf("got %q, want %q", human.String(), want)
	}
}
