package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// memLessor is a lease in memory, with the same rules as the database's.
type memLessor struct {
	mu       sync.Mutex
	holder   string
	epoch    int64
	expires  time.Time
	released bool
	down     bool // the store cannot be reached
}

func (m *memLessor) Acquire(_ context.Context, holder string, ttl time.Duration) (Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return Grant{}, errors.New("store unreachable")
	}
	now := time.Now()
	if m.holder != "" && now.Before(m.expires) {
		return Grant{}, &HeldError{Name: "test", Holder: m.holder, Epoch: m.epoch, ExpiresIn: m.expires.Sub(now)}
	}
	g := Grant{PreviousReleased: m.holder == "" || m.released, PreviousHolder: m.holder}
	m.epoch++
	m.holder, m.expires, m.released = holder, now.Add(ttl), false
	g.Epoch = m.epoch
	return g, nil
}

func (m *memLessor) Renew(_ context.Context, holder string, epoch int64, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("store unreachable")
	}
	if m.holder != holder || m.epoch != epoch || !time.Now().Before(m.expires) {
		return ErrLost
	}
	m.expires = time.Now().Add(ttl)
	return nil
}

func (m *memLessor) Release(_ context.Context, holder string, epoch int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holder == holder && m.epoch == epoch {
		m.expires, m.released = time.Now(), true
	}
	return nil
}

func (m *memLessor) set(f func(m *memLessor)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

func newElector(t *testing.T, l Lessor) *Elector {
	t.Helper()
	e, err := New(Config{Lessor: l, LeaseDuration: 900 * time.Millisecond, RenewDeadline: 600 * time.Millisecond, RetryPeriod: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Release(context.Background()) })
	return e
}

func waitLost(t *testing.T, e *Elector, within time.Duration) {
	t.Helper()
	select {
	case <-e.Lost():
	case <-time.After(within):
		t.Fatalf("still leading after %s", within)
	}
}

func TestOnlyOneOfTwoCandidatesLeads(t *testing.T) {
	l := &memLessor{}
	a, b := newElector(t, l), newElector(t, l)
	if _, err := a.TryAcquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := b.TryAcquire(context.Background())
	var held *HeldError
	if !errors.As(err, &held) || held.Holder != a.Holder() {
		t.Fatalf("second acquire: %v, want held by %s", err, a.Holder())
	}
	if _, err := b.RequestDeadline(); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("stand-by's request guard: %v, want ErrNotLeading", err)
	}
}

func TestLeaderStepsDownWhenTheStoreIsUnreachable(t *testing.T) {
	l := &memLessor{}
	e := newElector(t, l)
	if _, err := e.TryAcquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.set(func(m *memLessor) { m.down = true })
	start := time.Now()
	waitLost(t, e, 3*time.Second)
	// It must stop before the lease could pass to another: RenewDeadline,
	// not LeaseDuration, after its last renewal.
	if took := time.Since(start); took >= 900*time.Millisecond {
		t.Fatalf("stepped down after %s, not before the lease could expire", took)
	}
	if _, err := e.RequestDeadline(); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("request guard after stepping down: %v", err)
	}
}

func TestLeaderStepsDownWhenTheLeaseIsTaken(t *testing.T) {
	l := &memLessor{}
	e := newElector(t, l)
	if _, err := e.TryAcquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.set(func(m *memLessor) { m.epoch++; m.holder = "force-unlock" }) // an operator's force-unlock
	waitLost(t, e, 2*time.Second)
}

func TestRequestDeadlineEndsBeforeTheLeaseAndRefusesShortBudgets(t *testing.T) {
	l := &memLessor{}
	e := newElector(t, l)
	before := time.Now()
	if _, err := e.TryAcquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, err := e.RequestDeadline()
	if err != nil {
		t.Fatal(err)
	}
	if !d.Before(before.Add(900 * time.Millisecond)) {
		t.Fatalf("request deadline %v is not before the lease's end", d.Sub(before))
	}
	e.mu.Lock()
	e.validUntil = time.Now().Add(50 * time.Millisecond) // less than the 100ms budget
	e.mu.Unlock()
	var short *LeaseTooShortError
	if _, err := e.RequestDeadline(); !errors.As(err, &short) {
		t.Fatalf("with 50ms left: %v, want LeaseTooShortError", err)
	}
}

func TestReleaseHandsOverAtOnceWithoutQuarantine(t *testing.T) {
	l := &memLessor{}
	a, b := newElector(t, l), newElector(t, l)
	if _, err := a.TryAcquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	g, err := b.TryAcquire(context.Background())
	if err != nil || g.Epoch != 2 || !g.PreviousReleased {
		t.Fatalf("acquire after release: %+v, %v; want epoch 2, previous released", g, err)
	}
}

func TestTimingsAreChecked(t *testing.T) {
	for _, c := range []Config{
		{LeaseDuration: time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond},
		{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 2 * time.Second},
	} {
		c.Lessor = &memLessor{}
		if _, err := New(c); err == nil {
			t.Errorf("New(%v / %v / %v) accepted", c.LeaseDuration, c.RenewDeadline, c.RetryPeriod)
		}
	}
}

// rateClock runs at rate times real time from its start (a clock whose rate
// is off, as a VM's can be); real maps one of its readings back to real time.
func rateClock(rate float64) (now func() time.Time, real func(time.Time) time.Time) {
	start := time.Now()
	now = func() time.Time { return start.Add(time.Duration(float64(time.Since(start)) * rate)) }
	real = func(t time.Time) time.Time { return start.Add(time.Duration(float64(t.Sub(start)) / rate)) }
	return now, real
}

// Matrix 15: clock rate skew. The leader measures its lease on its own
// clock, the store on its own. While the leader's clock runs no slower than
// RenewDeadline/LeaseDuration (2/3) of the store's, the last moment the
// leader allows a request to run comes before its lease can expire in the
// store; a slower clock overlaps (the documented tolerance).
func TestClockRateSkewWithinTheRatioNeverOverlaps(t *testing.T) {
	for _, tc := range []struct {
		rate        float64
		wantOverlap bool
	}{
		{1.0, false},
		{0.7, false},
		{2.0, false}, // a fast clock only steps down early
		{0.6, true},
	} {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			now, real := rateClock(tc.rate)
			l := &memLessor{}
			e, err := New(Config{Lessor: l, LeaseDuration: 15 * time.Second, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Release(context.Background()) })
			if _, err := e.TryAcquire(context.Background()); err != nil {
				t.Fatal(err)
			}
			deadline, err := e.RequestDeadline()
			if err != nil {
				t.Fatal(err)
			}
			var expires time.Time
			l.set(func(m *memLessor) { expires = m.expires })
			// Every request ends by deadline on the leader's clock: in real
			// time, that is real(deadline).
			overlap := real(deadline).After(expires)
			if overlap != tc.wantOverlap {
				t.Fatalf("clock rate %.2f: the leader's last request may run until %s relative to the store's expiry (overlap %v, want %v)",
					tc.rate, real(deadline).Sub(expires).Round(time.Millisecond), overlap, tc.wantOverlap)
			}
		})
	}
}
