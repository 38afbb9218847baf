package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/internal/testenv"
)

// TestDestroyReplaceRefreshOnlyFlags: each bad flag or combination is
// refused with one line, before anything is read.
func TestDestroyReplaceRefreshOnlyFlags(t *testing.T) {
	_, url := testenv.Emulator(t, testAccount, testToken)
	creds := map[string]string{"TWILIO_ACCOUNT_SID": testAccount, "TWILIO_AUTH_TOKEN": testToken, EnvAPIURL: url}
	statePath := filepath.Join(t.TempDir(), "state.json")
	if code, out, errOut := runCLI(t, creds, "apply", "--dir", "testdata/specs", "--state", statePath, "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "--refresh-only", "--destroy"}, "--refresh-only cannot be used with --destroy: it reports drift and plans no change"},
		{[]string{"plan", "--refresh-only", "--out", "x.plan"}, "--refresh-only cannot be used with --out"},
		{[]string{"plan", "--destroy", "--replace", "service.support"}, "--replace cannot be used with --destroy: a destroy deletes everything"},
		{[]string{"plan", "--replace", "support"}, `--replace: address "support" must look like KIND.NAME`},
		{[]string{"apply", "--auto-approve", "--replace", "service.nope"}, "--replace service.nope: no such resource in the specs or the state"},
		{[]string{"apply", "--replace", "service.support", "x.plan"}, "--replace cannot be used with a saved plan"},
		{[]string{"destroy", "--parallelism", "0"}, "--parallelism must be at least 1"},
		{[]string{"destroy", "--target", "nothing"}, `address "nothing" must look like KIND.NAME`},
		{[]string{"destroy", "--target", "conversation.nope"}, "--target conversation.nope: no such resource in the specs or the state"},
		{[]string{"destroy"}, "not destroying: no terminal to ask for approval. Use --auto-approve"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, creds, append(tc.args, "--dir", "testdata/specs", "--state", statePath)...)
			if code != ExitError || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, want one line with %q on stderr\nstdout: %s\nstderr: %s", code, tc.want, out, errOut)
			}
		})
	}
	// The state is untouched; refresh-only sees no drift.
	code, out, errOut := runCLI(t, creds, "plan", "--refresh-only", "--detailed-exitcode", "--dir", "testdata/specs", "--state", statePath)
	if code != ExitOK || !strings.Contains(out, "No drift.") {
		t.Fatalf("refresh-only: exit %d\n%s\n%s", code, out, errOut)
	}
}
