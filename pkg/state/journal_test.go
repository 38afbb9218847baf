package state

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

// copyImage copies the state file and journal at from to a fresh folder, as a
// crash at this instant would leave them on disk (every Update that returned
// has fsynced its change), and returns the copy's path.
func copyImage(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), DefaultPath)
	for _, suffix := range []string{"", ".journal"} {
		data, err := os.ReadFile(from + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// logCapture collects Options.Logf messages.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCapture) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestChangesSurviveACrashBeforeCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	f := openTest(t, path, Options{CompactEvery: 1000})
	mustUpdate(t, f, func(s *State) error { s.Put(testConversation("a", 1)); return nil }) // first change writes the file
	baseAfterFirst := readFile(t, path)
	mustUpdate(t, f, func(s *State) error { s.Put(testConversation("b", 2)); return nil })
	mustUpdate(t, f, func(s *State) error {
		s.Get(conversationAddr("a")).Applied[resource.FieldState] = resource.StateClosed
		return nil
	})
	mustUpdate(t, f, func(s *State) error { s.Remove(conversationAddr("b")); return nil })
	mustUpdate(t, f, func(s *State) error {
		s.AddPending(&Pending{Address: conversationAddr("c"), ParentSID: testServiceSID, StartedAt: testTime})
		return nil
	})
	if got := readFile(t, path); got != baseAfterFirst {
		t.Fatal("the state file was rewritten for changes the journal should carry")
	}
	want := f.State()

	crashed := copyImage(t, path) // the process dies here: no Close
	for _, readOnly := range []bool{true, false} {
		again := openTest(t, crashed, Options{ReadOnly: readOnly})
		got := again.State()
		if got.Serial != 5 || got.Lineage != want.Lineage || !got.SameContent(want) {
			t.Errorf("read-only %v: after the crash: serial %d, %d resources, %d pending; want serial 5 and\n%+v", readOnly, got.Serial, len(got.Resources), len(got.Pending), want)
		}
		if got.Get(conversationAddr("a")).Applied[resource.FieldState] != resource.StateClosed {
			t.Errorf("read-only %v: an in-place change was lost", readOnly)
		}
		if !readOnly {
			// The writer wrote the journal into the state file; the journal is empty.
			s, _, err := Decode([]byte(readFile(t, crashed)))
			if err != nil || s.Serial != 5 || !s.SameContent(want) {
				t.Errorf("state file after recovery: serial %v, err %v", s, err)
			}
			if j := readFile(t, crashed+".journal"); j != "" {
				t.Errorf("journal not emptied after recovery: %q", j)
			}
			// This run's backup is the state as it found it: with the crashed run's changes.
			mustUpdate(t, again, func(s *State) error { s.Remove(conversationAddr("a")); return nil })
			b, _, err := Decode([]byte(readFile(t, crashed+".backup")))
			if err != nil || b.Serial != 5 || !b.SameContent(want) {
				t.Errorf("backup after recovery is not the state as found: %+v %v", b, err)
			}
		}
		again.Close()
	}
}

func TestCrashBetweenCompactionAndEmptyingTheJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	f := openTest(t, path, Options{CompactEvery: 1000})
	for i := 1; i <= 4; i++ {
		mustUpdate(t, f, func(s *State) error { s.Put(testConversation(fmt.Sprint("c", i), i)); return nil })
	}
	journal := readFile(t, path+".journal") // lines for serials 2..4
	want := f.State()
	if err := f.Close(); err != nil { // writes the state file at serial 4
		t.Fatal(err)
	}
	// The crash came after the rename but before the journal was emptied.
	if err := os.WriteFile(path+".journal", []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	again := openTest(t, path, Options{})
	if got := again.State(); got.Serial != 4 || !got.SameContent(want) {
		t.Errorf("lines the state file already holds were applied again: serial %d, %d resources", got.Serial, len(got.Resources))
	}
	mustUpdate(t, again, func(s *State) error { s.Remove(conversationAddr("c1")); return nil })
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	final := openTest(t, path, Options{ReadOnly: true})
	if got := final.State(); got.Serial != 5 || len(got.Resources) != 3 {
		t.Errorf("after one more change: serial %d, %d resources; want 5 and 3", got.Serial, len(got.Resources))
	}
}

func TestTornLastJournalLineIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	f := openTest(t, path, Options{CompactEvery: 1000})
	mustUpdate(t, f, func(s *State) error { s.Put(testConversation("a", 1)); return nil })
	mustUpdate(t, f, func(s *State) error { s.Put(testConversation("b", 2)); return nil })
	want := f.State()
	mustUpdate(t, f, func(s *State) error { s.Put(testConversation("c", 3)); return nil })
	full := readFile(t, path+".journal")
	lines := strings.SplitAfter(full, "\n")
	lastLine := lines[len(lines)-2]

	for _, cut := range []int{1, len(lastLine) / 2, len(lastLine) - 1} { // the newline never made it
		t.Run(fmt.Sprint("cut at ", cut), func(t *testing.T) {
			crashed := copyImage(t, path)
			torn := strings.TrimSuffix(full, lastLine) + lastLine[:cut]
			if err := os.WriteFile(crashed+".journal", []byte(torn), 0o600); err != nil {
				t.Fatal(err)
			}
			reader := openTest(t, crashed, Options{ReadOnly: true})
			if got := reader.State(); got.Serial != 2 || !got.SameContent(want) {
				t.Errorf("read-only open: serial %d, want the state before the torn line (2)", got.Serial)
			}
			var logs logCapture
			writer := openTest(t, crashed, Options{Logf: logs.logf})
			if got := writer.State(); got.Serial != 2 || !got.SameContent(want) {
				t.Errorf("writer open: serial %d, want 2", got.Serial)
			}
			if !strings.Contains(logs.String(), crashed+".journal") || !strings.Contains(logs.String(), "incomplete last line") {
				t.Errorf("the torn line was not logged: %q", logs.String())
			}
			// The writer can go on: its next change is readable after it.
			mustUpdate(t, writer, func(s *State) error { s.Put(testConversation("d", 4)); return nil })
			crashedAgain := copyImage(t, crashed)
			again := openTest(t, crashedAgain, Options{ReadOnly: true})
			if got := again.State(); got.Serial != 3 || got.Get(conversationAddr("d")) == nil || got.Get(conversationAddr("c")) != nil {
				t.Errorf("after the torn line, a new change: serial %d, resources %v", got.Serial, got.Addresses())
			}
		})
	}
}

func TestOpenRefusesABrokenJournalAndChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	f := openTest(t, path, Options{CompactEvery: 1000})
	for i := 1; i <= 4; i++ {
		mustUpdate(t, f, func(s *State) error { s.Put(testConversation(fmt.Sprint("c", i), i)); return nil })
	}
	journal := readFile(t, path+".journal")
	lines := strings.SplitAfter(journal, "\n") // serials 2, 3, 4, then ""
	otherLineage := strings.ReplaceAll(journal, f.Lineage(), NewLineage())

	tests := []struct {
		name    string
		journal string
		base    bool // keep the state file
		want    []string
	}{
		{"corrupt line in the middle", lines[0] + `{"lineage": "x", "ser` + "\n" + lines[2], true,
			[]string{".journal", "line 2", "not a complete JSON line", "Nothing was changed"}},
		{"unknown field", lines[0] + strings.Replace(lines[1], `"serial"`, `"colour":1,"serial"`, 1), true,
			[]string{"line 2", `unknown field "colour"`}},
		{"invalid sid", lines[0] + strings.Replace(lines[1], `"sid":"CH`, `"sid":"XX`, 1), true,
			[]string{"line 2", "put[0]", "is not a Conversation SID"}},
		{"a line is missing", lines[0] + lines[2], true,
			[]string{"line 2", "serial 4 follows serial 2: lines are missing"}},
		{"the state file was replaced by an older one", lines[1] + lines[2], true,
			[]string{"line 1", "the journal continues from serial 3, but the state file is at serial 1", "changes 2 to 2 are missing"}},
		{"another state's journal", otherLineage, true,
			[]string{"line 1", "belongs to another state"}},
		{"journal without its state file", journal, false,
			[]string{"is missing, but its journal", "holds changes", "Nothing was changed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crashed := filepath.Join(t.TempDir(), DefaultPath)
			if tt.base {
				// The state file as of serial 1: the journal goes on from there.
				crashed = copyImage(t, path)
			}
			if err := os.WriteFile(crashed+".journal", []byte(tt.journal), 0o600); err != nil {
				t.Fatal(err)
			}
			var before string
			if tt.base {
				before = readSaved(t, crashed)
			}
			for _, readOnly := range []bool{false, true} {
				g, err := Open(crashed, Options{ReadOnly: readOnly})
				if err == nil {
					g.Close()
					t.Fatalf("read-only %v: Open accepted the journal", readOnly)
				}
				if !strings.Contains(err.Error(), crashed) {
					t.Errorf("error does not name the file: %v", err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\ndoes not contain %q", err, w)
					}
				}
			}
			if tt.base && readSaved(t, crashed) != before {
				t.Error("a refused Open changed the files")
			}
		})
	}
}

func TestJournalIsCompactedEveryNChangesAndOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	f := openTest(t, path, Options{CompactEvery: 3})
	for i := 1; i <= 7; i++ {
		mustUpdate(t, f, func(s *State) error { s.Put(testConversation(fmt.Sprint("c", i), i)); return nil })
	}
	// Serial 1 wrote the file; 2-4 went to the journal and were compacted at
	// 4; 5-7 likewise at 7.
	s, _, err := Decode([]byte(readFile(t, path)))
	if err != nil || s.Serial != 7 {
		t.Fatalf("state file after 7 changes with CompactEvery 3: %v %v", s, err)
	}
	mustUpdate(t, f, func(s *State) error { s.Remove(conversationAddr("c1")); return nil })
	if n := strings.Count(readFile(t, path+".journal"), "\n"); n != 1 {
		t.Errorf("journal holds %d lines, want 1", n)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if j := readFile(t, path+".journal"); j != "" {
		t.Errorf("journal not emptied by Close: %q", j)
	}
	s, _, err = Decode([]byte(readFile(t, path)))
	if err != nil || s.Serial != 8 || len(s.Resources) != 6 {
		t.Errorf("state file after Close: %v %v", s, err)
	}
}

func TestAJournalChangedBehindTheFilesBackIsNotAppendedTo(t *testing.T) {
	for _, how := range []string{"removed", "garbage appended"} {
		t.Run(how, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), DefaultPath)
			f := openTest(t, path, Options{CompactEvery: 1000})
			mustUpdate(t, f, func(s *State) error { s.Put(testConversation("a", 1)); return nil })
			mustUpdate(t, f, func(s *State) error { s.Put(testConversation("b", 2)); return nil })
			var err error
			if how == "removed" {
				err = os.Remove(path + ".journal")
			} else {
				var j *os.File
				if j, err = os.OpenFile(path+".journal", os.O_WRONLY|os.O_APPEND, 0); err == nil {
					_, err = j.WriteString(`{"lineage":"half a li`)
					j.Close()
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			mustUpdate(t, f, func(s *State) error { s.Put(testConversation("c", 3)); return nil })
			// Crash now: no change may be missing, and the files must be readable.
			crashed := copyImage(t, path)
			got := openTest(t, crashed, Options{ReadOnly: true}).State()
			if got.Serial != 3 || len(got.Resources) != 3 {
				t.Errorf("after the journal was %s: serial %d with %v", how, got.Serial, got.Addresses())
			}
		})
	}
}

func TestUpdateRefusesChangesThatBypassTheTracker(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	f := openTest(t, path, Options{})
	mustUpdate(t, f, func(s *State) error { s.Put(testConversation("a", 1)); return nil })
	mustUpdate(t, f, func(s *State) error { s.Put(testConversation("c", 3)); return nil }) // in the journal
	err := f.Update(func(s *State) error {
		s.Resources["conversation.b"] = testConversation("b", 2)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "directly") {
		t.Fatalf("a direct map write was accepted: %v", err)
	}
	if err := f.Update(func(s *State) error { return nil }); err == nil {
		t.Error("further updates are accepted after the state in memory was changed behind the file's back")
	}
	if f.Serial() != 2 {
		t.Errorf("serial moved to %d", f.Serial())
	}
	_ = f.Close() // must not write the untrusted state
	again := openTest(t, path, Options{ReadOnly: true}).State()
	if again.Serial != 2 || len(again.Resources) != 2 || again.Get(conversationAddr("b")) != nil {
		t.Errorf("what was saved before is not intact: serial %d, %v", again.Serial, again.Addresses())
	}
}

func TestViewAndGetReadWithoutCopyingTheState(t *testing.T) {
	f := openTest(t, filepath.Join(t.TempDir(), DefaultPath), Options{})
	mustUpdate(t, f, func(s *State) error {
		s.Put(testConversation("vip", 2))
		s.AddPending(&Pending{Address: conversationAddr("new"), ParentSID: testServiceSID, StartedAt: testTime})
		return nil
	})
	var sids []string
	f.View(func(s *State) {
		for _, r := range s.Resources {
			sids = append(sids, r.SID)
		}
	})
	if len(sids) != 1 || sids[0] != sid("CH", 2) {
		t.Errorf("View saw %v", sids)
	}
	r := f.Get(conversationAddr("vip"))
	r.Applied[resource.FieldState] = resource.StateClosed
	if f.Get(conversationAddr("vip")).Applied[resource.FieldState] != resource.StateActive {
		t.Error("changing what Get returned changed the state")
	}
	if f.Get(conversationAddr("nope")) != nil || f.GetPending(conversationAddr("new")) == nil {
		t.Error("Get/GetPending disagree with the state")
	}
}

// TestCrashHelperProcess is not a test: TestKillAtAnyInstantLosesNoSavedChange
// runs the test binary again with this env var set. It makes changes forever,
// printing the serial of each one whose Update returned, until it is killed.
func TestCrashHelperProcess(t *testing.T) {
	path := os.Getenv("CONVSYNC_STATE_CRASH_HELPER")
	if path == "" {
		return
	}
	f, err := Open(path, Options{Holder: "crash helper", CompactEvery: 5, Logf: func(string, ...any) {}})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for serial := f.Serial() + 1; ; serial++ {
		if err := f.Update(func(s *State) error { crashStep(s, serial); return nil }); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("saved", f.Serial())
	}
}

// crashStep is change number serial of the crash helper. Replaying steps 1..n
// on an empty state gives the state at serial n.
func crashStep(s *State, serial uint64) {
	n := int(serial)
	switch {
	case serial == 1: // a first change big enough that compaction takes a while
		for i := range 2000 {
			s.Put(testConversation(fmt.Sprint("seed-", i), 1_000_000+i))
		}
	case n%3 == 0:
		s.AddPending(&Pending{Address: conversationAddr(fmt.Sprint("c", n)), ParentSID: testServiceSID, StartedAt: testTime})
	case n%3 == 1:
		s.RemovePending(conversationAddr(fmt.Sprint("c", n-1)))
		s.Put(testConversation(fmt.Sprint("c", n-1), n))
	default:
		s.Get(conversationAddr(fmt.Sprint("seed-", n%2000))).Applied[resource.FieldFriendlyName] = fmt.Sprint("renamed at ", n)
	}
}

func TestKillAtAnyInstantLosesNoSavedChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultPath)
	// Each round lets the helper save some changes, kills it (SIGKILL) in the
	// middle of whatever it is doing (a journal append, a compaction), then
	// checks the files against the changes it reported as saved.
	for round, after := range []int{1, 3, 8, 4, 13, 6, 21} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CONVSYNC_STATE_CRASH_HELPER="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		var acked uint64
		for i := 0; i < after && lines.Scan(); i++ {
			serial, err := strconv.ParseUint(strings.TrimPrefix(lines.Text(), "saved "), 10, 64)
			if err != nil {
				t.Fatalf("round %d: helper said %q", round, lines.Text())
			}
			acked = serial
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if acked == 0 {
			t.Fatalf("round %d: the helper saved nothing", round)
		}

		f, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("round %d: Open after the kill: %v", round, err)
		}
		got := f.State()
		f.Close()
		if got.Serial < acked {
			t.Fatalf("round %d: serial %d after the kill, but the helper had saved serial %d", round, got.Serial, acked)
		}
		want := New()
		for serial := uint64(1); serial <= got.Serial; serial++ {
			crashStep(want, serial)
		}
		if !got.SameContent(&State{Lineage: got.Lineage, Resources: want.Resources, Pending: want.Pending}) {
			t.Fatalf("round %d: the state at serial %d is not what its changes make", round, got.Serial)
		}
	}
}
