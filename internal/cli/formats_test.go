package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden/")

// runFormatsCLI runs convsync with no environment and returns exit code, stdout and
// stderr.
func runFormatsCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := New(strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }).RunContext(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

func goldenFile(t *testing.T, name string, got string) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", "golden", name), []byte(got), *update)
}

func TestValidateJSON(t *testing.T) {
	code, stdout, stderr := runFormatsCLI("validate", "--json", "--dir", "testdata/specs")
	if code != ExitOK || stderr != "" {
		t.Fatalf("valid specs: exit %d\n%s\n%s", code, stdout, stderr)
	}
	goldenFile(t, "validate-valid.json", stdout)

	code, stdout, stderr = runFormatsCLI("validate", "--json", "--dir", "testdata/invalid")
	if code != ExitError || stderr != "" {
		t.Fatalf("invalid specs: exit %d\n%s\n%s", code, stdout, stderr)
	}
	goldenFile(t, "validate-invalid.json", stdout)
	var out struct {
		Valid    bool `json:"valid"`
		Problems []struct {
			File         string
			Line, Column int
			Field        string
			Message      string
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Valid || len(out.Problems) == 0 {
		t.Fatalf("invalid specs: %v %+v", err, out)
	}
	// The text output and the JSON say the same.
	_, _, text := runFormatsCLI("validate", "--dir", "testdata/invalid")
	for _, p := range out.Problems {
		if !strings.Contains(text, p.File) || !strings.Contains(text, p.Message) {
			t.Errorf("problem %+v is not in the text output:\n%s", p, text)
		}
	}

	code, stdout, stderr = runFormatsCLI("validate", "--json", "--dir", "testdata/nope")
	if code != ExitError || stdout != "" || !strings.Contains(stderr, "spec folder testdata/nope does not exist") {
		t.Fatalf("missing folder: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestStateListJSON(t *testing.T) {
	const (
		svc  = "IS00000000000000000000000000000001"
		conv = "CH00000000000000000000000000000001"
		role = "RL00000000000000000000000000000001"
		old  = "RL00000000000000000000000000000002"
	)
	path := filepath.Join(t.TempDir(), "state.json")
	code, stdout, stderr := runFormatsCLI("state", "list", "--json", "--state", path)
	if code != ExitOK {
		t.Fatalf("no state: exit %d\n%s", code, stderr)
	}
	var empty struct {
		Resources []any `json:"resources"`
		Pending   []any `json:"pending"`
	}
	if err := json.Unmarshal([]byte(stdout), &empty); err != nil || empty.Resources == nil || len(empty.Resources) != 0 || empty.Pending == nil {
		t.Fatalf("no state: want empty lists, got %v\n%s", err, stdout)
	}

	sf, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := func(s string) resource.Address {
		addr, err := resource.ParseAddress(s)
		if err != nil {
			t.Fatal(err)
		}
		return addr
	}
	var lineage string
	if err := sf.Update(func(s *state.State) error {
		s.Put(&state.Resource{Address: a("service.support"), SID: svc})
		s.Put(&state.Resource{Address: a("conversation.vip"), SID: conv, ParentSID: svc})
		s.Put(&state.Resource{Address: a("role.agent"), SID: role, ParentSID: svc})
		s.Put(&state.Resource{Address: resource.DeposedAddress(a("role.agent")), SID: old, ParentSID: svc})
		s.AddPending(&state.Pending{Address: a("conversation.new"), Kind: resource.KindConversation, ParentSID: svc, StartedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)})
		lineage = s.Lineage
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	code, stdout, stderr = runFormatsCLI("state", "list", "--json", "--state", path)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	goldenFile(t, "state-list.json", strings.ReplaceAll(stdout, lineage, "LINEAGE"))
}

// showPlan is a plan with a create (its parent created by the same plan), an
// update and a delete.
func showPlan() *planner.Plan {
	svc := resource.Address{Kind: resource.KindService, Name: "support"}
	vip := resource.Address{Kind: resource.KindConversation, Name: "vip"}
	d := resource.Desired{Address: vip, Parent: resource.Ref{Address: svc}, Values: resource.Values{resource.FieldUniqueName: "vip", resource.FieldAttributes: `{"tier":"gold"}`}, Timeouts: resource.DefaultTimeouts}
	ds := resource.Desired{Address: svc, Values: resource.Values{resource.FieldFriendlyName: "Support"}, Timeouts: resource.DefaultTimeouts}
	return &planner.Plan{StateLineage: "lineage-1", StateSerial: 3, SpecHash: "h", Changes: []planner.Change{
		{Address: svc, Action: planner.Create, Reason: "not yet created", Desired: &ds, Fields: []planner.FieldChange{{Name: resource.FieldFriendlyName, Type: resource.TypeString, After: "Support"}}},
		{Address: vip, Action: planner.Create, Reason: "not yet created", Desired: &d, NewParent: resource.Ref{Address: svc}, DependsOn: []resource.Address{svc},
			Fields: []planner.FieldChange{{Name: resource.FieldUniqueName, Type: resource.TypeString, After: "vip"}, {Name: resource.FieldAttributes, Type: resource.TypeJSON, After: `{"tier":"gold"}`}}},
		{Address: resource.Address{Kind: resource.KindConversation, Name: "old"}, Action: planner.Delete, Reason: "no longer in the specs", SID: "CH00000000000000000000000000000002", ParentSID: "IS00000000000000000000000000000009"},
	}}
}

func TestShow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "saved.plan")
	plan := showPlan()
	if err := planner.Save(path, plan); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runFormatsCLI("show", path)
	if code != ExitOK {
		t.Fatalf("show: exit %d\n%s", code, stderr)
	}
	goldenFile(t, "show.txt", stdout)
	var human bytes.Buffer
	if err := planner.RenderHuman(&human, plan); err != nil {
		t.Fatal(err)
	}
	if stdout != human.String() {
		t.Fatalf("show differs from the plan as plan prints it:\n%s\nplan:\n%s", stdout, human.String())
	}

	code, stdout, stderr = runFormatsCLI("show", "--json", path)
	if code != ExitOK {
		t.Fatalf("show --json: exit %d\n%s", code, stderr)
	}
	goldenFile(t, "show.json", stdout)
	var js bytes.Buffer
	if err := planner.RenderJSON(&js, plan); err != nil {
		t.Fatal(err)
	}
	if stdout != js.String() {
		t.Fatalf("show --json differs from plan --json:\n%s\nplan --json:\n%s", stdout, js.String())
	}

	// Errors: one line, naming the file.
	old := filepath.Join(dir, "old.plan")
	if err := os.WriteFile(old, []byte(`{"convsync_plan_format": 1, "changes": null}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ args []string }{{[]string{"show", filepath.Join(dir, "missing.plan")}}, {[]string{"show", old}}, {[]string{"show"}}} {
		code, stdout, stderr := runFormatsCLI(tc.args...)
		if code != ExitError || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", tc.args, code, stdout, stderr)
		}
		if len(tc.args) > 1 && !strings.Contains(stderr, tc.args[1]) {
			t.Fatalf("%v: the error does not name the file: %s", tc.args, stderr)
		}
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	messy := "# the desk\nfriendly_name: Support   # shown in the console\nname: support\nkind: Service\n---\nkind: Conversation\nservice: support\nname: vip\ntimers:\n    closed: P30D\n    inactive: PT1H\n"
	if err := os.WriteFile(filepath.Join(dir, "main.yaml"), []byte(messy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tidy.yaml"), []byte("kind: Service\nname: other\nfriendly_name: Other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main.yaml")

	code, stdout, stderr := runFormatsCLI("fmt", "--check", "--dir", dir)
	if code != ExitError || stdout != main+"\n" || !strings.Contains(stderr, "1 of 2 spec files in "+dir+" is not formatted; run convsync fmt --dir "+dir) {
		t.Fatalf("fmt --check: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if got, _ := os.ReadFile(main); string(got) != messy {
		t.Fatal("fmt --check changed the file")
	}
	code, stdout, stderr = runFormatsCLI("fmt", "--dir", dir)
	if code != ExitOK || stdout != main+"\n" || stderr != "" {
		t.Fatalf("fmt: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	got, _ := os.ReadFile(main)
	goldenFile(t, "fmt.yaml", string(got))
	for _, args := range [][]string{{"fmt", "--dir", dir}, {"fmt", "--check", "--dir", dir}} {
		if code, stdout, stderr := runFormatsCLI(args...); code != ExitOK || stdout != "" || stderr != "" {
			t.Fatalf("%v after fmt: exit %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
		}
	}
	if again, _ := os.ReadFile(main); !bytes.Equal(again, got) {
		t.Fatal("fmt twice changed the file")
	}
	if code, _, stderr := runFormatsCLI("validate", "--dir", dir); code != ExitOK {
		t.Fatalf("the formatted specs are not valid: %s", stderr)
	}

	broken := "kind: Service\nname: x\n\tfriendly_name: X\n"
	if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runFormatsCLI("fmt", "--dir", dir)
	if code != ExitError || stdout != "" || !strings.HasPrefix(stderr, filepath.Join(dir, "broken.yaml")+":3:1: invalid YAML: a tab indents this line") ||
		!strings.Contains(stderr, "Error: 1 spec file in "+dir+" could not be formatted and was left as it was") {
		t.Fatalf("broken file: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "broken.yaml")); string(got) != broken {
		t.Fatal("a file that does not parse was rewritten")
	}
	if code, _, stderr := runFormatsCLI("fmt", "--dir", filepath.Join(dir, "nope")); code != ExitError || !strings.Contains(stderr, "nope does not exist") {
		t.Fatalf("missing folder: exit %d: %s", code, stderr)
	}
}
