package daemon

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// loopTest runs a Loop on synctest's fake clock.
type loopTest struct {
	t       *testing.T
	specs   *fakeSpecs
	rec     *fakeReconciler
	metrics *Metrics
	loop    *Loop
	stop    context.CancelFunc
	done    chan struct{}
}

func startLoop(t *testing.T, configure func(*LoopOptions)) *loopTest {
	lt := &loopTest{t: t, specs: &fakeSpecs{}, rec: &fakeReconciler{maxDestroy: 5}, metrics: NewMetrics(), done: make(chan struct{})}
	lt.specs.write("h1", "a", "b")
	opts := LoopOptions{Dir: "specs", Load: lt.specs.load, Reconciler: lt.rec, Resync: 10 * time.Minute, Metrics: lt.metrics}
	if configure != nil {
		configure(&opts)
	}
	lt.loop = NewLoop(opts)
	stop, cancel := context.WithCancel(t.Context())
	lt.stop = cancel
	go func() {
		defer close(lt.done)
		lt.loop.Run(stop, context.WithoutCancel(stop), 0)
	}()
	t.Cleanup(func() { cancel(); <-lt.done })
	synctest.Wait()
	return lt
}

// settle lets every goroutine run until all wait (on the fake clock or a channel).
func (lt *loopTest) settle() { synctest.Wait() }

func (lt *loopTest) wantPasses(n int) []passCall {
	lt.t.Helper()
	got := lt.rec.passes()
	if len(got) != n {
		lt.t.Fatalf("%d passes, want %d: %+v", len(got), n, got)
	}
	return got
}

func TestFirstPassIsFullAndReadinessFollowsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := startLoop(t, nil)
		p := lt.wantPasses(1)[0]
		if !p.full || p.hash != "h1" || !slices.Equal(p.names, []string{"a", "b"}) || p.allowDestroy != -1 {
			t.Fatalf("first pass: %+v", p)
		}
		s := lt.loop.Status()
		if !s.Ready || s.LastPass.Trigger != TriggerStartup || s.LastPass.Outcome != OutcomeSuccess {
			t.Fatalf("status after the first pass: %+v", s)
		}
	})
}

func TestUnchangedSpecsNeedNoPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := startLoop(t, nil)
		lt.loop.Request(TriggerFile, false)
		lt.loop.Request(TriggerPoll, false)
		lt.settle()
		lt.wantPasses(1)

		lt.specs.write("h2", "a", "b", "c")
		lt.loop.Request(TriggerFile, false)
		lt.settle()
		p := lt.wantPasses(2)[1]
		if p.full || p.hash != "h2" {
			t.Fatalf("a file change must run an incremental pass of the new specs: %+v", p)
		}
	})
}

func TestTriggersDuringAPassCollapseIntoOneFollowUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := startLoop(t, nil)
		release := make(chan struct{})
		lt.rec.set(func(r *fakeReconciler) { r.block = release })
		lt.specs.write("h2", "a")
		lt.loop.Request(TriggerFile, false)
		lt.settle() // the pass is running, blocked
		lt.wantPasses(2)

		lt.specs.write("h3", "a", "z")
		for range 10 {
			lt.loop.Request(TriggerFile, false)
			lt.loop.Request(TriggerPoll, false)
		}
		lt.loop.Request(TriggerSignal, true)
		close(release)
		lt.settle()
		got := lt.wantPasses(3)
		if last := got[2]; !last.full || last.hash != "h3" {
			t.Fatalf("the follow-up pass must carry the newest specs and the full resync asked for: %+v", last)
		}
		if s := lt.loop.Status(); s.LastPass.Trigger != TriggerSignal {
			t.Fatalf("the collapsed pass is labelled %q, want the most significant trigger %q", s.LastPass.Trigger, TriggerSignal)
		}
	})
}

func TestBadSpecsKeepTheLastGoodSetInForce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := startLoop(t, nil)
		lt.specs.breakSyntax()
		lt.loop.Request(TriggerFile, false)
		lt.settle()
		lt.wantPasses(1)
		s := lt.loop.Status()
		if !s.Ready || s.Specs.LastReloadOK || !strings.Contains(s.Specs.LastReloadError, "specs.yaml:3") || s.Specs.Hash != "h1" {
			t.Fatalf("after a bad edit: ready=%v reload_ok=%v error=%q hash=%q; want ready, reload failed naming the file and line, last good hash h1",
				s.Ready, s.Specs.LastReloadOK, s.Specs.LastReloadError, s.Specs.Hash)
		}
		if got := metric(t, lt.metrics, MetricLastReloadOK, nil); got != 0 {
			t.Fatalf("%s = %v after a bad edit, want 0", MetricLastReloadOK, got)
		}

		// The periodic resync goes on with the last good specs: nothing is deleted.
		time.Sleep(10 * time.Minute)
		lt.settle()
		p := lt.wantPasses(2)[1]
		if !p.full || !slices.Equal(p.names, []string{"a", "b"}) {
			t.Fatalf("resync during a bad edit must use the last good specs: %+v", p)
		}

		lt.specs.write("h2", "a")
		lt.loop.Request(TriggerFile, false)
		lt.settle()
		lt.wantPasses(3)
		if got := metric(t, lt.metrics, MetricLastReloadOK, nil); got != 1 {
			t.Fatalf("%s = %v after the fix, want 1", MetricLastReloadOK, got)
		}
	})
}

func TestNoValidSpecsAtStartMeansNotReadyAndNoPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		specs := &fakeSpecs{}
		specs.breakSyntax()
		lt := startLoop(t, func(o *LoopOptions) { o.Load = specs.load })
		lt.wantPasses(0)
		if s := lt.loop.Status(); s.Ready || s.Specs.Loaded {
			t.Fatalf("status without valid specs: %+v", s)
		}
		specs.write("h1", "a")
		lt.loop.Request(TriggerFile, false)
		lt.settle()
		lt.wantPasses(1)
		if s := lt.loop.Status(); !s.Ready {
			t.Fatalf("not ready once the specs load: %+v", s.Reasons)
		}
	})
}

func TestDeletionGuardRefusesUntilAllowedForOnePass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := startLoop(t, nil)
		lt.rec.set(func(r *fakeReconciler) { r.destroys = 8 })
		lt.specs.write("h-empty") // a folder that looks empty for a moment
		lt.loop.Request(TriggerFile, false)
		lt.settle()
		s := lt.loop.Status()
		if s.LastPass.Outcome != OutcomeRefused || s.LastPass.Refused.Count != 8 || s.LastPass.Refused.Limit != 5 || !s.Ready {
			t.Fatalf("refused pass: %+v (ready %v)", s.LastPass, s.Ready)
		}
		if got := metric(t, lt.metrics, MetricRefusedPasses, nil); got != 1 {
			t.Fatalf("%s = %v, want 1", MetricRefusedPasses, got)
		}
		// The same specs again: no new pass, so no new refusal to log.
		lt.loop.Request(TriggerPoll, false)
		lt.settle()
		lt.wantPasses(2)

		// Too small an allowance is refused too.
		if r := <-lt.loop.AllowDestroy(3); r.Outcome != OutcomeRefused {
			t.Fatalf("allow-destroy 3 for 8 deletions: %+v", r)
		}
		r := <-lt.loop.AllowDestroy(8)
		if r.Outcome != OutcomeSuccess || r.Counts["delete"] != 8 || r.AllowedDestroys != 8 {
			t.Fatalf("allow-destroy 8: %+v", r)
		}
		got := lt.wantPasses(4)
		if got[2].allowDestroy != 3 || got[3].allowDestroy != 8 {
			t.Fatalf("allowances passed to the reconciler: %d, %d", got[2].allowDestroy, got[3].allowDestroy)
		}
		// The allowance is used up: the next pass has the normal limit.
		lt.specs.write("h3", "x")
		lt.loop.Request(TriggerFile, false)
		lt.settle()
		if p := lt.wantPasses(5)[4]; p.allowDestroy != -1 {
			t.Fatalf("the allowance outlived its pass: %+v", p)
		}
	})
}

func TestResyncTimerRunsFullPasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := startLoop(t, func(o *LoopOptions) { o.Resync = time.Minute })
		time.Sleep(30 * time.Second)
		lt.specs.write("h2", "a")
		lt.loop.Request(TriggerFile, false)
		lt.settle()
		time.Sleep(30*time.Second + time.Millisecond)
		lt.settle()
		got := lt.wantPasses(3)
		if got[1].full || !got[2].full {
			t.Fatalf("want an incremental pass for the edit, then a full resync a minute after the start: %+v", got)
		}
		if lt.loop.Status().LastPass.Trigger != TriggerResync {
			t.Fatalf("last trigger %q", lt.loop.Status().LastPass.Trigger)
		}
	})
}

func TestBackoffExpiryTriggersAPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := startLoop(t, nil)
		lt.rec.set(func(r *fakeReconciler) { r.retryAt = time.Now().Add(7 * time.Second) })
		lt.loop.Request(TriggerPoll, false) // wakes the loop so it sees the new retry time; unchanged: no pass
		lt.settle()
		lt.wantPasses(1)
		time.Sleep(7*time.Second + time.Millisecond)
		lt.settle()
		if p := lt.wantPasses(2)[1]; p.full {
			t.Fatalf("a retry is not a full refresh: %+v", p)
		}
		if lt.loop.Status().LastPass.Trigger != TriggerRetry {
			t.Fatalf("trigger %q, want retry", lt.loop.Status().LastPass.Trigger)
		}
	})
}

func TestWholesaleFailureMakesUnreadyAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := startLoop(t, func(o *LoopOptions) { o.RetryBase, o.RetryMax = 4*time.Second, time.Minute })
		lt.rec.set(func(r *fakeReconciler) { r.err = errTwilioDown })
		lt.loop.Request(TriggerSignal, true)
		lt.settle()
		s := lt.loop.Status()
		if s.Ready || s.LastPass.Outcome != OutcomeError || !strings.Contains(strings.Join(s.Reasons, " "), "connection refused") {
			t.Fatalf("after a failed pass: %+v", s)
		}
		// Retried within the backoff (between half and all of 4s), with the same specs.
		lt.rec.set(func(r *fakeReconciler) { r.err = nil })
		time.Sleep(4*time.Second + time.Millisecond)
		lt.settle()
		lt.wantPasses(3)
		if s := lt.loop.Status(); !s.Ready {
			t.Fatalf("not ready after a good pass: %v", s.Reasons)
		}
	})
}

func TestStopWaitsForThePassInFlightAndTakesNoNewWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := startLoop(t, nil)
		release := make(chan struct{})
		lt.rec.set(func(r *fakeReconciler) { r.block = release })
		lt.specs.write("h2", "a")
		lt.loop.Request(TriggerFile, false)
		lt.settle()
		lt.stop()
		lt.specs.write("h3", "b")
		lt.loop.Request(TriggerFile, false)
		lt.settle()
		select {
		case <-lt.done:
			t.Fatal("the loop returned while a pass was in flight")
		default:
		}
		close(release)
		<-lt.done
		lt.wantPasses(2)
	})
}
