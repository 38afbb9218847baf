package planner

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// destroyWorld is kindsWorld with the service configuration in the state
// and a conversation.
func destroyWorld(t *testing.T) (*state.State, *Snapshot) {
	t.Helper()
	st, snap := kindsWorld(t)
	cfg := addr(resource.KindServiceConfiguration, "support")
	st.Put(&state.Resource{Address: cfg, SID: resource.SingletonID(resource.KindServiceConfiguration, svcSID), ParentSID: svcSID, Applied: resource.Values{"default_chat_service_role_sid": roleSID}})
	snap.SetListed(resource.KindConversation, svcSID, []resource.Observed{observedConv(convSID, svcSID, resource.Values{resource.FieldFriendlyName: "VIP"})})
	snap.SetListed(resource.KindParticipant, svcSID+"/"+convSID, nil)
	snap.SetListed(resource.KindConversationWebhook, svcSID+"/"+convSID, nil)
	st.Put(&state.Resource{Address: convAddr("vip"), SID: convSID, ParentSID: svcSID, Applied: resource.Values{resource.FieldFriendlyName: "VIP"}})
	return st, snap
}

func has(as []resource.Address, a string) bool {
	return slices.ContainsFunc(as, func(x resource.Address) bool { return x.String() == a })
}

func TestDestroyDeletesEverythingInTheState(t *testing.T) {
	st, snap := destroyWorld(t)
	// The specs are ignored: a destroy plans as if none wanted anything.
	plan, err := Compute(kindsDesired(roleValues("service", perms)), st, snap, Options{Destroy: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Action{"service.support": Delete, "role.agent": Delete, "user.alice": Delete, "conversation.vip": Delete, "service_configuration.support": Forget}
	for a, action := range want {
		if got := findChange(t, plan, a); got.Action != action || !strings.HasPrefix(got.Reason, "destroying everything in the state") {
			t.Errorf("%s: %s (%s), want %s", a, got.Action, got.Reason, action)
		}
	}
	if len(plan.Changes) != len(want) {
		t.Errorf("%d steps, want %d", len(plan.Changes), len(want))
	}
	svc, role := findChange(t, plan, "service.support"), findChange(t, plan, "role.agent")
	// Children before their parent ...
	if !has(svc.DependsOn, "user.alice") || !has(svc.DependsOn, "conversation.vip") {
		t.Errorf("the service's delete does not wait for its children: %v", svc.DependsOn)
	}
	// ... but a role goes with the service, after it, and after the user on it.
	if has(svc.DependsOn, "role.agent") || !has(role.AfterRelease, "service.support") || !has(role.AfterRelease, "user.alice") {
		t.Errorf("role.agent: service depends on %v, role waits for %v", svc.DependsOn, role.AfterRelease)
	}
	var human bytes.Buffer
	if err := RenderHuman(&human, plan); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/destroy.plan.txt", human.Bytes())
}

func TestDestroyOfARoleAloneWaitsForItsUsers(t *testing.T) {
	// The service is not in the state: the role is deleted on its own.
	st, snap := destroyWorld(t)
	st.Remove(svcAddr("support"))
	plan, err := Compute(nil, st, snap, Options{Destroy: true})
	if err != nil {
		t.Fatal(err)
	}
	role := findChange(t, plan, "role.agent")
	if role.Action != Delete || !has(role.AfterRelease, "user.alice") || has(role.AfterRelease, "service.support") {
		t.Fatalf("role.agent: %s, waits for %v", role.Action, role.AfterRelease)
	}
}

func TestCheckPreventDestroy(t *testing.T) {
	st, snap := destroyWorld(t)
	plan, err := Compute(nil, st, snap, Options{Destroy: true})
	if err != nil {
		t.Fatal(err)
	}
	vip := desiredConv("vip", "support", nil)
	vip.Lifecycle.PreventDestroy = true
	vip.Source = resource.Source{File: "specs/vip.yaml", Line: 3, Column: 1}
	// A singleton is only forgotten: its prevent_destroy does not stop a destroy.
	cfg := desiredIn(resource.KindServiceConfiguration, "support", nil)
	cfg.Lifecycle.PreventDestroy = true
	err = CheckPreventDestroy(plan, []resource.Desired{vip, cfg, desiredService("support", "Support")})
	want := "conversation.vip: lifecycle.prevent_destroy is set in its spec (specs/vip.yaml:3:1), so it cannot be destroyed. Remove prevent_destroy from the spec first, or destroy the other resources with --target."
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got: %v\nwant: %s", err, want)
	}
	if err := CheckPreventDestroy(plan, nil); err != nil {
		t.Fatalf("without specs: %v", err)
	}
}

func TestForceReplace(t *testing.T) {
	w := newWorld().service("support", svcSID, "Customer support", true).
		conversation("vip", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "VIP"}, resource.Values{resource.FieldFriendlyName: "VIP"}).
		conversation("other", convSID2, svcSID, resource.Values{resource.FieldFriendlyName: "Old"}, nil)
	desired := []resource.Desired{
		desiredService("support", "Customer support"),
		desiredConv("vip", "support", resource.Values{resource.FieldFriendlyName: "VIP"}),
		desiredConv("other", "support", resource.Values{resource.FieldFriendlyName: "New"}),
	}
	t.Run("no change becomes a replace", func(t *testing.T) {
		plan, err := Compute(desired, w.st, w.build(), Options{ForceReplace: []resource.Address{convAddr("vip"), convAddr("other")}})
		if err != nil {
			t.Fatal(err)
		}
		vip := findChange(t, plan, "conversation.vip")
		if vip.Action != Replace || vip.Reason != ForcedReason || len(vip.Fields) != 1 || vip.Fields[0].After != "VIP" {
			t.Fatalf("vip: %s %q %+v", vip.Action, vip.Reason, vip.Fields)
		}
		other := findChange(t, plan, "conversation.other")
		if other.Action != Replace || other.Reason != ForcedReason+"; changed too: friendly_name" {
			t.Fatalf("other: %s %q", other.Action, other.Reason)
		}
		if s := findChange(t, plan, "service.support"); s.Action != NoOp {
			t.Fatalf("service: %s", s.Action)
		}
	})
	t.Run("a service takes its children along", func(t *testing.T) {
		plan, err := Compute(desired, w.st, w.build(), Options{ForceReplace: []resource.Address{svcAddr("support")}})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"service.support", "conversation.vip", "conversation.other"} {
			if c := findChange(t, plan, a); c.Action != Replace {
				t.Errorf("%s: %s (%s)", a, c.Action, c.Reason)
			}
		}
	})
	t.Run("prevent_destroy refuses it", func(t *testing.T) {
		protected := slices.Clone(desired)
		protected[1].Lifecycle.PreventDestroy = true
		_, err := Compute(protected, w.st, w.build(), Options{ForceReplace: []resource.Address{convAddr("vip")}})
		if err == nil || !strings.Contains(err.Error(), "conversation.vip: lifecycle.prevent_destroy is set, but this plan must replace it (replacement requested with --replace)") {
			t.Fatalf("error: %v", err)
		}
	})
	t.Run("without options nothing is forced", func(t *testing.T) {
		plan, err := Compute(desired, w.st, w.build())
		if err != nil {
			t.Fatal(err)
		}
		if c := findChange(t, plan, "conversation.vip"); c.Action != NoOp {
			t.Fatalf("vip: %s", c.Action)
		}
	})
}

func TestCheckReplace(t *testing.T) {
	st, _ := destroyWorld(t)
	desired := kindsDesired(roleValues("service", perms), desiredConv("new", "support", nil), desiredIn(resource.KindServiceConfiguration, "support", nil))
	for _, tc := range []struct{ addr, want string }{
		{"role.agent", ""},
		{"service_configuration.support", "--replace service_configuration.support: a singleton cannot be replaced: it exists as long as its service does; change its fields in the spec instead"},
		{"conversation.vip", "--replace conversation.vip: no spec declares it, so the plan deletes it; a replacement needs its spec"},
		{"conversation.nope", "--replace conversation.nope: no such resource in the specs or the state"},
		{"conversation.new", "--replace conversation.new: not in the state, so there is nothing to replace (the plan creates it)"},
	} {
		a, err := resource.ParseAddress(tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckReplace([]resource.Address{a}, desired, st)
		if got := ""; err != nil {
			got = err.Error()
			if got != tc.want {
				t.Errorf("%s: %q, want %q", tc.addr, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%s: no error, want %q", tc.addr, tc.want)
		}
	}
}

func TestRefreshDesired(t *testing.T) {
	desired := kindsDesired(roleValues("service", perms))
	if got := RefreshDesired(desired, Options{Destroy: true}); got != nil {
		t.Errorf("destroy: %v", got)
	}
	got := RefreshDesired(desired, Options{ForceReplace: []resource.Address{svcAddr("support"), addr(resource.KindRole, "agent")}})
	// A forced service is left out (everything in it is read, as for a
	// removed one); a role, which holds nothing, stays.
	if len(got) != len(desired)-1 || slices.ContainsFunc(got, func(d resource.Desired) bool { return d.Address == svcAddr("support") }) {
		t.Errorf("forced service: %v", got)
	}
}

func TestKeepInsides(t *testing.T) {
	st, snap := destroyWorld(t)
	plan, err := Compute(nil, st, snap, Options{Destroy: true})
	if err != nil {
		t.Fatal(err)
	}
	var kept []Change
	for _, c := range plan.Changes {
		if c.Address.String() == "service.support" {
			kept = append(kept, c)
		}
	}
	got := KeepInsides(kept, plan.Changes)
	if len(got) != len(plan.Changes) {
		t.Fatalf("kept %d of %d steps", len(got), len(plan.Changes))
	}
	// A conversation alone takes nothing along.
	vip := findChange(t, plan, "conversation.vip")
	if got := KeepInsides([]Change{vip}, plan.Changes); len(got) != 1 {
		t.Fatalf("conversation: %d steps", len(got))
	}
}
