package pgstate_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/pgtest"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/state/pgstate"
)

// The numbers in docs/performance.md ("State backends") come from these:
//
//	go test -run '^$' -bench . -benchtime 2000x ./pkg/state/pgstate/

const benchSize = 10_000

func benchConversation(i int) *state.Resource {
	return &state.Resource{
		Address: resource.Address{Kind: resource.KindConversation, Name: fmt.Sprintf("customer-%06d", i)}, SID: fmt.Sprintf("CH%032x", i+1),
		ParentSID: "IS00000000000000000000000000000001",
		Applied: resource.Values{resource.FieldUniqueName: fmt.Sprintf("customer-%06d", i), resource.FieldFriendlyName: "Customer",
			resource.FieldAttributes: `{"tier":"gold"}`, resource.FieldTimersInactive: "PT1H"},
		CreatedAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
	}
}

func fill(b *testing.B, s state.Backend, n int) {
	b.Helper()
	const batch = 1000
	for start := 0; start < n; start += batch {
		if err := s.Update(func(st *state.State) error {
			for i := start; i < min(start+batch, n); i++ {
				st.Put(benchConversation(i))
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// backends opens a file and a PostgreSQL state of n conversations, each as
// a writer holds it.
func backends(b *testing.B, n int) map[string]func(b *testing.B) state.Backend {
	return map[string]func(b *testing.B) state.Backend{
		"file": func(b *testing.B) state.Backend {
			f, err := state.Open(filepath.Join(b.TempDir(), "convsync.state.json"), state.Options{Logf: b.Logf})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { f.Close() })
			fill(b, f, n)
			return f
		},
		"postgres": func(b *testing.B) state.Backend {
			srv := pgtest.Start(b)
			s, err := pgstate.Open(context.Background(), srv.URL(), pgstate.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			if _, err := s.Acquire(context.Background(), "bench", time.Minute); err != nil {
				b.Fatal(err)
			}
			fill(b, s, n)
			return s
		},
	}
}

// BenchmarkStateChange is one recorded change (a resource's applied values)
// in a state of 10,000: the unit an apply pays per step, twice per create
// (the intent, then the result).
func BenchmarkStateChange(b *testing.B) {
	for _, name := range []string{"file", "postgres"} {
		b.Run(name, func(b *testing.B) {
			s := backends(b, benchSize)[name](b)
			b.ResetTimer()
			for i := range b.N {
				r := benchConversation(i % benchSize)
				r.Applied[resource.FieldFriendlyName] = fmt.Sprintf("Customer %d", i)
				if err := s.Update(func(st *state.State) error { st.Put(r); return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApply1000Creates records what a 1,000-step apply of creates
// records: per step the intent, then the resource with the intent removed.
func BenchmarkApply1000Creates(b *testing.B) {
	for _, name := range []string{"file", "postgres"} {
		b.Run(name, func(b *testing.B) {
			s := backends(b, 0)[name](b)
			b.ResetTimer()
			for iter := range b.N {
				for i := range 1000 {
					r := benchConversation(iter*1000 + i)
					p := &state.Pending{Address: r.Address, ParentSID: r.ParentSID, Values: r.Applied, StartedAt: r.CreatedAt}
					if err := s.Update(func(st *state.State) error { st.AddPending(p); return nil }); err != nil {
						b.Fatal(err)
					}
					if err := s.Update(func(st *state.State) error { st.Put(r); st.RemovePending(r.Address); return nil }); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkReadState10k is what a no-change plan pays for the state before
// it compares: open it read-only and read every entry, 10,000 resources.
func BenchmarkReadState10k(b *testing.B) {
	b.Run("file", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "convsync.state.json")
		f, err := state.Open(path, state.Options{Logf: b.Logf})
		if err != nil {
			b.Fatal(err)
		}
		fill(b, f, benchSize)
		f.Close()
		b.ResetTimer()
		for range b.N {
			r, err := state.Open(path, state.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			if n := len(r.State().Resources); n != benchSize {
				b.Fatalf("%d resources", n)
			}
			r.Close()
		}
	})
	b.Run("postgres", func(b *testing.B) {
		srv := pgtest.Start(b)
		w, err := pgstate.Open(context.Background(), srv.URL(), pgstate.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Acquire(context.Background(), "bench", time.Minute); err != nil {
			b.Fatal(err)
		}
		fill(b, w, benchSize)
		w.Close()
		b.ResetTimer()
		for range b.N {
			r, err := pgstate.Open(context.Background(), srv.URL(), pgstate.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			if n := len(r.State().Resources); n != benchSize {
				b.Fatalf("%d resources", n)
			}
			r.Close()
		}
	})
}
