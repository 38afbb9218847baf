package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestCacheLoadsWhatLoadDirLoads edits a folder step by step and checks that
// a Cache, reused across the steps, always gives exactly LoadDir's answer.
func TestCacheLoadsWhatLoadDirLoads(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		do   func()
	}{
		{"first load", func() {
			write("s.yaml", "kind: Service\nname: s\nfriendly_name: S\n")
			write("a.yaml", "kind: Conversation\nname: a\nservice: s\nfriendly_name: A\n")
		}},
		{"nothing changed", func() {}},
		{"one file edited", func() { write("a.yaml", "kind: Conversation\nname: a\nservice: s\nfriendly_name: A2\n") }},
		{"a file breaks", func() { write("a.yaml", "kind: Conversation\nname: a\nservice: s\ncolour: red\n") }},
		{"another file's change breaks a reference", func() {
			write("a.yaml", "kind: Conversation\nname: a\nservice: s\n")
			write("s.yaml", "kind: Service\nname: t\nfriendly_name: T\n")
		}},
		{"a file removed", func() {
			if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	cache := NewCache()
	for _, step := range steps {
		step.do()
		want, wantErr := LoadDir(dir)
		got, gotErr := cache.LoadDir(dir)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotErr, wantErr) {
			t.Fatalf("%s: cache gave (%+v, %v), LoadDir gave (%+v, %v)", step.name, got, gotErr, want, wantErr)
		}
	}
	if len(cache.files) != 1 {
		t.Fatalf("the cache holds %d files after a removal, want 1", len(cache.files))
	}
}
