package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// DefaultWorkspace is the workspace used when none is named.
const DefaultWorkspace = "default"

// opTimeout bounds every statement round of the store: a database that does
// not answer fails the operation instead of hanging it.
const opTimeout = 10 * time.Second

// Options tune Open.
type Options struct {
	// Workspace names the state within the database (default "default").
	Workspace string
	// ReadOnly opens without creating or migrating anything, and refuses
	// Update.
	ReadOnly bool
	// ConvsyncVersion is recorded as the writer's version.
	ConvsyncVersion string
	// MaxConns bounds the pool (default 4).
	MaxConns int32
}

// ErrFenced means a write was refused because this process does not hold
// the workspace's lease at its epoch any more (or never did): another
// process leads, or an operator forced the lease open. Nothing was written.
var ErrFenced = errors.New("this process no longer holds the state's lease at its epoch; the write was refused (another convsync leads now, or the lease was forced open)")

// Store is one workspace's state in PostgreSQL. Its methods are safe for
// concurrent use. It keeps the state in memory (read at Open and on Reload)
// and writes each change through to the database before Update returns.
type Store struct {
	pool      *pgxpool.Pool
	url       string // redacted
	ws        string
	opts      Options
	password  string // to scrub from error messages
	schemaOK  bool
	closeOnce sync.Once

	leaseMu sync.RWMutex
	holder  string
	epoch   int64
	info    HolderInfo
	// settled: no Twilio request of an earlier holder can still land (the
	// lease was handed over cleanly, or this holder waited its quarantine
	// or had no create of theirs to resolve). Only then does Release pass
	// the lease on as released cleanly.
	settled bool

	// writeMu serialises Update, Import and Reload, which talk to the
	// database; mu guards the fields below only for as long as memory is
	// read or changed, so readers (View, /readyz) never wait on the network.
	writeMu      sync.Mutex
	mu           sync.Mutex
	state        *state.State
	writtenBy    string
	pendingEpoch map[string]int64
	stale        bool // a write's outcome is unknown: reload before the next
	broken       error
	closed       bool
}

var _ state.Backend = (*Store)(nil)

// Open connects to the database at url and reads the workspace's state. A
// writer creates or migrates the tables first. Nothing else is written
// until the first Update, which needs the lease (SetLease).
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Workspace == "" {
		opts.Workspace = DefaultWorkspace
	}
	if opts.ConvsyncVersion == "" {
		opts.ConvsyncVersion = "dev"
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 4
	}
	if err := checkWorkspace(opts.Workspace); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors can quote the URL: never show it.
		return nil, fmt.Errorf("state URL %s cannot be read: check its form (postgres://user@host:port/database?sslmode=...)", Redact(url))
	}
	// No prepared statements and no session state: PgBouncer in
	// transaction mode hands each transaction to any server connection.
	if _, given := cfg.ConnConfig.RuntimeParams["default_query_exec_mode"]; !given && !strings.Contains(url, "default_query_exec_mode") {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	cfg.MaxConns = opts.MaxConns
	cfg.MinConns = 0
	cfg.HealthCheckPeriod = 5 * time.Second
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	s := &Store{url: Redact(url), ws: opts.Workspace, opts: opts, password: cfg.ConnConfig.Password}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, s.fail("connecting to", err)
	}
	s.pool = pool
	if !opts.ReadOnly {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		err := migrate(octx, pool)
		cancel()
		if err != nil {
			pool.Close()
			var verr *VersionError
			if errors.As(err, &verr) {
				return nil, fmt.Errorf("state %s: %w", s.Path(), verr)
			}
			return nil, s.fail("preparing the tables of", err)
		}
		s.schemaOK = true
	}
	if err := s.Reload(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func checkWorkspace(ws string) error {
	if len(ws) > 100 || strings.IndexFunc(ws, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r))
	}) >= 0 {
		return fmt.Errorf("--workspace %q: use letters, digits, '-', '_' and '.' (at most 100)", ws)
	}
	return nil
}

// fail wraps a database error for a message, without the password.
func (s *Store) fail(doing string, err error) error {
	msg := err.Error()
	if s.password != "" {
		msg = strings.ReplaceAll(msg, s.password, "REDACTED")
	}
	return &dbError{msg: fmt.Sprintf("%s state %s: %s", doing, s.Path(), msg), err: err}
}

// dbError is a database error whose message has the password scrubbed; it
// unwraps to the driver's error.
type dbError struct {
	msg string
	err error
}

func (e *dbError) Error() string { return e.msg }
func (e *dbError) Unwrap() error { return e.err }

// Path names the state: the URL without its password, and the workspace.
func (s *Store) Path() string { return s.url + " (workspace " + s.ws + ")" }

// Workspace returns the workspace name.
func (s *Store) Workspace() string { return s.ws }

// WrittenBy is the convsync version of the last writer ("" for a new state).
func (s *Store) WrittenBy() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writtenBy
}

// SetLease tells the store the lease it writes under. Every Update checks,
// in its own transaction, that the lease is still holder's at epoch.
func (s *Store) SetLease(holder string, epoch int64) {
	s.leaseMu.Lock()
	s.holder, s.epoch = holder, epoch
	s.leaseMu.Unlock()
}

func (s *Store) lease() (string, int64) {
	s.leaseMu.RLock()
	defer s.leaseMu.RUnlock()
	return s.holder, s.epoch
}

// Reload reads the workspace's state again (a new leader does, after its
// acquisition, so that it sees every write of its predecessor).
func (s *Store) Reload(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.reload(ctx)
}

func (s *Store) reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*opTimeout)
	defer cancel()
	st := state.New()
	writtenBy := ""
	epochs := map[string]int64{}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if !s.schemaOK {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT to_regclass('convsync.schema_version') IS NOT NULL`).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return errNoSchema
			}
			v, err := schemaVersion(ctx, tx)
			if err != nil {
				return err
			}
			if v > SchemaVersion {
				return &VersionError{Found: v}
			}
			if v < SchemaVersion {
				return errNoSchema // not migrated yet; a reader of an old schema sees nothing it can trust
			}
		}
		var serial int64
		err := tx.QueryRow(ctx, `SELECT lineage, serial, written_by FROM convsync.workspaces WHERE workspace = $1`, s.ws).Scan(&st.Lineage, &serial, &writtenBy)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // a new state: lineage fresh, nothing stored until the first change
		}
		if err != nil {
			return err
		}
		st.Serial = uint64(serial)
		rows, err := tx.Query(ctx, `SELECT address, data::text FROM convsync.resources WHERE workspace = $1`, s.ws)
		if err != nil {
			return err
		}
		var addr, data string
		if _, err := pgx.ForEachRow(rows, []any{&addr, &data}, func() error {
			r, err := state.DecodeResource(addr, []byte(data))
			if err != nil {
				return &decodeError{err}
			}
			st.Resources[addr] = r
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT address, data::text, epoch FROM convsync.pending WHERE workspace = $1`, s.ws)
		if err != nil {
			return err
		}
		var epoch int64
		_, err = pgx.ForEachRow(rows, []any{&addr, &data, &epoch}, func() error {
			p, err := state.DecodePending(addr, []byte(data))
			if err != nil {
				return &decodeError{err}
			}
			st.Pending[addr] = p
			epochs[addr] = epoch
			return nil
		})
		return err
	})
	var derr *decodeError
	var verr *VersionError
	switch {
	case errors.Is(err, errNoSchema):
		err = nil
	case errors.As(err, &verr):
		return fmt.Errorf("state %s: %w", s.Path(), verr)
	case errors.As(err, &derr):
		return fmt.Errorf("state %s cannot be read: %w. Nothing was changed", s.Path(), derr.err)
	case err != nil:
		return s.fail("reading", err)
	}
	s.mu.Lock()
	s.state, s.writtenBy, s.pendingEpoch, s.stale = st, writtenBy, epochs, false
	s.mu.Unlock()
	return nil
}

type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }

// State returns a deep copy of the current state.
func (s *Store) State() *state.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Clone()
}

// View calls fn with the current state, without copying it.
func (s *Store) View(fn func(*state.State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.state)
}

// Get returns a copy of the resource at addr, or nil.
func (s *Store) Get(addr resource.Address) *state.Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Resources[addr.String()].Clone()
}

// GetPending returns a copy of the create in flight for addr, or nil.
func (s *Store) GetPending(addr resource.Address) *state.Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Pending[addr.String()].Clone()
}

// Lineage returns the state's lineage.
func (s *Store) Lineage() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Lineage
}

// Serial returns the state's serial.
func (s *Store) Serial() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Serial
}

// PendingBefore counts the pending creates written under an epoch older
// than epoch: those a new leader must resolve before creating anything.
func (s *Store) PendingBefore(epoch int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.pendingEpoch {
		if e < epoch {
			n++
		}
	}
	return n
}

// Update applies fn to the state and writes the change in one fenced
// transaction before returning. If the write fails nothing changes in
// memory either; if its outcome is unknown (the connection broke during
// COMMIT) the next Update reads the state again first.
func (s *Store) Update(fn func(*state.State) error) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("state %s was opened read-only; it cannot be changed", s.Path())
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	closed, broken, stale := s.closed, s.broken, s.stale
	s.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("state %s is closed", s.Path())
	case broken != nil:
		return broken
	}
	holder, epoch := s.lease()
	if holder == "" {
		return fmt.Errorf("state %s: %w", s.Path(), ErrFenced)
	}
	ctx := context.Background()
	if stale {
		if err := s.reload(ctx); err != nil {
			return err
		}
	}
	// Change memory and encode the change under mu; write it without.
	// Readers meanwhile see the change before it is stored, as the file
	// backend's do; if the write fails it is undone.
	s.mu.Lock()
	prevSerial := s.state.Serial
	c, err := s.state.Apply(s.Path(), fn)
	var brokenErr *state.BrokenError
	if errors.As(err, &brokenErr) {
		s.broken = err
		s.mu.Unlock()
		return err
	}
	if err != nil || c.Empty() {
		s.mu.Unlock()
		return err
	}
	b, err := s.batch(holder, epoch, prevSerial, c)
	if err != nil {
		c.Undo()
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, opTimeout)
	err = s.runFenced(wctx, b)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		c.Undo()
		s.stale = true
		return err
	}
	for _, k := range c.Pending {
		if s.state.Pending[k] != nil {
			s.pendingEpoch[k] = epoch
		} else {
			delete(s.pendingEpoch, k)
		}
	}
	s.writtenBy = s.opts.ConvsyncVersion
	return nil
}

// setLocal is the first statement of every write: settings for this
// transaction only (startup parameters do not pass PgBouncer). A lost
// epoch bump would reuse a fencing token, hence synchronous_commit; a
// stalled writer must not hold the lease row for long, hence the timeouts.
const setLocal = `SELECT set_config('synchronous_commit', 'on', true), set_config('idle_in_transaction_session_timeout', '5s', true),
	set_config('statement_timeout', '5s', true), set_config('lock_timeout', '3s', true)`

// guardSQL locks the lease row FOR SHARE: a takeover's UPDATE of that row
// waits until this transaction ends, so it sees what this one wrote; after
// a takeover the row no longer matches and the write is refused.
const guardSQL = `SELECT epoch FROM convsync.lease WHERE workspace = $1 AND holder = $2 AND epoch = $3 AND expires_at > now() FOR SHARE`

// batch is the transaction that stores the change c (already applied to
// s.state, s.mu held): guard, serial compare-and-swap, entries.
func (s *Store) batch(holder string, epoch int64, prevSerial uint64, c *state.Change) (*pgx.Batch, error) {
	b := &pgx.Batch{}
	b.Queue(setLocal)
	b.Queue(guardSQL, s.ws, holder, epoch)
	b.Queue(`INSERT INTO convsync.workspaces AS w (workspace, lineage, serial, written_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (workspace) DO UPDATE SET serial = EXCLUDED.serial, written_by = EXCLUDED.written_by, updated_at = now()
		WHERE w.lineage = EXCLUDED.lineage AND w.serial = $5 RETURNING serial`,
		s.ws, s.state.Lineage, int64(s.state.Serial), s.opts.ConvsyncVersion, int64(prevSerial))
	if err := s.queueEntries(b, epoch, c.Resources, c.Pending); err != nil {
		return nil, fmt.Errorf("refusing to change state %s: %w", s.Path(), err)
	}
	return b, nil
}

// queueEntries queues the upserts and deletes of the given entries as they
// are in s.state now. Deletes go first so that a move (delete one address,
// put another) never meets itself.
func (s *Store) queueEntries(b *pgx.Batch, epoch int64, resources, pending []string) error {
	for _, k := range resources {
		if s.state.Resources[k] == nil {
			b.Queue(`DELETE FROM convsync.resources WHERE workspace = $1 AND address = $2`, s.ws, k)
		}
	}
	for _, k := range pending {
		if s.state.Pending[k] == nil {
			b.Queue(`DELETE FROM convsync.pending WHERE workspace = $1 AND address = $2`, s.ws, k)
		}
	}
	for _, k := range resources {
		r := s.state.Resources[k]
		if r == nil {
			continue
		}
		data, err := state.ResourceJSON(r)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO convsync.resources (workspace, address, kind, sid, parent_sid, data, epoch) VALUES ($1, $2, $3, $4, $5, $6::json, $7)
			ON CONFLICT (workspace, address) DO UPDATE SET kind = EXCLUDED.kind, sid = EXCLUDED.sid, parent_sid = EXCLUDED.parent_sid,
			data = EXCLUDED.data, epoch = EXCLUDED.epoch, updated_at = now()`,
			s.ws, k, string(r.Address.Kind), r.SID, r.ParentSID, string(data), epoch)
	}
	for _, k := range pending {
		p := s.state.Pending[k]
		if p == nil {
			continue
		}
		data, err := state.PendingJSON(p)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO convsync.pending (workspace, address, kind, parent_sid, data, epoch) VALUES ($1, $2, $3, $4, $5::json, $6)
			ON CONFLICT (workspace, address) DO UPDATE SET kind = EXCLUDED.kind, parent_sid = EXCLUDED.parent_sid,
			data = EXCLUDED.data, epoch = EXCLUDED.epoch, created_at = now()`,
			s.ws, k, string(p.Kind), p.ParentSID, string(data), epoch)
	}
	return nil
}

// runFenced runs b (setLocal, the guard, the serial CAS, then anything)
// in one transaction, committing only if the guard and the CAS matched. A
// connection that broke before COMMIT was sent (a database restart, a
// terminated session: the pool hands out a dead connection once) cannot
// have committed anything, so that is tried once more on a new connection.
func (s *Store) runFenced(ctx context.Context, b *pgx.Batch) error {
	err, beforeCommit := s.runFencedOnce(ctx, b)
	if err != nil && beforeCommit && isConnectionError(err) && ctx.Err() == nil {
		err, _ = s.runFencedOnce(ctx, b)
	}
	return err
}

// isConnectionError reports whether err is the connection's failure rather
// than the server's answer to a statement.
func isConnectionError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" // admin shutdown, crash shutdown, cannot connect now
	}
	return !errors.Is(err, ErrFenced) && !strings.Contains(err.Error(), "changed by another writer")
}

func (s *Store) runFencedOnce(ctx context.Context, b *pgx.Batch) (error, bool) {
	err := s.runFencedTx(ctx, b)
	var ce *commitError
	if errors.As(err, &ce) {
		return ce.err, false
	}
	return err, true
}

type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }

func (s *Store) runFencedTx(ctx context.Context, b *pgx.Batch) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fail("writing", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	br := tx.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return s.fail("writing", err)
	}
	var got int64
	if err := br.QueryRow().Scan(&got); errors.Is(err, pgx.ErrNoRows) {
		br.Close()
		return fmt.Errorf("state %s: %w", s.Path(), ErrFenced)
	} else if err != nil {
		br.Close()
		return s.fail("writing", err)
	}
	if err := br.QueryRow().Scan(&got); errors.Is(err, pgx.ErrNoRows) {
		br.Close()
		return fmt.Errorf("state %s was changed by another writer (its serial moved on, or its lineage differs) although this process holds the lease; nothing was written: run again", s.Path())
	} else if err != nil {
		br.Close()
		return s.fail("writing", err)
	}
	for i := 3; i < b.Len(); i++ {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return s.fail("writing", err)
		}
	}
	if err := br.Close(); err != nil {
		return s.fail("writing", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return &commitError{s.fail("writing (the outcome of COMMIT is unknown)", err)}
	}
	return nil
}

// Sizes returns the sizes the last apply saw (nil when none are stored).
func (s *Store) Sizes() (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var raw string
	err := s.pool.QueryRow(ctx, `SELECT sizes::text FROM convsync.workspaces WHERE workspace = $1`, s.ws).Scan(&raw)
	var pgErr *pgconn.PgError
	if errors.Is(err, pgx.ErrNoRows) || errors.As(err, &pgErr) && pgErr.Code == "42P01" { // no row, or no table yet
		return nil, nil
	}
	if err != nil {
		return nil, s.fail("reading the sizes of", err)
	}
	var sizes map[string]int
	if err := json.Unmarshal([]byte(raw), &sizes); err != nil {
		return nil, nil // a cache: unusable means absent
	}
	return sizes, nil
}

// SetSizes stores the sizes seen, fenced like every write.
func (s *Store) SetSizes(sizes map[string]int) error {
	data, err := json.Marshal(sizes)
	if err != nil {
		return err
	}
	holder, epoch := s.lease()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(setLocal)
	b.Queue(guardSQL, s.ws, holder, epoch)
	b.Queue(`UPDATE convsync.workspaces SET sizes = $2::json WHERE workspace = $1 RETURNING serial`, s.ws, string(data))
	err = s.runFenced(ctx, b)
	if err != nil && strings.Contains(err.Error(), "changed by another writer") {
		return nil // no workspace row yet: nothing was ever stored, and sizes are a cache
	}
	return err
}

// Import writes st as the workspace's whole state (lineage and serial
// kept) in one fenced transaction. The workspace must hold no state yet.
func (s *Store) Import(ctx context.Context, st *state.State) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	holder, epoch := s.lease()
	if holder == "" {
		return fmt.Errorf("state %s: %w", s.Path(), ErrFenced)
	}
	ctx, cancel := context.WithTimeout(ctx, 4*opTimeout)
	defer cancel()
	s.mu.Lock()
	prev := s.state
	s.state = st.Clone()
	s.mu.Unlock()
	b := &pgx.Batch{}
	b.Queue(setLocal)
	b.Queue(guardSQL, s.ws, holder, epoch)
	b.Queue(`INSERT INTO convsync.workspaces (workspace, lineage, serial, written_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (workspace) DO NOTHING RETURNING serial`, s.ws, st.Lineage, int64(st.Serial), s.opts.ConvsyncVersion)
	var keys, pkeys []string
	for k := range st.Resources {
		keys = append(keys, k)
	}
	for k := range st.Pending {
		pkeys = append(pkeys, k)
	}
	s.mu.Lock()
	err := s.queueEntries(b, epoch, keys, pkeys)
	s.mu.Unlock()
	if err == nil {
		err = s.runFenced(ctx, b)
	}
	if err != nil {
		s.mu.Lock()
		s.state = prev
		s.mu.Unlock()
		if strings.Contains(err.Error(), "changed by another writer") {
			return fmt.Errorf("state %s already holds a state (lineage %s, serial %d); nothing was written: migrate into an empty workspace (--workspace)", s.Path(), prev.Lineage, prev.Serial)
		}
		return err
	}
	return s.reload(ctx)
}

// Close ends the lease if this store still holds one, then closes the
// pool. Not as released cleanly: a holder that did not Release (it lost
// the lease, or a pass would not stop) may have a Twilio request in
// flight, so the next leader waits its quarantine. Release first to hand
// over cleanly.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	var err error
	s.closeOnce.Do(func() {
		if holder, epoch := s.lease(); holder != "" {
			err = s.end(context.Background(), holder, epoch, false)
		}
		// Closing a connection whose network is gone waits up to 15 s in
		// pgx for the server's goodbye: never hold up an exit for that.
		closed := make(chan struct{})
		go func() { s.pool.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(closeWait):
		}
	})
	return err
}

// closeWait bounds how long Close waits for the pool's connections to close.
const closeWait = 2 * time.Second
