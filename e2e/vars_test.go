package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// One spec folder, two environments: planned with the staging and the
// production var file, the same specs give two plans, each showing its own
// resolved values; apply with one and the other's plan is an update.
func TestOneFolderTwoVarFilesTwoPlans(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("support.yaml", `kind: Service
name: support
friendly_name: Support ${var.env}
---
kind: Conversation
name: lobby
service: support
unique_name: lobby
friendly_name: Lobby (${var.env})
attributes:
  region: ${var.region}
  seats: ${var.seats}
---
kind: ServiceWebhooks
service: support
post_webhook_url: https://${var.hooks}/conversations
method: POST
`)
	varFile := func(name, content string) string {
		path := filepath.Join(e.work, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	staging := varFile("staging.yaml", "env: staging\nregion: eu\nseats: 3\nhooks: hooks.staging.example.com\n")
	production := varFile("production.yaml", "env: production\nregion: us\nseats: 40\nhooks: hooks.example.com\n")

	stagingPlan := e.must(0, "plan", "--var-file", staging).stdout
	productionPlan := e.must(0, "plan", "--var-file", production).stdout
	for _, want := range []string{`"Support staging"`, `"Lobby (staging)"`, `{"region":"eu","seats":3}`, `"https://hooks.staging.example.com/conversations"`} {
		if !strings.Contains(stagingPlan, want) {
			t.Errorf("the staging plan lacks %s:\n%s", want, stagingPlan)
		}
	}
	for _, want := range []string{`"Support production"`, `"Lobby (production)"`, `{"region":"us","seats":40}`, `"https://hooks.example.com/conversations"`} {
		if !strings.Contains(productionPlan, want) {
			t.Errorf("the production plan lacks %s:\n%s", want, productionPlan)
		}
	}
	if strings.Contains(productionPlan, "staging") || strings.Contains(stagingPlan, "production") {
		t.Errorf("one environment's values leaked into the other's plan:\n%s\n---\n%s", stagingPlan, productionPlan)
	}

	// Applied for staging, the staging plan is empty; a --var after the
	// file overrides it, and the plan shows the new value.
	e.must(0, "apply", "--auto-approve", "--var-file", staging)
	e.must(0, "plan", "--detailed-exitcode", "--var-file", staging)
	again := e.must(2, "plan", "--detailed-exitcode", "--var-file", staging, "--var", "seats=4")
	if !strings.Contains(again.stdout, `"seats":3`) || !strings.Contains(again.stdout, `"seats":4`) || !strings.Contains(again.stdout, "1 to update") {
		t.Errorf("a --var after the file did not override it:\n%s", again.stdout)
	}

	// Without the values, nothing is planned and every reference is named.
	missing := e.must(1, "plan")
	if !strings.Contains(missing.stderr, "support.yaml:3:24: friendly_name: undefined variable \"env\"") {
		t.Errorf("an undefined variable is not reported at file:line:col:\n%s", missing.stderr)
	}
}
