package planner

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

const (
	roleSID    = "RL00000000000000000000000000000001"
	roleSID2   = "RL00000000000000000000000000000002"
	userSID    = "US00000000000000000000000000000001"
	perms      = `["editOwnMessage","leaveConversation","sendMessage"]`
	permsOther = `["sendMessage","leaveConversation","editOwnMessage"]` // same set, Twilio's order
)

func addr(k resource.Kind, n string) resource.Address { return resource.Address{Kind: k, Name: n} }

func desiredIn(k resource.Kind, name string, v resource.Values) resource.Desired {
	return resource.Desired{Address: addr(k, name), Parent: resource.Ref{Address: svcAddr("support")}, Values: v, Timeouts: resource.DefaultTimeouts}
}

func roleValues(typ, p string) resource.Values {
	return resource.Values{resource.FieldFriendlyName: "Agent", resource.FieldRoleType: typ, resource.FieldPermissions: p}
}

// kindsWorld: service.support with role.agent (RL…1) and user.alice using it,
// all managed and matching their specs.
func kindsWorld(t *testing.T) (*state.State, *Snapshot) {
	t.Helper()
	w := newWorld().service("support", svcSID, "Support", true)
	snap := w.build()
	role := resource.Observed{Kind: resource.KindRole, SID: roleSID, ParentSID: svcSID, Values: roleValues("service", permsOther), DateCreated: t0}
	user := resource.Observed{Kind: resource.KindUser, SID: userSID, ParentSID: svcSID, Values: resource.Values{resource.FieldIdentity: "alice", resource.FieldRoleSID: roleSID, resource.FieldAttributes: "{}"}, DateCreated: t0}
	snap.SetListed(resource.KindRole, svcSID, []resource.Observed{role})
	snap.SetListed(resource.KindUser, svcSID, []resource.Observed{user})
	cfgID := resource.SingletonID(resource.KindServiceConfiguration, svcSID)
	snap.SetListed(resource.KindServiceConfiguration, svcSID, []resource.Observed{{Kind: resource.KindServiceConfiguration, SID: cfgID, ParentSID: svcSID,
		Values: resource.Values{"default_chat_service_role_sid": roleSID, "reachability_enabled": "false"}}})
	w.st.Put(&state.Resource{Address: addr(resource.KindRole, "agent"), SID: roleSID, ParentSID: svcSID})
	w.st.Put(&state.Resource{Address: addr(resource.KindUser, "alice"), SID: userSID, ParentSID: svcSID})
	return w.st, snap
}

func kindsDesired(role resource.Values, extra ...resource.Desired) []resource.Desired {
	user := desiredIn(resource.KindUser, "alice", resource.Values{resource.FieldIdentity: "alice"})
	user.Refs = map[string]resource.Ref{resource.FieldRoleSID: {Address: addr(resource.KindRole, "agent")}}
	return append([]resource.Desired{desiredService("support", "Support"), desiredIn(resource.KindRole, "agent", role), user}, extra...)
}

func TestSetsCompareAsSets(t *testing.T) {
	st, snap := kindsWorld(t)
	plan, err := Compute(kindsDesired(roleValues("service", perms)), st, snap)
	if err != nil {
		t.Fatal(err)
	}
	if plan.HasChanges() {
		var b bytes.Buffer
		_ = RenderHuman(&b, plan)
		t.Fatalf("the same permissions in another order planned changes:\n%s", b.String())
	}
}

func TestSetChangeIsAnInPlaceUpdateShownByMember(t *testing.T) {
	st, snap := kindsWorld(t)
	plan, err := Compute(kindsDesired(roleValues("service", `["editOwnMessage","sendMediaMessage","sendMessage"]`)), st, snap)
	if err != nil {
		t.Fatal(err)
	}
	if ch := findChange(t, plan, "role.agent"); ch.Action != Update {
		t.Fatalf("role.agent: %s, want update", ch.Action)
	}
	var b bytes.Buffer
	_ = RenderHuman(&b, plan)
	for _, want := range []string{"~ permissions = [", "+ sendMediaMessage", "- leaveConversation"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, b.String())
		}
	}
}

// A role whose type changes is replaced; the user that refers to it moves to
// the new role in the same apply: new role created, user updated, old role
// deleted, in that order.
func TestReplacedRoleMovesItsUsersBeforeItIsDeleted(t *testing.T) {
	st, snap := kindsWorld(t)
	plan, err := Compute(kindsDesired(roleValues("conversation", perms)), st, snap)
	if err != nil {
		t.Fatal(err)
	}
	role := findChange(t, plan, "role.agent")
	if role.Action != Replace || !role.CreateFirst {
		t.Fatalf("role.agent: %s (create first %v), want a replace that creates first", role.Action, role.CreateFirst)
	}
	user := findChange(t, plan, "user.alice")
	if user.Action != Update || user.PendingRefs[resource.FieldRoleSID] != addr(resource.KindRole, "agent") {
		t.Fatalf("user.alice: %s %v, want an update to the new role's SID", user.Action, user.PendingRefs)
	}
	if !slices.Contains(user.DependsOn, addr(resource.KindRole, "agent")) {
		t.Errorf("user.alice does not wait for role.agent: %v", user.DependsOn)
	}
	if !slices.Contains(role.AfterRelease, addr(resource.KindUser, "alice")) {
		t.Errorf("role.agent's delete does not wait for user.alice: %v", role.AfterRelease)
	}
	var b bytes.Buffer
	_ = RenderHuman(&b, plan)
	if !strings.Contains(b.String(), `~ role_sid = "`+roleSID+`" -> (the SID of role.agent, known after apply)`) {
		t.Errorf("plan does not show the pending reference:\n%s", b.String())
	}
}

func TestIdentityChangeReplacesTheUser(t *testing.T) {
	st, snap := kindsWorld(t)
	desired := kindsDesired(roleValues("service", perms))
	desired[2].Values[resource.FieldIdentity] = "alice@example.com"
	plan, err := Compute(desired, st, snap)
	if err != nil {
		t.Fatal(err)
	}
	if ch := findChange(t, plan, "user.alice"); ch.Action != Replace || ch.CreateFirst {
		t.Fatalf("user.alice: %s (create first %v), want a replace that deletes first (identity is its natural key)", ch.Action, ch.CreateFirst)
	}
}

func TestIdentityTakenByAnUnmanagedUserFailsThePlan(t *testing.T) {
	st, snap := kindsWorld(t)
	bob := desiredIn(resource.KindUser, "bob", resource.Values{resource.FieldIdentity: "alice"})
	st.Remove(addr(resource.KindUser, "alice"))
	_, err := Compute([]resource.Desired{desiredService("support", "Support"), desiredIn(resource.KindRole, "agent", roleValues("service", perms)), bob}, st, snap)
	if err == nil || !strings.Contains(err.Error(), `identity "alice" is already taken in service `+svcSID) ||
		!strings.Contains(err.Error(), "convsync import user.bob /Services/"+svcSID+"/Users/"+userSID) {
		t.Fatalf("want a claim error naming the import command, got %v", err)
	}
}

func TestSingletons(t *testing.T) {
	cfg := func(v resource.Values) resource.Desired {
		return desiredIn(resource.KindServiceConfiguration, "support", v)
	}
	cfgAddr := addr(resource.KindServiceConfiguration, "support")
	t.Run("a field that differs is updated, never created", func(t *testing.T) {
		st, snap := kindsWorld(t)
		plan, err := Compute(kindsDesired(roleValues("service", perms), cfg(resource.Values{"reachability_enabled": "true"})), st, snap)
		if err != nil {
			t.Fatal(err)
		}
		ch := findChange(t, plan, cfgAddr.String())
		if ch.Action != Update || len(ch.Fields) != 1 || ch.Fields[0].Name != "reachability_enabled" || ch.SID != resource.SingletonID(resource.KindServiceConfiguration, svcSID) {
			t.Fatalf("configuration: %s %+v (%s), want an update of reachability_enabled", ch.Action, ch.Fields, ch.SID)
		}
	})
	t.Run("fields the spec leaves out are not managed", func(t *testing.T) {
		st, snap := kindsWorld(t)
		plan, err := Compute(kindsDesired(roleValues("service", perms), cfg(resource.Values{"reachability_enabled": "false"})), st, snap)
		if err != nil {
			t.Fatal(err)
		}
		if ch := findChange(t, plan, cfgAddr.String()); ch.Action != NoOp {
			t.Fatalf("configuration: %s %+v, want no change", ch.Action, ch.Fields)
		}
	})
	t.Run("removed from the specs it is forgotten, with no API call", func(t *testing.T) {
		st, snap := kindsWorld(t)
		st.Put(&state.Resource{Address: cfgAddr, SID: resource.SingletonID(resource.KindServiceConfiguration, svcSID), ParentSID: svcSID})
		plan, err := Compute(kindsDesired(roleValues("service", perms)), st, snap)
		if err != nil {
			t.Fatal(err)
		}
		ch := findChange(t, plan, cfgAddr.String())
		if ch.Action != Forget || !strings.Contains(ch.Reason, "Twilio keeps its settings") {
			t.Fatalf("configuration: %s (%s), want forget", ch.Action, ch.Reason)
		}
	})
	t.Run("a replaced service gets its singletons written again after it exists", func(t *testing.T) {
		st, snap := kindsWorld(t)
		desired := kindsDesired(roleValues("service", perms), cfg(resource.Values{"reachability_enabled": "true"}))
		desired[0].Values[resource.FieldFriendlyName] = "Support (new)"
		plan, err := Compute(desired, st, snap)
		if err != nil {
			t.Fatal(err)
		}
		ch := findChange(t, plan, cfgAddr.String())
		if ch.Action != Update || !slices.Contains(ch.DependsOn, svcAddr("support")) || len(ch.Fields) != 1 {
			t.Fatalf("configuration: %s %+v depends on %v, want an update after service.support", ch.Action, ch.Fields, ch.DependsOn)
		}
		svc := findChange(t, plan, "service.support")
		if svc.Action != Replace {
			t.Fatalf("service: %s", svc.Action)
		}
	})
	t.Run("a configuration moving off a role is written before the role is deleted", func(t *testing.T) {
		st, snap := kindsWorld(t)
		c := cfg(nil)
		c.Values = resource.Values{}
		c.Refs = map[string]resource.Ref{"default_chat_service_role_sid": {Address: addr(resource.KindRole, "other")}}
		st.Put(&state.Resource{Address: addr(resource.KindRole, "other"), SID: roleSID2, ParentSID: svcSID})
		snap.Put(resource.Observed{Kind: resource.KindRole, SID: roleSID2, ParentSID: svcSID, Values: roleValues("service", perms)})
		other := desiredIn(resource.KindRole, "other", roleValues("service", perms))
		user := desiredIn(resource.KindUser, "alice", resource.Values{resource.FieldIdentity: "alice"})
		user.Refs = map[string]resource.Ref{resource.FieldRoleSID: {Address: addr(resource.KindRole, "other")}}
		plan, err := Compute([]resource.Desired{desiredService("support", "Support"), other, user, c}, st, snap)
		if err != nil {
			t.Fatal(err)
		}
		role := findChange(t, plan, "role.agent")
		if role.Action != Delete {
			t.Fatalf("role.agent: %s", role.Action)
		}
		for _, a := range []string{"user.alice", cfgAddr.String()} {
			if !slices.ContainsFunc(role.AfterRelease, func(x resource.Address) bool { return x.String() == a }) {
				t.Errorf("role.agent's delete does not wait for %s: %v", a, role.AfterRelease)
			}
		}
	})
}

func TestServiceDeleteCountsEveryKindItTakesAlong(t *testing.T) {
	st, snap := kindsWorld(t)
	st.Remove(addr(resource.KindUser, "alice"))
	plan, err := Compute(nil, st, snap)
	if err != nil {
		t.Fatal(err)
	}
	svc := findChange(t, plan, "service.support")
	if svc.Cascade != 1 || !strings.Contains(strings.Join(svc.Warnings, "\n"), "it holds 1 user that convsync does not manage") {
		t.Fatalf("service: cascade %d, warnings %q", svc.Cascade, svc.Warnings)
	}
}
