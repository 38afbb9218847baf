package pgstate

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convsync/convsync/internal/pgtest"
)

// The guard's row lock is what makes a takeover see a write in flight: an
// old leader's transaction that passed the guard and is still open when its
// lease lapses blocks the takeover until it commits, and the new leader then
// reads what it wrote (with a plain check instead of FOR SHARE, the write
// would land after the takeover, unseen).
func TestATakeoverWaitsForAFencedWriteInFlight(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	a, err := Open(ctx, srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Acquire(ctx, "a", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var epoch int64
	if err := tx.QueryRow(ctx, guardSQL, "default", "a", int64(1)).Scan(&epoch); err != nil {
		t.Fatalf("guard: %v", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO convsync.workspaces (workspace, lineage, serial, written_by) VALUES ('default', 'l', 1, 'test')`); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	acquired := make(chan error, 1)
	go func() {
		for {
			_, err := b.Acquire(ctx, "b", 15*time.Second)
			if err == nil || !isHeld(err) {
				acquired <- err
				return
			}
			time.Sleep(20 * time.Millisecond) // polling until a's lease lapses
		}
	}()
	select {
	case err := <-acquired:
		t.Fatalf("the takeover did not wait for the write in flight (err %v)", err)
	case <-time.After(time.Second): // a's lease (200ms) has long lapsed; b must still be blocked
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-acquired; err != nil {
		t.Fatalf("takeover: %v", err)
	}
	var serial int64
	if err := b.pool.QueryRow(ctx, `SELECT serial FROM convsync.workspaces WHERE workspace = 'default'`).Scan(&serial); err != nil || serial != 1 {
		t.Fatalf("the new leader does not see the write that was in flight: serial %d, %v", serial, err)
	}
}

// Matrix 8: a leader that stalls inside a fenced write (it took the guard's
// row lock, then stopped sending) cannot block a takeover for long: the
// transaction's idle_in_transaction_session_timeout (set by setLocal) ends
// its session, the takeover completes, and the stalled write is lost with
// its session rather than committed late.
func TestAStalledWriteCannotBlockATakeover(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	a, err := Open(ctx, srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Acquire(ctx, "a", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, setLocal); err != nil {
		t.Fatal(err)
	}
	var epoch int64
	if err := tx.QueryRow(ctx, guardSQL, "default", "a", int64(1)).Scan(&epoch); err != nil {
		t.Fatalf("guard: %v", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO convsync.workspaces (workspace, lineage, serial, written_by) VALUES ('default', 'l', 1, 'stalled')`); err != nil {
		t.Fatal(err)
	}
	// Now the writer stalls. The takeover waits on the row lock until the
	// server ends the idle transaction (5 s).
	b, err := Open(ctx, srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := b.Acquire(ctx, "b", 15*time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the takeover is still blocked by the stalled write: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // retrying as a stand-by does
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("the stalled write committed after the takeover")
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM convsync.workspaces`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the stalled write is in the state: %d rows, %v", n, err)
	}
}
