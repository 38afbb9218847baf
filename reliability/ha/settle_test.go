package ha

import (
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A leader killed with a create in flight ends its lease uncleanly. A CLI
// command that takes the lease after it and gives it back (here a state rm
// that finds nothing to remove) resolves nothing, so it must not pass the
// lease on as released cleanly: the next daemon still waits its quarantine
// before resolving the dead leader's creates.
func TestAnUncleanEndSurvivesACLICommandInBetween(t *testing.T) {
	c := newCluster(t)
	c.writeSpec("specs.yaml", "kind: Service\nname: support\nfriendly_name: Support\n")
	a := c.start("a")
	c.converged(leader(t, 20*time.Second, a), 30*time.Second)
	var mu sync.Mutex
	killed := false
	a.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if killed || !isCreate(r) {
			return false
		}
		killed = true // after the intent, before the request reaches Twilio
		_ = a.cmd.Process.Signal(syscall.SIGKILL)
		return true
	})
	c.conversations(2, true)
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the leader was never killed")
	}
	_, stderr, code := c.cli(30*time.Second, "state", "rm", "conversation.not-there", "--lock-timeout", "20s")
	if code != 1 || !strings.Contains(stderr, "is not in the state") {
		t.Fatalf("state rm: exit %d: %s", code, stderr)
	}
	b := c.start("b")
	waitFor(t, failoverBound+quarantine, "the next daemon leads", b.leading)
	if log := b.log(); !strings.Contains(log, "did not hand over cleanly") || strings.Contains(log, `"previous_released":true`) {
		t.Errorf("the next leader did not see the unclean end (the CLI command in between laundered it):\n%s", log)
	}
	c.converged(b, 30*time.Second)
	c.mustAudit()
}

// A CLI apply that takes the lease after a leader died with a create in
// flight waits the quarantine before resolving it, as a daemon taking the
// lead does (a request the dead leader sent may still land), then resolves
// it without a duplicate.
func TestCLIApplyAfterAnUncleanEndWaitsTheQuarantine(t *testing.T) {
	c := newCluster(t)
	c.writeSpec("specs.yaml", "kind: Service\nname: support\nfriendly_name: Support\n")
	a := c.start("a")
	c.converged(leader(t, 20*time.Second, a), 30*time.Second)
	var mu sync.Mutex
	killed := false
	a.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if killed || !isCreate(r) {
			return false
		}
		killed = true // after the intent, before the request reaches Twilio
		_ = a.cmd.Process.Signal(syscall.SIGKILL)
		return true
	})
	c.conversations(2, true)
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the leader was never killed")
	}
	_, stderr, code := c.cli(60*time.Second, "apply", "--auto-approve", "--lock-timeout", "20s", "--quarantine", quarantine.String())
	if code != 0 || !strings.Contains(stderr, "did not hand over cleanly") || !strings.Contains(stderr, "waiting "+quarantine.String()+" (--quarantine)") {
		t.Fatalf("apply after an unclean end: exit %d: %s", code, stderr)
	}
	c.mustAudit()
}
