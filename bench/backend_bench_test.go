package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/pgtest"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/state/pgstate"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

// BenchmarkNoChangePlanByBackend is a no-change plan over 10,000
// conversations with the state read from the file or from PostgreSQL: each
// iteration opens the state read-only, as convsync plan does, refreshes
// against the emulator and computes the plan (docs/performance.md).
//
//	go test -run '^$' -bench NoChangePlanByBackend -benchtime 5x ./bench/
func BenchmarkNoChangePlanByBackend(b *testing.B) {
	tw, err := startEmulator(emulator.Faults{})
	if err != nil {
		b.Fatal(err)
	}
	defer tw.stop()
	s, err := tw.seed("bench", 10000, 0, 1, "c-")
	if err != nil {
		b.Fatal(err)
	}
	desired, st := manage(s)
	client, err := tw.client(0)
	if err != nil {
		b.Fatal(err)
	}
	open := map[string]func(b *testing.B) func() state.Backend{
		"file": func(b *testing.B) func() state.Backend {
			path := filepath.Join(b.TempDir(), "convsync.state.json")
			f, err := state.Open(path, state.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Update(func(w *state.State) error {
				for _, r := range st.Resources {
					w.Put(r.Clone())
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			f.Close()
			return func() state.Backend {
				r, err := state.Open(path, state.Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				return r
			}
		},
		"postgres": func(b *testing.B) func() state.Backend {
			srv := pgtest.Start(b)
			w, err := pgstate.Open(context.Background(), srv.URL(), pgstate.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := w.Acquire(context.Background(), "bench", time.Minute); err != nil {
				b.Fatal(err)
			}
			if err := w.Import(context.Background(), st); err != nil {
				b.Fatal(err)
			}
			w.Close()
			return func() state.Backend {
				r, err := pgstate.Open(context.Background(), srv.URL(), pgstate.Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				return r
			}
		},
	}
	for _, name := range []string{"file", "postgres"} {
		b.Run(name, func(b *testing.B) {
			reopen := open[name](b)
			b.ResetTimer()
			for range b.N {
				backend := reopen()
				var perr error
				backend.View(func(read *state.State) {
					_, perr = plan(context.Background(), tw, client, desired, read, planner.RefreshOptions{}, s.serviceSID)
				})
				backend.Close()
				if perr != nil {
					b.Fatal(perr)
				}
			}
		})
	}
}
