//go:build unix

package spec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

const (
	serviceDoc = "kind: Service\nname: support\nfriendly_name: Support\n"
	convDoc    = "kind: Conversation\nname: vip\nservice: support\n"
)

// write creates files (path → content) under dir, making folders as needed.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func addresses(set *Set) []string {
	var out []string
	for _, r := range set.Resources {
		out = append(out, r.Address.String())
	}
	return out
}

func mustLoad(t *testing.T, dir string) *Set {
	t.Helper()
	set, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	return set
}

func mustFailWithProblems(t *testing.T, dir string) Errors {
	t.Helper()
	set, err := LoadDir(dir)
	var problems Errors
	if !errors.As(err, &problems) {
		t.Fatalf("LoadDir = %v, %v; want Errors", set, err)
	}
	return problems
}

func TestLoadDirRecursesAndSkipsDotEntries(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"services.yaml":             serviceDoc,
		"teams/a/conversations.yml": convDoc,
		"teams/b/UPPER.YAML":        "kind: Conversation\nname: upper\nservice: support\n",
		"teams/notes.txt":           "not a spec: " + serviceDoc,
		".hidden.yaml":              serviceDoc, // would be a duplicate if loaded
		".git/config.yaml":          serviceDoc,
		"teams/.backup/old.yaml":    serviceDoc,
	})
	set := mustLoad(t, dir)
	if want := []string{"services.yaml", "teams/a/conversations.yml", "teams/b/UPPER.YAML"}; !reflect.DeepEqual(set.Files, want) {
		t.Errorf("Files = %v, want %v", set.Files, want)
	}
	if want := []string{"conversation.upper", "conversation.vip", "service.support"}; !reflect.DeepEqual(addresses(set), want) {
		t.Errorf("resources = %v, want %v", addresses(set), want)
	}
	vip, ok := set.Find(resource.Address{Kind: resource.KindConversation, Name: "vip"})
	if !ok {
		t.Fatal("conversation.vip not found")
	}
	if want := (resource.Source{File: "teams/a/conversations.yml", Line: 1, Column: 1}); vip.Source != want {
		t.Errorf("Source = %v, want %v", vip.Source, want)
	}
}

// A Kubernetes ConfigMap mount: the real files live in a timestamped folder,
// ..data points at it, and the top-level names are symlinks through ..data.
func TestLoadDirConfigMapMountLoadsEachResourceOnce(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"..2024_01_01_00_00_00.123456789/services.yaml":      serviceDoc,
		"..2024_01_01_00_00_00.123456789/conversations.yaml": convDoc,
	})
	symlink(t, "..2024_01_01_00_00_00.123456789", filepath.Join(dir, "..data"))
	symlink(t, "..data/services.yaml", filepath.Join(dir, "services.yaml"))
	symlink(t, "..data/conversations.yaml", filepath.Join(dir, "conversations.yaml"))

	set := mustLoad(t, dir)
	if want := []string{"conversations.yaml", "services.yaml"}; !reflect.DeepEqual(set.Files, want) {
		t.Errorf("Files = %v, want %v", set.Files, want)
	}
	if want := []string{"conversation.vip", "service.support"}; !reflect.DeepEqual(addresses(set), want) {
		t.Errorf("resources = %v, want %v", addresses(set), want)
	}
}

func TestLoadDirFollowsSymlinkedFolders(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{
		"shared/services.yaml":     serviceDoc,
		"specs/conversations.yaml": convDoc,
	})
	symlink(t, "../shared", filepath.Join(root, "specs", "shared"))
	set := mustLoad(t, filepath.Join(root, "specs"))
	if want := []string{"conversations.yaml", "shared/services.yaml"}; !reflect.DeepEqual(set.Files, want) {
		t.Errorf("Files = %v, want %v", set.Files, want)
	}
}

func TestLoadDirReportsSymlinkLoops(t *testing.T) {
	tests := []struct {
		name  string
		links map[string]string // link (relative to the spec folder) → target
		want  []string          // substrings of the problems, in order
	}{
		{
			name:  "link to the spec folder itself",
			links: map[string]string{"sub/back": ".."},
			want:  []string{"sub/back: symlink loop: this leads back to the folder ., which contains it"},
		},
		{
			name:  "two folders linking to each other",
			links: map[string]string{"a/to-b": "../b", "b/to-a": "../a"},
			want: []string{
				"a/to-b/to-a: symlink loop: this leads back to the folder a,",
				"b/to-a/to-b: symlink loop: this leads back to the folder b,",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{"services.yaml": serviceDoc})
			for link, target := range tc.links {
				if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(link)), 0o755); err != nil {
					t.Fatal(err)
				}
				symlink(t, target, filepath.Join(dir, link))
			}
			problems := mustFailWithProblems(t, dir)
			if len(problems) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(problems), len(tc.want), problems)
			}
			for i, want := range tc.want {
				if !strings.Contains(problems[i].String(), want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, problems[i], want)
				}
			}
		})
	}
}

func TestLoadDirMissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := LoadDir(dir)
	var problems Errors
	if err == nil || errors.As(err, &problems) {
		t.Fatalf("LoadDir = %v; want an I/O error", err)
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error %q should say that %s does not exist", err, dir)
	}

	file := filepath.Join(t.TempDir(), "file.yaml")
	write(t, filepath.Dir(file), map[string]string{"file.yaml": serviceDoc})
	if _, err := LoadDir(file); err == nil || !strings.Contains(err.Error(), "is not a folder") {
		t.Errorf("LoadDir(a file) = %v; want 'is not a folder'", err)
	}
}

// A spec file that cannot be read fails the load with an I/O error naming the
// file, not with spec problems (the set would be incomplete). chmod 000 makes
// a file unreadable except for root, which reads it anyway: there the test uses
// a symlink to a missing file, which nobody can read.
func TestLoadDirUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"services.yaml": serviceDoc, "locked.yaml": convDoc})
	locked := filepath.Join(dir, "locked.yaml")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	wantErr := fs.ErrPermission
	if _, err := os.ReadFile(locked); err == nil {
		t.Logf("running as uid %d: chmod 000 does not stop reads; using a dangling symlink instead", os.Geteuid())
		if err := os.Remove(locked); err != nil {
			t.Fatal(err)
		}
		symlink(t, "missing.yaml", locked)
		wantErr = fs.ErrNotExist
	}
	_, err := LoadDir(dir)
	var problems Errors
	if err == nil || errors.As(err, &problems) {
		t.Fatalf("LoadDir = %v; want an I/O error", err)
	}
	if !errors.Is(err, wantErr) || !strings.Contains(err.Error(), "locked.yaml") {
		t.Errorf("error %q should name locked.yaml and wrap %v", err, wantErr)
	}
	if strings.Contains(err.Error(), dir) {
		t.Errorf("error %q should name the file relative to the spec folder", err)
	}
}

func TestLoadDirIgnoresDanglingLinksNotNamedLikeSpecs(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"services.yaml": serviceDoc})
	symlink(t, "gone", filepath.Join(dir, "old-folder"))
	mustLoad(t, dir)
}

// A FIFO named like a spec would block a plain read forever; it is reported.
func TestLoadDirRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"services.yaml": serviceDoc})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	problems := mustFailWithProblems(t, dir)
	if len(problems) != 1 || problems[0].File != "pipe.yaml" || !strings.Contains(problems[0].Message, "not a regular file") {
		t.Errorf("problems = %v; want pipe.yaml: not a regular file", problems)
	}
}

func TestLoadDirRefusesLargeFiles(t *testing.T) {
	dir := t.TempDir()
	big := serviceDoc + "# " + strings.Repeat("x", MaxFileSize) + "\n"
	write(t, dir, map[string]string{"big.yaml": big, "other.yaml": "kind: Service\nname: Bad\n"})
	problems := mustFailWithProblems(t, dir)
	got := problems.Error()
	for _, want := range []string{"big.yaml: file is 4194305 bytes; a spec file may be at most 4194304 bytes", "other.yaml:2:7: name:"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nwant them to contain %q", got, want)
		}
	}
}

func TestLoadDirHash(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"services.yaml": serviceDoc, "sub/conversations.yaml": convDoc})
	first := mustLoad(t, dir).Hash
	if len(first) != 64 {
		t.Fatalf("Hash = %q, want 64 hex digits", first)
	}
	if again := mustLoad(t, dir).Hash; again != first {
		t.Errorf("unchanged specs: hash %s, then %s", first, again)
	}
	write(t, dir, map[string]string{"README.md": "not a spec"})
	if h := mustLoad(t, dir).Hash; h != first {
		t.Errorf("adding a file that is not a spec changed the hash")
	}

	changes := []struct {
		name   string
		change func(t *testing.T, dir string)
	}{
		{"content changed", func(t *testing.T, dir string) {
			write(t, dir, map[string]string{"services.yaml": serviceDoc + "# a comment\n"})
		}},
		{"file renamed", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "sub/conversations.yaml"), filepath.Join(dir, "sub/convs.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
		{"file added", func(t *testing.T, dir string) {
			write(t, dir, map[string]string{"empty.yaml": "---\n"})
		}},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{"services.yaml": serviceDoc, "sub/conversations.yaml": convDoc})
			if h := mustLoad(t, dir).Hash; h != first {
				t.Fatalf("same specs in another folder: hash %s, want %s", h, first)
			}
			c.change(t, dir)
			if h := mustLoad(t, dir).Hash; h == first {
				t.Errorf("hash did not change")
			}
		})
	}
}
