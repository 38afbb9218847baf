package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/spec"
)

// seed returns the seed for the random kill moments: RELIABILITY_SEED when
// set (to replay a failure), else a fixed one so CI is repeatable.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(20240506)
	if v := os.Getenv("RELIABILITY_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("RELIABILITY_SEED=%q: %v", v, err)
		}
		s = n
	}
	t.Logf("seed %d (replay with RELIABILITY_SEED=%d)", s, s)
	return s
}

// fleet describes the specs of the kill tests: services, each with
// conversations of every sort the applier handles differently.
type fleet struct {
	services      []string // names
	serviceTitles map[string]string
	perService    int
	removed       map[string]bool // conversation names left out
	movedTo       map[string]string
	// extra is appended to every conversation's spec (e.g. timeouts).
	extra string
}

func newFleet(services, perService int) *fleet {
	f := &fleet{perService: perService, serviceTitles: map[string]string{}, removed: map[string]bool{}, movedTo: map[string]string{}}
	for i := 0; i < services; i++ {
		name := fmt.Sprintf("svc%d", i)
		f.services = append(f.services, name)
		f.serviceTitles[name] = fmt.Sprintf("Service %d", i)
	}
	return f
}

// conversation returns the spec of the i-th conversation of service svc:
// with a unique_name; without one; created then closed; with timers; and
// look-alike pairs that Twilio cannot tell apart (no unique_name, same fields).
func (f *fleet) conversation(svc string, i int) (name, doc string) {
	name = fmt.Sprintf("%s-c%03d", svc, i)
	service := svc
	if to, ok := f.movedTo[name]; ok {
		service = to
	}
	head := fmt.Sprintf("kind: Conversation\nname: %s\nservice: %s\n", name, service)
	switch i % 5 {
	case 0:
		return name, head + fmt.Sprintf("unique_name: %s\nfriendly_name: Unique %d\nattributes: {n: %d}\n", name, i, i)
	case 1:
		return name, head + fmt.Sprintf("friendly_name: Plain %s %d\nattributes: {n: %d, tier: gold}\n", svc, i, i)
	case 2:
		return name, head + fmt.Sprintf("unique_name: %s\nfriendly_name: Archive %d\nstate: closed\n", name, i)
	case 3:
		return name, head + fmt.Sprintf("friendly_name: Timed %s %d\ntimers: {inactive: PT1H, closed: P1D}\nstate: active\n", svc, i)
	default: // a look-alike of the previous case-4 conversation of the same service
		return name, head + fmt.Sprintf("friendly_name: Look-alike %s %d\nattributes: {pair: %d}\n", svc, i/10, i/10)
	}
}

// usersPerService is how many users each service of a fleet holds; half of
// them have a role of the specs, so a kill can land between a role's create
// and the users that wait for it.
const usersPerService = 6

// rolesAndUsers returns the specs of a service's roles and users: roles have
// no natural key (a lost create is recognised by its fields), users have
// their identity.
func (f *fleet) rolesAndUsers(svc string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "---\nkind: Role\nname: %s-agent\nservice: %s\nfriendly_name: Agent of %s\ntype: conversation\npermissions: [sendMessage, leaveConversation]\n%s", svc, svc, svc, f.extra)
	fmt.Fprintf(&b, "---\nkind: Role\nname: %s-staff\nservice: %s\nfriendly_name: Staff of %s\ntype: service\npermissions: [createConversation, joinConversation]\n%s", svc, svc, svc, f.extra)
	for i := 0; i < usersPerService; i++ {
		fmt.Fprintf(&b, "---\nkind: User\nname: %s-u%d\nservice: %s\nidentity: user%d@%s.example.com\nfriendly_name: User %d\n%s", svc, i, svc, i, svc, i, f.extra)
		if i%2 == 0 {
			fmt.Fprintf(&b, "role: %s-staff\n", svc)
		}
	}
	return b.String()
}

// children returns the participants and webhook of the i-th conversation
// of svc, for every tenth one (active, with a unique_name): two chat
// participants whose identities are users of the specs (a participant's
// identity makes a User when none exists, so they wait for those users),
// one SMS participant (a lost create is recognised by its address and
// proxy address) and one webhook (no key: recognised by its fields).
func (f *fleet) children(svc string, i int, conv string) string {
	if i%10 != 0 {
		return ""
	}
	var b strings.Builder
	for p := 0; p < 2; p++ {
		fmt.Fprintf(&b, "---\nkind: Participant\nname: %s-p%d\nconversation: %s\nidentity: user%d@%s.example.com\nattributes: {seat: %d}\n%s", conv, p, conv, p, svc, p, f.extra)
	}
	fmt.Fprintf(&b, "---\nkind: Participant\nname: %s-sms\nconversation: %s\nmessaging_binding: {address: \"+1555%03d%04d\", proxy_address: \"+15559870000\"}\n%s", conv, conv, len(svc)*7+int(svc[len(svc)-1]), i, f.extra)
	fmt.Fprintf(&b, "---\nkind: ConversationWebhook\nname: %s-hook\nconversation: %s\ntarget: webhook\nurl: https://bot.example.com/%s\nfilters: [onMessageAdded]\n%s", conv, conv, conv, f.extra)
	return b.String()
}

func (f *fleet) write(e *env) {
	e.t.Helper()
	if err := os.RemoveAll(e.dir); err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range f.services {
		fmt.Fprintf(&b, "---\nkind: Service\nname: %s\nfriendly_name: %s\n", s, f.serviceTitles[s])
	}
	e.writeSpec("services.yaml", b.String())
	for _, s := range f.services {
		var c strings.Builder
		c.WriteString(f.rolesAndUsers(s))
		for i := 0; i < f.perService; i++ {
			name, doc := f.conversation(s, i)
			if f.removed[name] {
				continue
			}
			c.WriteString("---\n" + doc + f.extra)
			if _, moved := f.movedTo[name]; !moved {
				c.WriteString(f.children(s, i, name))
			}
		}
		e.writeSpec(s+"/conversations.yaml", c.String())
	}
}

func desired(t *testing.T, e *env) []resource.Desired {
	t.Helper()
	set, err := spec.LoadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	return set.Resources
}

// killer SIGKILLs a running apply at a random moment: on the arrival of a
// write (which then is carried out, or not), right after Twilio carried a
// write out but before its answer leaves, or after a random delay.
type killer struct {
	e   *env
	rnd *rand.Rand

	mu      sync.Mutex
	proc    *os.Process
	target  int64 // kill at this write of the run; 0 = by timer
	mode    string
	writes  atomic.Int64
	killed  bool
	byMode  map[string]int
	timings []time.Duration
}

func newKiller(e *env, rnd *rand.Rand) *killer {
	k := &killer{e: e, rnd: rnd, byMode: map[string]int{}}
	e.setHook(k.serve)
	return k
}

func (k *killer) kill() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed || k.proc == nil {
		return false
	}
	k.killed = true
	_ = k.proc.Signal(syscall.SIGKILL)
	return true
}

func (k *killer) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	isWrite := r.Method == http.MethodPost || r.Method == http.MethodDelete
	if !isWrite {
		next.ServeHTTP(w, r)
		return
	}
	n := k.writes.Add(1)
	k.mu.Lock()
	hit := k.target > 0 && n == k.target
	mode := k.mode
	k.mu.Unlock()
	// The request goes on without the client's cancellation: Twilio carries
	// out what reached it even if the caller died.
	detached := r.WithContext(context.WithoutCancel(r.Context()))
	switch {
	case !hit:
		next.ServeHTTP(w, r)
	case mode == "on arrival, carried out":
		k.kill()
		next.ServeHTTP(w, detached)
	case mode == "on arrival, not carried out":
		k.kill()
		http.Error(w, "gone", http.StatusBadGateway)
	default: // after the write, before its answer
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, detached)
		k.kill()
		for key, v := range rec.Header() {
			w.Header()[key] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
}

// applyWithKill runs apply once, arming a kill at a random moment; it
// reports whether the process was killed (false: it finished first).
func (k *killer) applyWithKill(t *testing.T, maxWrites int) (killed bool, res result) {
	t.Helper()
	modes := []string{"on arrival, carried out", "on arrival, not carried out", "after the write, before its answer", "after a random delay"}
	k.mu.Lock()
	k.mode = modes[k.rnd.IntN(len(modes))]
	k.target = 0
	if k.mode != "after a random delay" {
		k.target = 1 + k.rnd.Int64N(int64(maxWrites))
	}
	delay := time.Duration(30+k.rnd.IntN(220)) * time.Millisecond
	k.killed, k.proc = false, nil
	k.mu.Unlock()
	k.writes.Store(0)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"apply", "--auto-approve", "--rate-limit", "0"}
	cmd := k.e.command(ctx, args...)
	started := time.Now()
	res = k.e.wait(cmd, args, func(p *os.Process) {
		k.mu.Lock()
		k.proc = p
		k.mu.Unlock()
		if k.mode == "after a random delay" {
			time.AfterFunc(delay, func() { k.kill() })
		}
	})
	k.mu.Lock()
	killed = k.killed && res.killed
	k.proc = nil
	k.killed = true // a late timer must not fire into the next run
	if killed {
		k.byMode[k.mode]++
		k.timings = append(k.timings, time.Since(started))
	}
	k.mu.Unlock()
	if !killed && res.code != 0 {
		t.Fatalf("apply finished before its kill, but failed: %s", res)
	}
	// Whatever the moment, the state file is whole: old or new, never half.
	k.e.readState()
	return killed, res
}

// killUntilDone kills applies until one finishes, or maxKills were done.
func (k *killer) killUntilDone(t *testing.T, maxKills, maxWrites int) int {
	t.Helper()
	kills := 0
	for kills < maxKills {
		killed, _ := k.applyWithKill(t, maxWrites)
		if !killed {
			break
		}
		kills++
	}
	return kills
}

func (k *killer) summary() string {
	var parts []string
	for _, m := range []string{"on arrival, carried out", "on arrival, not carried out", "after the write, before its answer", "after a random delay"} {
		parts = append(parts, fmt.Sprintf("%s: %d", m, k.byMode[m]))
	}
	return strings.Join(parts, ", ")
}

// finish runs apply to completion with no kill armed.
func finish(t *testing.T, e *env) result {
	t.Helper()
	e.setHook(nil)
	r := e.run("apply", "--auto-approve", "--rate-limit", "0")
	if r.code != 0 {
		t.Fatalf("the apply after the kills did not complete: %s", r)
	}
	return r
}

// TestKillDuringApply creates a few hundred resources while SIGKILLing the
// real binary at random moments, then lets an apply finish, and checks
// through the emulator's own data that every spec has exactly one resource and
// nothing is unaccounted for. Then it does the same while services are
// replaced (a rename) and conversations are deleted and moved.
func TestKillDuringApply(t *testing.T) {
	rnd := rand.New(rand.NewPCG(seed(t), 1))
	// Latency keeps several requests in flight at every kill.
	e := newEnv(t, emulator.Faults{Latency: 25 * time.Millisecond})
	f := newFleet(5, 80)
	f.write(e)
	k := newKiller(e, rnd)

	kills := k.killUntilDone(t, 14, 25)
	finish(t, e)
	created := e.check(desired(t, e))
	e.mustConverge(created)
	writesAfterCreate := e.emu.Stats()

	// Replaces and deletes: rename two services (each is replaced with every
	// conversation in it), drop a third of another service's conversations,
	// and move a few conversations between the remaining services.
	f.serviceTitles["svc0"] = "Service 0 renamed"
	f.serviceTitles["svc1"] = "Service 1 renamed"
	for i := 0; i < f.perService; i += 3 {
		f.removed[fmt.Sprintf("svc2-c%03d", i)] = true
	}
	for _, i := range []int{1, 2, 3, 7, 11} {
		f.movedTo[fmt.Sprintf("svc3-c%03d", i)] = "svc2"
	}
	f.write(e)
	modes := k.byMode
	k = newKiller(e, rnd)
	k.byMode = modes
	kills2 := k.killUntilDone(t, 10, 25)
	finish(t, e)
	changed := e.check(desired(t, e))
	e.mustConverge(changed)

	t.Logf("creates: %s", summaryOfRoutes(writesAfterCreate))
	t.Logf("kill moments: %s", k.summary())
	t.Logf("kill summary: kills performed %d (creates %d, replaces/deletes %d); resources checked %d; duplicates found %d; orphans found %d",
		kills+kills2, kills, kills2, created.resources+changed.resources, created.duplicates+changed.duplicates, created.orphans+changed.orphans)
	if kills+kills2 < 15 {
		t.Errorf("only %d kills landed during applies; the test did not exercise what it claims", kills+kills2)
	}
}

func summaryOfRoutes(s emulator.Stats) string {
	var parts []string
	for route, n := range s.ByRouteStatus {
		if strings.HasPrefix(route, "POST") || strings.HasPrefix(route, "DELETE") {
			parts = append(parts, fmt.Sprintf("%s: %d", route, n))
		}
	}
	return strings.Join(parts, "; ")
}
