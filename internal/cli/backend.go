package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/leader"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/state/pgstate"
)

// EnvStateURL names the PostgreSQL state when --state is not given; unlike
// the flag it may carry a password (the environment is not shown to other
// users), though PGPASSWORD or a password file are better.
const EnvStateURL = "CONVSYNC_STATE_URL"

// resolveState picks the backend from --state and CONVSYNC_STATE_URL, and
// refuses a password in the flag.
func (c *CLI) resolveState(stateFlagGiven bool) error {
	g := &c.global
	if !stateFlagGiven {
		if env := c.getenv(EnvStateURL); env != "" {
			if !pgstate.IsURL(env) {
				return fmt.Errorf("%s=%s: give a postgres:// URL there (a state file is given with --state)", EnvStateURL, pgstate.Redact(env))
			}
			g.stateURL, g.stateFromEnv = env, true
			g.statePath = pgstate.Redact(env)
			return nil
		}
	}
	if pgstate.IsURL(g.statePath) {
		if err := pgstate.CheckFlagURL(g.statePath); err != nil {
			return err
		}
		g.stateURL = g.statePath
	}
	return nil
}

// postgres reports whether the state is in PostgreSQL.
func (c *CLI) postgres() bool { return c.global.stateURL != "" }

// leasedStore is a PostgreSQL state held under the workspace's lease for
// one command: Close releases the lease, then the connections.
type leasedStore struct {
	*pgstate.Store
	elector *leader.Elector
}

func (l *leasedStore) Close() error {
	err := l.elector.Release(context.Background())
	if cerr := l.Store.Close(); err == nil {
		err = cerr
	}
	return err
}

// lateGuard is the Twilio client's request guard for commands that take
// the lease after the client is built: until then (and for read-only
// commands, which never take it) requests are not limited.
type lateGuard struct{ elector *leader.Elector }

func (g *lateGuard) RequestDeadline() (time.Time, error) {
	if g.elector == nil {
		return time.Time{}, nil
	}
	return g.elector.RequestDeadline()
}

// leaseTimings are the --lease-duration timings, as client-go derives them.
func (c *CLI) newElector(store *pgstate.Store, log *zap.Logger) (*leader.Elector, error) {
	d := c.global.leaseDuration
	return leader.New(leader.Config{
		Lessor:        store,
		LeaseDuration: d,
		RenewDeadline: d * 2 / 3,
		RetryPeriod:   d * 2 / 15,
		Logger:        log,
	})
}

// resolvesCreates are the commands that resolve an earlier holder's
// creates left in flight (they adopt or re-create them): taking the lease
// after an unclean end, they wait the quarantine first, as a daemon does.
var resolvesCreates = map[string]bool{"convsync apply": true, "convsync destroy": true}

// openPostgres opens the PostgreSQL state; a writer takes the lease,
// waiting up to --lock-timeout, and reads the state under it.
func (c *CLI) openPostgres(holder string, readOnly bool) (state.Backend, error) {
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	store, err := pgstate.Open(ctx, c.global.stateURL, pgstate.Options{Workspace: c.global.workspace, ReadOnly: readOnly, ConvsyncVersion: Version})
	if err != nil {
		return nil, err
	}
	if readOnly {
		return store, nil
	}
	log, err := c.logger()
	if err != nil {
		store.Close()
		return nil, err
	}
	store.SetHolderInfo(pgstate.HolderInfo{Command: holder, Version: Version})
	el, err := c.newElector(store, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	grant, err := el.AcquireWithin(ctx, c.global.lockTimeout)
	if err != nil {
		store.Close()
		var held *leader.HeldError
		if errors.As(err, &held) {
			return nil, fmt.Errorf("%w; to wait longer, use --lock-timeout (now %s), e.g. --lock-timeout 2m. "+
				"If a convsync run daemon leads this workspace, let it apply, or stop it first", err, c.global.lockTimeout)
		}
		return nil, err
	}
	if err := store.Reload(ctx); err != nil {
		_ = el.Release(context.Background())
		store.Close()
		return nil, err
	}
	n := store.PendingBefore(grant.Epoch)
	if n > 0 && !grant.PreviousReleased && !resolvesCreates[holder] {
		// A state command does not touch Twilio: it neither waits nor
		// settles, so its release leaves the lease marked as not handed
		// over cleanly and the next holder still waits the quarantine.
		c.guard.elector = el
		return &leasedStore{Store: store, elector: el}, nil
	}
	if n > 0 && !grant.PreviousReleased && c.global.quarantine > 0 {
		// A request the earlier holder sent may still land at Twilio:
		// resolving its creates now could miss one and create it again.
		// A command waits the quarantine as a daemon taking the lead does.
		fmt.Fprintf(c.stderr, "convsync: the previous holder of the state (%s) did not hand over cleanly and left %d create(s) in flight; waiting %s (--quarantine) before resolving them\n", grant.PreviousHolder, n, c.global.quarantine)
		select {
		case <-ctx.Done():
			_ = el.Release(context.Background())
			store.Close()
			return nil, ctx.Err()
		case <-el.Lost():
			store.Close()
			return nil, leader.ErrLost
		case <-time.After(c.global.quarantine):
		}
	}
	// Nothing of an earlier holder can still land now: a release by this
	// command may say it handed over cleanly.
	store.Settle()
	c.guard.elector = el
	return &leasedStore{Store: store, elector: el}, nil
}

// useSizes gives the engine the sizes a database state keeps (the file
// backend's are read from the cache file beside it, in newSession).
func (c *CLI) useSizes(e *engine.Engine, sf state.Backend) {
	if sk, ok := sf.(state.SizeKeeper); ok {
		if sizes, err := sk.Sizes(); err == nil && sizes != nil {
			e.Refresh.KnownSizes = sizes
		}
	}
}

// saveSizes keeps the sizes the refresh saw, where the backend keeps them.
func (c *CLI) saveSizes(sf state.Backend, sizes map[string]int) error {
	if sk, ok := sf.(state.SizeKeeper); ok {
		if _, leased := sf.(*leasedStore); !leased {
			return nil // read-only: no lease, no write
		}
		return sk.SetSizes(sizes)
	}
	return engine.WriteSizeHints(engine.SizeHintsPath(c.global.statePath), sizes)
}

// openStandby opens the PostgreSQL state for convsync run: tables
// migrated, no lease yet (the daemon campaigns for it).
func (c *CLI) openStandby(log *zap.Logger) (*pgstate.Store, *leader.Elector, error) {
	store, err := pgstate.Open(c.ctx, c.global.stateURL, pgstate.Options{Workspace: c.global.workspace, ConvsyncVersion: Version})
	if err != nil {
		return nil, nil, err
	}
	store.SetHolderInfo(pgstate.HolderInfo{Command: "convsync run", Version: Version})
	el, err := c.newElector(store, log)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, el, nil
}
