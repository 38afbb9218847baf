package state

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFailedCompactionDoesNotBlockLaterChanges makes the full state file
// impossible to write (a file-size limit, which works as root too) while
// journal lines still fit: every change must keep being saved, and the
// compaction is tried again later.
func TestFailedCompactionDoesNotBlockLaterChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	var logs []string
	f, err := Open(path, Options{CompactEvery: 5, Logf: func(format string, a ...any) { logs = append(logs, fmt.Sprintf(format, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mustUpdate(t, f, func(s *State) error {
		for i := range 500 {
			s.Put(testConversation(fmt.Sprintf("c%d", i), i+10))
		}
		return nil
	})
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 100 << 10, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old) //nolint:errcheck // best effort
	for i := range 12 {
		if err := f.Update(func(s *State) error {
			r := s.Get(conversationAddr("c1"))
			r.Applied["friendly_name"] = fmt.Sprint("n", i)
			return nil
		}); err != nil {
			t.Fatalf("update %d after a failed compaction: %v", i, err)
		}
	}
	if !strings.Contains(strings.Join(logs, "\n"), "tries again later") {
		t.Fatalf("the failed compaction was not reported: %q", logs)
	}
}
