package daemon

import (
	"context"
	"time"
)

// Debounce calls fire once the events have been quiet for quiet, or once
// maxWait has passed since the first event not yet fired, whichever comes
// first. The quiet time keeps convsync from reading a folder in the middle
// of a burst (git checkout, an editor's write-then-rename); the maximum wait
// keeps a steady stream of events from postponing the work for ever.
// It returns when ctx is done or events is closed.
func Debounce(ctx context.Context, events <-chan struct{}, quiet, maxWait time.Duration, fire func()) {
	if maxWait < quiet {
		maxWait = quiet
	}
	var quietTimer, maxTimer *time.Timer
	var quietC, maxC <-chan time.Time
	disarm := func() {
		quietTimer.Stop()
		maxTimer.Stop()
		quietC, maxC = nil, nil
	}
	for {
		select {
		case <-ctx.Done():
			if quietTimer != nil {
				disarm()
			}
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			if quietTimer == nil {
				quietTimer, maxTimer = time.NewTimer(quiet), time.NewTimer(maxWait)
			} else {
				quietTimer.Reset(quiet)
			}
			if maxC == nil {
				maxTimer.Reset(maxWait)
				maxC = maxTimer.C
			}
			quietC = quietTimer.C
		case <-quietC:
			disarm()
			fire()
		case <-maxC:
			disarm()
			fire()
		}
	}
}
