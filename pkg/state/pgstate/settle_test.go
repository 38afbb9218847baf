package pgstate_test

import (
	"context"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/pgtest"
)

// A holder that took the lease after an unclean end (its predecessor's
// creates may still land at Twilio) and gives it back before it settled
// them (its state read failed; a CLI command that did not wait) must not
// pass the lease on as clean: the next leader would skip its quarantine.
func TestReleaseBeforeSettlingKeepsTheUncleanEnd(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	a := open(t, srv.URL(), "default")
	if _, err := a.Acquire(ctx, "a", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.ForceUnlock(ctx, "operator"); err != nil { // a's end: unclean
		t.Fatal(err)
	}
	b := open(t, srv.URL(), "default")
	g, err := b.Acquire(ctx, "b", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if g.PreviousReleased {
		t.Fatal("b: a forced lease counts as released cleanly")
	}
	if err := b.Release(ctx, "b", g.Epoch); err != nil { // before settling
		t.Fatal(err)
	}
	c := open(t, srv.URL(), "default")
	g, err = c.Acquire(ctx, "c", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if g.PreviousReleased {
		t.Error("c: b's release laundered a's unclean end: c would skip the quarantine")
	}
	c.Settle() // c waited its quarantine (or had nothing to resolve)
	if err := c.Release(ctx, "c", g.Epoch); err != nil {
		t.Fatal(err)
	}
	d := open(t, srv.URL(), "default")
	if g, err = d.Acquire(ctx, "d", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if !g.PreviousReleased {
		t.Error("d: c settled and released, yet the lease is not passed on as clean")
	}
}
