package state_test

import (
	"path/filepath"
	"testing"

	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/state/statetest"
)

func TestFileMeetsTheBackendContract(t *testing.T) {
	statetest.Run(t, statetest.OpenerFunc(func(t *testing.T) func(t *testing.T) state.Backend {
		path := filepath.Join(t.TempDir(), "convsync.state.json")
		return func(t *testing.T) state.Backend {
			f, err := state.Open(path, state.Options{Logf: t.Logf})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}
	}))
}
