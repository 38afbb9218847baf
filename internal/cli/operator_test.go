package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/spec"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// runCLI runs one command line with the given environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = New(strings.NewReader(""), &out, &errOut, func(k string) string { return env[k] }).RunContext(context.Background(), args)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEmptySpecsWithAStateAreRefused: an empty or wrong --dir does not plan
// deleting everything the state holds.
func TestEmptySpecsWithAStateAreRefused(t *testing.T) {
	_, url := testenv.Emulator(t, testAccount, testToken)
	creds := map[string]string{"TWILIO_ACCOUNT_SID": testAccount, "TWILIO_AUTH_TOKEN": testToken, EnvAPIURL: url}
	statePath := filepath.Join(t.TempDir(), "state.json")
	if code, out, errOut := runCLI(t, creds, "apply", "--dir", "testdata/specs", "--state", statePath, "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	empty := t.TempDir()
	writeFile(t, filepath.Join(empty, "README.md"), "# not a spec\n")
	for _, args := range [][]string{
		{"plan"},
		{"plan", "--json"},
		{"apply", "--auto-approve"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, creds, append(args, "--dir", empty, "--state", statePath)...)
			if code != ExitError {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, ExitError, out, errOut)
			}
			for _, want := range []string{"the specs in " + empty + " hold no resource", "holds 2 resources", deleteEverythingHint} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if strings.Contains(out, "to delete") {
				t.Errorf("a plan was printed:\n%s", out)
			}
		})
	}
	// The specs themselves still plan as usual.
	if code, out, errOut := runCLI(t, creds, "plan", "--dir", "testdata/specs", "--state", statePath, "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan of the real specs: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestCheckNotEmptied(t *testing.T) {
	tests := []struct {
		specs, state int
		wantErr      bool
	}{
		{0, 0, false}, // a new, empty project
		{1, 0, false},
		{1, 5, false},
		{0, 1, true},
		{0, 7, true},
	}
	for _, tt := range tests {
		err := checkNotEmptied("specs", tt.specs, tt.state, "s.json")
		if (err != nil) != tt.wantErr {
			t.Errorf("checkNotEmptied(%d specs, %d in the state) = %v, want error %v", tt.specs, tt.state, err, tt.wantErr)
		}
		if err != nil && (strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "specs") || !strings.Contains(err.Error(), "s.json")) {
			t.Errorf("message %q: want one line naming the folder and the state", err)
		}
	}
}

// TestDaemonLoadRefusesEmptySpecs: convsync run loads its specs through the
// same guard, so an emptied folder keeps the last good specs in force.
func TestDaemonLoadRefusesEmptySpecs(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "state.json")
	sf, err := state.Open(statePath, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	load := guardedLoad(func(dir string) (*spec.Set, error) { return spec.LoadDir(dir) }, sf)
	empty := t.TempDir()
	if _, err := load(empty); err != nil {
		t.Fatalf("empty specs with an empty state: %v", err)
	}
	if err := sf.Update(func(st *state.State) error {
		st.Put(&state.Resource{Address: resource.Address{Kind: resource.KindService, Name: "support"}, SID: "IS00000000000000000000000000000001"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := load(empty); err == nil || !strings.Contains(err.Error(), "holds 1 resource,") {
		t.Fatalf("empty specs with a state of 1: %v, want a refusal", err)
	}
	if set, err := load("testdata/specs"); err != nil || len(set.Resources) != 2 {
		t.Fatalf("real specs: %v %v", set, err)
	}
}

func TestHintsCarryTheFlags(t *testing.T) {
	tests := []struct {
		name   string
		global globalOptions
		in     string
		want   string
	}{
		{"defaults", globalOptions{dir: ".", statePath: state.DefaultPath}, "run: convsync apply p.plan", "run: convsync apply p.plan"},
		{"dir and state", globalOptions{dir: "specs", statePath: "prod.json"}, "    convsync import conversation.vip /Services/IS1/Conversations/CH1",
			"    convsync import --dir specs --state prod.json conversation.vip /Services/IS1/Conversations/CH1"},
		{"api url, quoted dir", globalOptions{dir: "my specs", statePath: state.DefaultPath, apiURL: "http://127.0.0.1:4010"}, "with: convsync apply p.plan",
			"with: convsync apply --dir 'my specs' --api-url http://127.0.0.1:4010 p.plan"},
		{"two hints", globalOptions{dir: "d", statePath: state.DefaultPath}, "`convsync import a b` or `convsync import c d`", "`convsync import --dir d a b` or `convsync import --dir d c d`"},
		{"plan again", globalOptions{dir: "d", statePath: "s.json"}, "Run convsync plan again", "Run convsync plan --dir d --state s.json again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &CLI{global: tt.global}
			if got := c.withFlags(tt.in); got != tt.want {
				t.Errorf("withFlags(%q) =\n%q, want\n%q", tt.in, got, tt.want)
			}
		})
	}
}

// TestPrintedHintsWorkWhenPasted: the claim error's import hint and plan
// --out's apply hint carry --dir and --state.
func TestPrintedHintsWorkWhenPasted(t *testing.T) {
	_, url := testenv.Emulator(t, testAccount, testToken)
	creds := map[string]string{"TWILIO_ACCOUNT_SID": testAccount, "TWILIO_AUTH_TOKEN": testToken, EnvAPIURL: url}
	work := t.TempDir()
	dir, statePath, planPath := filepath.Join(work, "specs"), filepath.Join(work, "state.json"), filepath.Join(work, "p.plan")

	client, err := twilioapi.New(twilioapi.Config{AccountSID: testAccount, AuthToken: testToken, BaseURL: url, ActionsPerSecondPerService: -1})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := client.Create(context.Background(), resource.KindService, "", resource.Values{"friendly_name": "Elsewhere"}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conv, err := client.Create(context.Background(), resource.KindConversation, svc.SID, resource.Values{"unique_name": "taken"}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "taken.yaml"), "kind: Conversation\nname: vip\nservice_sid: "+svc.SID+"\nunique_name: taken\n")
	code, out, errOut := runCLI(t, creds, "plan", "--dir", dir, "--state", statePath)
	if want := "convsync import --dir " + dir + " --state " + statePath + " conversation.vip /Services/" + svc.SID + "/Conversations/" + conv.SID; code != ExitError || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d, want 1 and %q in stderr:\n%s\n%s", code, want, out, errOut)
	}

	writeFile(t, filepath.Join(dir, "taken.yaml"), "kind: Service\nname: support\nfriendly_name: Support\n")
	code, out, errOut = runCLI(t, creds, "plan", "--dir", dir, "--state", statePath, "--out", planPath)
	if want := "Apply exactly these steps with: convsync apply --dir " + dir + " --state " + statePath + " " + planPath + "\n"; code != 0 || !strings.Contains(out, want) {
		t.Fatalf("exit %d, want 0 and %q in stdout:\n%s\n%s", code, want, out, errOut)
	}
}

// TestApplyPlanFileIgnoresInvalidSpecs: a saved plan holds all it applies;
// broken YAML around it (say, in the current folder) cannot stop it.
func TestApplyPlanFileIgnoresInvalidSpecs(t *testing.T) {
	_, url := testenv.Emulator(t, testAccount, testToken)
	creds := map[string]string{"TWILIO_ACCOUNT_SID": testAccount, "TWILIO_AUTH_TOKEN": testToken, EnvAPIURL: url}
	work := t.TempDir()
	dir, statePath, planPath := filepath.Join(work, "specs"), filepath.Join(work, "state.json"), filepath.Join(work, "p.plan")
	writeFile(t, filepath.Join(dir, "main.yaml"), "kind: Service\nname: support\nfriendly_name: Support\n")
	if code, out, errOut := runCLI(t, creds, "apply", "--dir", dir, "--state", statePath, "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "vip.yaml"), "kind: Conversation\nname: vip\nservice: support\nunique_name: vip\n")
	if code, out, errOut := runCLI(t, creds, "plan", "--dir", dir, "--state", statePath, "--out", planPath); code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "docker-compose.yaml"), "services:\n\tweb: {}\n")
	code, out, errOut := runCLI(t, creds, "apply", "--dir", dir, "--state", statePath, planPath)
	if code != 0 || !strings.Contains(out, "1 created") {
		t.Fatalf("apply PLANFILE: exit %d\n%s\n%s", code, out, errOut)
	}
	// The plan is stale now; the error's "convsync plan" carries the flags.
	code, out, errOut = runCLI(t, creds, "apply", "--dir", dir, "--state", statePath, planPath)
	if want := "Run convsync plan --dir " + dir + " --state " + statePath + " again"; code != ExitError || !strings.Contains(errOut, want) {
		t.Fatalf("stale apply PLANFILE: exit %d, want 1 and %q\n%s\n%s", code, want, out, errOut)
	}
}

func TestTargetedPlanSaysItIsPartial(t *testing.T) {
	_, url := testenv.Emulator(t, testAccount, testToken)
	creds := map[string]string{"TWILIO_ACCOUNT_SID": testAccount, "TWILIO_AUTH_TOKEN": testToken, EnvAPIURL: url}
	statePath := filepath.Join(t.TempDir(), "state.json")
	for _, tt := range []struct {
		args    []string
		partial bool
	}{
		{[]string{"plan", "--target", "service.support"}, true},
		{[]string{"plan"}, false},
	} {
		code, out, errOut := runCLI(t, creds, append(tt.args, "--dir", "testdata/specs", "--state", statePath)...)
		if code != 0 || strings.Contains(out, "this plan is partial (--target)") != tt.partial {
			t.Errorf("%v: exit %d, want the partial warning %v:\n%s\n%s", tt.args, code, tt.partial, out, errOut)
		}
	}
}

func TestLockErrorNamesTheFlag(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "state.json")
	holder, err := state.Open(statePath, state.Options{Holder: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	code, _, errOut := runCLI(t, nil, "state", "rm", "service.support", "--state", statePath)
	if code != ExitError || !strings.Contains(errOut, "is locked by") || !strings.Contains(errOut, "--lock-timeout") {
		t.Fatalf("exit %d, want 1 and a lock error naming --lock-timeout:\n%s", code, errOut)
	}
}

func TestEmulatorHelpShowsItsRateLimit(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "emulator", "--help")
	if code != 0 || !strings.Contains(out, "--rate-limit float") || !strings.Contains(out, "role and user creates, updates and deletes") ||
		!strings.Contains(out, "--rate-limit here is the emulator's own") {
		t.Fatalf("exit %d, want the emulator's own --rate-limit in its help:\n%s\n%s", code, out, errOut)
	}
	// The flag given to the emulator is the emulator's, not the client's.
	c := New(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, func(string) string { return "" })
	cmd, rest, err := c.rootCommand().Find([]string{"emulator", "--rate-limit", "7"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatal(err)
	}
	if f := cmd.Flags().Lookup("rate-limit"); f.Value.String() != "7" || !strings.Contains(f.Usage, "before 429") || c.global.rateLimit != twilioapi.DefaultActionsPerSecond {
		t.Errorf("--rate-limit 7 set %q (%s), client limit %g", f.Value, f.Usage, c.global.rateLimit)
	}
}
