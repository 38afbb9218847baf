package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// watchTest runs a Watcher on a real folder; changes counts its notifications.
type watchTest struct {
	t       *testing.T
	dir     string
	w       *Watcher
	changes chan struct{}
}

func startWatcher(t *testing.T, setup func(dir string)) *watchTest {
	t.Helper()
	dir := t.TempDir()
	if setup != nil {
		setup(dir)
	}
	w, err := NewWatcher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	wt := &watchTest{t: t, dir: dir, w: w, changes: make(chan struct{}, 1000)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, func() { wt.changes <- struct{}{} }) }()
	t.Cleanup(func() { cancel(); w.Close(); <-done })
	return wt
}

// expectChange waits for a notification, with a deadline (the kernel
// delivers inotify events asynchronously).
func (wt *watchTest) expectChange(what string) {
	wt.t.Helper()
	select {
	case <-wt.changes:
	case <-time.After(10 * time.Second):
		wt.t.Fatalf("no change notified for: %s", what)
	}
	// Drain the rest of this burst's notifications.
	for {
		select {
		case <-wt.changes:
		default:
			return
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(content), 0o644))
}

func TestWatcherSeesWhatEditorsGitAndKubernetesDo(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		change func(t *testing.T, dir string)
	}{
		{"a new file", nil, func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "kind: Service\n") }},
		{"an edit in place",
			func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "x") },
			func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "y") }},
		{"an editor's rename save",
			func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "x") },
			func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, ".a.yaml.swp"), "y")
				must(t, os.Rename(filepath.Join(dir, ".a.yaml.swp"), filepath.Join(dir, "a.yaml")))
			}},
		{"a removed file",
			func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "x") },
			func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "a.yaml"))) }},
		{"a file in an existing subfolder",
			func(t *testing.T, dir string) { must(t, os.MkdirAll(filepath.Join(dir, "team", "deep"), 0o755)) },
			func(t *testing.T, dir string) { write(t, filepath.Join(dir, "team", "deep", "b.yaml"), "x") }},
		{"a ConfigMap ..data symlink swap", configMap("v1"), func(t *testing.T, dir string) {
			// What the kubelet does: new timestamped folder, new ..data_tmp
			// link, renamed over ..data, old folder removed. No event names a.yaml.
			must(t, os.MkdirAll(filepath.Join(dir, "..v2"), 0o755))
			write(t, filepath.Join(dir, "..v2", "a.yaml"), "v2")
			must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
			must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
			must(t, os.RemoveAll(filepath.Join(dir, "..v1")))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wt := startWatcher(t, func(dir string) {
				if tt.setup != nil {
					tt.setup(t, dir)
				}
			})
			tt.change(t, wt.dir)
			wt.expectChange(tt.name)
		})
	}
}

// configMap lays out a folder as a Kubernetes ConfigMap volume does.
func configMap(version string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		write(t, filepath.Join(dir, ".."+version, "a.yaml"), version)
		must(t, os.Symlink(".."+version, filepath.Join(dir, "..data")))
		must(t, os.Symlink(filepath.Join("..data", "a.yaml"), filepath.Join(dir, "a.yaml")))
	}
}

func TestWatcherWatchesNewSubfoldersAndSkipsHiddenOnes(t *testing.T) {
	wt := startWatcher(t, func(dir string) { must(t, os.MkdirAll(filepath.Join(dir, ".git", "objects"), 0o755)) })
	// A subfolder created with a file already in it (git checkout, cp -r).
	write(t, filepath.Join(wt.dir, "new", "c.yaml"), "x")
	wt.expectChange("new subfolder")
	// A later write inside it is seen: the new subfolder is watched.
	write(t, filepath.Join(wt.dir, "new", "d.yaml"), "y")
	wt.expectChange("file in the new subfolder")
	watched := wt.w.Watched()
	if !slices.Contains(watched, filepath.Join(wt.dir, "new")) {
		t.Fatalf("new subfolder not watched: %v", watched)
	}
	if slices.Contains(watched, filepath.Join(wt.dir, ".git")) || slices.Contains(watched, filepath.Join(wt.dir, ".git", "objects")) {
		t.Fatalf("hidden folders are watched (the loader skips them): %v", watched)
	}
}

func TestWatcherRewatchesASpecFolderThatCameBack(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "specs")
	w, err := NewWatcher(dir, nil) // missing at start: not an error
	must(t, err)
	defer w.Close()
	if len(w.Watched()) != 0 {
		t.Fatalf("watching a missing folder: %v", w.Watched())
	}
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	w.Rewatch() // what the slow poll does
	if got := w.Watched(); !slices.Contains(got, dir) || !slices.Contains(got, filepath.Join(dir, "sub")) {
		t.Fatalf("after Rewatch: %v", got)
	}
}
