package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

func openTest(t *testing.T, path string, opts Options) *File {
	t.Helper()
	f, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// readSaved returns what is on disk for the state at path: the state file and
// its journal.
func readSaved(t *testing.T, path string) string {
	t.Helper()
	journal, err := os.ReadFile(path + ".journal")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return readFile(t, path) + "\n--- journal ---\n" + string(journal)
}

func TestOpenMissingFileGivesEmptyStateAndWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	f := openTest(t, path, Options{})
	s := f.State()
	if len(s.Resources) != 0 || len(s.Pending) != 0 || s.Serial != 0 {
		t.Errorf("new state is not empty: %+v", s)
	}
	if len(s.Lineage) != 36 || s.Lineage[14] != '4' {
		t.Errorf("lineage %q is not a version 4 UUID", s.Lineage)
	}
	mustUpdate(t, f, func(*State) error { return nil })
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file was written without a change: %v", err)
	}
}

func TestUpdateBumpsSerialOnlyOnChange(t *testing.T) {
	vip := testConversation("vip", 2)
	tests := []struct {
		name       string
		fn         func(*State) error
		wantErr    string
		wantSerial uint64 // starting from 1 (one resource saved)
	}{
		{"nothing", func(*State) error { return nil }, "", 1},
		{"put an equal resource", func(s *State) error { s.Put(vip.Clone()); return nil }, "", 1},
		{"same time in another zone", func(s *State) error {
			s.Get(vip.Address).CreatedAt = testTime.In(time.FixedZone("x", 3600))
			return nil
		}, "", 1},
		{"remove a missing resource", func(s *State) error { s.Remove(conversationAddr("nope")); return nil }, "", 1},
		{"change a field", func(s *State) error { s.Get(vip.Address).Applied[resource.FieldTimersInactive] = "PT2H"; return nil }, "", 2},
		{"remove the resource", func(s *State) error { s.Remove(vip.Address); return nil }, "", 2},
		{"add a pending create", func(s *State) error {
			s.AddPending(&Pending{Address: conversationAddr("new"), StartedAt: testTime})
			return nil
		}, "", 2},
		{"change then fail", func(s *State) error { s.Remove(vip.Address); return errors.New("boom") }, "boom", 1},
		{"invalid sid", func(s *State) error { s.Get(vip.Address).SID = "CH123"; return nil }, `sid "CH123" is not a Conversation SID`, 1},
		{"unknown field", func(s *State) error { s.Get(vip.Address).Applied["colour"] = "red"; return nil }, `field "colour" is not a Conversation field`, 1},
		{"set the serial", func(s *State) error { s.Serial = 99; return nil }, "serial is managed by the state file", 1},
		{"set the lineage", func(s *State) error { s.Lineage = "other"; return nil }, "lineage cannot change", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), DefaultPath)
			f := openTest(t, path, Options{})
			mustUpdate(t, f, func(s *State) error { s.Put(vip.Clone()); return nil })
			before := readSaved(t, path)

			err := f.Update(tt.fn)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Update error = %v, want %q", err, tt.wantErr)
			}
			if f.Serial() != tt.wantSerial {
				t.Errorf("serial = %d, want %d", f.Serial(), tt.wantSerial)
			}
			after := readSaved(t, path)
			if changed := after != before; changed != (tt.wantSerial == 2) {
				t.Errorf("saved state changed = %v, want %v", changed, tt.wantSerial == 2)
			}
			if tt.wantSerial == 1 && !f.State().Get(vip.Address).Equal(vip) {
				t.Errorf("a refused or empty update changed the state: %+v", f.State().Get(vip.Address))
			}
		})
	}
}

func TestStateSurvivesReopenWithStableLineage(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	f := openTest(t, path, Options{ConvsyncVersion: "1.2.3"})
	lineage := f.Lineage()
	want := testState()
	mustUpdate(t, f, func(s *State) error {
		for _, k := range want.Addresses() {
			s.Put(want.Get(k).Clone())
		}
		for _, k := range want.PendingAddresses() {
			s.AddPending(want.GetPending(k).Clone())
		}
		return nil
	})
	mustUpdate(t, f, func(s *State) error { s.RemovePending(conversationAddr("new-customer")); return nil })
	want.RemovePending(conversationAddr("new-customer"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	again := openTest(t, path, Options{})
	got := again.State()
	want.Lineage = lineage
	if got.Lineage != lineage || got.Serial != 2 || !got.SameContent(want) || again.WrittenBy() != "1.2.3" {
		t.Errorf("reopened state: lineage %s serial %d written by %q\n%+v\nwant lineage %s serial 2\n%+v",
			got.Lineage, got.Serial, again.WrittenBy(), got, lineage, want)
	}
	mustUpdate(t, again, func(s *State) error { s.Remove(serviceAddr("support")); return nil })
	if again.Lineage() != lineage || again.Serial() != 3 {
		t.Errorf("after another change: lineage %s serial %d, want %s and 3", again.Lineage(), again.Serial(), lineage)
	}
}

func TestStateReturnsAnIndependentCopy(t *testing.T) {
	f := openTest(t, filepath.Join(t.TempDir(), DefaultPath), Options{})
	mustUpdate(t, f, func(s *State) error { s.Put(testConversation("vip", 2)); return nil })
	snap := f.State()
	snap.Get(conversationAddr("vip")).Applied[resource.FieldState] = resource.StateClosed
	snap.Remove(conversationAddr("vip"))
	if r := f.State().Get(conversationAddr("vip")); r == nil || r.Applied[resource.FieldState] != resource.StateActive {
		t.Errorf("changing a snapshot changed the file's state: %+v", r)
	}
}

func TestFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultPath)
	// A file a user created with looser permissions is tightened by the first save.
	if err := os.WriteFile(path, []byte(encodeString(t, testState())), 0o644); err != nil {
		t.Fatal(err)
	}
	f := openTest(t, path, Options{})
	mustUpdate(t, f, func(s *State) error { s.Remove(serviceAddr("support")); return nil })
	for _, name := range []string{path, path + ".lock", path + ".journal"} {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, info.Mode().Perm())
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestBackupHoldsTheFileAsThisRunFoundIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	first := openTest(t, path, Options{})
	mustUpdate(t, first, func(s *State) error { s.Put(testConversation("a", 1)); return nil })
	if _, err := os.Stat(path + ".backup"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a backup was made of a file that did not exist: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	asFound := readFile(t, path)

	second := openTest(t, path, Options{})
	for i := 2; i <= 4; i++ {
		mustUpdate(t, second, func(s *State) error { s.Put(testConversation(fmt.Sprint("c", i), i)); return nil })
	}
	if got := readFile(t, path+".backup"); got != asFound {
		t.Errorf("backup is not the file as this run opened it:\n%s\nwant\n%s", got, asFound)
	}
	info, err := os.Stat(path + ".backup")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("backup mode: %v %v", info, err)
	}
	if s := second.State(); s.Serial != 4 || len(s.Resources) != 4 {
		t.Errorf("state after updates: serial %d with %d resources, want 4 and 4", s.Serial, len(s.Resources))
	}
}

func TestOpenRefusesUnreadableFileAndChangesNothing(t *testing.T) {
	valid := encodeString(t, testState())
	tests := []struct {
		name       string
		text       string
		withBackup bool
		want       []string
	}{
		{"truncated, no backup", valid[:200], false, []string{"line 7, column", "truncated", "Nothing was changed", "There is no backup"}},
		{"truncated, with backup", valid[:200], true, []string{"line 7, column", "Nothing was changed", "The previous version is in %s.backup"}},
		{"unknown field", strings.Replace(valid, `"serial"`, `"serials"`, 1), true, []string{"line 4, column 3", `unknown field "serials"`, "%s.backup"}},
		{"newer format", `{"version": 3, "whatever": []}`, true, []string{"state file %s was written by a newer convsync (state format 3); this convsync reads format 2 at most: upgrade convsync"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, DefaultPath)
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.withBackup {
				if err := os.WriteFile(path+".backup", []byte(valid), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.ReadDir(dir)
			for _, readOnly := range []bool{false, true} {
				f, err := Open(path, Options{ReadOnly: readOnly})
				if err == nil {
					f.Close()
					t.Fatal("Open accepted the file")
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error does not name the file: %v", err)
				}
				for _, w := range tt.want {
					if w = strings.ReplaceAll(w, "%s", path); !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\ndoes not contain %q", err, w)
					}
				}
			}
			if got := readFile(t, path); got != tt.text {
				t.Error("the file was changed")
			}
			after, _ := os.ReadDir(dir)
			if len(after) > len(before)+1 { // the lock file may appear, nothing else
				t.Errorf("files appeared: %v -> %v", before, after)
			}
			// The failed Open released its lock: trying again is not blocked by it.
			var lerr *LockedError
			if _, err := Open(path, Options{}); errors.As(err, &lerr) {
				t.Errorf("a failed Open kept the lock: %v", err)
			}
		})
	}
}

func TestReadOnlyTakesNoLockAndRefusesChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	writer := openTest(t, path, Options{Holder: "convsync apply"})
	mustUpdate(t, writer, func(s *State) error { s.Put(testConversation("vip", 2)); return nil })

	reader := openTest(t, path, Options{ReadOnly: true})
	if reader.State().Get(conversationAddr("vip")) == nil {
		t.Error("read-only open does not see the saved state")
	}
	err := reader.Update(func(s *State) error { s.Remove(conversationAddr("vip")); return nil })
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("read-only Update: %v", err)
	}
}

func TestLockContentionInOneProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	holder := openTest(t, path, Options{Holder: "convsync apply"})

	_, err := Open(path, Options{Holder: "convsync plan"})
	var lerr *LockedError
	if !errors.As(err, &lerr) {
		t.Fatalf("second Open: want *LockedError, got %v", err)
	}
	host, _ := os.Hostname()
	for _, want := range []string{path, path + ".lock", fmt.Sprintf("pid %d on host %s", os.Getpid(), host), `"convsync apply"`, "since 20"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lock error %q\ndoes not contain %q", err, want)
		}
	}

	// A waiter gets the lock once the holder closes.
	busy := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		f, err := Open(path, Options{LockTimeout: time.Hour, onLockBusy: func() {
			select {
			case busy <- struct{}{}:
			default:
			}
		}})
		if err == nil {
			err = f.Close()
		}
		done <- err
	}()
	<-busy
	if err := holder.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("waiting Open: %v", err)
	}
}

// TestLockHelperProcess is not a test: TestLockContentionBetweenProcesses runs the
// test binary again with this env var set, to hold the lock from another process.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv("CONVSYNC_STATE_LOCK_HELPER")
	if path == "" {
		return
	}
	f, err := Open(path, Options{Holder: "helper apply"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = os.Stdin.Read(make([]byte, 1)) // hold until told (or killed)
	f.Close()
	os.Exit(0)
}

func TestLockContentionBetweenProcesses(t *testing.T) {
	for _, ending := range []string{"close", "crash"} {
		t.Run(ending, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), DefaultPath)
			helper, tell := startLockHelper(t, path)

			_, err := Open(path, Options{})
			var lerr *LockedError
			if !errors.As(err, &lerr) || lerr.Holder == nil || lerr.Holder.PID != helper.Process.Pid || lerr.Holder.Command != "helper apply" {
				t.Fatalf("Open while another process holds the lock: %v", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", helper.Process.Pid)) {
				t.Errorf("error does not name the holder's pid: %v", err)
			}

			busy := make(chan struct{}, 1)
			done := make(chan error, 1)
			go func() {
				f, err := Open(path, Options{LockTimeout: time.Hour, onLockBusy: func() {
					select {
					case busy <- struct{}{}:
					default:
					}
				}})
				if err == nil {
					err = f.Close()
				}
				done <- err
			}()
			<-busy
			if ending == "close" {
				tell.Close()
			} else {
				_ = helper.Process.Kill() // the kernel drops a dead process's flock
			}
			_ = helper.Wait()
			if err := <-done; err != nil {
				t.Errorf("Open after the holder's %s: %v", ending, err)
			}
		})
	}
}

func TestSaveFailureWritesAnEmergencyCopy(t *testing.T) {
	tests := []struct {
		name      string
		tempDir   func(t *testing.T) string // TMPDIR for the test
		emergency bool                      // pass an Options.Emergency writer
		want      string                    // where the copy must be
	}{
		{"to the system temp dir", func(t *testing.T) string { return t.TempDir() }, true, "tempdir"},
		{"to the emergency output", func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing") }, true, "output"},
		{"nowhere", func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing") }, false, "nowhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := tt.tempDir(t)
			t.Setenv("TMPDIR", tmp)
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, DefaultPath)
			var out bytes.Buffer
			opts := Options{}
			if tt.emergency {
				opts.Emergency = &out
			}
			f, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			mustUpdate(t, f, func(s *State) error { s.Put(testConversation("a", 1)); return nil })

			// A real failure, not a simulated one (root ignores permissions): the
			// folder is gone, so neither the state nor a file next to it can be written.
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			err = f.Update(func(s *State) error { s.Put(testConversation("b", 2)); return nil })
			var serr *SaveError
			if !errors.As(err, &serr) {
				t.Fatalf("Update: want *SaveError, got %v", err)
			}
			if !strings.Contains(err.Error(), "could not save state file "+path) || !strings.Contains(err.Error(), "kept in memory") {
				t.Errorf("error does not say what failed: %v", err)
			}
			if got := f.State(); got.Serial != 2 || got.Get(conversationAddr("b")) == nil {
				t.Errorf("in-memory state lost the change: serial %d", got.Serial)
			}

			var copyText string
			switch tt.want {
			case "tempdir":
				matches, _ := filepath.Glob(filepath.Join(tmp, DefaultPath+".emergency-*"))
				if len(matches) != 1 || serr.EmergencyPath != matches[0] || !strings.Contains(err.Error(), "written to "+matches[0]) {
					t.Fatalf("emergency files %v; error: %v", matches, err)
				}
				if info, _ := os.Stat(matches[0]); info.Mode().Perm() != 0o600 {
					t.Errorf("emergency copy has mode %v", info.Mode().Perm())
				}
				copyText = readFile(t, matches[0])
			case "output":
				if !serr.EmergencyOutput || !strings.Contains(err.Error(), "printed to the emergency output") {
					t.Fatalf("error does not say the copy went to the emergency output: %v", err)
				}
				_, rest, _ := strings.Cut(out.String(), "-----BEGIN CONVSYNC STATE-----\n")
				copyText, _, _ = strings.Cut(rest, "-----END CONVSYNC STATE-----")
			case "nowhere":
				if serr.EmergencyPath != "" || serr.EmergencyOutput || !strings.Contains(err.Error(), "no emergency copy could be written anywhere") {
					t.Fatalf("error: %v", err)
				}
				return
			}
			saved, _, derr := Decode([]byte(copyText))
			if derr != nil || saved.Serial != 2 || saved.Get(conversationAddr("b")) == nil || saved.Lineage != f.Lineage() {
				t.Errorf("emergency copy is not the current state (%v):\n%s", derr, copyText)
			}
		})
	}
}

func TestCloseSavesWhatAFailedSaveLeftInMemory(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, DefaultPath)
	f, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := f.Update(func(s *State) error { s.Put(testConversation("a", 1)); return nil }); err == nil {
		t.Fatal("Update succeeded with the folder gone")
	}
	if err := os.Mkdir(dir, 0o700); err != nil { // the operator fixes the problem
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, _, err := Decode([]byte(readFile(t, path)))
	if err != nil || s.Serial != 1 || s.Get(conversationAddr("a")) == nil {
		t.Errorf("Close did not save the state kept in memory: %v %+v", err, s)
	}
}

func TestConcurrentUpdates(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	f := openTest(t, path, Options{})
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := w*each + i + 1
				addr := conversationAddr(fmt.Sprint("c", n))
				errs <- f.Update(func(s *State) error {
					s.AddPending(&Pending{Address: addr, ParentSID: testServiceSID, StartedAt: testTime})
					return nil
				})
				errs <- f.Update(func(s *State) error {
					s.RemovePending(addr)
					s.Put(testConversation(addr.Name, n))
					return nil
				})
				_ = f.State() // readers run alongside
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	s, _, err := Decode([]byte(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Resources) != workers*each || len(s.Pending) != 0 || s.Serial != 2*workers*each {
		t.Errorf("saved %d resources, %d pending, serial %d; want %d, 0, %d", len(s.Resources), len(s.Pending), s.Serial, workers*each, 2*workers*each)
	}
}

func TestStateFileThroughASymlinkWritesAndLocksTheTarget(t *testing.T) {
	tests := []struct {
		name   string
		link   func(dir string) string // the link's content
		exists bool                    // the target exists before the first Open
	}{
		{"relative link", func(string) string { return filepath.Join("real", "s.json") }, true},
		{"absolute link", func(dir string) string { return filepath.Join(dir, "real", "s.json") }, true},
		{"link to a file not created yet", func(string) string { return filepath.Join("real", "s.json") }, false},
		{"link to a link", func(dir string) string {
			if err := os.Symlink("s.json", filepath.Join(dir, "real", "middle.json")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join("real", "middle.json")
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "real"), 0o700); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "real", "s.json")
			link := filepath.Join(dir, "s.json")
			if tt.exists {
				f := openTest(t, target, Options{})
				mustUpdate(t, f, func(s *State) error { s.Put(testConversation("a", 1)); return nil })
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(tt.link(dir), link); err != nil {
				t.Fatal(err)
			}

			viaLink := openTest(t, link, Options{Holder: "convsync apply"})
			if viaLink.Path() != target {
				t.Errorf("Path() = %s, want the link's target %s", viaLink.Path(), target)
			}
			// The lock protects the file really written: opening the target
			// while the link is open waits for the same lock.
			_, err := Open(target, Options{Holder: "convsync plan"})
			var lerr *LockedError
			if !errors.As(err, &lerr) {
				t.Fatalf("Open of the target while its link is open: want *LockedError, got %v", err)
			}
			mustUpdate(t, viaLink, func(s *State) error { s.Put(testConversation("b", 2)); return nil })
			if err := viaLink.Close(); err != nil {
				t.Fatal(err)
			}

			if info, err := os.Lstat(link); err != nil || info.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("the link was replaced: %v %v", info, err)
			}
			reread := openTest(t, target, Options{ReadOnly: true})
			if reread.State().Get(conversationAddr("b")) == nil {
				t.Error("the target does not hold the change made through the link")
			}
			if tt.exists {
				info, err := os.Lstat(target + ".backup")
				if err != nil || !info.Mode().IsRegular() {
					t.Errorf("backup beside the target is not a regular file: %v %v", info, err)
				}
			}
			if _, err := os.Lstat(target + ".lock"); err != nil {
				t.Errorf("no lock beside the target: %v", err)
			}
			for _, beside := range []string{".lock", ".backup", ".journal"} {
				if _, err := os.Lstat(link + beside); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s appeared beside the link: %v", beside, err)
				}
			}
		})
	}
}

func TestStateFileSymlinkLoopIsRefused(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	if err := os.Symlink(b, a); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a, b); err != nil {
		t.Fatal(err)
	}
	_, err := Open(a, Options{})
	if err == nil || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), "loop") {
		t.Errorf("Open of a link loop: %v", err)
	}
}
