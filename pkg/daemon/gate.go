package daemon

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convsync/convsync/pkg/planner"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// ErrStopping is returned for Twilio calls refused because the daemon is
// stopping: nothing was sent.
var ErrStopping = errors.New("convsync is stopping: this Twilio call was not sent")

// Gate wraps the Twilio API so that, once the daemon starts to stop, no new
// call is sent while calls already in flight run to their end (their context
// is not cancelled). The pass in progress then finishes quickly, with every
// change Twilio confirmed recorded in the state.
type Gate struct {
	api    twilioapi.API
	closed atomic.Bool
	// onCall is told when a call returns (the loop's heartbeat).
	onCall atomic.Pointer[func()]
	// stopping is closed by Close: an apply given it (apply.Options.Stop)
	// starts no new step, and reports the rest as not started rather than
	// as failed calls.
	stopping  chan struct{}
	closeOnce sync.Once
}

var (
	_ twilioapi.API          = (*Gate)(nil)
	_ planner.DayRangeLister = (*Gate)(nil)
)

// NewGate wraps api.
func NewGate(api twilioapi.API) *Gate { return &Gate{api: api, stopping: make(chan struct{})} }

// Close refuses every later call with ErrStopping.
func (g *Gate) Close() {
	g.closed.Store(true)
	g.closeOnce.Do(func() { close(g.stopping) })
}

// Stopping is closed when the gate closes; pass it as apply.Options.Stop.
func (g *Gate) Stopping() <-chan struct{} { return g.stopping }

func (g *Gate) setOnCall(f func()) { g.onCall.Store(&f) }

func (g *Gate) enter() error {
	if g.closed.Load() {
		return ErrStopping
	}
	return nil
}

func (g *Gate) leave() { g.Heartbeat() }

// Heartbeat tells the loop that Twilio work is progressing. Every call's
// end does; the client's per-attempt hook should too, so that one long
// call (a big service listed page after page) does not look like a hang to
// the systemd watchdog.
func (g *Gate) Heartbeat() {
	if g == nil {
		return
	}
	if f := g.onCall.Load(); f != nil {
		(*f)()
	}
}

// ListCreatedBetween forwards the client's day-range lists (see
// planner.DayRangeLister), so the daemon reads big services as concurrent
// ranges too. A client without them is answered from a full list.
func (g *Gate) ListCreatedBetween(ctx context.Context, kind resource.Kind, parentSID string, firstDay, lastDay time.Time) ([]resource.Observed, error) {
	if err := g.enter(); err != nil {
		return nil, err
	}
	defer g.leave()
	if dl, ok := g.api.(planner.DayRangeLister); ok {
		return dl.ListCreatedBetween(ctx, kind, parentSID, firstDay, lastDay)
	}
	all, err := g.api.List(ctx, kind, parentSID)
	if err != nil {
		return nil, err
	}
	var out []resource.Observed
	for _, o := range all {
		day := o.DateCreated.UTC().Truncate(24 * time.Hour)
		if (!firstDay.IsZero() && day.Before(firstDay.UTC().Truncate(24*time.Hour))) || (!lastDay.IsZero() && day.After(lastDay.UTC().Truncate(24*time.Hour))) {
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

func (g *Gate) List(ctx context.Context, kind resource.Kind, parentSID string) ([]resource.Observed, error) {
	if err := g.enter(); err != nil {
		return nil, err
	}
	defer g.leave()
	return g.api.List(ctx, kind, parentSID)
}

func (g *Gate) Fetch(ctx context.Context, kind resource.Kind, parentSID, id string) (resource.Observed, error) {
	if err := g.enter(); err != nil {
		return resource.Observed{}, err
	}
	defer g.leave()
	return g.api.Fetch(ctx, kind, parentSID, id)
}

func (g *Gate) Create(ctx context.Context, kind resource.Kind, parentSID string, v resource.Values, o twilioapi.CallOptions) (resource.Observed, error) {
	if err := g.enter(); err != nil {
		return resource.Observed{}, err
	}
	defer g.leave()
	return g.api.Create(ctx, kind, parentSID, v, o)
}

func (g *Gate) Update(ctx context.Context, kind resource.Kind, parentSID, sid string, v resource.Values, o twilioapi.CallOptions) (resource.Observed, error) {
	if err := g.enter(); err != nil {
		return resource.Observed{}, err
	}
	defer g.leave()
	return g.api.Update(ctx, kind, parentSID, sid, v, o)
}

func (g *Gate) Delete(ctx context.Context, kind resource.Kind, parentSID, sid string, o twilioapi.CallOptions) error {
	if err := g.enter(); err != nil {
		return err
	}
	defer g.leave()
	return g.api.Delete(ctx, kind, parentSID, sid, o)
}
