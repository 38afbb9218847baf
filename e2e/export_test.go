package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An account built by one team (here: the support-desk example applied
// with another state) is brought under git by another in one step: export
// --import writes specs and records them, and a plan over them has no
// changes.
func TestExportImportPlansNoChange(t *testing.T) {
	e := newEnv(t)
	example, err := filepath.Glob(filepath.Join("..", "examples", "support-desk", "*.yaml"))
	if err != nil || len(example) == 0 {
		t.Fatalf("no example specs: %v", err)
	}
	for _, f := range example {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e.writeSpec(filepath.Base(f), string(data))
	}
	e.must(0, "apply", "--auto-approve")

	out := filepath.Join(e.work, "exported")
	newState := filepath.Join(e.work, "exported.state.json")
	r := e.must(0, "export", "--import", "--out", out, "--state", newState)
	if !strings.Contains(r.stdout, "Imported") {
		t.Fatalf("export --import: %s", r)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.yaml"))
	if len(files) < 3 { // support, sales and the account's default service
		t.Fatalf("export wrote %v", files)
	}
	support, err := os.ReadFile(filepath.Join(out, "customer-support.yaml"))
	if err != nil {
		t.Fatalf("no file for the support service: %v (%v)", err, files)
	}
	for _, want := range []string{"kind: Role", "kind: User", "kind: ServiceWebhooks", "prevent_destroy: true", "role: ", "kind: Participant", "kind: ConversationWebhook", "messaging_binding:", "triggers:"} {
		if !strings.Contains(string(support), want) {
			t.Errorf("the support service's export lacks %q:\n%s", want, support)
		}
	}
	r = e.must(0, "plan", "--detailed-exitcode", "--dir", out, "--state", newState)
	if !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("plan over the export: %s", r)
	}
	// A second export into the same folder refuses to overwrite.
	r = e.must(1, "export", "--out", out, "--state", newState)
	if !strings.Contains(r.stderr, "exists already") {
		t.Fatalf("second export: %s", r)
	}
}
