package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/internal/testenv"
)

const (
	testAccount = "AC33333333333333333333333333333333"
	testToken   = "clitesttoken"
)

func TestCommandLine(t *testing.T) {
	_, url := testenv.Emulator(t, testAccount, testToken)
	creds := map[string]string{"TWILIO_ACCOUNT_SID": testAccount, "TWILIO_AUTH_TOKEN": testToken, EnvAPIURL: url}

	cases := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "version", args: []string{"version"}, wantStdout: "convsync dev (state format 2, plan format 2.0)"},
		{name: "valid specs", args: []string{"validate", "--dir", "testdata/specs"}, wantStdout: "The specs are valid: 2 resources in 1 file."},
		{name: "missing spec folder", args: []string{"validate", "--dir", "testdata/nope"}, wantCode: ExitError, wantStderr: "testdata/nope"},
		{name: "unknown command", args: []string{"plna"}, wantCode: ExitError, wantStderr: `unknown command "plna"`},
		{name: "bad log format", args: []string{"plan", "--dir", "testdata/specs", "--log-format", "xml"}, env: creds, wantCode: ExitError, wantStderr: "--log-format \"xml\": use console or json"},
		{name: "bad log level", args: []string{"plan", "--dir", "testdata/specs", "--log-level", "loud"}, env: creds, wantCode: ExitError, wantStderr: "--log-level \"loud\""},
		{name: "missing credentials name the variables", args: []string{"plan", "--dir", "testdata/specs"}, wantCode: ExitError, wantStderr: "TWILIO_ACCOUNT_SID"},
		{name: "bad target", args: []string{"plan", "--dir", "testdata/specs", "--target", "nothing"}, env: creds, wantCode: ExitError, wantStderr: `address "nothing" must look like KIND.NAME`},
		{name: "unknown target", args: []string{"plan", "--dir", "testdata/specs", "--target", "conversation.other"}, env: creds, wantCode: ExitError, wantStderr: "--target conversation.other: no such resource"},
		{name: "zero parallelism", args: []string{"apply", "--dir", "testdata/specs", "--parallelism", "0"}, env: creds, wantCode: ExitError, wantStderr: "--parallelism must be at least 1"},
		{name: "target with a saved plan", args: []string{"apply", "--dir", "testdata/specs", "--target", "service.support", "x.plan"}, env: creds, wantCode: ExitError, wantStderr: "--target cannot be used with a saved plan"},
		{name: "import with a bad ID", args: []string{"import", "conversation.vip", "/Conversations/CH1"}, env: creds, wantCode: ExitError, wantStderr: "import ID \"/Conversations/CH1\""},
		{name: "import of the wrong kind", args: []string{"import", "service.support", "/Services/IS00000000000000000000000000000000/Conversations/CH00000000000000000000000000000000"}, env: creds, wantCode: ExitError, wantStderr: "service.support is a service address"},
		{name: "plan with changes", args: []string{"plan", "--dir", "testdata/specs", "--detailed-exitcode"}, env: creds, wantCode: ExitChanges, wantStdout: "Plan: 2 to create, 0 to update, 0 to replace, 0 to delete."},
		{name: "plan without detailed exit code", args: []string{"plan", "--dir", "testdata/specs"}, env: creds, wantCode: ExitOK, wantStdout: "Plan: 2 to create"},
		{name: "plan as JSON", args: []string{"plan", "--dir", "testdata/specs", "--json"}, env: creds, wantStdout: `"format_version": "2.0"`},
		{name: "state of nothing", args: []string{"state", "show", "service.support"}, wantCode: ExitError, wantStderr: "service.support is not in the state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			getenv := func(k string) string { return tc.env[k] }
			args := append([]string{}, tc.args...)
			if tc.args[0] != "version" {
				args = append(args, "--state", filepath.Join(t.TempDir(), "state.json"))
			}
			code := New(strings.NewReader(""), &stdout, &stderr, getenv).RunContext(context.Background(), args)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr.String())
			}
		})
	}
}
