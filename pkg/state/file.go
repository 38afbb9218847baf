package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultPath is where the CLI keeps the state unless told otherwise.
const DefaultPath = "convsync.state.json"

// Options tune Open.
type Options struct {
	// LockTimeout is how long Open waits for another holder to release the lock.
	// Zero means try once.
	LockTimeout time.Duration
	// ReadOnly opens without taking the lock and refuses Update. It is for
	// commands without side effects (plan without -out, state list): they may read
	// while an apply runs and then see the state as of the apply's last save.
	ReadOnly bool
	// Holder describes this run in the lock file ("convsync apply"), so whoever
	// waits can tell what holds the state. Never put secrets here. Defaults to the
	// program name.
	Holder string
	// Emergency receives the whole state as a last resort when neither the state
	// file nor an emergency file can be written. Usually os.Stderr; nil skips it.
	Emergency io.Writer
	// ConvsyncVersion is recorded in the file as the writer's version. Defaults to
	// "dev".
	ConvsyncVersion string

	onLockBusy func() // tests: called each time the lock is found held
}

// File is a state file opened for this run. Its methods are safe for concurrent
// use.
type File struct {
	path      string
	opts      Options
	lock      *lockFile // nil when read-only
	writtenBy string    // convsync_version found in the file

	mu     sync.Mutex
	state  *State // never changed once stored here: Update stores a new one
	gen    uint64 // content changes made in memory
	closed bool

	saveMu   sync.Mutex // one write at a time; also guards the fields below
	savedGen uint64     // every change up to this one is on disk
	released bool       // Close gave up the lock: no more writes
	onDisk   bool       // the state file exists
	backedUp bool       // this session made its backup
}

// Open opens the state file at path: it takes the lock (unless opts.ReadOnly),
// then reads the file. A missing file gives an empty state with a fresh lineage;
// nothing is written until the first change.
func Open(path string, opts Options) (*File, error) {
	if opts.Holder == "" {
		opts.Holder = filepath.Base(os.Args[0])
	}
	if opts.ConvsyncVersion == "" {
		opts.ConvsyncVersion = "dev"
	}
	f := &File{path: path, opts: opts}
	if !opts.ReadOnly {
		lock, err := acquireLock(path, opts)
		if err != nil {
			return nil, err
		}
		f.lock = lock
	}
	if err := f.load(); err != nil {
		if f.lock != nil {
			_ = f.lock.release()
		}
		return nil, err
	}
	return f, nil
}

func (f *File) load() error {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.state = New()
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read state file %s: %w", f.path, err)
	}
	s, writtenBy, err := Decode(data)
	if err != nil {
		var verr *VersionError
		if errors.As(err, &verr) {
			return fmt.Errorf("state file %s %w", f.path, err)
		}
		return fmt.Errorf("state file %s cannot be read: %w. Nothing was changed. %s", f.path, err, f.backupAdvice())
	}
	f.state, f.writtenBy, f.onDisk = s, writtenBy, true
	return nil
}

func (f *File) backupPath() string { return f.path + ".backup" }

func (f *File) backupAdvice() string {
	if _, err := os.Stat(f.backupPath()); err == nil {
		return fmt.Sprintf("The previous version is in %s: if this file cannot be repaired, compare the two and copy the backup over it.", f.backupPath())
	}
	return fmt.Sprintf("There is no backup (%s) to fall back on: repair the file by hand.", f.backupPath())
}

// Path returns the state file's path.
func (f *File) Path() string { return f.path }

// WrittenBy returns the convsync_version recorded in the file when it was
// opened ("" for a new state).
func (f *File) WrittenBy() string { return f.writtenBy }

// State returns a deep copy of the current state, including changes not yet
// saved.
func (f *File) State() *State { return f.current().Clone() }

// Lineage returns the state's lineage.
func (f *File) Lineage() string { return f.current().Lineage }

// Serial returns the state's serial, counting changes made in memory.
func (f *File) Serial() uint64 { return f.current().Serial }

func (f *File) current() *State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// Update applies fn to a copy of the state. If fn fails, nothing changes. If the
// content changed, the serial goes up by one and the state is saved before
// Update returns; when several goroutines update at once, one save may carry
// several changes (group commit). fn must not keep the *State it is given.
//
// If the save fails, the change stays in memory (the next Update or Close tries
// again), an emergency copy is written, and the error is a *SaveError that says
// where the copy went. The caller should stop making changes.
func (f *File) Update(fn func(*State) error) error {
	if f.opts.ReadOnly {
		return fmt.Errorf("state file %s was opened read-only; it cannot be changed", f.path)
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return fmt.Errorf("state file %s is closed", f.path)
	}
	prev := f.state
	next := prev.Clone()
	if err := fn(next); err != nil {
		f.mu.Unlock()
		return err
	}
	changed, err := changedAndValid(prev, next)
	if err != nil || !changed {
		f.mu.Unlock()
		if err != nil {
			return fmt.Errorf("refusing to change state file %s: %w", f.path, err)
		}
		return nil
	}
	next.Serial++
	f.state = next
	f.gen++
	gen := f.gen
	f.mu.Unlock()
	return f.persist(gen)
}

// persist makes sure every change up to gen is on disk.
func (f *File) persist(gen uint64) error {
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	if f.savedGen >= gen {
		return nil // a save that started after our change carried it
	}
	f.mu.Lock()
	snap, snapGen := f.state, f.gen
	f.mu.Unlock()
	if f.released { // Close could not save this change and gave up the lock
		return f.emergency(snap, errors.New("the file was closed (and its lock released) before this change could be saved"))
	}
	if err := f.write(snap); err != nil {
		return f.emergency(snap, err)
	}
	f.savedGen = snapGen
	return nil
}

// write replaces the state file atomically: a temporary file in the same
// folder, fsync, rename over, fsync the folder. The first write of a session
// first keeps the file as it was when opened in path+".backup".
func (f *File) write(s *State) (err error) {
	dir, base := filepath.Split(f.path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := Encode(tmp, s, f.opts.ConvsyncVersion); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if f.onDisk && !f.backedUp {
		if err := f.backup(dir); err != nil {
			return fmt.Errorf("keeping the previous version as %s: %w", f.backupPath(), err)
		}
		f.backedUp = true
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return err
	}
	f.onDisk = true
	return syncDir(dir)
}

// backup keeps the current state file as path+".backup". A hard link costs
// nothing and stays valid because the state file is replaced by rename, never
// rewritten; where links are not allowed it falls back to a copy. Either way the
// backup appears atomically.
func (f *File) backup(dir string) error {
	tmpName := fmt.Sprintf("%s.tmp-%d", f.backupPath(), time.Now().UnixNano())
	if err := os.Link(f.path, tmpName); err != nil {
		if err := copyFile(f.path, tmpName); err != nil {
			_ = os.Remove(tmpName)
			return err
		}
	}
	if err := os.Rename(tmpName, f.backupPath()); err != nil {
		_ = os.Remove(tmpName)
		return err
	}
	return syncDir(dir)
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return writeFileSync(to, data)
}

func writeFileSync(name string, data []byte) error {
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// SaveError reports a state that could not be saved, and where its emergency
// copy went.
type SaveError struct {
	Path   string
	Serial uint64
	Err    error // why the state file could not be written
	// EmergencyPath is the file holding the emergency copy, or "" if none
	// could be written.
	EmergencyPath string
	// EmergencyOutput is set when the copy went to Options.Emergency instead.
	EmergencyOutput bool
	// EmergencyErrs say why each emergency file could not be written.
	EmergencyErrs []error
}

func (e *SaveError) Error() string {
	var where string
	switch {
	case e.EmergencyPath != "":
		where = fmt.Sprintf("an emergency copy of the whole state (serial %d) was written to %s: once the problem is fixed, copy it over %s before running convsync again", e.Serial, e.EmergencyPath, e.Path)
	case e.EmergencyOutput:
		where = fmt.Sprintf("no emergency file could be written either (%s), so the whole state (serial %d) was printed to the emergency output (standard error) between BEGIN and END markers: save it, and once the problem is fixed, put it in %s before running convsync again", joinErrs(e.EmergencyErrs), e.Serial, e.Path)
	default:
		where = fmt.Sprintf("no emergency copy could be written anywhere (%s): the state now exists only in this process's memory, and Close tries once more to save it", joinErrs(e.EmergencyErrs))
	}
	return fmt.Sprintf("could not save state file %s: %v. The change is kept in memory, and %s", e.Path, e.Err, where)
}

func (e *SaveError) Unwrap() error { return e.Err }

func joinErrs(errs []error) string {
	var parts []string
	for _, err := range errs {
		parts = append(parts, err.Error())
	}
	return strings.Join(parts, "; ")
}

// emergency puts a copy of s where it can be found: next to the state file,
// then in the system's temporary folder, then on Options.Emergency.
func (f *File) emergency(s *State, cause error) error {
	serr := &SaveError{Path: f.path, Serial: s.Serial, Err: cause}
	var buf bytes.Buffer
	if err := Encode(&buf, s, f.opts.ConvsyncVersion); err != nil {
		serr.EmergencyErrs = append(serr.EmergencyErrs, err)
		return serr
	}
	name := fmt.Sprintf("%s.emergency-%d", filepath.Base(f.path), time.Now().Unix())
	for _, candidate := range []string{filepath.Join(filepath.Dir(f.path), name), filepath.Join(os.TempDir(), name)} {
		if err := writeFileSync(candidate, buf.Bytes()); err != nil {
			serr.EmergencyErrs = append(serr.EmergencyErrs, err)
			continue
		}
		serr.EmergencyPath = candidate
		return serr
	}
	if f.opts.Emergency != nil {
		_, err := fmt.Fprintf(f.opts.Emergency, "convsync: could not save state file %s; the whole state follows.\n-----BEGIN CONVSYNC STATE-----\n%s-----END CONVSYNC STATE-----\n", f.path, buf.Bytes())
		if err == nil {
			serr.EmergencyOutput = true
		} else {
			serr.EmergencyErrs = append(serr.EmergencyErrs, fmt.Errorf("emergency output: %w", err))
		}
	}
	return serr
}

// Close saves any change a failed save left behind, then releases the lock.
// After Close, Update fails.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	gen := f.gen
	f.mu.Unlock()
	if f.lock == nil {
		return nil
	}
	err := f.persist(gen)
	f.saveMu.Lock()
	f.released = true
	lerr := f.lock.release()
	f.saveMu.Unlock()
	if err == nil && lerr != nil {
		err = fmt.Errorf("releasing the lock on state file %s: %w", f.path, lerr)
	}
	return err
}
