package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestFormatGolden formats testdata/fmt/NAME.yaml and compares the result
// with NAME.formatted; formatting that output again changes nothing.
func TestFormatGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/fmt/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			out, problems := Format(filepath.Base(path), data)
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			golden(t, strings.TrimSuffix(path, ".yaml")+".formatted", out)
			again, problems := Format(filepath.Base(path), out)
			if len(problems) > 0 || !bytes.Equal(again, out) {
				t.Fatalf("formatting twice changed the file (problems %v):\nonce:\n%s\ntwice:\n%s", problems, out, again)
			}
			for _, c := range comments(data) {
				if !bytes.Contains(out, []byte(c)) {
					t.Errorf("the comment %q was lost", c)
				}
			}
		})
	}
}

// comments returns the text of every "# …" comment of a YAML file (good
// enough for the test files, which hold no # inside strings).
func comments(data []byte) []string {
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], "'") && !strings.Contains(line[:i], "\"") {
			out = append(out, strings.TrimSpace(line[i:]))
		}
	}
	return out
}

// Formatting keeps what every good spec means, and is idempotent on it.
func TestFormatKeepsTheMeaningOfEveryGoodSpec(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no good specs")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			out, problems := Format(filepath.Base(path), data)
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			again, _ := Format(filepath.Base(path), out)
			if !bytes.Equal(again, out) {
				t.Fatalf("not idempotent:\nonce:\n%s\ntwice:\n%s", out, again)
			}
			before, p1 := Parse("x.yaml", data)
			after, p2 := Parse("x.yaml", out)
			if len(p1) > 0 || len(p2) > 0 {
				t.Fatalf("problems before %v, after %v\n%s", p1, p2, out)
			}
			for i := range before {
				after[i].Source = before[i].Source // lines move
			}
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("formatting changed the resources:\nbefore: %+v\nafter:  %+v\n%s", before, after, out)
			}
		})
	}
}

// A file that is not YAML (or not text) is reported, never rewritten.
func TestFormatRefusesWhatDoesNotParse(t *testing.T) {
	for name, tc := range map[string]struct{ content, want string }{
		"tab":    {"kind: Service\nname: a\n\tfriendly_name: x\n", "bad.yaml:3:1: invalid YAML: a tab indents this line"},
		"syntax": {"kind: Service\nname: [a\n", "bad.yaml:"},
		"binary": {"kind: Service\x00\n", "bad.yaml:1:14: binary content"},
	} {
		t.Run(name, func(t *testing.T) {
			out, problems := Format("bad.yaml", []byte(tc.content))
			if out != nil || len(problems) == 0 || !strings.HasPrefix(problems.Error(), tc.want) {
				t.Fatalf("out %q, problems %q; want none and a problem starting %q", out, problems.Error(), tc.want)
			}
		})
	}
}

func TestFormatDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	messy := "name: a\nkind: Service\nfriendly_name: A\n"
	tidy := "kind: Service\nname: a\nfriendly_name: A\n"
	broken := "kind: Service\nname: [b\n"
	write("a.yaml", messy, 0o640)
	write("ok.yml", tidy, 0o644)
	write("sub/broken.yaml", broken, 0o644)
	write("sub/notes.txt", messy, 0o644)
	write(".hidden/x.yaml", messy, 0o644)
	if err := os.Symlink("../target.yaml", filepath.Join(dir, "sub", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	write("target.yaml", "friendly_name: T\nkind: Service\nname: t\n", 0o600)

	res, err := FormatDir(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	wantChanged := []string{"a.yaml", "sub/link.yaml", "target.yaml"}
	if !slices.Equal(res.Changed, wantChanged) || res.Files != 5 || len(res.Problems) != 1 || !strings.HasPrefix(res.Problems[0].String(), "sub/broken.yaml:") {
		t.Fatalf("check: %+v", res)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a.yaml")); string(got) != messy {
		t.Fatal("--check rewrote a file")
	}

	res, err = FormatDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	// target.yaml was rewritten through the link, just before.
	if !slices.Equal(res.Changed, wantChanged[:2]) {
		t.Fatalf("write: %+v", res)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a.yaml")); string(got) != tidy {
		t.Fatalf("a.yaml:\n%s", got)
	}
	if info, _ := os.Stat(filepath.Join(dir, "a.yaml")); info.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640 kept", info.Mode().Perm())
	}
	if info, err := os.Lstat(filepath.Join(dir, "sub", "link.yaml")); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", info.Mode(), err)
	}
	for name, want := range map[string]string{"sub/broken.yaml": broken, "sub/notes.txt": messy, ".hidden/x.yaml": messy} {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != want {
			t.Fatalf("%s was touched:\n%s", name, got)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".fmt-") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}

	res, err = FormatDir(dir, true)
	if err != nil || len(res.Changed) != 0 {
		t.Fatalf("after fmt, fmt --check: %+v %v", res, err)
	}
	if _, err := FormatDir(filepath.Join(dir, "nope"), true); err == nil || !strings.Contains(err.Error(), "nope does not exist") {
		t.Fatalf("missing folder: %v", err)
	}
}

// FuzzFormat: Format never panics; what it writes, it leaves unchanged when
// run again, and means what the input meant (the same resources, or the
// same problems apart from where they are).
func FuzzFormat(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad", "testdata/fmt"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, problems := Format("fuzz.yaml", data)
		if len(problems) > 0 {
			if out != nil {
				t.Fatal("output for a file that does not parse")
			}
			return
		}
		again, problems := Format("fuzz.yaml", out)
		if len(problems) > 0 || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent (problems %v):\ninput:\n%s\nonce:\n%s\ntwice:\n%s", problems, data, out, again)
		}
		before, p1 := Parse("fuzz.yaml", data)
		after, p2 := Parse("fuzz.yaml", out)
		if (len(p1) == 0) != (len(p2) == 0) {
			t.Fatalf("problems before %v, after %v\ninput:\n%s\nformatted:\n%s", p1, p2, data, out)
		}
		if len(p1) > 0 {
			return
		}
		if len(before) != len(after) {
			t.Fatalf("%d resources before, %d after\ninput:\n%s\nformatted:\n%s", len(before), len(after), data, out)
		}
		for i := range before {
			after[i].Source = before[i].Source
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("formatting changed the resources:\nbefore: %+v\nafter:  %+v\ninput:\n%s\nformatted:\n%s", before, after, data, out)
		}
	})
}

// Windows line ends and a byte order mark: the comments stay where they
// were, and the file gets \n line ends.
func TestFormatCRLF(t *testing.T) {
	out, problems := Format("x.yaml", []byte("\ufeffname: a\r\nkind: Service\r\n# c\r\nfriendly_name: A # x\r\n"))
	if want := "kind: Service\nname: a\n# c\nfriendly_name: A # x\n"; len(problems) > 0 || string(out) != want {
		t.Fatalf("got %q (problems %v), want %q", out, problems, want)
	}
}
