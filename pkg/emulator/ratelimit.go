package emulator

import (
	"math"
	"time"
)

// tokenBucket allows rate actions per second with a burst of one second's worth.
// It reads the server's clock, so tests with a fake clock are deterministic.
type tokenBucket struct {
	tokens  float64
	last    time.Time
	started bool
}

// take spends one token if there is one; otherwise it reports how many whole
// seconds to wait (at least 1) for the next.
func (b *tokenBucket) take(now time.Time, rate float64) (ok bool, retryAfter int) {
	capacity := math.Max(rate, 1)
	if !b.started {
		b.tokens, b.last, b.started = capacity, now, true
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(capacity, b.tokens+elapsed*rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := int(math.Ceil((1 - b.tokens) / rate))
	if wait < 1 {
		wait = 1
	}
	return false, wait
}
