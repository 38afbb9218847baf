package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convsync/convsync/pkg/leader"
)

var _ leader.Lessor = (*Store)(nil)

// HolderInfo is what a holder records beside its lease, for the messages of
// whoever waits (never a secret).
type HolderInfo struct {
	Command string `json:"command,omitempty"`
	Version string `json:"version,omitempty"`
}

// SetHolderInfo sets what Acquire records beside the lease.
func (s *Store) SetHolderInfo(info HolderInfo) {
	s.leaseMu.Lock()
	s.info = info
	s.leaseMu.Unlock()
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Acquire takes the workspace's lease for holder if it is free or expired,
// bumping the epoch. It waits (row lock) for any fenced write of the
// previous holder still in flight, so the state it then reads holds it.
func (s *Store) Acquire(ctx context.Context, holder string, ttl time.Duration) (leader.Grant, error) {
	if s.opts.ReadOnly {
		return leader.Grant{}, fmt.Errorf("state %s was opened read-only; it cannot be leased", s.Path())
	}
	s.leaseMu.RLock()
	info := s.info
	s.leaseMu.RUnlock()
	infoJSON, _ := json.Marshal(info)
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var grant leader.Grant
	var held *leader.HeldError
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, setLocal); err != nil {
			return err
		}
		var prev struct {
			holder   string
			epoch    int64
			released bool
			live     bool
			since    time.Time
			leftMS   float64
			info     []byte
		}
		err := tx.QueryRow(ctx, `SELECT holder, epoch, released, expires_at > now(), acquired_at,
			greatest(extract(epoch FROM expires_at - now()), 0) * 1000, holder_info::text
			FROM convsync.lease WHERE workspace = $1 FOR UPDATE`, s.ws).Scan(
			&prev.holder, &prev.epoch, &prev.released, &prev.live, &prev.since, &prev.leftMS, &prev.info)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			grant = leader.Grant{PreviousReleased: true}
		case err != nil:
			return err
		case prev.live:
			var hi HolderInfo
			_ = json.Unmarshal(prev.info, &hi)
			held = &leader.HeldError{Name: s.Path(), Holder: prev.holder, Command: hi.Command, Epoch: prev.epoch, Since: prev.since, ExpiresIn: time.Duration(prev.leftMS) * time.Millisecond}
			return nil
		default:
			grant = leader.Grant{PreviousReleased: prev.released, PreviousHolder: prev.holder}
		}
		// The WHERE matters when the row did not exist above: two
		// candidates inserting at once conflict, and the second must then
		// find the first's fresh lease, not replace it.
		err = tx.QueryRow(ctx, `INSERT INTO convsync.lease AS l (workspace, holder, epoch, acquired_at, renewed_at, expires_at, released, holder_info)
			VALUES ($1, $2, 1, now(), now(), now() + $3 * interval '1 millisecond', false, $4::json)
			ON CONFLICT (workspace) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1, acquired_at = now(), renewed_at = now(),
				expires_at = EXCLUDED.expires_at, released = false, holder_info = EXCLUDED.holder_info
			WHERE l.expires_at <= now()
			RETURNING epoch`, s.ws, holder, ms(ttl), string(infoJSON)).Scan(&grant.Epoch)
		if errors.Is(err, pgx.ErrNoRows) {
			held = &leader.HeldError{Name: s.Path(), Holder: "another convsync that took it a moment ago"}
			return nil
		}
		return err
	})
	if err != nil {
		return leader.Grant{}, s.fail("taking the lease of", err)
	}
	if held != nil {
		if held.Epoch == 0 { // lost an insert race: read who won
			if li, err := s.Lease(ctx); err == nil && li != nil {
				held = &leader.HeldError{Name: s.Path(), Holder: li.Holder, Command: li.Command, Epoch: li.Epoch, Since: li.Since, ExpiresIn: li.Left}
			}
		}
		return leader.Grant{}, held
	}
	s.SetLease(holder, grant.Epoch)
	s.leaseMu.Lock()
	s.settled = grant.PreviousReleased
	s.leaseMu.Unlock()
	return grant, nil
}

// Settle records that no Twilio request of an earlier holder can still
// land: the quarantine after an unclean takeover was waited out, or no
// create of an earlier epoch was left to resolve. Until then Release
// passes the lease on as not released cleanly, so that the next leader
// waits the quarantine this one did not.
func (s *Store) Settle() {
	s.leaseMu.Lock()
	s.settled = true
	s.leaseMu.Unlock()
}

// Renew extends the lease by ttl from the server's now, only if it is still
// holder's at epoch and not expired.
func (s *Store) Renew(ctx context.Context, holder string, epoch int64, ttl time.Duration) error {
	tag, err := s.pool.Exec(ctx, `UPDATE convsync.lease SET renewed_at = now(), expires_at = now() + $4 * interval '1 millisecond'
		WHERE workspace = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()`, s.ws, holder, epoch, ms(ttl))
	if err != nil {
		return s.fail("renewing the lease of", err)
	}
	if tag.RowsAffected() == 0 {
		return leader.ErrLost
	}
	return nil
}

// Release ends holder's lease at epoch now and marks it released cleanly,
// unless this holder took it after an unclean end and did not Settle: a
// release proves only that this holder's own requests are over.
func (s *Store) Release(ctx context.Context, holder string, epoch int64) error {
	s.leaseMu.RLock()
	clean := s.settled
	s.leaseMu.RUnlock()
	return s.end(ctx, holder, epoch, clean)
}

// end ends holder's lease at epoch now, released cleanly or not.
func (s *Store) end(ctx context.Context, holder string, epoch int64, clean bool) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, `UPDATE convsync.lease SET expires_at = now(), released = $4
		WHERE workspace = $1 AND holder = $2 AND epoch = $3`, s.ws, holder, epoch, clean)
	s.SetLease("", 0)
	if err != nil {
		return s.fail("releasing the lease of", err)
	}
	return nil
}

// LeaseInfo describes the workspace's lease.
type LeaseInfo struct {
	Holder   string
	Command  string
	Epoch    int64
	Since    time.Time
	Live     bool
	Released bool
	Left     time.Duration
}

// Lease reads the workspace's lease (nil when it was never taken).
func (s *Store) Lease(ctx context.Context) (*LeaseInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var li LeaseInfo
	var left float64
	var info string
	err := s.pool.QueryRow(ctx, `SELECT holder, epoch, acquired_at, expires_at > now(), released,
		greatest(extract(epoch FROM expires_at - now()), 0) * 1000, holder_info::text FROM convsync.lease WHERE workspace = $1`, s.ws).Scan(
		&li.Holder, &li.Epoch, &li.Since, &li.Live, &li.Released, &left, &info)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail("reading the lease of", err)
	}
	var hi HolderInfo
	_ = json.Unmarshal([]byte(info), &hi)
	li.Command, li.Left = hi.Command, time.Duration(left)*time.Millisecond
	return &li, nil
}

// ForceUnlock is the operator's way out of a lease whose holder is gone
// for good: it ends the lease and bumps the epoch, so that the old holder,
// should it still be alive, has every later write and renewal refused.
// It returns the lease as it was, and the new epoch.
func (s *Store) ForceUnlock(ctx context.Context, by string) (*LeaseInfo, int64, error) {
	return s.ForceUnlockEpoch(ctx, by, 0)
}

// ErrEpochMoved refuses a force-unlock of an epoch the lease is no longer at.
var ErrEpochMoved = errors.New("the lease is no longer at the epoch given: nothing was changed")

// ForceUnlockEpoch is ForceUnlock of the lease only if it is at epoch
// (0: whatever it is at), checked in the same statement as the bump, so a
// lease that changed hands since the operator read its epoch is left alone.
func (s *Store) ForceUnlockEpoch(ctx context.Context, by string, want int64) (*LeaseInfo, int64, error) {
	prev, err := s.Lease(ctx)
	if err != nil {
		return nil, 0, err
	}
	if prev == nil {
		return nil, 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var epoch int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, setLocal); err != nil {
			return err
		}
		// released stays false: the old holder may still have requests in
		// flight, so the next leader waits its quarantine.
		return tx.QueryRow(ctx, `UPDATE convsync.lease SET epoch = epoch + 1, holder = $2, expires_at = now(), released = false,
			holder_info = '{"command":"convsync state force-unlock"}' WHERE workspace = $1 AND ($3 = 0 OR epoch = $3) RETURNING epoch`, s.ws, by, want).Scan(&epoch)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("state %s: %w (wanted epoch %d)", s.Path(), ErrEpochMoved, want)
	}
	if err != nil {
		return nil, 0, s.fail("forcing the lease of", err)
	}
	return prev, epoch, nil
}

func isHeld(err error) bool {
	var held *leader.HeldError
	return errors.As(err, &held)
}
