// Package pgstate keeps convsync's state in PostgreSQL, so that several
// convsync processes (replicas of a sidecar, two systemd hosts, the CLI) can
// share one state with exactly one of them writing at a time.
//
// It owns the tables in schema convsync (created and migrated by Open, under
// a transaction-level advisory lock, with a schema version), one state per
// workspace: the workspace row (lineage, serial, sizes), the resources and
// the pending creates (each entry in the state file's own JSON form), and the
// lease (holder, fencing epoch, expiry on the server's clock).
//
// Every write is a short transaction whose first statement locks the lease
// row FOR SHARE and checks that this process still holds it at its epoch: a
// takeover (which updates that row) then waits for a write in flight and
// sees it, and a write after a takeover is refused (ErrFenced). Nothing
// relies on session state: no session advisory locks, no prepared
// statements (pgx's exec mode), so it works through PgBouncer in
// transaction mode.
package pgstate
