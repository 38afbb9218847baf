package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// maxWatchDepth bounds the folder walk, in case symlinks make a loop (the
// spec loader reports such loops; the watcher only must not follow them
// for ever).
const maxWatchDepth = 32

// Watcher watches the spec folder and its subfolders (new ones too) and
// says "something changed" for every event but a bare chmod. It never
// says what: the loader reads the whole folder anyway, which is what makes
// editors that save by rename, git checkouts and the Kubernetes ConfigMap
// "..data" symlink swap (where no event names a spec file at all) simple.
type Watcher struct {
	root string
	log  *zap.Logger
	fs   *fsnotify.Watcher

	mu      sync.Mutex
	watched map[string]bool
}

// NewWatcher starts watching root and every folder under it. A missing root
// is not an error: the slow poll calls Rewatch until it appears.
func NewWatcher(root string, log *zap.Logger) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Watcher{root: root, log: log, fs: fsw, watched: map[string]bool{}}
	w.Rewatch()
	return w, nil
}

// Close stops watching.
func (w *Watcher) Close() error { return w.fs.Close() }

// Rewatch walks the folder and watches every folder not yet watched. The
// slow poll calls it, so a folder created while events were lost, or a
// spec folder removed and created again, is watched again.
func (w *Watcher) Rewatch() {
	w.addTree(w.root, 0)
}

// Watched lists the watched folders (tests).
func (w *Watcher) Watched() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for p := range w.watched {
		out = append(out, p)
	}
	return out
}

func (w *Watcher) addTree(dir string, depth int) {
	if depth > maxWatchDepth {
		return
	}
	info, err := os.Stat(dir) // follows symlinks, as the loader does
	if err != nil || !info.IsDir() {
		return
	}
	w.mu.Lock()
	already := w.watched[dir]
	w.mu.Unlock()
	if !already {
		if err := w.fs.Add(dir); err != nil {
			w.log.Warn("cannot watch a spec folder; the slow poll still reads it", zap.String("folder", dir), zap.Error(err))
			return
		}
		w.mu.Lock()
		w.watched[dir] = true
		w.mu.Unlock()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if hidden(e.Name()) {
			continue // the loader skips them: .git, and a ConfigMap's ..data target folders
		}
		child := filepath.Join(dir, e.Name())
		if e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			w.addTree(child, depth+1)
		}
	}
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// forget drops a folder that went away (fsnotify drops its watch itself
// when it is deleted; a renamed folder's watch would follow it, so remove it).
func (w *Watcher) forget(path string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := range w.watched {
		if p == path || strings.HasPrefix(p, path+string(filepath.Separator)) {
			delete(w.watched, p)
			_ = w.fs.Remove(p) // already gone if the folder was deleted
		}
	}
}

// Run calls changed for every event that may have changed the specs, until
// ctx is done. changed must not block for long (Run passes it events as
// they come; the caller debounces).
func (w *Watcher) Run(ctx context.Context, changed func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			w.log.Debug("file event", zap.String("event", ev.String()))
			if ev.Op == fsnotify.Chmod {
				continue // touch, chmod: the content is the same
			}
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				w.forget(ev.Name)
				if ev.Name == w.root {
					w.log.Warn("the spec folder itself was removed or renamed; watching it again when it comes back (the last good specs stay in force)", zap.String("dir", w.root))
				}
			}
			if ev.Has(fsnotify.Create) && !hidden(filepath.Base(ev.Name)) {
				w.addTree(ev.Name, 1) // a new subfolder: watch it and what it already holds
			}
			changed()
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Warn("the kernel dropped file events (queue overflow); rescanning the whole spec folder")
				w.Rewatch()
			} else {
				w.log.Warn("file watcher error; rescanning the whole spec folder", zap.Error(err))
			}
			changed()
		}
	}
}
