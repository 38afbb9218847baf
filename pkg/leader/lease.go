package leader

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Lessor is the store of one lease: a row with a holder, an expiry on the
// store's own clock and a fencing epoch that grows by one on every
// acquisition and is never reused (pgstate.Store implements it).
type Lessor interface {
	// Acquire takes the lease for holder for ttl if it is free (never held,
	// released, or expired); otherwise it returns a *HeldError.
	Acquire(ctx context.Context, holder string, ttl time.Duration) (Grant, error)
	// Renew extends holder's lease at epoch by ttl from the store's now. It
	// returns ErrLost when the lease is no longer holder's at epoch (it
	// expired, or someone took it or forced it open): renewal never
	// resurrects an expired lease.
	Renew(ctx context.Context, holder string, epoch int64, ttl time.Duration) error
	// Release ends holder's lease at epoch at once, marking it released
	// cleanly (the next holder needs no quarantine).
	Release(ctx context.Context, holder string, epoch int64) error
}

// Grant is an acquired lease.
type Grant struct {
	Epoch int64
	// PreviousReleased: the previous holder released the lease cleanly
	// (or there was none), so none of its Twilio requests can still be in
	// flight.
	PreviousReleased bool
	PreviousHolder   string
}

// ErrLost means the lease is no longer ours.
var ErrLost = errors.New("the lease is no longer held by this process")

// HeldError says who holds the lease.
type HeldError struct {
	Name      string // what the lease guards, for the message (state URL and workspace)
	Holder    string
	Command   string
	Epoch     int64
	Since     time.Time
	ExpiresIn time.Duration
	Waited    time.Duration
}

func (e *HeldError) Error() string {
	cmd := ""
	if e.Command != "" {
		cmd = fmt.Sprintf(" (%s)", e.Command)
	}
	return fmt.Sprintf("state %s is leased by %s%s since %s, epoch %d; its lease runs %s more unless renewed; gave up after waiting %s",
		e.Name, e.Holder, cmd, e.Since.UTC().Format(time.RFC3339), e.Epoch, e.ExpiresIn.Round(time.Millisecond), e.Waited.Round(time.Millisecond))
}
