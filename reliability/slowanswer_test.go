package reliability

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
)

// lateCreates holds every conversation create for delay, then carries it
// out (the caller may be gone by then: Twilio finishes what reached it) and
// answers if anyone still listens. Everything else passes at once.
type lateCreates struct {
	delay   time.Duration
	held    atomic.Int64
	pending sync.WaitGroup // creates not carried out yet
}

func isConversationCreate(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/Conversations")
}

func (l *lateCreates) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !isConversationCreate(r) {
		next.ServeHTTP(w, r)
		return
	}
	l.held.Add(1)
	l.pending.Add(1)
	detached := r.WithContext(context.WithoutCancel(r.Context()))
	if err := detached.ParseForm(); err != nil { // read the body while the connection is open
		l.pending.Done()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	time.AfterFunc(l.delay, func() { // injected server slowness, not synchronisation
		defer l.pending.Done()
		next.ServeHTTP(rec, detached)
		close(done)
	})
	select {
	case <-done:
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	case <-r.Context().Done(): // the caller gave up; the create still lands
	}
}

// TestSlowAnswerMatrix: 20 conversations without unique_name (nothing but
// recognition tells a create's result from another) and 4 with one,
// timeouts.create 1s,
// and Twilio carrying every conversation create out only after 1×, 1.5× and
// 3× that timeout. One apply must leave exactly one conversation per spec
// (a create that landed late is found before the next attempt, or deleted as
// convsync's own duplicate if it lands after it), and the next plan must
// show no changes.
func TestSlowAnswerMatrix(t *testing.T) {
	const timeout = time.Second
	var summary []string
	for _, factor := range []float64{1, 1.5, 3} {
		t.Run(fmt.Sprintf("%gx", factor), func(t *testing.T) {
			e := newEnv(t, emulator.Faults{})
			e.writeSpec("services.yaml", "kind: Service\nname: s\nfriendly_name: Slow\n")
			var b strings.Builder
			for i := range 20 {
				fmt.Fprintf(&b, "---\nkind: Conversation\nname: c%02d\nservice: s\nfriendly_name: Room %d\nattributes: {n: %d}\ntimeouts: {create: %s}\n", i, i, i, timeout)
			}
			for i := range 4 { // and a few with a unique_name, which Twilio keeps unique
				fmt.Fprintf(&b, "---\nkind: Conversation\nname: named%d\nservice: s\nunique_name: named-%d\ntimeouts: {create: %s}\n", i, i, timeout)
			}
			e.writeSpec("conversations.yaml", b.String())
			late := &lateCreates{delay: time.Duration(factor * float64(timeout))}
			e.setHook(late.serve)

			started := time.Now()
			r := e.run("apply", "--auto-approve")
			took := time.Since(started)
			if r.code != 0 {
				t.Errorf("apply: %s", r)
			}
			late.pending.Wait() // every create the apply sent has landed by now
			e.setHook(nil)
			a := e.check(desired(t, e))
			deletes := e.emu.Stats().ByRoute["DELETE /v1/Services/{ServiceSid}/Conversations/{Sid}"]
			line := fmt.Sprintf("creates answered after %.1fx the timeout: apply %s (exit %d), creates sent %d, late duplicates deleted %d, conversations checked %d, duplicates %d, orphans %d",
				factor, took.Round(100*time.Millisecond), r.code, late.held.Load(), deletes, a.resources-1, a.duplicates, a.orphans)
			t.Log(line)
			summary = append(summary, line)
			e.mustConverge(a)
		})
	}
	t.Logf("slow-answer matrix:\n  %s", strings.Join(summary, "\n  "))
}

// TestLateCreatesBeyondTheWatchAreReported: creates that land long after
// every attempt gave up (8× the timeout) cannot be told apart from a
// resource someone else made at that moment until they appear; the apply
// fails (keeping the intents), and the next plan adopts one per spec and
// reports every other copy instead of hiding it.
func TestLateCreatesBeyondTheWatchAreReported(t *testing.T) {
	const timeout = 500 * time.Millisecond
	e := newEnv(t, emulator.Faults{})
	e.writeSpec("services.yaml", "kind: Service\nname: s\nfriendly_name: Slow\n")
	var b strings.Builder
	for i := range 3 {
		fmt.Fprintf(&b, "---\nkind: Conversation\nname: c%02d\nservice: s\nfriendly_name: Room %d\ntimeouts: {create: %s}\n", i, i, timeout)
	}
	e.writeSpec("conversations.yaml", b.String())
	late := &lateCreates{delay: 8 * timeout}
	e.setHook(late.serve)
	if r := e.run("apply", "--auto-approve"); r.code != 1 || !strings.Contains(r.stderr, "the intent stays in the state") {
		t.Fatalf("apply: %s", r)
	}
	late.pending.Wait()
	e.setHook(nil)
	r := e.must(0, "plan", "--json")
	copies := strings.Count(r.stdout, "is possibly created by convsync")
	extra := int(late.held.Load()) - 3
	if extra <= 0 || copies != extra {
		t.Fatalf("%d creates landed for 3 specs, but the plan reports %d copies:\n%s", late.held.Load(), copies, r.stdout)
	}
	if !strings.Contains(r.stdout, `"action": "adopt"`) {
		t.Errorf("the plan does not adopt the creates' results:\n%s", r.stdout)
	}
	t.Logf("creates landing after 8x the timeout: %d landed for 3 specs; the plan adopts 3 and reports %d copies (0 unreported)", late.held.Load(), copies)
}
