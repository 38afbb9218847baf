package daemon

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestDebounce feeds event sequences on a fake clock (synctest) and checks
// when the work fires: after the quiet time, but never later than the
// maximum wait after the first event of a burst.
func TestDebounce(t *testing.T) {
	ms := time.Millisecond
	every := func(start, period time.Duration, n int) []time.Duration {
		var out []time.Duration
		for i := range n {
			out = append(out, start+time.Duration(i)*period)
		}
		return out
	}
	tests := []struct {
		name       string
		quiet, max time.Duration
		events     []time.Duration // since the start
		wantFires  []time.Duration // since the start
	}{
		{"one event fires after the quiet time", 200 * ms, 2 * time.Second, []time.Duration{0}, []time.Duration{200 * ms}},
		{"a burst (git checkout) fires once, after it ends", 200 * ms, 2 * time.Second, every(0, 10*ms, 50), []time.Duration{690 * ms}},
		{"an editor's write then rename fires once", 200 * ms, 2 * time.Second, []time.Duration{0, 1 * ms, 2 * ms, 3 * ms}, []time.Duration{203 * ms}},
		{"a stream that never goes quiet fires every max wait", 400 * ms, 1 * time.Second, every(10*ms, 300*ms, 10),
			[]time.Duration{1010 * ms, 2210 * ms, 3110 * ms}},
		{"two bursts apart fire twice", 200 * ms, 2 * time.Second, []time.Duration{0, 50 * ms, 1000 * ms, 1100 * ms}, []time.Duration{250 * ms, 1300 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				start := time.Now()
				events := make(chan struct{})
				var fires []time.Duration
				done := make(chan struct{})
				go func() {
					defer close(done)
					Debounce(ctx, events, tt.quiet, tt.max, func() { fires = append(fires, time.Since(start)) })
				}()
				for _, at := range tt.events {
					time.Sleep(at - time.Since(start)) // fake time: advances when every goroutine is blocked
					events <- struct{}{}
				}
				time.Sleep(tt.max + tt.quiet)
				synctest.Wait()
				cancel()
				<-done
				if !slices.Equal(fires, tt.wantFires) {
					t.Fatalf("fired at %v, want %v", fires, tt.wantFires)
				}
			})
		})
	}
}
