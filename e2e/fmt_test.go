package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const messySpecs = `# Support desk
friendly_name: Customer support   # the console name
name: support
kind: Service
---
permissions:
    - joinConversation
    - createConversation
type: service
friendly_name: Staff
service: support
name: staff
kind: Role
---
timers:
    closed: P30D
    inactive: PT1H
unique_name: vip
service: support
kind: Conversation
name: vip
attributes: {tier: gold}
`

// TestFmtKeepsThePlan: fmt --check fails on messy specs and changes
// nothing; fmt rewrites them (comments kept) into specs that mean the same
// (the plan is identical, and no change once applied); fmt twice changes
// nothing.
func TestFmtKeepsThePlan(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("main.yaml", messySpecs)
	path := filepath.Join(e.dir, "main.yaml")
	before := e.must(0, "plan", "--json").stdout

	r := e.must(1, "fmt", "--check")
	if r.stdout != path+"\n" || !strings.Contains(r.stderr, "1 of 1 spec file") {
		t.Fatalf("fmt --check: %s", r)
	}
	if got, _ := os.ReadFile(path); string(got) != messySpecs {
		t.Fatal("fmt --check rewrote the file")
	}
	if r := e.must(0, "fmt"); r.stdout != path+"\n" {
		t.Fatalf("fmt: %s", r)
	}
	got, _ := os.ReadFile(path)
	for _, want := range []string{"# Support desk\nkind: Service\nname: support\nfriendly_name: Customer support # the console name\n---\n", "kind: Role\nname: staff\nservice: support\nfriendly_name: Staff\ntype: service\npermissions:\n  - joinConversation\n", "timers:\n  inactive: PT1H\n  closed: P30D\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("formatted file lacks %q:\n%s", want, got)
		}
	}
	if after := e.must(0, "plan", "--json").stdout; withoutLineage(after) != withoutLineage(before) {
		t.Fatalf("fmt changed the plan:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	e.must(0, "fmt", "--check")
	if r := e.must(0, "fmt"); r.stdout != "" {
		t.Fatalf("fmt twice: %s", r)
	}
	if again, _ := os.ReadFile(path); string(again) != string(got) {
		t.Fatal("fmt twice changed the file")
	}
	e.must(0, "apply", "--auto-approve")
	e.must(0, "plan", "--detailed-exitcode")

	// A file that does not parse is reported with its line, never rewritten.
	broken := "kind: Service\nname: other\n\tfriendly_name: Other\n"
	e.writeSpec("broken.yaml", broken)
	r = e.must(1, "fmt")
	if !strings.Contains(r.stderr, filepath.Join(e.dir, "broken.yaml")+":3:1: invalid YAML") {
		t.Fatalf("fmt of a broken file: %s", r)
	}
	if got, _ := os.ReadFile(filepath.Join(e.dir, "broken.yaml")); string(got) != broken {
		t.Fatal("fmt rewrote a file that does not parse")
	}
}

// TestValidateAndStateListJSON: validate --json and state list --json, the
// machine-readable formats of docs/formats.md, against real specs and a
// real apply.
func TestValidateAndStateListJSON(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("main.yaml", messySpecs)
	var valid struct {
		FormatVersion string            `json:"format_version"`
		Valid         bool              `json:"valid"`
		Resources     int               `json:"resources"`
		Problems      []json.RawMessage `json:"problems"`
	}
	r := e.must(0, "validate", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &valid); err != nil || !valid.Valid || valid.FormatVersion != "1.0" || valid.Resources != 3 || valid.Problems == nil || len(valid.Problems) != 0 {
		t.Fatalf("validate --json: %v %+v\n%s", err, valid, r)
	}
	e.writeSpec("bad.yaml", "kind: Conversation\nname: bad\nservice: support\nstate: open\n")
	r = e.must(1, "validate", "--json")
	var invalid struct {
		Valid    bool `json:"valid"`
		Problems []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &invalid); err != nil || invalid.Valid || len(invalid.Problems) != 1 {
		t.Fatalf("validate --json of a bad spec: %v %+v\n%s", err, invalid, r)
	}
	if p := invalid.Problems[0]; p.File != filepath.Join(e.dir, "bad.yaml") || p.Line != 4 || p.Column != 8 || p.Field != "state" || !strings.Contains(p.Message, `"open" is not allowed`) {
		t.Fatalf("problem: %+v", p)
	}
	e.removeSpec("bad.yaml")

	e.must(0, "apply", "--auto-approve")
	r = e.must(0, "state", "list", "--json")
	var list struct {
		FormatVersion string `json:"format_version"`
		StateSerial   uint64 `json:"state_serial"`
		Resources     []struct {
			Address   string `json:"address"`
			Kind      string `json:"kind"`
			SID       string `json:"sid"`
			ParentSID string `json:"parent_sid"`
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || list.FormatVersion != "1.0" || list.StateSerial == 0 || len(list.Resources) != 3 {
		t.Fatalf("state list --json: %v %+v\n%s", err, list, r)
	}
	supportSID := e.stateSID("service.support")
	for _, res := range list.Resources {
		if res.SID != e.stateSID(res.Address) {
			t.Errorf("%s: sid %s, state show says %s", res.Address, res.SID, e.stateSID(res.Address))
		}
		if wantParent := map[bool]string{true: "", false: supportSID}[res.Kind == "Service"]; res.ParentSID != wantParent {
			t.Errorf("%s: parent_sid %q, want %q", res.Address, res.ParentSID, wantParent)
		}
	}
}
