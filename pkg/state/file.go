package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

// DefaultPath is where the CLI keeps the state unless told otherwise.
const DefaultPath = "convsync.state.json"

// DefaultCompactEvery is how many changes the journal holds before the state
// file is written in full again. At 100,000 resources a full write costs about
// half a second, so this keeps its share of each change in the tens of
// microseconds, and the journal (about 1 KiB a change) near 10 MiB.
const DefaultCompactEvery = 10_000

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
	// CompactEvery is how many journal lines (changes) accumulate before the
	// state file is written in full again and the journal emptied. Defaults to
	// DefaultCompactEvery. The journal is also compacted when it grows past
	// twice the state file's size (at least 2 MiB), and on Close.
	CompactEvery int
	// Logf receives warnings that are not errors (an incomplete journal line
	// left by a crash, a compaction that must be retried). Defaults to
	// log.Printf.
	Logf func(format string, args ...any)

	onLockBusy func() // tests: called each time the lock is found held
}

// File is a state file opened for this run. Its methods are safe for concurrent
// use.
//
// On disk it is two files: the state file, written in full (atomically) now
// and then, and its journal (path+".journal"), to which each change is
// appended as one fsynced line. The state is the state file with the journal
// replayed over it. See docs/state.md.
type File struct {
	path      string
	opts      Options
	lock      *lockFile // nil when read-only
	writtenBy string    // convsync_version found in the file

	mu     sync.Mutex
	state  *State   // the live state: Update changes it in place, under mu
	queued []record // journal lines of changes made in memory, not yet taken by a save
	closed bool
	broken error // set when an Update's function changed the state behind the tracker's back

	saveMu          sync.Mutex // one write at a time; also guards the fields below
	savedSerial     uint64     // every change up to this serial is on disk
	unsaved         []record   // journal lines taken from queued that are not on disk yet
	released        bool       // Close gave up the lock: no more writes
	onDisk          bool       // the state file exists
	backedUp        bool       // this session made its backup
	baseSize        int64      // size of the state file as last written
	journalSize     int64      // size of the journal as this File left it
	journalLines    int        // lines in the journal
	mustCompact     bool       // the journal cannot be trusted to continue: write the state file in full
	compactRetryAt  int        // after a failed compaction, journal lines before trying again
	journalNeedsDir bool       // the journal was created: fsync the folder once
}

// journalPath is where the changes since the last full write go.
func (f *File) journalPath() string { return f.path + ".journal" }

// Open opens the state file at path: it takes the lock (unless opts.ReadOnly),
// then reads the file and replays its journal. A missing file gives an empty
// state with a fresh lineage; nothing is written until the first change.
//
// A writer that finds changes in the journal (the previous run did not close:
// a crash) writes them into the state file before returning, so that the
// backup this run makes is the state as it found it.
func Open(path string, opts Options) (*File, error) {
	if opts.Holder == "" {
		opts.Holder = filepath.Base(os.Args[0])
	}
	if opts.ConvsyncVersion == "" {
		opts.ConvsyncVersion = "dev"
	}
	if opts.CompactEvery <= 0 {
		opts.CompactEvery = DefaultCompactEvery
	}
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	path, err := resolveStatePath(path)
	if err != nil {
		return nil, err
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

// maxLinkHops bounds how many symbolic links resolveStatePath follows.
const maxLinkHops = 40

// resolveStatePath follows the symbolic links the state file's own name may
// be, once, so that the file written, its backup, journal and lock all sit
// beside the file the links lead to. Writing beside the link instead would
// replace the link by a regular file (the target keeping the old content), and
// two runs, one through the link and one through the target, would lock two
// different files and run at once. A link whose target does not exist yet is
// followed too: the state file is then created there.
func resolveStatePath(path string) (string, error) {
	orig := path
	for hops := 0; ; hops++ {
		info, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && info.Mode()&fs.ModeSymlink == 0) {
			return path, nil
		}
		if err != nil {
			return "", fmt.Errorf("state file %s cannot be examined: %w", orig, err)
		}
		if hops == maxLinkHops {
			return "", fmt.Errorf("state file %s is a symbolic link that goes through more than %d links (a loop?): point --state at the real file", orig, maxLinkHops)
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", fmt.Errorf("state file %s is a symbolic link that cannot be read: %w", orig, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
}

// load reads the state file and replays the journal. A read-only open holds
// no lock, so a writer may compact between the two reads; it then sees a state
// file newer than the one it read, and reads both again.
func (f *File) load() error {
	for attempt := 1; ; attempt++ {
		err, raced := f.loadOnce()
		if !raced || attempt == 3 {
			return err
		}
	}
}

func (f *File) loadOnce() (err error, raced bool) {
	base, err := os.Open(f.path)
	var baseInfo os.FileInfo
	var data []byte
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("cannot read state file %s: %w", f.path, err), false
	default:
		baseInfo, err = base.Stat()
		if err == nil {
			data, err = io.ReadAll(base)
		}
		base.Close()
		if err != nil {
			return fmt.Errorf("cannot read state file %s: %w", f.path, err), false
		}
	}
	journal, err := os.ReadFile(f.journalPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read the journal of state file %s (%s): %w", f.path, f.journalPath(), err), false
	}
	replaced := func() bool { // a writer compacted since we opened the state file
		if f.lock != nil {
			return false
		}
		now, err := os.Stat(f.path)
		return err == nil && (baseInfo == nil || !os.SameFile(now, baseInfo))
	}

	if baseInfo == nil {
		if len(journal) > 0 && !replaced() {
			return fmt.Errorf("state file %s is missing, but its journal %s holds changes: convsync cannot tell what it belongs to. "+
				"Nothing was changed. If the state file was moved, move it back; if you deleted it to start again, delete the journal too", f.path, f.journalPath()), false
		}
		if len(journal) > 0 {
			return fmt.Errorf("state file %s appeared while it was being read", f.path), true
		}
		f.state = New()
		return nil, false
	}
	s, writtenBy, err := Decode(data)
	if err != nil {
		var verr *VersionError
		if errors.As(err, &verr) {
			return fmt.Errorf("state file %s %w", f.path, err), false
		}
		return fmt.Errorf("state file %s cannot be read: %w. Nothing was changed. %s", f.path, err, f.backupAdvice()), false
	}
	rp, err := replayJournal(s, journal)
	if err != nil {
		if replaced() {
			return err, true
		}
		return fmt.Errorf("the journal of state file %s (%s) cannot be read: %w. Nothing was changed. "+
			"The journal holds the changes made since the state file was last written in full; lines before this one are intact. %s",
			f.path, f.journalPath(), err, f.backupAdvice()), false
	}
	f.state, f.writtenBy, f.onDisk = s, writtenBy, true
	f.baseSize = int64(len(data))
	f.savedSerial = s.Serial
	if f.lock == nil { // read-only: never writes, so nothing more to do
		return nil, false
	}
	if rp.torn > 0 {
		f.opts.Logf("state journal %s: ignoring its incomplete last line (%d bytes), a write cut short by a crash; the Update that made it never returned, so no saved change is lost",
			f.journalPath(), rp.torn)
	}
	if len(journal) == 0 {
		return nil, false
	}
	// The previous writer did not close cleanly. Fold the journal into the
	// state file now: this run's backup is then the state as this run found it.
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	f.journalSize = int64(len(journal))
	f.journalLines = rp.applied + rp.skipped
	if rp.applied == 0 { // the state file already holds every complete line
		err = f.resetJournal()
	} else {
		err = f.compact(false)
	}
	if err != nil {
		return fmt.Errorf("state file %s: the previous run stopped before writing its journal %s into it, and doing so now failed: %w. "+
			"Nothing was lost: the file and its journal are as they were", f.path, f.journalPath(), err), false
	}
	return nil, false
}

func (f *File) backupPath() string { return f.path + ".backup" }

func (f *File) backupAdvice() string {
	if _, err := os.Stat(f.backupPath()); err == nil {
		return fmt.Sprintf("The previous version is in %s: if this file cannot be repaired, compare the two and copy the backup over it (and delete %s, which holds changes on top of the file it replaces).", f.backupPath(), f.journalPath())
	}
	return fmt.Sprintf("There is no backup (%s) to fall back on: repair the file by hand.", f.backupPath())
}

// Path returns the state file's path.
func (f *File) Path() string { return f.path }

// WrittenBy returns the convsync_version recorded in the file when it was
// opened ("" for a new state).
func (f *File) WrittenBy() string { return f.writtenBy }

// State returns a deep copy of the current state, including changes not yet
// saved. It costs time and memory proportional to the whole state: to look at
// a few entries, use Get or View.
func (f *File) State() *State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Clone()
}

// View calls fn with the current state, without copying it. fn must not
// change the state, keep it or anything in it after returning, or call
// another method of f; Updates wait while it runs.
func (f *File) View(fn func(*State)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.state)
}

// Get returns a copy of the resource at addr, or nil.
func (f *File) Get(addr resource.Address) *Resource {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Resources[addr.String()].Clone()
}

// GetPending returns a copy of the create in flight for addr, or nil.
func (f *File) GetPending(addr resource.Address) *Pending {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Pending[addr.String()].Clone()
}

// Lineage returns the state's lineage.
func (f *File) Lineage() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Lineage
}

// Serial returns the state's serial, counting changes made in memory.
func (f *File) Serial() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Serial
}

// Update applies fn to the state. If fn fails, or the result would not be
// readable, nothing changes. If the content changed, the serial goes up by one
// and the change is saved before Update returns: appended to the journal as
// one fsynced line (the state file itself is rewritten only now and then).
// When several goroutines update at once, one write may carry several changes
// (group commit).
//
// fn runs on the live state under a mutex, which is what makes a change cost
// time proportional to itself rather than to the state: fn must read and
// change it through Get, Put, Remove, GetPending, AddPending and
// RemovePending (and change in place only what Get and GetPending returned),
// must not write to the Resources and Pending maps directly, and must not keep
// the *State after returning. Changes that bypass these methods are refused
// where they can be detected.
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
	if f.broken != nil {
		f.mu.Unlock()
		return f.broken
	}
	rec, changed, err := f.change(fn)
	if err != nil || !changed {
		f.mu.Unlock()
		return err
	}
	f.queued = append(f.queued, rec)
	f.mu.Unlock()
	return f.persist(rec.serial)
}

// change runs fn on the live state with a tracker (State.Apply), and either
// keeps the change (returning its journal line) or leaves the state as it
// was. f.mu is held.
func (f *File) change(fn func(*State) error) (rec record, changed bool, err error) {
	s := f.state
	c, err := s.Apply("file "+f.path, fn)
	if isBroken(err) {
		f.broken = err
		return record{}, false, err
	}
	if err != nil {
		return record{}, false, err
	}
	if c.Empty() {
		return record{}, false, nil
	}
	line, err := encodeRecord(s, c.Resources, c.Pending)
	if err != nil {
		c.Undo()
		return record{}, false, fmt.Errorf("refusing to change state file %s: %w", f.path, err)
	}
	return record{serial: s.Serial, line: line}, true, nil
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap[V any](a, b map[string]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// persist makes sure every change up to serial is on disk.
func (f *File) persist(serial uint64) error {
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	if f.savedSerial >= serial {
		return nil // a save that started after our change carried it
	}
	return f.save()
}

// save writes every change made in memory: as journal lines, or by writing
// the whole state file when the journal cannot be trusted to continue.
// f.saveMu is held.
func (f *File) save() error {
	f.mu.Lock()
	f.unsaved = append(f.unsaved, f.queued...)
	f.queued = nil
	f.mu.Unlock()
	if len(f.unsaved) == 0 && !f.mustCompact {
		return nil
	}
	if f.released { // Close could not save this change and gave up the lock
		return f.emergency(errors.New("the file was closed (and its lock released) before this change could be saved"))
	}
	var err error
	if !f.onDisk || f.mustCompact {
		err = f.compact(true)
	} else {
		err = f.appendJournal()
	}
	if err != nil {
		return f.emergency(err)
	}
	if f.journalLines >= f.compactRetryAt && (f.journalLines >= f.opts.CompactEvery || f.journalSize >= 2*max(f.baseSize, 1<<20)) {
		// Every change is on disk already: a failed compaction loses nothing,
		// and the journal simply grows until the next try.
		if err := f.compact(true); err != nil {
			f.compactRetryAt = f.journalLines + f.opts.CompactEvery
			f.opts.Logf("state file %s: could not write it in full (%v); every change is safe in its journal %s, and convsync tries again later", f.path, err, f.journalPath())
		}
	}
	return nil
}

// appendJournal writes the unsaved lines at the end of the journal in one
// write, and fsyncs it. If the journal is not as this File left it (a failed
// write left part of a line, or someone removed it), it writes the whole
// state file instead. f.saveMu is held.
func (f *File) appendJournal() (err error) {
	j, err := os.OpenFile(f.journalPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := j.Close(); err == nil {
			err = cerr
		}
	}()
	info, err := j.Stat()
	if err != nil {
		return err
	}
	if info.Size() != f.journalSize {
		f.mustCompact = true
		return f.compact(true)
	}
	if info.Size() == 0 {
		if err := j.Chmod(0o600); err != nil {
			return err
		}
		f.journalNeedsDir = true
	}
	if err := f.makeBackup(); err != nil {
		return err
	}
	var buf []byte
	if len(f.unsaved) == 1 {
		buf = f.unsaved[0].line
	} else {
		for _, r := range f.unsaved {
			buf = append(buf, r.line...)
		}
	}
	if _, err := j.Write(buf); err != nil {
		return err
	}
	if err := j.Sync(); err != nil {
		return err
	}
	if f.journalNeedsDir {
		if err := syncDir(f.dir()); err != nil {
			return err
		}
		f.journalNeedsDir = false
	}
	f.journalSize += int64(len(buf))
	f.journalLines += len(f.unsaved)
	f.savedSerial = f.unsaved[len(f.unsaved)-1].serial
	f.unsaved = nil
	return nil
}

// compact writes the whole state atomically, then empties the journal. A
// crash in between leaves journal lines the state file already holds, which
// Open skips by their serial. f.saveMu is held; f.mu is taken to encode.
func (f *File) compact(backup bool) error {
	var buf bytes.Buffer
	buf.Grow(int(f.baseSize) + int(f.baseSize)/8)
	f.mu.Lock()
	if f.broken != nil { // never write a state changed behind the tracker's back
		f.mu.Unlock()
		return f.broken
	}
	serial := f.state.Serial
	err := Encode(&buf, f.state, f.opts.ConvsyncVersion)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if backup {
		if err := f.makeBackup(); err != nil {
			return err
		}
	}
	if err := f.writeBase(buf.Bytes()); err != nil {
		if len(f.unsaved) > 0 {
			// This compaction was to carry lines the journal lacks: only a
			// full write can save them.
			f.mustCompact = true
		}
		// Otherwise every change is in the journal, which can go on
		// growing until a later compaction succeeds.
		return err
	}
	f.baseSize = int64(buf.Len())
	f.savedSerial = max(f.savedSerial, serial)
	f.unsaved = dropCovered(f.unsaved, serial)
	f.mu.Lock()
	f.queued = dropCovered(f.queued, serial)
	f.mu.Unlock()
	if err := f.resetJournal(); err != nil {
		f.mustCompact = true // next save writes the file in full again
		return nil           // every change is in the state file: this one is saved
	}
	f.mustCompact = false
	f.compactRetryAt = 0
	return nil
}

// dropCovered removes the lines a state file at serial already holds.
func dropCovered(recs []record, serial uint64) []record {
	i := 0
	for i < len(recs) && recs[i].serial <= serial {
		i++
	}
	if i == len(recs) {
		return nil
	}
	return append([]record(nil), recs[i:]...)
}

// resetJournal empties the journal, if there is one.
func (f *File) resetJournal() error {
	err := os.Truncate(f.journalPath(), 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f.journalSize, f.journalLines = 0, 0
	return nil
}

func (f *File) dir() string {
	dir := filepath.Dir(f.path)
	if dir == "" {
		dir = "."
	}
	return dir
}

// makeBackup keeps the state file as this run found it in path+".backup",
// before the first change of the session reaches the disk.
func (f *File) makeBackup() error {
	if !f.onDisk || f.backedUp {
		return nil
	}
	if err := f.backup(f.dir()); err != nil {
		return fmt.Errorf("keeping the previous version as %s: %w", f.backupPath(), err)
	}
	// A full write would make a file the user left looser private again; the
	// journal leaves the state file in place, so do it here.
	if err := os.Chmod(f.path, 0o600); err != nil {
		return err
	}
	f.backedUp = true
	return nil
}

// writeBase replaces the state file atomically: a temporary file in the same
// folder, fsync, rename over, fsync the folder.
func (f *File) writeBase(data []byte) (err error) {
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
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
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

// emergency puts a copy of the whole state where it can be found: next to the state file,
// then in the system's temporary folder, then on Options.Emergency.
func (f *File) emergency(cause error) error {
	var buf bytes.Buffer
	f.mu.Lock()
	serial := f.state.Serial
	err := Encode(&buf, f.state, f.opts.ConvsyncVersion)
	f.mu.Unlock()
	serr := &SaveError{Path: f.path, Serial: serial, Err: cause}
	if err != nil {
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

// Close saves any change a failed save left behind, writes the journal into
// the state file (so a cleanly closed state is one file again), then releases
// the lock. After Close, Update fails.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	if f.lock == nil {
		return nil
	}
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	err := f.save()
	if err == nil && f.journalSize > 0 {
		if cerr := f.compact(true); cerr != nil {
			// Nothing is lost: the next Open replays the journal.
			f.opts.Logf("state file %s: could not write it in full on close (%v); every change is safe in its journal %s", f.path, cerr, f.journalPath())
		}
	}
	f.released = true
	if lerr := f.lock.release(); err == nil && lerr != nil {
		err = fmt.Errorf("releasing the lock on state file %s: %w", f.path, lerr)
	}
	return err
}
