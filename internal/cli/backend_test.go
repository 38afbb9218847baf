package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A database password must never reach the output: not from a flag (which
// is refused outright) and not from CONVSYNC_STATE_URL (whose URL is shown
// redacted in every message).
func TestStatePasswordNeverShows(t *testing.T) {
	const secret = "Pg-Secret-Never-Print-77"
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		wantText string
	}{
		{"a password in --state is refused", []string{"state", "list", "--state", "postgres://convsync:" + secret + "@127.0.0.1:1/convsync"}, nil, "must never be given in a flag"},
		{"a password= parameter in --state is refused", []string{"apply", "--auto-approve", "--state", "postgres://convsync@127.0.0.1:1/convsync?password=" + secret}, nil, "must never be given in a flag"},
		{"a password in CONVSYNC_STATE_URL is redacted", []string{"state", "list"},
			map[string]string{EnvStateURL: "postgres://convsync:" + secret + "@127.0.0.1:1/convsync?sslmode=disable&connect_timeout=1"}, "REDACTED"},
		{"force-unlock of a file says there is nothing to force", []string{"state", "force-unlock", "--state", "x.json"}, nil, "never stale"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := New(strings.NewReader(""), &stdout, &stderr, func(k string) string { return tc.env[k] }).RunContext(context.Background(), append(tc.args, "--dir", t.TempDir()))
			out := stdout.String() + stderr.String()
			if code != ExitError || !strings.Contains(out, tc.wantText) {
				t.Fatalf("exit %d, want 1 with %q:\n%s", code, tc.wantText, out)
			}
			if strings.Contains(out, secret) {
				t.Fatalf("the password is in the output:\n%s", out)
			}
		})
	}
}
