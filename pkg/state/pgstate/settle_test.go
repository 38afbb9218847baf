package pgstate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/pgtest"
	"github.com/convsync/convsync/pkg/state/pgstate"
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

// Close without Release is how a leader exits when it lost its lease or a
// pass would not stop (a Twilio request may still be in flight): the lease
// ends at once, but not as released cleanly, so the next leader waits its
// quarantine. Only an explicit Release hands over cleanly.
func TestCloseWithoutReleaseIsNotACleanHandOver(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	a := open(t, srv.URL(), "default")
	if _, err := a.Acquire(ctx, "a", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	a.Settle()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := open(t, srv.URL(), "default")
	g, err := b.Acquire(ctx, "b", 15*time.Second) // at once: Close ended the lease
	if err != nil {
		t.Fatalf("the lease of a closed store is still held: %v", err)
	}
	if g.PreviousReleased {
		t.Error("a store closed without Release handed the lease over as clean: the next leader skips its quarantine")
	}
}

// force-unlock EPOCH forces that lease only: one that changed hands since
// the operator read the epoch (its holder died and a stand-by took over)
// is left alone, checked in the same statement as the bump.
func TestForceUnlockOfAnEpochLeavesALaterLeaseAlone(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	a := open(t, srv.URL(), "default")
	ga, err := a.Acquire(ctx, "a", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	op := open(t, srv.URL(), "default")
	if _, _, err := op.ForceUnlockEpoch(ctx, "operator", ga.Epoch); err != nil {
		t.Fatalf("forcing the current epoch: %v", err)
	}
	b := open(t, srv.URL(), "default")
	gb, err := b.Acquire(ctx, "b", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := op.ForceUnlockEpoch(ctx, "operator", ga.Epoch); !errors.Is(err, pgstate.ErrEpochMoved) {
		t.Fatalf("forcing an old epoch again: %v, want ErrEpochMoved", err)
	}
	if err := b.Renew(ctx, "b", gb.Epoch, 15*time.Second); err != nil {
		t.Errorf("b's lease was forced by an unlock of an older epoch: %v", err)
	}
}
