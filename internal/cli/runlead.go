package cli

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/convsync/convsync/pkg/leader"
	"github.com/convsync/convsync/pkg/state/pgstate"
)

// daemonLeadership is daemon.Leadership over the PostgreSQL lease: a
// stand-by campaigns; on winning it reads the state again (so it sees every
// fenced write of its predecessor) and, when the predecessor did not hand
// over cleanly and left creates in flight, waits the quarantine before the
// first pass resolves them by recognition, as the file backend's next run
// does after a crash.
type daemonLeadership struct {
	el         *leader.Elector
	store      *pgstate.Store
	quarantine time.Duration
	log        *zap.Logger
}

func (d *daemonLeadership) Lead(ctx context.Context) error {
	d.log.Info("standing by: another convsync may lead this state; campaigning for its lease",
		zap.String("state", d.store.Path()), zap.String("holder", d.el.Holder()))
	for {
		g, err := d.el.Campaign(ctx)
		if err != nil {
			return err
		}
		if err := d.store.Reload(ctx); err != nil {
			// Leading on a state we could not read would be acting blind.
			d.log.Error("took the lease but could not read the state; handing it back", zap.Error(err))
			_ = d.el.Release(context.WithoutCancel(ctx))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d.el.Config().RetryPeriod):
			}
			continue
		}
		n := d.store.PendingBefore(g.Epoch)
		if n > 0 && !g.PreviousReleased && d.quarantine > 0 {
			d.log.Warn("the previous leader did not hand over cleanly and left creates in flight: waiting the quarantine before resolving them (a request it sent may still land at Twilio)",
				zap.Int("pending_creates", n), zap.String("previous_holder", g.PreviousHolder), zap.Duration("quarantine", d.quarantine))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-d.el.Lost():
				return leader.ErrLost
			case <-time.After(d.quarantine):
			}
		}
		// Whatever the predecessor sent has landed by now (or nothing of
		// its was in flight): a later clean release may say so.
		d.store.Settle()
		return nil
	}
}

func (d *daemonLeadership) Lost() <-chan struct{}             { return d.el.Lost() }
func (d *daemonLeadership) Release(ctx context.Context) error { return d.el.Release(ctx) }
func (d *daemonLeadership) Status() leader.Status             { return d.el.Status() }
