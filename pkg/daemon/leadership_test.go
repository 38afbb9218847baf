package daemon

import (
	"testing"

	"github.com/convsync/convsync/pkg/leader"
)

// A stand-by is ready without specs or the state lock (it serves its
// purpose by waiting), unless it cannot reach the state; a leader is judged
// as a daemon with a state file is.
func TestStandbyReadiness(t *testing.T) {
	for _, tc := range []struct {
		name      string
		role      string
		lastError string
		loaded    bool
		wantReady bool
	}{
		{"a stand-by with no specs loaded is ready", "standby", "", false, true},
		{"a stand-by that cannot reach the state is not", "standby", "connection refused", false, false},
		{"a leader with no specs loaded is not", "leader", "", false, false},
		{"a leader with specs loaded is", "leader", "", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Status{Leadership: &leader.Status{Role: tc.role, LastError: tc.lastError}}
			s.Specs.Loaded = tc.loaded
			s.State.LockHeld = tc.role == "leader"
			s.evaluate()
			if s.Ready != tc.wantReady {
				t.Fatalf("ready %v (reasons %v), want %v", s.Ready, s.Reasons, tc.wantReady)
			}
		})
	}
}
