package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const showSpecs = `kind: Service
name: support
friendly_name: Customer support
---
kind: Role
name: staff
service: support
friendly_name: Staff
type: service
permissions: [createConversation, joinConversation]
---
kind: User
name: alice
service: support
identity: alice@example.com
role: staff
---
kind: Conversation
name: vip
service: support
unique_name: vip
attributes: {tier: gold}
timers: {inactive: PT1H}
`

// TestShowSavedPlan: plan --out writes the JSON plan document plus what
// apply needs; show renders it exactly as plan did (human and --json), and
// apply PLANFILE carries it out, references created in the same run
// included; a stale saved plan is still refused.
func TestShowSavedPlan(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("main.yaml", showSpecs)
	planFile := filepath.Join(e.work, "create.plan")

	human := e.must(0, "plan").stdout
	asJSON := e.must(0, "plan", "--json").stdout
	saved := e.must(0, "plan", "--out", planFile)
	if !strings.HasPrefix(saved.stdout, human) {
		t.Fatalf("plan --out printed another plan:\n%s\nplan:\n%s", saved.stdout, human)
	}
	if got := e.must(0, "show", planFile).stdout; got != human {
		t.Fatalf("show:\n%s\nplan:\n%s", got, human)
	}
	// No state file yet: each run makes up a lineage, which the plan shows.
	if got := e.must(0, "show", "--json", planFile).stdout; withoutLineage(got) != withoutLineage(asJSON) {
		t.Fatalf("show --json:\n%s\nplan --json:\n%s", got, asJSON)
	}

	// The file is the JSON plan plus plan-file keys.
	data, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("the saved plan is not JSON: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(asJSON), &doc); err != nil {
		t.Fatal(err)
	}
	if file["format_version"] != "2.0" || file["plan_file_version"] != float64(2) || file["spec_hash"] == "" {
		t.Fatalf("plan file keys: format_version %v, plan_file_version %v, spec_hash %v", file["format_version"], file["plan_file_version"], file["spec_hash"])
	}
	for key, want := range doc {
		if key == "changes" || key == "state_lineage" {
			continue
		}
		if got, _ := json.Marshal(file[key]); string(got) != mustJSON(t, want) {
			t.Errorf("%s: saved %s, plan --json %s", key, got, mustJSON(t, want))
		}
	}
	changes := file["changes"].([]any)
	if len(changes) != len(doc["changes"].([]any)) {
		t.Fatalf("saved %d changes, plan --json %d", len(changes), len(doc["changes"].([]any)))
	}
	for i, c := range changes {
		ch := c.(map[string]any)
		if _, ok := ch["apply"].(map[string]any); !ok {
			t.Fatalf("change %d has no apply object: %v", i, ch)
		}
		delete(ch, "apply")
		if got, want := mustJSON(t, ch), mustJSON(t, doc["changes"].([]any)[i]); got != want {
			t.Errorf("change %d: saved %s, plan --json %s", i, got, want)
		}
	}

	// Applying the saved plan needs no specs: the file holds everything.
	e.removeSpec("main.yaml")
	r := e.must(0, "apply", planFile)
	if !strings.Contains(r.stdout, "Apply complete: 4 created") {
		t.Fatalf("apply PLANFILE:\n%s", r)
	}
	e.writeSpec("main.yaml", showSpecs)
	e.must(0, "plan", "--detailed-exitcode")
	supportSID := e.stateSID("service.support")
	if c, err := e.emu.Conversation(supportSID, "vip"); err != nil || c.SID != e.stateSID("conversation.vip") {
		t.Fatalf("vip: %+v %v", c, err)
	}

	// An update, shown and applied from the file.
	e.writeSpec("main.yaml", strings.NewReplacer("[createConversation, joinConversation]", "[joinConversation, sendMessage]", "{tier: gold}", "{tier: platinum}").Replace(showSpecs))
	update := filepath.Join(e.work, "update.plan")
	e.must(0, "plan", "--out", update)
	stale := filepath.Join(e.work, "stale.plan")
	e.must(0, "plan", "--out", stale)
	shown := e.must(0, "show", update).stdout
	for _, want := range []string{"~ role \"staff\"", "+ sendMessage", "- createConversation", `~ attributes = {"tier":"gold"} -> {"tier":"platinum"}`, "Plan: 0 to create, 2 to update"} {
		if !strings.Contains(shown, want) {
			t.Errorf("show of the update lacks %q:\n%s", want, shown)
		}
	}
	e.must(0, "apply", update)
	e.must(0, "plan", "--detailed-exitcode")

	// The state moved on: the second copy is stale. show still shows it
	// (it reads only the file); apply refuses it.
	if r := e.must(1, "apply", stale); !strings.Contains(r.stderr, "the saved plan is stale") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("a stale plan: %s", r)
	}
	if got := e.must(0, "show", stale).stdout; got != shown {
		t.Fatalf("show of the stale copy:\n%s\nwant:\n%s", got, shown)
	}

	// Not a plan file: one line naming it.
	bogus := filepath.Join(e.work, "bogus.plan")
	if err := os.WriteFile(bogus, []byte(asJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"show", "apply"} {
		r := e.must(1, cmd, bogus)
		if !strings.Contains(r.stderr, "plan file "+bogus+": is the output of plan --json") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Fatalf("%s of plan --json output: %s", cmd, r)
		}
	}
}

var lineageLine = regexp.MustCompile(`"state_lineage": "[^"]*"`)

// withoutLineage blanks the state_lineage of a JSON plan.
func withoutLineage(s string) string { return lineageLine.ReplaceAllString(s, `"state_lineage": ""`) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
