package reliability

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/convsync/convsync/pkg/emulator"
)

// TestHostileSpecs runs the real binary on spec folders built to hurt it.
// Each must be refused with exit 1 and a message that names the problem,
// without a panic, quickly, and without a single request to Twilio even for
// plan and apply.
func TestHostileSpecs(t *testing.T) {
	const head = "kind: Conversation\nname: x\nservice_sid: IS0123456789abcdef0123456789abcdef\n"
	tests := []struct {
		name  string
		build func(t *testing.T, dir string)
		want  string // regexp the output must match
	}{
		{"binary file", func(t *testing.T, dir string) {
			data, err := os.ReadFile(binary) // an executable named like a spec
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "convsync.yaml"), data[:64<<10])
		}, `convsync\.yaml:\d+(:\d+)?: (binary content|invalid UTF-8)`},
		{"NUL in a value", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "nul.yaml"), []byte("kind: Service\nname: s\nfriendly_name: \"a\x00b\"\n"))
		}, `nul\.yaml:3:\d+: binary content: control character U\+0000`},
		{"invalid UTF-8", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "latin1.yaml"), []byte("kind: Service\nname: s\nfriendly_name: caf\xe9\n"))
		}, `latin1\.yaml:3:\d+: invalid UTF-8`},
		{"huge file", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "huge.yaml"), []byte("# "+strings.Repeat("x", 4<<20)+"\n"))
		}, `huge\.yaml: file is \d+ bytes; a spec file may be at most 4194304 bytes`},
		{"nesting deeper than the parser allows", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "deep.yaml"), []byte(head+"attributes: {a: "+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+"}\n"))
		}, `deep\.yaml:4: invalid YAML: exceeded max depth`},
		{"deeply nested attributes beyond 16 KB", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "nested.yaml"), []byte(head+"attributes: "+strings.Repeat("{a: ", 4000)+"1"+strings.Repeat("}", 4000)+"\n"))
		}, `nested\.yaml:4:13: attributes: \d+ bytes as compact JSON; Twilio allows at most 16384 bytes`},
		{"anchor bomb", func(t *testing.T, dir string) {
			var b strings.Builder
			b.WriteString(head + "attributes:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
			for i := 1; i < 10; i++ {
				b.WriteString("  l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [" + strings.Repeat("*l"+string(rune('0'+i-1))+", ", 9) + "*l" + string(rune('0'+i-1)) + "]\n")
			}
			write(t, filepath.Join(dir, "bomb.yaml"), []byte(b.String()))
		}, `bomb\.yaml:6:\d+: attributes\.l1\[0\]: YAML aliases \(\*l0\) are not supported`},
		{"duplicate keys", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "dupes.yaml"), []byte(head+"friendly_name: a\nfriendly_name: b\n"))
		}, `dupes\.yaml:5:1: friendly_name: duplicate key; it is already set at line 4`},
		{"symlink loop", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "ok.yaml"), []byte("kind: Service\nname: s\nfriendly_name: S\n"))
			if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("..", filepath.Join(dir, "sub", "loop")); err != nil {
				t.Fatal(err)
			}
		}, `sub/loop: symlink loop`},
		{"unreadable file", func(t *testing.T, dir string) {
			// chmod 000 does not stop root; a link to nowhere stops everyone.
			if err := os.Symlink("missing.yaml", filepath.Join(dir, "gone.yaml")); err != nil {
				t.Fatal(err)
			}
		}, `spec file gone\.yaml: cannot read: no such file or directory`},
		{"FIFO named like a spec", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, `pipe\.yaml: not a regular file`},
	}
	e := newEnv(t, emulator.Faults{})
	checked := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.RemoveAll(e.dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(e.dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tc.build(t, e.dir)
			e.emu.ResetStats()
			for _, cmd := range [][]string{{"validate"}, {"plan"}, {"apply", "--auto-approve"}} {
				r := e.run(cmd...)
				out := r.stdout + r.stderr
				if r.code != 1 || !regexp.MustCompile(tc.want).MatchString(out) {
					t.Fatalf("want exit 1 and output matching %q: %s", tc.want, shorten(r))
				}
				if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
					t.Fatalf("convsync panicked: %s", shorten(r))
				}
				checked++
			}
			if s := e.emu.Stats(); s.Total != 0 {
				t.Errorf("invalid specs, yet %d requests reached Twilio: %v", s.Total, s.ByRoute)
			}
		})
	}
	t.Logf("hostile specs: %d inputs × validate/plan/apply = %d runs, all refused with their message, 0 panics, 0 requests to Twilio", len(tests), checked)
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// shorten keeps a failing run's output readable when the input was huge.
func shorten(r result) result {
	for _, s := range []*string{&r.stdout, &r.stderr} {
		if len(*s) > 4000 {
			*s = (*s)[:4000] + "…"
		}
	}
	return r
}
