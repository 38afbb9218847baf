package ha

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// failoverBound is how long a stand-by may take to lead after a crash: the
// lease, plus a retry period with jitter, plus slack for a loaded machine.
var failoverBound = leaseDuration + leaseDuration*2/15*12/10 + 5*time.Second

// Matrix 1: replicas starting at once. Exactly one leads (epoch 1) and
// acts; the others are ready and send nothing to Twilio.
func TestReplicasStartingAtOnceOneLeads(t *testing.T) {
	c := newCluster(t)
	c.conversations(6, true)
	start := time.Now()
	rs := []*replica{c.start("a"), c.start("b"), c.start("c")}
	l := leader(t, 20*time.Second, rs...)
	c.converged(l, 30*time.Second)
	for _, r := range rs {
		if r == l {
			continue
		}
		rz, code, ok := r.status()
		if !ok || code != 200 || !rz.Ready || rz.Leadership.Role != "standby" {
			t.Fatalf("%s: /readyz %d %+v, want a ready stand-by", r.name, code, rz)
		}
		if rz.Leadership.Leader == "" {
			t.Errorf("%s: /readyz does not name the leader", r.name)
		}
		if reqs := r.requestsSince(start); len(reqs) != 0 {
			t.Fatalf("stand-by %s sent %d requests to Twilio (first %s %s)", r.name, len(reqs), reqs[0].method, reqs[0].path)
		}
		if m := r.metrics(); !strings.Contains(m, `convsync_leader{workspace="default"} 0`) {
			t.Errorf("%s: /metrics lacks convsync_leader 0", r.name)
		}
	}
	rz, _, _ := l.status()
	if rz.Leadership.Epoch != 1 {
		t.Errorf("leader's epoch %d, want 1", rz.Leadership.Epoch)
	}
	if m := l.metrics(); !strings.Contains(m, `convsync_leader{workspace="default"} 1`) || !strings.Contains(m, `convsync_lease_epoch{workspace="default"} 1`) {
		t.Errorf("leader's /metrics lacks convsync_leader 1 / convsync_lease_epoch 1")
	}
	c.mustAudit()
}

// Matrix 2: the leader is killed with SIGKILL. A stand-by leads within the
// lease (plus a retry period), at the next epoch, and acts on new specs.
func TestLeaderKilledAStandbyTakesOver(t *testing.T) {
	c := newCluster(t)
	c.conversations(4, true)
	a, b := c.start("a"), c.start("b")
	l := leader(t, 20*time.Second, a, b)
	c.converged(l, 30*time.Second)
	other := a
	if l == a {
		other = b
	}
	signal(t, l, syscall.SIGKILL)
	took := waitFor(t, failoverBound, "the stand-by leads after kill -9", other.leading)
	t.Logf("failover after kill -9: %s (lease %s)", took.Round(time.Millisecond), leaseDuration)
	rz, _, _ := other.status()
	if rz.Leadership.Epoch != 2 {
		t.Fatalf("new leader's epoch %d, want 2", rz.Leadership.Epoch)
	}
	c.conversations(6, true)
	c.converged(other, 30*time.Second)
	c.mustAudit()
}

// Matrix 3: SIGTERM hands over: the leader drains, releases the lease and
// exits 0; the stand-by leads at once, with no quarantine.
func TestSIGTERMHandsOver(t *testing.T) {
	c := newCluster(t)
	c.conversations(4, false)
	a, b := c.start("a"), c.start("b")
	l := leader(t, 20*time.Second, a, b)
	c.converged(l, 30*time.Second)
	other := a
	if l == a {
		other = b
	}
	signal(t, l, syscall.SIGTERM)
	took := waitFor(t, failoverBound, "the stand-by leads after SIGTERM", other.leading)
	t.Logf("hand-over after SIGTERM: %s (lease %s)", took.Round(time.Millisecond), leaseDuration)
	<-l.done
	if code := exitCode(l); code != 0 {
		t.Fatalf("the old leader exited %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(other.log(), `"previous_released":true`) {
		t.Fatal("the new leader did not find the lease released cleanly")
	}
	if !strings.Contains(l.log(), "released the state's lease") {
		t.Fatal("the old leader did not say it released the lease")
	}
}

// Matrix 17: the CLI against a workspace a daemon leads fails at once,
// naming the holder; with --lock-timeout it waits, then fails the same way.
func TestCLIApplyWhileADaemonLeads(t *testing.T) {
	c := newCluster(t)
	c.conversations(2, false)
	a := c.start("a")
	l := leader(t, 20*time.Second, a)
	c.converged(l, 30*time.Second)
	_, stderr, code := c.cli(30*time.Second, "apply", "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "leased by") || !strings.Contains(stderr, "convsync run") || !strings.Contains(stderr, "--lock-timeout") {
		t.Fatalf("apply while the daemon leads: exit %d\n%s", code, stderr)
	}
	_, stderr, code = c.cli(30*time.Second, "apply", "--auto-approve", "--lock-timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "gave up after waiting 1") {
		t.Fatalf("apply --lock-timeout 1s while the daemon leads: exit %d\n%s", code, stderr)
	}
	// Reading needs no lease.
	stdout, stderr, code := c.cli(30*time.Second, "state", "list")
	if code != 0 || !strings.Contains(stdout, "conversation.c000") {
		t.Fatalf("state list while the daemon leads: exit %d\n%s%s", code, stdout, stderr)
	}
}

// Matrix 16: force-unlock while the old leader lives: the epoch moves on,
// the old leader's renewal is refused, it stops acting and exits 1; the
// stand-by leads.
func TestForceUnlockWhileTheLeaderLives(t *testing.T) {
	c := newCluster(t)
	c.conversations(2, false)
	a, b := c.start("a"), c.start("b")
	l := leader(t, 20*time.Second, a, b)
	c.converged(l, 30*time.Second)
	other := a
	if l == a {
		other = b
	}
	stdout, stderr, code := c.cli(30*time.Second, "state", "force-unlock", "1")
	if code != 0 || !strings.Contains(stdout, "The epoch is now 2") {
		t.Fatalf("force-unlock: exit %d\n%s%s", code, stdout, stderr)
	}
	select {
	case <-l.done:
	case <-time.After(failoverBound):
		t.Fatal("the old leader still runs after force-unlock")
	}
	if code := exitCode(l); code != 1 || !strings.Contains(l.log(), "leadership lost") {
		t.Fatalf("old leader exited %d; want 1 with leadership lost", code)
	}
	waitFor(t, failoverBound, "the stand-by leads after force-unlock", other.leading)
	rz, _, _ := other.status()
	if rz.Leadership.Epoch != 3 {
		t.Fatalf("new leader's epoch %d, want 3 (1, force-unlock 2, takeover 3)", rz.Leadership.Epoch)
	}
}
