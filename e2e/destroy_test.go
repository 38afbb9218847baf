package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// deskSpecs is a service with a role, a user on it, a conversation with
// timers and the service's configuration naming the role as a default.
var deskSpecs = map[string]string{
	"services.yaml": `kind: Service
name: desk
friendly_name: Help desk
---
kind: ServiceConfiguration
service: desk
default_chat_service_role: staff
`,
	"access.yaml": `kind: Role
name: staff
service: desk
friendly_name: Desk staff
type: service
permissions: [createConversation, joinConversation]
---
kind: User
name: ana
service: desk
identity: ana@example.com
friendly_name: Ana
role: staff
`,
	"rooms.yaml": `kind: Conversation
name: lobby
service: desk
unique_name: lobby
friendly_name: Lobby
attributes: {floor: 1}
timers: {inactive: PT1H}
`,
}

func (e *env) writeDesk() {
	e.t.Helper()
	for name, content := range deskSpecs {
		e.writeSpec(name, content)
	}
}

var (
	sidPattern     = regexp.MustCompile(`\b(IS|CH|RL|US|MG)[0-9a-f]{32}\b`)
	lineagePattern = regexp.MustCompile(`"state_lineage": "[0-9a-f-]{36}"`)
)

// normalize replaces the SIDs in out (random in the emulator) by stable
// placeholders, numbered by first appearance, and the flags the harness
// gives (paths) by their names.
func (e *env) normalize(out string) string {
	seen := map[string]string{}
	n := map[string]int{}
	out = sidPattern.ReplaceAllStringFunc(out, func(sid string) string {
		if p, ok := seen[sid]; ok {
			return p
		}
		prefix := sid[:2]
		n[prefix]++
		seen[sid] = fmt.Sprintf("%s<%d>", prefix, n[prefix])
		return seen[sid]
	})
	out = lineagePattern.ReplaceAllString(out, `"state_lineage": "LINEAGE"`)
	return strings.NewReplacer(e.dir, "SPECS", e.state, "STATE").Replace(out)
}

func (e *env) golden(name, got string) {
	e.t.Helper()
	testenv.Golden(e.t, filepath.Join("testdata", name), []byte(e.normalize(got)), *update)
}

// TestDestroy: destroy plans deleting everything the state holds, children
// and referrers first, refuses without approval, honours prevent_destroy,
// and leaves Twilio and the state empty; the empty-specs refusal names it.
func TestDestroy(t *testing.T) {
	e := newEnv(t)
	e.writeDesk()
	e.must(0, "apply", "--auto-approve")
	serviceSID := e.stateSID("service.desk")

	// No terminal, no --auto-approve: refused, nothing changed.
	r := e.must(1, "destroy")
	if !strings.Contains(r.stderr, "not destroying: no terminal to ask for approval. Use --auto-approve") {
		t.Fatalf("destroy without approval: %s", r)
	}
	e.golden("destroy.plan.txt", r.stdout)

	// plan --destroy shows the same plan and exits 2 with --detailed-exitcode.
	r = e.must(2, "plan", "--destroy", "--detailed-exitcode")
	e.golden("destroy.plan.txt", r.stdout)

	// prevent_destroy in a spec refuses the destroy, naming the file.
	e.writeSpec("rooms.yaml", deskSpecs["rooms.yaml"]+"lifecycle: {prevent_destroy: true}\n")
	r = e.must(1, "destroy", "--auto-approve")
	for _, want := range []string{"conversation.lobby: lifecycle.prevent_destroy is set in its spec (" + filepath.Join(e.dir, "rooms.yaml") + ":1:1)", "the plan cannot be made (1 problem); nothing was changed"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("destroy of a protected resource: stderr lacks %q\n%s", want, r)
		}
	}
	// ... unless --target leaves it out.
	r = e.must(2, "plan", "--destroy", "--target", "user.ana", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "Plan: 0 to create, 0 to update, 0 to replace, 1 to delete.") || !strings.Contains(r.stdout, "WARNING: this plan is partial") {
		t.Fatalf("targeted destroy plan: %s", r)
	}
	e.writeDesk()

	// Specs that do not load do not stop a destroy: it warns.
	e.writeSpec("broken.yaml", "kind: Conversation\nname: [\n")
	r = e.must(2, "plan", "--destroy", "--detailed-exitcode")
	if !strings.Contains(r.stderr, "lifecycle.prevent_destroy cannot be checked") {
		t.Fatalf("destroy with broken specs: %s", r)
	}
	e.removeSpec("broken.yaml")

	r = e.must(0, "destroy", "--auto-approve")
	if !strings.Contains(r.stdout, "Destroy complete: 4 deleted, 1 forgotten.") {
		t.Fatalf("destroy: %s", r)
	}
	if _, err := e.emu.Conversations(serviceSID); err == nil {
		t.Fatalf("service %s still exists", serviceSID)
	}
	if r = e.must(0, "state", "list"); strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("state after destroy: %q", r.stdout)
	}
	// Nothing left: exit 0.
	r = e.must(0, "destroy")
	if !strings.Contains(r.stdout, "No changes. The state holds nothing to destroy.") {
		t.Fatalf("second destroy: %s", r)
	}
}

// TestDestroyPlanFile: plan --destroy --out, then apply the file; a second
// apply of the same file is stale.
func TestDestroyPlanFile(t *testing.T) {
	e := newEnv(t)
	e.writeDesk()
	e.must(0, "apply", "--auto-approve")
	planFile := filepath.Join(e.work, "destroy.plan")
	r := e.must(0, "plan", "--destroy", "--out", planFile)
	if !strings.Contains(r.stdout, "convsync apply") {
		t.Fatalf("plan --destroy --out: %s", r)
	}
	r = e.must(0, "apply", planFile)
	if !strings.Contains(r.stdout, "4 deleted") {
		t.Fatalf("apply of the destroy plan: %s", r)
	}
	if len(e.emu.Services()) != 1 {
		t.Fatalf("services left: %+v", e.emu.Services())
	}
	r = e.must(1, "apply", planFile)
	if !strings.Contains(r.stderr, "stale") {
		t.Fatalf("second apply of the plan file: %s", r)
	}
}

// TestDestroyHintInEmptySpecsRefusal: the refusal of empty specs names
// convsync destroy (without the --dir given: a wrong --dir is what the
// refusal is about, and destroy reads prevent_destroy from it).
func TestDestroyHintInEmptySpecsRefusal(t *testing.T) {
	e := newEnv(t)
	e.writeDesk()
	e.must(0, "apply", "--auto-approve")
	for name := range deskSpecs {
		e.removeSpec(name)
	}
	r := e.must(1, "plan")
	if !strings.Contains(r.stderr, "holds 5 resources, so every one would be deleted. Check --dir; to delete everything on purpose, run convsync destroy (it shows what it deletes and asks for yes)") {
		t.Fatalf("empty specs: %s", r)
	}
}

// TestReplace: --replace forces a replacement of a managed resource (new
// SID, users and configuration moved to a replaced role), and refuses what
// it cannot replace with one line.
func TestReplace(t *testing.T) {
	e := newEnv(t)
	e.writeDesk()
	e.must(0, "apply", "--auto-approve")
	oldRole, oldLobby := e.stateSID("role.staff"), e.stateSID("conversation.lobby")

	for _, tc := range []struct{ addr, want string }{
		{"service_configuration.desk", "Error: --replace service_configuration.desk: a singleton cannot be replaced"},
		{"conversation.nope", "Error: --replace conversation.nope: no such resource in the specs or the state"},
		{"nothing", `Error: --replace: address "nothing" must look like KIND.NAME`},
	} {
		for _, cmd := range [][]string{{"plan"}, {"apply", "--auto-approve"}} {
			r := e.must(1, append(cmd, "--replace", tc.addr)...)
			if !strings.HasPrefix(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("%s --replace %s: want one line starting %q, got %s", cmd, tc.addr, tc.want, r)
			}
		}
	}
	e.writeSpec("later.yaml", "kind: Conversation\nname: later\nservice: desk\nfriendly_name: Later\n")
	r := e.must(1, "plan", "--replace", "conversation.later")
	if !strings.Contains(r.stderr, "--replace conversation.later: not in the state") {
		t.Fatalf("--replace of a resource not created yet: %s", r)
	}
	e.removeSpec("later.yaml")
	r = e.must(1, "apply", "--replace", "role.staff", filepath.Join(e.work, "x.plan"))
	if !strings.Contains(r.stderr, "--replace cannot be used with a saved plan") {
		t.Fatalf("--replace with a plan file: %s", r)
	}

	r = e.must(2, "plan", "--replace", "role.staff", "--replace", "conversation.lobby", "--detailed-exitcode")
	e.golden("replace.plan.txt", r.stdout)
	r = e.must(0, "apply", "--auto-approve", "--replace", "role.staff", "--replace", "conversation.lobby")
	if !strings.Contains(r.stdout, "2 replaced") {
		t.Fatalf("apply --replace: %s", r)
	}
	newRole, newLobby := e.stateSID("role.staff"), e.stateSID("conversation.lobby")
	if newRole == oldRole || newLobby == oldLobby {
		t.Fatalf("SIDs after --replace: role %s -> %s, lobby %s -> %s", oldRole, newRole, oldLobby, newLobby)
	}
	users, err := e.emu.Users(e.stateSID("service.desk"))
	if err != nil || len(users) != 1 || users[0].RoleSID != newRole {
		t.Fatalf("the user is not on the new role %s: %+v %v", newRole, users, err)
	}
	e.must(0, "plan", "--detailed-exitcode")
}

// TestRefreshOnly: plan --refresh-only reports what changed in Twilio
// since convsync applied it, and what is gone, without planning; the JSON
// report is versioned.
func TestRefreshOnly(t *testing.T) {
	e := newEnv(t)
	e.writeDesk()
	e.must(0, "apply", "--auto-approve")
	r := e.must(0, "plan", "--refresh-only", "--detailed-exitcode")
	e.golden("refresh_only_clean.txt", r.stdout)

	for _, bad := range []string{"--destroy", "--out=x.plan", "--target=user.ana", "--replace=user.ana"} {
		r := e.must(1, "plan", "--refresh-only", bad)
		flagName, _, _ := strings.Cut(bad, "=")
		if want := "Error: --refresh-only cannot be used with " + flagName + ": it reports drift and plans no change\n"; r.stderr != want {
			t.Errorf("plan --refresh-only %s: %q, want %q", bad, r.stderr, want)
		}
	}

	// Someone edits the conversation and the role, and deletes the user.
	serviceSID := e.stateSID("service.desk")
	if err := e.emu.EditConversation(serviceSID, "lobby", func(c *emulator.Conversation) {
		name := "Lobby (moved)"
		c.FriendlyName = &name
		c.Attributes = `{"floor":2}`
	}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	ctx := context.Background()
	if _, err := c.Update(ctx, resource.KindRole, serviceSID, e.stateSID("role.staff"), resource.Values{resource.FieldPermissions: `["joinConversation"]`}, twilioapi.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, resource.KindUser, serviceSID, e.stateSID("user.ana"), twilioapi.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	// The specs do not matter: drift is measured against the state.
	e.writeSpec("broken.yaml", "kind: [\n")

	r = e.must(2, "plan", "--refresh-only", "--detailed-exitcode")
	e.golden("refresh_only_drift.txt", r.stdout)
	r = e.must(0, "plan", "--refresh-only")
	e.golden("refresh_only_drift.txt", r.stdout)

	r = e.must(0, "plan", "--refresh-only", "--json")
	e.golden("refresh_only_drift.json", r.stdout)
	var rep struct {
		FormatVersion string `json:"format_version"`
		HasDrift      bool   `json:"has_drift"`
		Summary       struct{ Managed, Drifted, Gone, Unchanged int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if rep.FormatVersion != "1.0" || !rep.HasDrift || rep.Summary.Managed != 5 || rep.Summary.Drifted != 2 || rep.Summary.Gone != 1 {
		t.Fatalf("JSON report: %+v", rep)
	}
	// Nothing was changed: the state still holds the user.
	if e.stateSID("user.ana") == "" {
		t.Fatal("refresh-only changed the state")
	}
}

// TestDestroyTargetService: destroy --target of a service destroys
// everything in it (its role too, after it) and leaves nothing in the state.
func TestDestroyTargetService(t *testing.T) {
	e := newEnv(t)
	e.writeDesk()
	e.must(0, "apply", "--auto-approve")
	r := e.must(0, "destroy", "--auto-approve", "--target", "service.desk")
	if !strings.Contains(r.stdout, "Destroy complete: 4 deleted, 1 forgotten.") {
		t.Fatalf("destroy --target service.desk: %s", r)
	}
	if r = e.must(0, "state", "list"); strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("state after a targeted destroy: %q", r.stdout)
	}
}
