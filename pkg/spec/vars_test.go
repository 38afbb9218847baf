package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/convsync/convsync/pkg/resource"
)

func fixtureVars(t *testing.T) *Vars {
	t.Helper()
	v := &Vars{}
	if err := v.ReadVarFile("testdata/vars/values.yaml"); err != nil {
		t.Fatal(err)
	}
	return v
}

// loadVarsFile is loadFile with the fixture values.
func loadVarsFile(t *testing.T, path string, vars *Vars) ([]resource.Desired, Errors, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, problems, used := parseFileWith(filepath.Base(path), data, vars)
	problems = append(problems, checkSet(docs)...)
	problems.sort()
	out := make([]resource.Desired, len(docs))
	for i, d := range docs {
		out[i] = d.Desired
	}
	return out, problems, used
}

// The good fixture loads, with every reference filled, as its golden file
// shows: the resolved values are what the planner (and so the plan) sees.
func TestVarsFillReferencesAsGolden(t *testing.T) {
	vars := fixtureVars(t)
	files, _ := filepath.Glob("testdata/vars/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no good vars fixtures")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			resources, problems, used := loadVarsFile(t, file, vars)
			if len(problems) > 0 {
				t.Fatalf("unexpected problems:\n%v", problems)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden.json", dump(t, resources))
			if want := []string{"count", "empty", "env", "hooks_host", "messaging_service", "reach"}; !slices.Equal(used, want) {
				t.Errorf("used = %v, want %v", used, want)
			}
		})
	}
}

// Each bad fixture fails with exactly the problems of its .err file, each
// at the file, line and column of the reference.
func TestVarsBadReferencesReportFileLineColumn(t *testing.T) {
	vars := fixtureVars(t)
	files, _ := filepath.Glob("testdata/vars/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no bad vars fixtures")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, problems, _ := loadVarsFile(t, file, vars)
			if len(problems) == 0 {
				t.Fatal("no problems reported")
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".err", []byte(problems.Error()+"\n"))
		})
	}
}

func TestVarFileProblemsNameFileLineColumn(t *testing.T) {
	files, _ := filepath.Glob("testdata/vars/varfiles/*.yaml")
	if len(files) == 0 {
		t.Fatal("no var file fixtures")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			v := &Vars{}
			err := v.ReadVarFile(file)
			var problems Errors
			if !errors.As(err, &problems) {
				t.Fatalf("ReadVarFile = %v, want Errors", err)
			}
			if len(v.Names()) != 0 {
				t.Errorf("a broken var file defined %v; it must define nothing", v.Names())
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".err", []byte(problems.Error()+"\n"))
		})
	}
}

// Later definitions win; names must be identifiers; the environment is read
// by prefix only.
func TestVarsSources(t *testing.T) {
	v := &Vars{}
	if err := v.SetFromEnviron([]string{"CONVSYNC_VAR_env=from-env", "CONVSYNC_VAR_other=x", "HOME=/root", "CONVSYNC_VARIANT=no"}); err != nil {
		t.Fatal(err)
	}
	if err := v.SetFlag("env=from=flag"); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Lookup("env"); got != "from=flag" {
		t.Errorf("env = %q, want the later --var's value (everything after the first =)", got)
	}
	if got := v.Names(); !slices.Equal(got, []string{"env", "other"}) {
		t.Errorf("names = %v", got)
	}
	for _, bad := range []string{"noequals", "1x=a", "a-b=c", "=v"} {
		if err := v.SetFlag(bad); err == nil {
			t.Errorf("SetFlag(%q) accepted", bad)
		}
	}
	if err := v.SetFromEnviron([]string{"CONVSYNC_VAR_a-b=c"}); err == nil || !strings.Contains(err.Error(), "CONVSYNC_VAR_a-b") {
		t.Errorf("a bad environment name: %v", err)
	}
	if err := v.ReadVarFile("testdata/vars/no-such.yaml"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing var file: %v", err)
	}
}

// A secret field never goes through expansion: a reference in it is an
// error that shows neither the value nor the variable's content.
func TestSecretFieldsAreNeverExpanded(t *testing.T) {
	// No kind of this branch has a secret yet (push credentials bring
	// them): make one for the test.
	f := resource.Schema(resource.KindServiceWebhooks).Field("pre_webhook_url")
	f.Secret = true
	t.Cleanup(func() { f.Secret = false })
	vars := &Vars{}
	const secret = "https://hunter2@hooks.example.com/x"
	if err := vars.Set("hook", secret, "test"); err != nil {
		t.Fatal(err)
	}
	src := "kind: ServiceWebhooks\nservice_sid: IS0123456789abcdef0123456789abcdef\nname: hooks\npre_webhook_url: ${var.hook}\npost_webhook_url: https://${var.hook_host}/post\n"
	vars.Set("hook_host", "hooks.example.com", "test") //nolint:errcheck // a valid name
	docs, problems, used := parseFileWith("secret.yaml", []byte(src), vars)
	if len(problems) != 1 || problems[0].Field != "pre_webhook_url" || problems[0].Line != 4 || problems[0].Column != 18 {
		t.Fatalf("problems = %v, want one at secret.yaml:4:18 pre_webhook_url", problems)
	}
	if strings.Contains(problems.Error(), "hunter2") {
		t.Errorf("the error shows the variable's value: %v", problems)
	}
	if slices.Contains(used, "hook") {
		t.Errorf("the secret's variable counts as used: %v", used)
	}
	if len(docs) != 1 || docs[0].Values["pre_webhook_url"] != "" || docs[0].Values["post_webhook_url"] != "https://hooks.example.com/post" {
		t.Errorf("values = %v: the secret must not be filled, the other field must", docs[0].Values)
	}
}

// A secret written as a mapping (the file: and env: forms of secrets) is
// never expanded either, at any depth.
func TestSecretMappingsAreNeverExpanded(t *testing.T) {
	var root yaml.Node
	src := "kind: ServiceWebhooks\npre_webhook_url:\n  env: ${var.name}\n  other: [x, \"${var.name}\"]\n"
	if err := yaml.Unmarshal([]byte(src), &root); err != nil {
		t.Fatal(err)
	}
	f := resource.Schema(resource.KindServiceWebhooks).Field("pre_webhook_url")
	f.Secret = true
	t.Cleanup(func() { f.Secret = false })
	vars := &Vars{}
	vars.Set("name", "SECRET_VALUE", "test") //nolint:errcheck // a valid name
	p := &parser{file: "s.yaml", src: []byte(src), vars: vars, used: map[string]bool{}}
	p.expand(root.Content[0])
	if len(p.problems) != 2 {
		t.Fatalf("problems = %v, want one per reference", p.problems)
	}
	if strings.Contains(src, "SECRET_VALUE") || strings.Contains(p.problems.Error(), "SECRET_VALUE") {
		t.Errorf("the value leaked: %v", p.problems)
	}
	value := root.Content[0].Content[3]
	if got := value.Content[1].Value; got != "${var.name}" {
		t.Errorf("the secret's env: was expanded to %q", got)
	}
}

// The set's hash covers the values that reached the specs: the same folder
// with other values is a new set (the daemon applies it), and variables no
// spec names change nothing.
func TestSetHashFollowsTheValuesUsed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte("kind: Service\nname: s\nfriendly_name: S ${var.env}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func(c *Cache, pairs ...string) *Set {
		t.Helper()
		v := &Vars{}
		for _, p := range pairs {
			if err := v.SetFlag(p); err != nil {
				t.Fatal(err)
			}
		}
		set, err := c.LoadDirWith(dir, LoadOptions{Vars: v})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	c := NewCache()
	staging := load(c, "env=staging")
	again := load(c, "env=staging", "unused=1")
	prod := load(c, "env=production")
	if staging.Hash != again.Hash {
		t.Error("an unused variable changed the hash")
	}
	if staging.Hash == prod.Hash {
		t.Error("another value left the hash as it was")
	}
	if got := prod.Resources[0].Values["friendly_name"]; got != "S production" {
		t.Errorf("the cache kept the old value: %q", got)
	}
	if !slices.Equal(prod.VarsUsed, []string{"env"}) {
		t.Errorf("VarsUsed = %v", prod.VarsUsed)
	}
}

// BenchmarkLoadDirVars: the cost of expansion on a load of 10,000
// conversations, without references (every scalar is still scanned), and
// with two references in each (docs/performance.md).
func BenchmarkLoadDirVars(b *testing.B) {
	for _, tc := range []struct {
		name string
		ref  string
	}{{"plain", "staging"}, {"references", "${var.env}"}} {
		dir := b.TempDir()
		for f := 0; f < 10; f++ {
			var s strings.Builder
			if f == 0 {
				s.WriteString("kind: Service\nname: support\nfriendly_name: Support\n")
			}
			for i := 0; i < 1000; i++ {
				fmt.Fprintf(&s, "---\nkind: Conversation\nname: c%d-%d\nservice: support\nunique_name: c%d-%d-%s\nfriendly_name: Conversation %d (%s)\nattributes: {tier: gold}\nstate: active\n", f, i, f, i, tc.ref, i, tc.ref)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.yaml", f)), []byte(s.String()), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		vars := &Vars{}
		if err := vars.Set("env", "staging", "bench"); err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				set, err := LoadDirWith(dir, LoadOptions{Vars: vars})
				if err != nil || len(set.Resources) != 10001 {
					b.Fatalf("%v, %d resources", err, len(set.Resources))
				}
			}
		})
	}
}
