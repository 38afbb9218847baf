package twilioapi

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RequestGuard decides, for every HTTP attempt, whether it may be sent and
// by when it must be over: the daemon's leadership (leader.Elector), so that
// a process that may have lost its lease stops talking to Twilio before a
// stand-by can take over. The client knows nothing of leases.
type RequestGuard interface {
	// RequestDeadline returns the time by which the attempt must be done
	// (zero: no limit), or an error when none may start now.
	RequestDeadline() (time.Time, error)
}

// ErrNotSent wraps a guard's refusal: nothing reached Twilio, so even a
// create may be sent again by whoever holds the lease.
var ErrNotSent = errors.New("not sent")

// errPastDeadline is the send-time check's refusal. A context deadline
// alone is not enough: after a process pause (SIGSTOP, a VM freeze) Go may
// run the sending goroutine before the deadline's timer cancels the
// context, so the transport compares the clock itself just before sending.
var errPastDeadline = errors.New("the lease deadline passed before the request could be sent")

// guardAttempt asks the guard before an attempt, and narrows the attempt's
// context to the guard's deadline.
func (c *Client) guardAttempt(actx context.Context, method, route string) (context.Context, context.CancelFunc, time.Time, error) {
	if c.cfg.Guard == nil {
		return actx, func() {}, time.Time{}, nil
	}
	deadline, err := c.cfg.Guard.RequestDeadline()
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("%s %s: %w: %w", method, route, ErrNotSent, err)
	}
	if deadline.IsZero() { // the guard sets no limit now (nothing is leased)
		return actx, func() {}, time.Time{}, nil
	}
	ctx, cancel := context.WithDeadline(actx, deadline)
	return ctx, cancel, deadline, nil
}
