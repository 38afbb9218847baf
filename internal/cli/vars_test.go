package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/spec"
)

// The variables' precedence, as Terraform users expect: the environment
// first, then --var-file and --var in command-line order, the later
// winning; a --var no spec names and an undefined variable are errors; a
// broken var file is reported at its own path, line and column.
func TestVarsPrecedenceAndErrors(t *testing.T) {
	const dir = "testdata/vars/specs"
	cases := []struct {
		name     string
		args     []string
		environ  []string
		wantCode int
		want     string // the friendly_name loaded, or a line of stderr
	}{
		{"environment only", nil, []string{"CONVSYNC_VAR_env=from-env"}, ExitOK, "Support from-env"},
		{"a var file beats the environment", []string{"--var-file", "testdata/vars/staging.yaml"}, []string{"CONVSYNC_VAR_env=from-env"}, ExitOK, "Support staging"},
		{"a later var file wins", []string{"--var-file", "testdata/vars/staging.yaml", "--var-file", "testdata/vars/production.yaml"}, nil, ExitOK, "Support production"},
		{"a --var after a var file wins", []string{"--var-file", "testdata/vars/staging.yaml", "--var", "env=flag"}, nil, ExitOK, "Support flag"},
		{"a var file after a --var wins", []string{"--var", "env=flag", "--var-file", "testdata/vars/staging.yaml"}, nil, ExitOK, "Support staging"},
		{"undefined", nil, nil, ExitError, "testdata/vars/specs/service.yaml:3:24: friendly_name: undefined variable \"env\""},
		{"a --var no spec names", []string{"--var", "env=x", "--var", "evn=y"}, nil, ExitError, "--var evn: no spec in testdata/vars/specs references ${var.evn} (the specs reference: env)"},
		{"broken var file", []string{"--var-file", "testdata/vars/broken.yaml"}, nil, ExitError, "testdata/vars/broken.yaml:1:6: env: must be a string, number or boolean; found a list"},
		{"missing var file", []string{"--var-file", "testdata/vars/none.yaml"}, nil, ExitError, "var file testdata/vars/none.yaml: cannot read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			c := New(strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
			c.environ = func() []string { return tc.environ }
			code := c.RunContext(context.Background(), append([]string{"validate", "--dir", dir}, tc.args...))
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			if tc.wantCode != ExitOK {
				if !strings.Contains(stderr.String(), tc.want) {
					t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
				}
				return
			}
			// The values validate loaded (the flags parsed above).
			set, _, err := c.loadSpecSet()
			if err != nil {
				t.Fatal(err)
			}
			if got := set.Resources[0].Values["friendly_name"]; got != tc.want {
				t.Errorf("friendly_name = %q, want %q", got, tc.want)
			}
		})
	}
}

// validate --json names a var file's problems at the var file's own path.
func TestValidateJSONNamesTheVarFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	c := New(strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	c.environ = func() []string { return nil }
	code := c.RunContext(context.Background(), []string{"validate", "--json", "--dir", "testdata/vars/specs", "--var-file", "testdata/vars/broken.yaml"})
	if code != ExitError {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if want := `"file": "testdata/vars/broken.yaml",
      "line": 1,
      "column": 6,
      "field": "env",`; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout lacks\n%s\n%s", want, stdout.String())
	}
}

// The daemon reads its var files again on every load: an edited var file
// is the next pass's values, without a restart.
func TestDaemonLoadRereadsVarFiles(t *testing.T) {
	varFile := filepath.Join(t.TempDir(), "env.yaml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(varFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("env: staging\n")
	c := New(strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" })
	c.environ = func() []string { return nil }
	c.global.vars = []varArg{{file: true, value: varFile}}
	load := c.daemonLoad(spec.NewCache())
	for _, want := range []string{"staging", "production"} {
		write("env: " + want + "\n")
		set, err := load("testdata/vars/specs")
		if err != nil {
			t.Fatal(err)
		}
		if got := set.Resources[0].Values["friendly_name"]; got != "Support "+want {
			t.Errorf("friendly_name = %q after the var file says %s", got, want)
		}
	}
	write("env: [broken]\n")
	if _, err := load("testdata/vars/specs"); err == nil || !strings.Contains(err.Error(), varFile+":1:6") {
		t.Errorf("a broken var file: %v", err)
	}
}
