package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/convsync/convsync/internal/testenv"

	"github.com/convsync/convsync/pkg/resource"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// loadFile runs one file through everything LoadDir checks, cross-document
// rules included.
func loadFile(t *testing.T, path string) ([]resource.Desired, Errors) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, problems := parseFile(filepath.Base(path), data)
	problems = append(problems, checkSet(docs)...)
	problems.sort()
	out := make([]resource.Desired, len(docs))
	for i, d := range docs {
		out[i] = d.Desired
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Address.String() < out[j].Address.String() })
	return out, problems
}

// dump renders resources the way a reviewer reads them in a golden file.
func dump(t *testing.T, resources []resource.Desired) []byte {
	t.Helper()
	type timeouts struct{ Create, Update, Read, Delete string }
	type entry struct {
		Address        string
		Parent         string `json:",omitempty"`
		Values         map[string]any
		Refs           map[string]string `json:",omitempty"`
		Timeouts       timeouts
		PreventDestroy bool
		WebhookEnabled bool
		Source         string
	}
	out := make([]entry, len(resources))
	for i, r := range resources {
		out[i] = entry{
			Address: r.Address.String(),
			Parent:  parentText(r.Parent),
			Values:  resource.Schema(r.Address.Kind).NestValues(r.Values),
			Refs:    refsText(r.Refs),
			Timeouts: timeouts{r.Timeouts.Create.String(), r.Timeouts.Update.String(),
				r.Timeouts.Read.String(), r.Timeouts.Delete.String()},
			PreventDestroy: r.Lifecycle.PreventDestroy,
			WebhookEnabled: r.WebhookEnabled,
			Source:         r.Source.String(),
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func refsText(refs map[string]resource.Ref) map[string]string {
	if len(refs) == 0 {
		return nil
	}
	out := map[string]string{}
	for field, r := range refs {
		out[field] = r.String()
	}
	return out
}

func parentText(r resource.Ref) string {
	if r.IsZero() {
		return ""
	}
	return r.String()
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	testenv.Golden(t, path, got, *update)
}

func TestGoodSpecsLoadAsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good specs: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			resources, problems := loadFile(t, file)
			if len(problems) > 0 {
				t.Fatalf("unexpected problems:\n%v", problems)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden.json", dump(t, resources))
		})
	}
}

// The good specs also load together, through LoadDir, into the same resources.
func TestGoodFolderLoads(t *testing.T) {
	set, err := LoadDir("testdata/good")
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	var want []resource.Desired
	files, _ := filepath.Glob("testdata/good/*.yaml")
	for _, f := range files {
		r, _ := loadFile(t, f)
		want = append(want, r...)
	}
	sort.SliceStable(want, func(i, j int) bool { return want[i].Address.String() < want[j].Address.String() })
	if got, wantDump := dump(t, set.Resources), dump(t, want); !bytes.Equal(got, wantDump) {
		t.Errorf("LoadDir resources differ from per-file loads\n--- got\n%s\n--- want\n%s", got, wantDump)
	}
	if len(set.Files) != len(files) {
		t.Errorf("Files = %v, want %d files", set.Files, len(files))
	}
	for i := 1; i < len(set.Resources); i++ {
		if set.Resources[i-1].Address.String() >= set.Resources[i].Address.String() {
			t.Errorf("resources not sorted by address: %s before %s", set.Resources[i-1].Address, set.Resources[i].Address)
		}
	}
	for _, r := range set.Resources {
		found, ok := set.Find(r.Address)
		if !ok || found.Address != r.Address {
			t.Errorf("Find(%s) = %v, %v", r.Address, found, ok)
		}
	}
	if _, ok := set.Find(resource.Address{Kind: resource.KindConversation, Name: "no-such"}); ok {
		t.Error("Find of a missing address reported found")
	}
}

// Each bad spec (a file, or a folder for rules that span files) fails with
// exactly the problems in its .err golden file.
func TestBadSpecsReportEveryProblem(t *testing.T) {
	entries, err := os.ReadDir("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join("testdata/bad", name)
		var base string
		switch {
		case e.IsDir():
			base = name
		case strings.HasSuffix(name, ".yaml"):
			base = strings.TrimSuffix(name, ".yaml")
		default:
			continue
		}
		ran++
		t.Run(name, func(t *testing.T) {
			var problems Errors
			if e.IsDir() {
				set, err := LoadDir(path)
				if !errors.As(err, &problems) {
					t.Fatalf("LoadDir = %v, %v; want Errors", set, err)
				}
			} else {
				_, problems = loadFile(t, path)
			}
			if len(problems) == 0 {
				t.Fatal("no problems reported")
			}
			for _, p := range problems {
				if p.File == "" || p.Line < 1 || p.Message == "" {
					t.Errorf("problem without file, line or message: %#v", p)
				}
			}
			golden(t, filepath.Join("testdata/bad", base+".err"), []byte(problems.Error()+"\n"))
		})
	}
	if ran == 0 {
		t.Fatal("no bad specs found")
	}
}
