package ha

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func isUpdate(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/Conversations/CH")
}

func isCreate(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Conversations")
}

// Matrix 4 and 5: the leader is paused (SIGSTOP, as a GC pause or a VM
// freeze would) past its lease, with a create held at a chosen point. A
// stand-by takes over; on resume the old leader sends nothing more (its
// requests are capped at its lease and checked again at send time), its
// stale result write is refused, it steps down and exits 1; the new leader
// resolves the create in flight by recognition, so nothing is duplicated.
func TestPausedLeaderSendsNothingStale(t *testing.T) {
	for _, tc := range []struct {
		name string
		// forwardFirst: the create reaches Twilio before the pause (paused
		// between Twilio's 201 and the result write); otherwise it is held
		// before Twilio and lands late, after the takeover (paused between
		// the intent and the request: the unique_name refuses the copy).
		forwardFirst bool
		// updates: hold an update instead of a create. Updates have no
		// intent write before them, so after the held one only the lease
		// guard (deadline capped at the lease, checked at send time) keeps
		// the next one from reaching Twilio.
		updates bool
	}{
		{"paused after Twilio created it", true, false},
		{"paused between the intent and the request", false, false},
		{"paused in the middle of updates", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			// One step at a time: when the held create returns, the next
			// one is about to be sent, and only the lease guard stops it.
			c.extra = []string{"--parallelism", "1"}
			if tc.updates {
				c.conversations(6, false)
			} else {
				c.writeSpec("specs.yaml", "kind: Service\nname: support\nfriendly_name: Support\n")
			}
			a, b := c.start("a"), c.start("b")
			l := leader(t, 20*time.Second, a, b)
			c.converged(l, 30*time.Second)
			other := a
			if l == a {
				other = b
			}
			paused, resume := make(chan struct{}), make(chan struct{})
			held := false
			l.setHook(func(w http.ResponseWriter, r *http.Request) bool {
				if (tc.updates && !isUpdate(r)) || (!tc.updates && !isCreate(r)) || held {
					return false
				}
				held = true
				rec := httptest.NewRecorder()
				if tc.forwardFirst {
					c.emu.ServeHTTP(rec, r)
				}
				_ = l.cmd.Process.Signal(syscall.SIGSTOP)
				close(paused)
				<-resume
				if !tc.forwardFirst {
					c.emu.ServeHTTP(rec, r) // lands after the takeover
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return true
			})
			if tc.updates {
				c.writeSpec("specs.yaml", strings.ReplaceAll(c.readSpec(), "friendly_name: Conversation", "friendly_name: Renamed"))
			} else {
				c.conversations(6, false)
			}
			select {
			case <-paused:
			case <-time.After(30 * time.Second):
				t.Fatal("the leader never sent a create")
			}
			waitFor(t, failoverBound, "the stand-by leads while the leader is paused", other.leading)
			resumed := time.Now()
			signal(t, l, syscall.SIGCONT)
			close(resume)
			select {
			case <-l.done:
			case <-time.After(failoverBound):
				t.Fatal("the paused leader did not step down after resuming")
			}
			if code := exitCode(l); code != 1 || !strings.Contains(l.log(), "leadership lost") {
				t.Fatalf("old leader exited %d, want 1 with leadership lost", code)
			}
			if stale := l.requestsSince(resumed); len(stale) > 0 {
				t.Fatalf("the old leader sent %d requests after resuming (first %s %s)", len(stale), stale[0].method, stale[0].path)
			}
			c.converged(other, 30*time.Second)
			c.mustAudit()
		})
	}
}

// Matrix 9: a database restart shorter than the renew deadline changes
// nothing: the same leader, the same epoch.
func TestShortDatabaseRestartKeepsTheLeader(t *testing.T) {
	c := newCluster(t)
	c.conversations(2, false)
	a, b := c.start("a"), c.start("b")
	l := leader(t, 20*time.Second, a, b)
	c.converged(l, 30*time.Second)
	c.pg.Kill9()
	c.pg.Restart()
	end := time.Now().Add(2 * leaseDuration)
	for time.Now().Before(end) {
		rz, _, ok := l.status()
		if !ok || rz.Leadership.Role != "leader" || rz.Leadership.Epoch != 1 {
			t.Fatalf("after a short database restart: %+v (ok %v), want the same leader at epoch 1", rz.Leadership, ok)
		}
		time.Sleep(50 * time.Millisecond) // sampling the leader over two leases
	}
}

// Matrix 10: an outage longer than the renew deadline: the leader steps
// down by itself (its watchdog, with no database to ask) before its lease
// could pass to another, sends nothing meanwhile, and exits 1; once the
// database is back a replica leads at a new epoch.
func TestLongDatabaseOutageStepsTheLeaderDown(t *testing.T) {
	c := newCluster(t)
	c.conversations(2, false)
	a, b := c.start("a"), c.start("b")
	l := leader(t, 20*time.Second, a, b)
	c.converged(l, 30*time.Second)
	other := a
	if l == a {
		other = b
	}
	down := time.Now()
	c.pg.Kill9()
	select {
	case <-l.done:
	case <-time.After(leaseDuration + 5*time.Second):
		t.Fatal("the leader did not step down while the database was unreachable")
	}
	if code := exitCode(l); code != 1 || !strings.Contains(l.log(), "local lease deadline passed") {
		t.Fatalf("leader exited %d; want 1 after its local deadline passed", code)
	}
	if reqs := l.requestsSince(down); len(reqs) > 0 {
		t.Fatalf("the leader sent %d Twilio requests during the outage", len(reqs))
	}
	c.pg.Restart()
	waitFor(t, failoverBound, "a replica leads after the outage", other.leading)
	rz, _, _ := other.status()
	if rz.Leadership.Epoch != 2 {
		t.Fatalf("epoch after the outage %d, want 2", rz.Leadership.Epoch)
	}
}

// Matrix 11: the leader's database sessions are terminated
// (pg_terminate_backend, as a failover proxy or an administrator would):
// the pool reconnects, the lease is unaffected.
func TestTerminatedSessionsKeepTheLeader(t *testing.T) {
	c := newCluster(t)
	c.conversations(2, false)
	a, b := c.start("a"), c.start("b")
	l := leader(t, 20*time.Second, a, b)
	c.converged(l, 30*time.Second)
	end := time.Now().Add(2 * leaseDuration)
	for time.Now().Before(end) {
		c.pg.TerminateOthers()
		rz, _, ok := l.status()
		if !ok || rz.Leadership.Role != "leader" || rz.Leadership.Epoch != 1 {
			t.Fatalf("after terminated sessions: %+v (ok %v), want the same leader at epoch 1", rz.Leadership, ok)
		}
		time.Sleep(200 * time.Millisecond) // terminating again and again over two leases
	}
	c.conversations(4, false)
	c.converged(l, 30*time.Second)
	c.mustAudit()
}

// processStopped reports whether pid is stopped (SIGSTOP).
func processStopped(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	rest := string(data[strings.LastIndexByte(string(data), ')')+1:])
	fields := strings.Fields(rest)
	return len(fields) > 0 && (fields[0] == "T" || fields[0] == "t")
}

// Matrix 5, inside the process: the leader is frozen after the lease guard
// allowed a create and before it was sent (the hooked binary stops itself
// there), for longer than its lease. On resume the request's context may
// not have noticed its deadline yet; the transport's send-time check
// refuses it: the old leader sends nothing, and the new leader's create is
// the only one.
func TestLeaderFrozenBetweenTheGuardAndTheSend(t *testing.T) {
	for round := range 3 { // the timer race is probabilistic: several rounds
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			c := newCluster(t)
			c.extra = []string{"--parallelism", "1"}
			c.writeSpec("specs.yaml", "kind: Service\nname: support\nfriendly_name: Support\n")
			c.hookEnv = []string{"CONVSYNC_TEST_STOP_BEFORE_CREATE=1"}
			a := c.start("a")
			c.hookEnv = nil
			waitFor(t, 20*time.Second, "a leads", a.leading)
			c.converged(a, 30*time.Second)
			b := c.start("b")
			c.conversations(3, true)
			waitFor(t, 30*time.Second, "a stops itself before its first create", func() bool { return processStopped(a.cmd.Process.Pid) })
			waitFor(t, failoverBound, "b leads while a is frozen", b.leading)
			resumed := time.Now()
			signal(t, a, syscall.SIGCONT)
			select {
			case <-a.done:
			case <-time.After(failoverBound):
				t.Fatal("the frozen leader did not step down after resuming")
			}
			if code := exitCode(a); code != 1 {
				t.Fatalf("old leader exited %d, want 1", code)
			}
			if stale := a.requestsSince(resumed); len(stale) > 0 {
				t.Fatalf("the old leader sent %d requests after resuming (first %s %s)", len(stale), stale[0].method, stale[0].path)
			}
			c.converged(b, 30*time.Second)
			c.mustAudit()
		})
	}
}
