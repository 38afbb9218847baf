package planner

import (
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// After a lost state file, a create of a kind without a natural key whose
// twin convsync does not manage already exists is planned with a warning
// naming the import command; the plan does not fail (Twilio allows two).
func TestCreateWarnsOfAnUnmanagedTwin(t *testing.T) {
	w := newWorld().service("", svcSID, "Customer support", false).service("", svcSID2, "Customer support", false)
	plan, err := Compute([]resource.Desired{desiredService("support", "Customer support"), desiredService("sales", "Sales")}, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	support := findChange(t, plan, "service.support")
	if support.Action != Create || len(support.Warnings) != 2 {
		t.Fatalf("service.support: %s, warnings %q", support.Action, support.Warnings)
	}
	for i, sid := range []string{svcSID, svcSID2} {
		want := `a service named "Customer support" already exists (` + sid + `) that convsync does not manage; if it is this one, adopt it with convsync import service.support /Services/` + sid
		if support.Warnings[i] != want {
			t.Errorf("warning %d:\n got %s\nwant %s", i, support.Warnings[i], want)
		}
	}
	if sales := findChange(t, plan, "service.sales"); len(sales.Warnings) != 0 {
		t.Errorf("service.sales has no twin, but warns %q", sales.Warnings)
	}
}

func TestCreateDoesNotWarnOfAManagedTwin(t *testing.T) {
	// service.old owns the other "Customer support": no warning about it.
	w := newWorld().service("old", svcSID, "Customer support", true)
	plan, err := Compute([]resource.Desired{desiredService("old", "Customer support"), desiredService("support", "Customer support")}, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	if ch := findChange(t, plan, "service.support"); ch.Action != Create || len(ch.Warnings) != 0 {
		t.Fatalf("service.support: %s, warnings %q", ch.Action, ch.Warnings)
	}
}

// The rule is the schema's: a role (no natural key) in a service not
// managed here is compared on every readable field its spec sets.
func TestRoleCreateWarnsOfAnUnmanagedTwin(t *testing.T) {
	const roleSID = "RL00000000000000000000000000000001"
	w := newWorld().service("", extSvc, "Theirs", false)
	snap := w.build()
	perms := resource.EncodeSet([]string{"sendMessage"})
	snap.SetListed(resource.KindRole, extSvc, []resource.Observed{
		{Kind: resource.KindRole, SID: roleSID, ParentSID: extSvc, Values: resource.Values{resource.FieldFriendlyName: "agent", resource.FieldRoleType: "service", resource.FieldPermissions: perms}, DateCreated: t0},
		{Kind: resource.KindRole, SID: "RL00000000000000000000000000000002", ParentSID: extSvc, Values: resource.Values{resource.FieldFriendlyName: "agent", resource.FieldRoleType: "conversation", resource.FieldPermissions: perms}, DateCreated: t0},
	})
	role := resource.Desired{Address: resource.Address{Kind: resource.KindRole, Name: "agent"}, Parent: resource.Ref{SID: extSvc},
		Values: resource.Values{resource.FieldFriendlyName: "agent", resource.FieldRoleType: "service", resource.FieldPermissions: perms}}
	plan, err := Compute([]resource.Desired{role}, state.New(), snap)
	if err != nil {
		t.Fatal(err)
	}
	ch := findChange(t, plan, "role.agent")
	want := `a role named "agent" already exists (` + roleSID + `) in service ` + extSvc + ` that convsync does not manage; if it is this one, adopt it with convsync import role.agent /Services/` + extSvc + `/Roles/` + roleSID
	if ch.Action != Create || strings.Join(ch.Warnings, "\n") != want {
		t.Fatalf("role.agent: %s, warnings:\n%s\nwant:\n%s", ch.Action, strings.Join(ch.Warnings, "\n"), want)
	}
}
