package leader

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults, as client-go's leader election.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Config configures an Elector. Zero durations take the defaults.
type Config struct {
	Lessor Lessor
	// Holder identifies this process in the lease; NewHolderID makes one.
	Holder string
	// LeaseDuration is how long a lease lasts after each renewal, on the
	// store's clock: a stand-by takes over at most this long after the
	// leader's last renewal.
	LeaseDuration time.Duration
	// RenewDeadline is how long after sending its last successful renewal
	// the leader still acts; it must be shorter than LeaseDuration, the
	// difference being the margin for clock rate differences.
	RenewDeadline time.Duration
	// RetryPeriod is the time between renewals, and between a stand-by's
	// attempts (with up to 20% jitter).
	RetryPeriod time.Duration
	// MinRequestBudget is the least lease time left for a Twilio request
	// to start (default RetryPeriod).
	MinRequestBudget time.Duration
	Logger           *zap.Logger
	// Now is the clock (monotonic); tests change its rate.
	Now func() time.Time
}

// ErrNotLeading refuses a Twilio request while this process does not lead.
var ErrNotLeading = errors.New("this convsync does not hold the state's lease: no Twilio request may be sent")

// LeaseTooShortError refuses a request that could not finish before the
// lease might pass to another process.
type LeaseTooShortError struct{ Left, Need time.Duration }

func (e *LeaseTooShortError) Error() string {
	return fmt.Sprintf("only %s of this convsync's lease is left (a request needs %s): not sent, as another convsync may take over the state before it ends",
		e.Left.Round(time.Millisecond), e.Need)
}

// Elector acquires and keeps one lease.
type Elector struct {
	cfg Config
	log *zap.Logger

	mu         sync.Mutex
	leading    bool
	epoch      int64
	grant      Grant
	validUntil time.Time
	lost       chan struct{}
	lostReason string
	stopRenew  context.CancelFunc
	renewDone  chan struct{}
	lastErr    error
	observed   *HeldError // the holder a stand-by last saw

	renewFailures atomic.Int64
}

// New checks cfg and returns an Elector.
func New(cfg Config) (*Elector, error) {
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = min(DefaultRenewDeadline, cfg.LeaseDuration*2/3)
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = min(DefaultRetryPeriod, cfg.RenewDeadline/5)
	}
	if cfg.MinRequestBudget == 0 {
		cfg.MinRequestBudget = cfg.RetryPeriod
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Holder == "" {
		cfg.Holder = NewHolderID()
	}
	if !(cfg.LeaseDuration > cfg.RenewDeadline && float64(cfg.RenewDeadline) > 1.2*float64(cfg.RetryPeriod) && cfg.RetryPeriod > 0) {
		return nil, fmt.Errorf("lease timings %s / renew deadline %s / retry period %s: they must satisfy lease > renew deadline > 1.2 × retry period > 0",
			cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod)
	}
	if cfg.MinRequestBudget >= cfg.RenewDeadline {
		return nil, fmt.Errorf("the minimum request budget %s must be shorter than the renew deadline %s", cfg.MinRequestBudget, cfg.RenewDeadline)
	}
	return &Elector{cfg: cfg, log: cfg.Logger, lost: make(chan struct{})}, nil
}

// NewHolderID names this process: host, pid and a random part, new on
// every start, so a restarted process never mistakes an old lease for its own.
func NewHolderID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = cryptorand.Read(b[:])
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

// Holder is this process's identity in the lease.
func (e *Elector) Holder() string { return e.cfg.Holder }

// Config returns the timings in force.
func (e *Elector) Config() Config { return e.cfg }

// TryAcquire makes one attempt. A lease held by another process gives a
// *HeldError.
func (e *Elector) TryAcquire(ctx context.Context) (Grant, error) {
	sent := e.cfg.Now()
	g, err := e.cfg.Lessor.Acquire(ctx, e.cfg.Holder, e.cfg.LeaseDuration)
	e.mu.Lock()
	defer e.mu.Unlock()
	var held *HeldError
	switch {
	case errors.As(err, &held):
		e.observed, e.lastErr = held, nil
		return Grant{}, err
	case err != nil:
		e.lastErr = err
		return Grant{}, err
	}
	e.lastErr, e.observed = nil, nil
	e.leading, e.epoch, e.grant = true, g.Epoch, g
	e.validUntil = sent.Add(e.cfg.RenewDeadline)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopRenew, e.renewDone = cancel, make(chan struct{})
	go e.keep(rctx, g.Epoch, e.renewDone)
	e.log.Info("leading: the state's lease is ours", zap.Int64("epoch", g.Epoch), zap.String("holder", e.cfg.Holder),
		zap.Bool("previous_released", g.PreviousReleased), zap.String("previous_holder", g.PreviousHolder))
	return g, nil
}

// AcquireWithin tries until it succeeds or wait has passed (0: once),
// every RetryPeriod. The CLI's --lock-timeout.
func (e *Elector) AcquireWithin(ctx context.Context, wait time.Duration) (Grant, error) {
	start := e.cfg.Now()
	for {
		g, err := e.TryAcquire(ctx)
		var held *HeldError
		if err == nil || !errors.As(err, &held) {
			return g, err
		}
		waited := e.cfg.Now().Sub(start)
		if waited >= wait {
			held.Waited = waited
			return Grant{}, held
		}
		select {
		case <-ctx.Done():
			held.Waited = waited
			return Grant{}, held
		case <-time.After(min(e.jitter(), wait-waited)):
		}
	}
}

// Campaign tries until this process leads or ctx ends (a stand-by).
func (e *Elector) Campaign(ctx context.Context) (Grant, error) {
	for {
		g, err := e.TryAcquire(ctx)
		if err == nil {
			return g, nil
		}
		var held *HeldError
		if !errors.As(err, &held) {
			e.log.Warn("could not reach the state to take the lease; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return Grant{}, ctx.Err()
		case <-time.After(e.jitter()):
		}
	}
}

func (e *Elector) jitter() time.Duration {
	return time.Duration(float64(e.cfg.RetryPeriod) * (1 + 0.2*rand.Float64()))
}

// keep renews every RetryPeriod, while a watchdog of its own steps down
// at validUntil: a renewal that hangs (a network silently cut) must not
// hold the watchdog back.
func (e *Elector) keep(ctx context.Context, epoch int64, done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchdogDone := make(chan struct{})
	go func() {
		defer close(watchdogDone)
		e.watchdog(ctx, epoch)
		cancel() // lost: stop renewing
	}()
	defer func() { <-watchdogDone }()
	tick := time.NewTicker(e.cfg.RetryPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			sent := e.cfg.Now()
			rctx, cancel := context.WithTimeout(ctx, e.cfg.RetryPeriod)
			err := e.cfg.Lessor.Renew(rctx, e.cfg.Holder, epoch, e.cfg.LeaseDuration)
			cancel()
			switch {
			case err == nil:
				e.mu.Lock()
				if e.leading && e.epoch == epoch {
					e.validUntil = sent.Add(e.cfg.RenewDeadline)
					e.lastErr = nil
				}
				e.mu.Unlock()
			case errors.Is(err, ErrLost):
				e.lose(epoch, "the lease was taken over or forced open (renewal refused); stepping down")
				return
			case ctx.Err() != nil:
				return
			default:
				e.renewFailures.Add(1)
				e.mu.Lock()
				e.lastErr = err
				e.mu.Unlock()
				e.log.Warn("renewing the lease failed; retrying until the renew deadline", zap.Error(err), zap.Duration("lease_left", e.untilValidEnd()))
			}
		}
	}
}

// watchdog returns when ctx ends, or steps down once validUntil has
// passed without a renewal moving it.
func (e *Elector) watchdog(ctx context.Context, epoch int64) {
	timer := time.NewTimer(e.untilValidEnd())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			if left := e.untilValidEnd(); left > 0 {
				timer.Reset(left)
				continue
			}
			e.lose(epoch, "the lease could not be renewed in time (local lease deadline passed); stepping down")
			return
		}
	}
}

func (e *Elector) untilValidEnd() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.validUntil.Sub(e.cfg.Now())
}

func (e *Elector) lose(epoch int64, reason string) {
	e.mu.Lock()
	if !e.leading || e.epoch != epoch {
		e.mu.Unlock()
		return
	}
	e.leading = false
	e.lostReason = reason
	close(e.lost)
	e.mu.Unlock()
	e.log.Error("leadership lost: "+reason, zap.Int64("epoch", epoch))
}

// Lost is closed when leadership is lost involuntarily (never by Release).
func (e *Elector) Lost() <-chan struct{} { return e.lost }

// LostReason says why leadership was lost ("" if it was not).
func (e *Elector) LostReason() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lostReason
}

// Release stops renewing and ends the lease cleanly. Call it only once no
// Twilio request of this process is in flight.
func (e *Elector) Release(ctx context.Context) error {
	e.mu.Lock()
	stop, done := e.stopRenew, e.renewDone
	e.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	e.mu.Lock()
	leading, epoch := e.leading, e.epoch
	e.leading = false
	e.mu.Unlock()
	if !leading {
		return nil
	}
	if err := e.cfg.Lessor.Release(ctx, e.cfg.Holder, epoch); err != nil {
		return err
	}
	e.log.Info("released the state's lease", zap.Int64("epoch", epoch))
	return nil
}

// RequestDeadline implements twilioapi.RequestGuard: the time by which a
// Twilio request must be sent and done, or why none may start now.
func (e *Elector) RequestDeadline() (time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading {
		return time.Time{}, ErrNotLeading
	}
	if left := e.validUntil.Sub(e.cfg.Now()); left < e.cfg.MinRequestBudget {
		return time.Time{}, &LeaseTooShortError{Left: left, Need: e.cfg.MinRequestBudget}
	}
	return e.validUntil, nil
}

// Status is what /readyz and /metrics show of leadership.
type Status struct {
	Role   string `json:"role"` // leader | standby
	Holder string `json:"holder"`
	Epoch  int64  `json:"epoch,omitempty"`
	// Leader is who leads, as a stand-by last saw it.
	Leader          string  `json:"leader,omitempty"`
	LeaderEpoch     int64   `json:"leader_epoch,omitempty"`
	LeaseLeftSecond float64 `json:"lease_left_seconds,omitempty"`
	LastError       string  `json:"last_error,omitempty"`
	RenewFailures   int64   `json:"renew_failures"`
}

// Status reports this process's role.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Status{Role: "standby", Holder: e.cfg.Holder, RenewFailures: e.renewFailures.Load()}
	if e.lastErr != nil {
		s.LastError = e.lastErr.Error()
	}
	if e.leading {
		s.Role, s.Epoch, s.Leader, s.LeaderEpoch = "leader", e.epoch, e.cfg.Holder, e.epoch
		s.LeaseLeftSecond = e.validUntil.Sub(e.cfg.Now()).Seconds()
	} else if e.observed != nil {
		s.Leader, s.LeaderEpoch = e.observed.Holder, e.observed.Epoch
	}
	return s
}

// Grant returns the last acquisition.
func (e *Elector) Grant() Grant {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.grant
}
