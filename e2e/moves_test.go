package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestRenamedSpecKeepsItsSID renames a conversation's spec (same
// unique_name): the plan moves its state entry instead of deleting it and
// creating a new one, so the SID, and the conversation's history, survive.
// A role (no natural key) is renamed with `convsync state mv`.
func TestRenamedSpecKeepsItsSID(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", supportSpec)
	e.writeSpec("vip.yaml", vipSpec)
	role := "kind: Role\nname: %s\nservice: support\nfriendly_name: Agent\ntype: conversation\npermissions: [sendMessage]\n"
	e.writeSpec("role.yaml", strings.ReplaceAll(role, "%s", "agent"))
	e.must(0, "apply", "--auto-approve")
	supportSID := e.stateSID("service.support")
	sid := e.stateSID("conversation.vip")
	roleSID := e.stateSID("role.agent")

	e.writeSpec("vip.yaml", strings.Replace(vipSpec, "name: vip\n", "name: vip-support\n", 1))
	r := e.must(2, "plan", "--detailed-exitcode")
	for _, want := range []string{
		"# conversation.vip has moved to conversation.vip-support",
		"Plan: 0 to create, 0 to update, 0 to replace, 0 to delete",
		"1 to move",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("plan output lacks %q:\n%s", want, r)
		}
	}
	p := e.planJSON()
	if got := p.actions(); len(got) != 1 || got[0] != "conversation.vip-support:move" {
		t.Fatalf("plan: %v", got)
	}
	e.must(0, "apply", "--auto-approve")
	if got := e.stateSID("conversation.vip-support"); got != sid {
		t.Fatalf("the state records %s under the new address, want %s", got, sid)
	}
	if r := e.run("state", "show", "conversation.vip"); r.code == 0 {
		t.Fatalf("the old address is still in the state:\n%s", r)
	}
	if c, err := e.emu.Conversation(supportSID, "vip-support"); err != nil || c.SID != sid {
		t.Fatalf("Twilio holds %+v (%v), want %s", c, err, sid)
	}
	if cs, err := e.emu.Conversations(supportSID); err != nil || len(cs) != 1 {
		t.Fatalf("Twilio holds %d conversations (%v), want 1", len(cs), err)
	}
	e.must(0, "plan", "--detailed-exitcode")

	// A role has no natural key: renamed, it is replaced, unless the state
	// entry is moved by hand first.
	e.writeSpec("role.yaml", strings.ReplaceAll(role, "%s", "staff"))
	if got := e.planJSON().actions(); len(got) != 2 {
		t.Fatalf("a renamed role without state mv: %v", got)
	}
	e.must(1, "state", "mv", "role.agent", "conversation.agent")
	e.must(1, "state", "mv", "role.nobody", "role.staff")
	r = e.must(0, "state", "mv", "role.agent", "role.staff")
	if !strings.Contains(r.stdout, "Moved role.agent to role.staff ("+roleSID+")") {
		t.Fatalf("state mv: %s", r)
	}
	e.must(1, "state", "mv", "conversation.vip-support", "role.staff")
	e.must(0, "plan", "--detailed-exitcode")
	if got := e.stateSID("role.staff"); got != roleSID {
		t.Fatalf("role.staff is %s, want %s", got, roleSID)
	}
}

// TestLostStateWarnsOfExistingServices: with the state file gone, the plan
// still creates the services (Twilio allows two of a name) but says, on
// each, that one of that name exists and how to adopt it. Once the service
// is imported, a conversation's unique_name held in it fails the plan with
// its own import command.
func TestLostStateWarnsOfExistingServices(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", supportSpec)
	e.writeSpec("vip.yaml", vipSpec)
	e.must(0, "apply", "--auto-approve")
	supportSID := e.stateSID("service.support")
	vipSID := e.stateSID("conversation.vip")
	if err := os.Remove(e.state); err != nil {
		t.Fatal(err)
	}
	r := e.must(0, "plan")
	want := `a service named "Customer support" already exists (` + supportSID + `) that convsync does not manage; if it is this one, adopt it with ` + e.pasted("convsync import service.support /Services/"+supportSID)
	if !strings.Contains(r.stdout, want) {
		t.Fatalf("plan output lacks %q:\n%s", want, r)
	}
	e.must(0, "import", "service.support", "/Services/"+supportSID)
	r = e.must(1, "plan")
	if strings.Contains(r.stdout, `a service named "Customer support"`) {
		t.Fatalf("the warning stays after the import:\n%s", r)
	}
	wantCmd := e.pasted("convsync import conversation.vip /Services/" + supportSID + "/Conversations/" + vipSID)
	if !strings.Contains(r.stderr, wantCmd) {
		t.Fatalf("plan should name %q:\n%s", wantCmd, r)
	}
	e.must(0, "import", "conversation.vip", "/Services/"+supportSID+"/Conversations/"+vipSID)
	// Only service.sales (lost too, not imported) is still to create.
	if r := e.must(0, "plan"); strings.Contains(r.stdout, "conversation.vip will be created") || !strings.Contains(r.stdout, "Plan: 1 to create") {
		t.Fatalf("after both imports:\n%s", r)
	}
}
