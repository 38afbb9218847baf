package reliability

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// injector is a fault-injecting wrapper around the emulator for faults the
// emulator itself does not have: answers slower than the caller's timeout,
// and connections reset before or after the write was carried out.
type injector struct {
	every   int64 // act on every n-th write (0: never)
	slow    bool  // hold the answer until the caller gives up
	reset   bool  // reset the connection
	writes  atomic.Int64
	counted atomic.Int64 // faults injected
}

func (in *injector) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	isWrite := r.Method == http.MethodPost || r.Method == http.MethodDelete
	if !isWrite || in.every == 0 {
		next.ServeHTTP(w, r)
		return
	}
	n := in.writes.Add(1)
	if n%in.every != 0 {
		next.ServeHTTP(w, r)
		return
	}
	in.counted.Add(1)
	// Twilio carries out what reached it even if the caller is gone.
	detached := r.WithContext(context.WithoutCancel(r.Context()))
	switch {
	case in.slow:
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, detached)
		<-r.Context().Done() // the answer arrives after the caller's timeout
	case in.reset:
		if (n/in.every)%2 == 0 {
			// Carried out, then the connection drops: a lost answer.
			next.ServeHTTP(httptest.NewRecorder(), detached)
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("the test server cannot hijack connections")
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			panic(err)
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // RST, not FIN
		}
		_ = conn.Close()
	}
}

// callCounter counts what the client's Observe hook reports.
type callCounter struct {
	mu          sync.Mutex
	attempts    int
	retries     int
	maxAttempt  int
	statusCount map[int]int
}

func (c *callCounter) observe(call twilioapi.Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.statusCount == nil {
		c.statusCount = map[int]int{}
	}
	c.attempts++
	c.statusCount[call.Status]++
	if call.Retried {
		c.retries++
	}
	c.maxAttempt = max(c.maxAttempt, call.Attempt)
}

// TestFaultMatrix applies a fleet of services and conversations in-process
// (engine, applier, real client over HTTP) while Twilio misbehaves in one way
// per case. Each case must converge within a few applies with exactly one
// resource per spec and no SID lost, and its retries must be bounded and
// visible both to the Observe hook and in the logs.
func TestFaultMatrix(t *testing.T) {
	tests := []struct {
		name    string
		faults  emulator.Faults
		inject  *injector
		extra   string // appended to every conversation spec
		applies int    // at most this many applies to converge
		// sameApply: the fault must be absorbed within the apply (retries,
		// adoption), with no step failing.
		sameApply bool
	}{
		{name: "429 bursts with Retry-After", faults: emulator.Faults{ActionsPerSecondPerService: 15}, applies: 1, sameApply: true},
		{name: "max in flight", faults: emulator.Faults{MaxInFlight: 3, Latency: 20 * time.Millisecond}, applies: 1, sameApply: true},
		{name: "500 before write", faults: emulator.Faults{Error500BeforeWrite: 0.3, Seed: 7}, applies: 3},
		{name: "500 after write (lost answers)", faults: emulator.Faults{Error500AfterWrite: 0.3, Seed: 11}, applies: 1, sameApply: true},
		{name: "answers slower than the create timeout", inject: &injector{every: 4, slow: true}, extra: "timeouts: {create: 300ms, update: 300ms, delete: 300ms}\n", applies: 3},
		{name: "connection resets", inject: &injector{every: 5, reset: true}, applies: 2},
	}
	var summary []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.faults)
			in := tc.inject
			if in == nil {
				in = &injector{}
			}
			e.setHook(in.serve)
			f := newFleet(2, 20)
			f.extra = tc.extra
			f.write(e)
			want := desired(t, e)

			core, logs := observer.New(zap.InfoLevel)
			var calls callCounter
			client, err := twilioapi.New(twilioapi.Config{
				AccountSID: accountSID, AuthToken: authToken, BaseURL: e.url,
				ActionsPerSecondPerService: -1, // let the faults through
				Logger:                     zap.New(core), Observe: calls.observe,
			})
			if err != nil {
				t.Fatal(err)
			}
			eng := &engine.Engine{API: client, Logger: zap.New(core)}
			sf, err := state.Open(e.state, state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer sf.Close()

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			applies, failedSteps := 0, 0
			for ; ; applies++ {
				plan, err := eng.Plan(ctx, want, "", sf.State(), nil)
				if err != nil {
					t.Fatalf("plan after %d applies: %v", applies, err)
				}
				if !plan.HasChanges() {
					break
				}
				if applies == tc.applies {
					t.Fatalf("not converged after %d applies; still planned: %v", applies, plan.Changes)
				}
				res := eng.Apply(ctx, sf, plan, apply.Options{Parallelism: 8})
				for _, s := range res.Failed() {
					failedSteps++
					t.Logf("apply %d: %s failed (expected under this fault; the next apply retries): %v", applies+1, s.Address, s.Err)
				}
			}
			if tc.sameApply && failedSteps > 0 {
				t.Errorf("%d steps failed; this fault must be absorbed within the apply", failedSteps)
			}
			a := e.check(want)
			if len(a.problems) > 0 || a.duplicates > 0 || a.orphans > 0 {
				t.Fatalf("after %d applies (%d duplicates, %d orphans):\n  %s", applies, a.duplicates, a.orphans, strings.Join(a.problems, "\n  "))
			}

			stats := e.emu.Stats()
			injected := stats.ByStatus["429"] + stats.ByStatus["500"] + in.counted.Load()
			if injected == 0 {
				t.Fatal("no fault was injected: the case tests nothing")
			}
			retryLogs := logs.FilterMessage("retrying Twilio request").Len()
			calls.mu.Lock()
			defer calls.mu.Unlock()
			if calls.maxAttempt > twilioapi.DefaultMaxAttempts {
				t.Errorf("an operation made %d attempts; the bound is %d", calls.maxAttempt, twilioapi.DefaultMaxAttempts)
			}
			if retryLogs != calls.retries {
				t.Errorf("%d retries reported to Observe but %d logged", calls.retries, retryLogs)
			}
			if calls.retries > 4*len(want) {
				t.Errorf("%d retries for %d resources: not bounded as promised", calls.retries, len(want))
			}
			line := fmt.Sprintf("%-40s faults injected %3d (429: %d, 500: %d, slow/reset: %d); attempts %d, retries %d (max %d per operation); applies %d, failed steps %d; resources %d, duplicates %d, orphans %d",
				tc.name, injected, stats.ByStatus["429"], stats.ByStatus["500"], in.counted.Load(), calls.attempts, calls.retries, calls.maxAttempt, applies, failedSteps, a.resources, a.duplicates, a.orphans)
			t.Log(line)
			summary = append(summary, line)
		})
	}
	t.Logf("fault matrix summary:\n  %s", strings.Join(summary, "\n  "))
}
