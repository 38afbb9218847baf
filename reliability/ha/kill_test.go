package ha

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/pgtest"
)

// Matrix 18: the leader is killed with SIGKILL at each step of a create.
// The stand-by (after the quarantine: no clean hand-over) resolves the
// create in flight by recognition before it creates anything: never a
// duplicate, never an orphan, every pending create resolved.
func TestLeaderKilledAtEveryStepOfACreate(t *testing.T) {
	for _, tc := range []struct {
		name string
		// at says where the leader dies: true when it has handled r.
		at func(w http.ResponseWriter, r *http.Request, c *cluster, kill func()) bool
	}{
		{"while reading Twilio, before any intent", func(w http.ResponseWriter, r *http.Request, c *cluster, kill func()) bool {
			if r.Method != http.MethodGet {
				return false
			}
			kill()
			return true
		}},
		{"after the intent, before the request reaches Twilio", func(w http.ResponseWriter, r *http.Request, c *cluster, kill func()) bool {
			if !isCreate(r) {
				return false
			}
			kill()
			return true
		}},
		{"after Twilio created it, before the answer", func(w http.ResponseWriter, r *http.Request, c *cluster, kill func()) bool {
			if !isCreate(r) {
				return false
			}
			c.emu.ServeHTTP(httptest.NewRecorder(), r)
			kill()
			return true
		}},
		{"after the answer, before or while the result is recorded", func(w http.ResponseWriter, r *http.Request, c *cluster, kill func()) bool {
			if !isCreate(r) {
				return false
			}
			c.emu.ServeHTTP(w, r)
			kill()
			return true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			c.writeSpec("specs.yaml", "kind: Service\nname: support\nfriendly_name: Support\n")
			a, b := c.start("a"), c.start("b")
			l := leader(t, 20*time.Second, a, b)
			c.converged(l, 30*time.Second)
			other := a
			if l == a {
				other = b
			}
			var mu sync.Mutex
			killed := false
			l.setHook(func(w http.ResponseWriter, r *http.Request) bool {
				mu.Lock()
				defer mu.Unlock()
				if killed {
					return false
				}
				killed = tc.at(w, r, c, func() { _ = l.cmd.Process.Signal(syscall.SIGKILL) })
				return killed
			})
			c.conversations(6, true) // half without unique_name: recognised by their fields
			select {
			case <-l.done:
			case <-time.After(30 * time.Second):
				t.Fatal("the leader was never killed")
			}
			waitFor(t, failoverBound+quarantine, "the stand-by leads", other.leading)
			c.converged(other, 30*time.Second)
			c.mustAudit()
		})
	}
}

// Matrix 14: through PgBouncer in transaction mode, leadership and
// fencing behave the same: one leader, failover after kill -9 at the next
// epoch, no duplicate.
func TestThroughPgBouncer(t *testing.T) {
	c := newCluster(t)
	c.url = pgtest.StartPgBouncer(t, c.pg)
	c.conversations(4, true)
	a, b := c.start("a"), c.start("b")
	l := leader(t, 20*time.Second, a, b)
	c.converged(l, 30*time.Second)
	other := a
	if l == a {
		other = b
	}
	signal(t, l, syscall.SIGKILL)
	waitFor(t, failoverBound, "the stand-by leads through PgBouncer", other.leading)
	rz, _, _ := other.status()
	if rz.Leadership.Epoch != 2 {
		t.Fatalf("epoch %d, want 2", rz.Leadership.Epoch)
	}
	c.conversations(6, true)
	c.converged(other, 30*time.Second)
	c.mustAudit()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// The storm: three daemons on one state, conversations (half without
// unique_name), two roles and users created and edited while the leader is killed with SIGKILL
// at random moments, and replaced by a new replica each time. At the end:
// no duplicate, no orphan, nothing pending, Twilio as the specs say.
// HA_STORM_KILLS and HA_STORM_CONVERSATIONS make it bigger (the issue's
// storm: 20 and 300).
func TestStorm(t *testing.T) {
	kills := envInt("HA_STORM_KILLS", 3)
	n := envInt("HA_STORM_CONVERSATIONS", 30)
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	t.Logf("storm: %d kills, %d conversations", kills, n)
	c := newCluster(t)
	write := func(n int) { c.writeSpec("specs.yaml", c.specText(n, true, true)) }
	write(n / 3)
	rs := []*replica{c.start("r0"), c.start("r1"), c.start("r2")}
	next := 3
	var failovers []time.Duration
	for k := range kills {
		l := leader(t, failoverBound+quarantine+10*time.Second, rs...)
		// Change something for the leader to work on, then kill it at a
		// random moment of the work.
		step := min(n, n/3+(k+1)*(n-n/3)/kills)
		write(step)
		if k%2 == 1 {
			c.writeSpec("specs.yaml", strings.ReplaceAll(c.readSpec(), "friendly_name: Conversation 00", "friendly_name: Conversation 00"+strconv.Itoa(k)))
		}
		time.Sleep(time.Duration(rnd.IntN(1500)) * time.Millisecond) // a random moment to kill at
		signal(t, l, syscall.SIGKILL)
		<-l.done
		killed := time.Now()
		rs = slices.DeleteFunc(rs, func(r *replica) bool { return r == l })
		newLeader := leader(t, failoverBound+quarantine+10*time.Second, rs...)
		failovers = append(failovers, time.Since(killed))
		_ = newLeader
		rs = append(rs, c.start(fmt.Sprintf("r%d", next)))
		next++
	}
	write(n)
	l := leader(t, failoverBound, rs...)
	c.converged(l, 120*time.Second)
	dup, orph, problems := c.audit()
	problems = append(problems, c.auditAccess()...)
	// The specs only ever grow or change fields: any delete is unwanted.
	deletes := 0
	for route, n := range c.emu.Stats().ByRoute {
		if strings.HasPrefix(route, "DELETE ") {
			deletes += int(n)
			problems = append(problems, fmt.Sprintf("%d unwanted deletes: %s", n, route))
		}
	}
	slices.Sort(failovers)
	t.Logf("storm: %d kills, %d conversations, 2 roles, %d users: %d duplicates, %d orphans, %d unwanted deletes; failover median %s, max %s",
		kills, n, (n+4)/5, dup, orph, deletes, failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond))
	if dup != 0 || orph != 0 || len(problems) > 0 {
		t.Fatalf("storm audit: %s", strings.Join(problems, "; "))
	}
}
