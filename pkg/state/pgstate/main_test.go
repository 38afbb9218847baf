package pgstate_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/pgtest"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/state/pgstate"
	"github.com/convsync/convsync/pkg/state/statetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openLeased opens the workspace and takes its lease, as a CLI apply does.
func openLeased(t *testing.T, url, workspace, holder string) *pgstate.Store {
	t.Helper()
	s, err := pgstate.Open(context.Background(), url, pgstate.Options{Workspace: workspace})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Acquire(context.Background(), holder, 15*time.Second); err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	return s
}

func TestPostgresMeetsTheBackendContract(t *testing.T) {
	statetest.Run(t, statetest.OpenerFunc(func(t *testing.T) func(t *testing.T) state.Backend {
		srv := pgtest.Start(t)
		return func(t *testing.T) state.Backend { return openLeased(t, srv.URL(), "default", "test-holder") }
	}))
}
