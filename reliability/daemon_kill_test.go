package reliability

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
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
	"github.com/convsync/convsync/pkg/state"
)

const (
	// daemonEditRounds is how many rounds of spec edits the daemon kill
	// test makes; each removes two conversations and moves one.
	daemonEditRounds = 7
	// daemonMaxDestroy is the daemon's --max-destroy in the kill test: as
	// many as all the edit rounds remove and move together, so that however
	// the kills fall (a killed round's deletes are left for the next pass),
	// no pass is refused and the deletion guard never hides a missing delete.
	daemonMaxDestroy = 3 * daemonEditRounds
)

// daemonProc is one `convsync run` process.
type daemonProc struct {
	cmd  *exec.Cmd
	addr string // the HTTP listener, from its log; "" if killed before it logged it
	done chan struct{}

	mu   sync.Mutex
	logs []string
}

// killedBySIGKILL reports whether the process ended from a SIGKILL (ours:
// nothing else kills it). Call after done is closed.
func (d *daemonProc) killedBySIGKILL() bool {
	ws, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func (d *daemonProc) exitCode() int { return d.cmd.ProcessState.ExitCode() }

// logTail returns the last lines the process wrote to standard error.
func (d *daemonProc) logTail(n int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	from := max(0, len(d.logs)-n)
	return strings.Join(d.logs[from:], "\n")
}

// readyz is the part of /readyz the test reads.
type readyz struct {
	LastPass *struct {
		Outcome  string   `json:"outcome"`
		SpecHash string   `json:"spec_hash"`
		Summary  string   `json:"summary"`
		Deferred []string `json:"deferred"`
		Failed   int      `json:"failed"`
	} `json:"last_pass"`
	Failing map[string]string `json:"failing"`
}

var readyzClient = &http.Client{Timeout: 5 * time.Second}

// readyz fetches /readyz; ok is false when the daemon did not answer (not
// listening yet, or dead).
func (d *daemonProc) readyz() (code int, body string, parsed readyz, ok bool) {
	if d.addr == "" {
		return 0, "", readyz{}, false
	}
	resp, err := readyzClient.Get("http://" + d.addr + "/readyz")
	if err != nil {
		return 0, "", readyz{}, false
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", readyz{}, false
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		return resp.StatusCode, string(raw), readyz{}, false
	}
	return resp.StatusCode, string(raw), parsed, true
}

// converged reports whether the daemon says it is done with the specs whose
// hash is given: ready, its last pass planned that very spec set and every
// step of it succeeded, nothing waits in backoff. The loop runs no further
// pass for an unchanged folder, so Twilio must now be in the specs' shape.
func (d *daemonProc) converged(hash string) (bool, string) {
	code, body, r, ok := d.readyz()
	if !ok {
		return false, body
	}
	p := r.LastPass
	return code == http.StatusOK && p != nil && p.Outcome == "success" && p.SpecHash == hash &&
		len(p.Deferred) == 0 && p.Failed == 0 && len(r.Failing) == 0, body
}

// daemonKiller runs `convsync run` under the apply kill test's killer: the
// same kill moments (on a write's arrival, carried out or not; after a write,
// before its answer; after a random delay), armed afresh for every run or
// spec edit.
type daemonKiller struct {
	t   *testing.T
	e   *env
	k   *killer
	rnd *rand.Rand
	// inflight counts requests in the hook, so that a write the killed
	// process left behind is carried out (or not) before the next process
	// lists Twilio, as it would be at Twilio long before a restart.
	inflight atomic.Int64
	// generation invalidates the delay timer of an earlier arming (k.mu).
	generation int
	// armed: a kill is armed for the current run or edit (k.mu).
	armed bool
	delay time.Duration
	// procs are every daemon started, for the adoptions their logs report.
	procs []*daemonProc
}

func newDaemonKiller(t *testing.T, e *env, rnd *rand.Rand) *daemonKiller {
	dk := &daemonKiller{t: t, e: e, k: newKiller(e, rnd), rnd: rnd}
	e.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		dk.inflight.Add(1)
		defer dk.inflight.Add(-1)
		dk.k.serve(w, r, next)
	})
	return dk
}

var killModes = []string{"on arrival, carried out", "on arrival, not carried out", "after the write, before its answer", "after a random delay"}

// arm picks the next kill: a write among the next maxWrites, or a delay up
// to maxDelay counted from startTimer.
func (dk *daemonKiller) arm(maxWrites int, maxDelay time.Duration) {
	k := dk.k
	k.mu.Lock()
	defer k.mu.Unlock()
	k.target = 0
	k.writes.Store(0)
	k.mode = killModes[dk.rnd.IntN(len(killModes))]
	if k.mode != "after a random delay" {
		k.target = 1 + dk.rnd.Int64N(int64(maxWrites))
	}
	dk.delay = 30*time.Millisecond + time.Duration(dk.rnd.Int64N(int64(maxDelay)))
	k.killed = false
	dk.armed = true
	dk.generation++
}

// startTimer starts the delay of an "after a random delay" kill.
func (dk *daemonKiller) startTimer() {
	k := dk.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mode != "after a random delay" {
		return
	}
	gen := dk.generation
	time.AfterFunc(dk.delay, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if gen != dk.generation || k.killed || k.proc == nil {
			return
		}
		k.killed = true
		_ = k.proc.Signal(syscall.SIGKILL)
	})
}

// disarm cancels the armed kill and reports whether it had already been sent.
func (dk *daemonKiller) disarm() (alreadySent bool) {
	k := dk.k
	k.mu.Lock()
	defer k.mu.Unlock()
	alreadySent = dk.armed && k.killed
	dk.armed = false
	k.killed = true // what kill() checks: no kill goes out until the next arm
	k.target = 0
	dk.generation++
	return alreadySent
}

// start runs `convsync run` and returns once it listens, or died trying
// (a kill may land before that).
func (dk *daemonKiller) start() *daemonProc {
	t := dk.t
	t.Helper()
	args := []string{"run", "--listen", "127.0.0.1:0", "--log-format", "json", "--rate-limit", "0",
		"--debounce", "50ms", "--debounce-max", "500ms", "--poll", "2s", "--resync", "10m",
		"--max-destroy", strconv.Itoa(daemonMaxDestroy), "--backoff-base", "200ms", "--backoff-max", "2s"}
	d := &daemonProc{cmd: dk.e.command(context.Background(), args...), done: make(chan struct{})}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dk.k.mu.Lock()
	dk.k.proc = d.cmd.Process
	dk.k.mu.Unlock()
	dk.procs = append(dk.procs, d)
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.logs = append(d.logs, line)
			d.mu.Unlock()
			var entry struct {
				Listen string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Listen != "" {
				select {
				case listening <- entry.Listen:
				default:
				}
			}
		}
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	select {
	case d.addr = <-listening:
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("convsync run did not start listening:\n%s", d.logTail(50))
	}
	return d
}

// waitKilledOrConverged waits until the armed kill ended d (true) or d
// converged on the spec folder as it is now without being killed (false).
func (dk *daemonKiller) waitKilledOrConverged(d *daemonProc) (killed bool) {
	t := dk.t
	t.Helper()
	hash := specHash(t, dk.e)
	deadline := time.Now().Add(45 * time.Second)
	for {
		select {
		case <-d.done:
			if !d.killedBySIGKILL() {
				t.Fatalf("convsync run exited by itself (exit %d) instead of running until killed or stopped:\n%s", d.exitCode(), d.logTail(50))
			}
			dk.afterKill()
			return true
		default:
		}
		ok, body := d.converged(hash)
		if ok {
			if dk.disarm() {
				// The kill went out as the daemon finished: it counts.
				select {
				case <-d.done:
				case <-time.After(30 * time.Second):
					t.Fatal("convsync run outlived its SIGKILL")
				}
				dk.afterKill()
				return true
			}
			return false
		}
		if time.Now().After(deadline) {
			t.Fatalf("convsync run did not converge on spec set %s in time; /readyz: %s\nlog tail:\n%s", hash, body, d.logTail(40))
		}
		time.Sleep(20 * time.Millisecond) // polling an observable condition, not synchronisation
	}
}

// afterKill counts the kill, waits for the requests the dead process left
// in flight, and checks that the state file is whole.
func (dk *daemonKiller) afterKill() {
	k := dk.k
	k.mu.Lock()
	k.byMode[k.mode]++
	k.proc = nil
	k.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for dk.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			dk.t.Fatal("requests of the killed daemon are still in flight after 30s")
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition
	}
	dk.e.readState()
}

// stop ends d with SIGTERM, which must exit 0.
func (dk *daemonKiller) stop(d *daemonProc) {
	t := dk.t
	t.Helper()
	dk.disarm()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("convsync run did not stop after SIGTERM:\n%s", d.logTail(50))
	}
	if code := d.exitCode(); code != 0 {
		t.Fatalf("SIGTERM: exit %d, want 0:\n%s", code, d.logTail(50))
	}
	dk.k.mu.Lock()
	dk.k.proc = nil
	dk.k.mu.Unlock()
}

var adoptedInSummary = regexp.MustCompile(`"summary":"[^"]*?\b(\d+) adopted`)

// adoptions counts the resources the daemons' passes adopted: creates whose
// answer a kill lost, recognised instead of repeated.
func (dk *daemonKiller) adoptions() int {
	n := 0
	for _, d := range dk.procs {
		for _, m := range adoptedInSummary.FindAllStringSubmatch(d.logTail(1<<30), -1) {
			c, _ := strconv.Atoi(m[1])
			n += c
		}
	}
	return n
}

func specHash(t *testing.T, e *env) string {
	t.Helper()
	set, err := spec.LoadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	return set.Hash
}

// daemonFleet is the kill test's fleet laid out one conversation per file,
// so that every edit (add, change, move, remove) is one atomic file
// operation and the daemon, reading the folder at any moment, sees a spec
// set on the way from the old one to the new, never a set that deletes what
// neither wants.
type daemonFleet struct {
	*fleet
	refs  map[string]convRef
	order []string        // conversation names, in declaration order
	rev   map[string]int  // edits made to a conversation's friendly_name
	next  map[string]int  // next index for conversations added to a service
	tmp   string          // where files are written before being renamed in
	stats map[string]int  // edits made, by kind
	seen  map[string]bool // names edits may pick: declared before this round
}

type convRef struct {
	svc string
	i   int
}

func newDaemonFleet(e *env, services, perService int) *daemonFleet {
	f := &daemonFleet{fleet: newFleet(services, perService), refs: map[string]convRef{}, rev: map[string]int{},
		next: map[string]int{}, tmp: filepath.Join(e.work, "spec-staging"), stats: map[string]int{}}
	if err := os.MkdirAll(f.tmp, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for _, s := range f.services {
		for i := 0; i < perService; i++ {
			f.add(s, i)
		}
		f.next[s] = perService
	}
	return f
}

func (f *daemonFleet) add(svc string, i int) string {
	name, _ := f.conversation(svc, i)
	f.refs[name] = convRef{svc, i}
	f.order = append(f.order, name)
	return name
}

var friendlyNameLine = regexp.MustCompile(`(?m)^friendly_name: (.*)$`)

func (f *daemonFleet) doc(name string) string {
	ref := f.refs[name]
	_, doc := f.conversation(ref.svc, ref.i)
	if n := f.rev[name]; n > 0 {
		doc = friendlyNameLine.ReplaceAllString(doc, fmt.Sprintf("friendly_name: $1 rev %d", n))
	}
	return doc
}

func (f *daemonFleet) path(e *env, name string) string {
	return filepath.Join(e.dir, "conversations", name+".yaml")
}

// writeAll lays out the whole folder (before any daemon runs).
func (f *daemonFleet) writeAll(e *env) {
	var b strings.Builder
	for _, s := range f.services {
		fmt.Fprintf(&b, "---\nkind: Service\nname: %s\nfriendly_name: %s\n", s, f.serviceTitles[s])
	}
	e.writeSpec("services.yaml", b.String())
	for _, name := range f.order {
		e.writeSpec(filepath.Join("conversations", name+".yaml"), f.doc(name))
	}
}

// pick returns a random conversation among those declared before this
// round that are still declared, not moved, and pass keep.
func (f *daemonFleet) pick(rnd *rand.Rand, keep func(name string, ref convRef) bool) string {
	var names []string
	for _, name := range f.order {
		ref := f.refs[name]
		if f.seen[name] && !f.removed[name] && f.movedTo[name] == "" && keep(name, ref) {
			names = append(names, name)
		}
	}
	return names[rnd.IntN(len(names))]
}

// sync brings one conversation's file in line with the fleet: written as an
// editor or deploy script should (a whole new file renamed over the old
// one), or removed.
func (f *daemonFleet) sync(e *env, name string) {
	if f.removed[name] {
		if err := os.Remove(f.path(e, name)); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	tmp := filepath.Join(f.tmp, name+".yaml")
	if err := os.WriteFile(tmp, []byte(f.doc(name)), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path(e, name)); err != nil {
		e.t.Fatal(err)
	}
}

// edit makes one round of spec edits in the folder: adds conversations,
// renames some (updates), moves one to another service (a replace) and
// removes two (deletes), one file operation each, in random order.
// Renames, moves and removals pick among the conversations declared before
// this round: some were added by an earlier round whose pass a kill cut
// short, so their create may be pending (intent saved, conversation made,
// not recorded) when the edit arrives. Each move or removal is at most one
// destroy.
func (f *daemonFleet) edit(e *env, rnd *rand.Rand) {
	for _, name := range f.order {
		f.seen[name] = true
	}
	touched := map[string]bool{}
	for j := 0; j < 6; j++ {
		svc := f.services[rnd.IntN(len(f.services))]
		touched[f.add(svc, f.next[svc])] = true
		f.next[svc]++
		f.stats["added"]++
	}
	for j := 0; j < 8; j++ {
		// Closed conversations cannot be updated (Twilio refuses), so only
		// open ones are renamed.
		name := f.pick(rnd, func(_ string, ref convRef) bool { return ref.i%5 != 2 })
		f.rev[name]++
		touched[name] = true
		f.stats["updated"]++
	}
	name := f.pick(rnd, func(string, convRef) bool { return true })
	from := f.refs[name].svc
	f.movedTo[name] = f.services[(slices.Index(f.services, from)+1+rnd.IntN(len(f.services)-1))%len(f.services)]
	touched[name] = true
	f.stats["moved"]++
	for j := 0; j < 2; j++ {
		name := f.pick(rnd, func(string, convRef) bool { return true })
		f.removed[name] = true
		touched[name] = true
		f.stats["removed"]++
	}
	var names []string
	for name := range touched {
		names = append(names, name)
	}
	sort.Strings(names)
	rnd.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for _, name := range names {
		f.sync(e, name)
	}
}

// sidsOf returns the SID the state records for every resource.
func sidsOf(st *state.State) map[string]string {
	out := map[string]string{}
	for key, r := range st.Resources {
		out[key] = r.SID
	}
	return out
}

// TestKillDuringDaemon runs `convsync run` on a few hundred resources and
// SIGKILLs it at random moments, restarting it each time: while its first
// pass creates everything, then while it processes spec edits (added,
// renamed, moved and removed conversations, some edits landing while it is
// down). Whenever it reports convergence on /readyz, and after each phase
// (stopped with SIGTERM), the emulator's data must hold exactly one resource
// per spec and nothing unaccounted for, and the state must match Twilio;
// after each phase a plan must show no changes; and at the end every
// resource the specs kept since the first phase must still be the one
// created then (nothing deleted that the specs still want).
func TestKillDuringDaemon(t *testing.T) {
	rnd := rand.New(rand.NewPCG(seed(t), 2))
	e := newEnv(t, emulator.Faults{Latency: 25 * time.Millisecond})
	f := newDaemonFleet(e, 4, 75)
	f.writeAll(e)
	dk := newDaemonKiller(t, e, rnd)

	// Phase 1: the first passes create 4 services and 300 conversations.
	createKills := 0
	var d *daemonProc
	for createKills < 6 {
		dk.arm(60, 400*time.Millisecond)
		d = dk.start()
		dk.startTimer()
		if !dk.waitKilledOrConverged(d) {
			break
		}
		createKills++
		d = nil
	}
	if d == nil {
		dk.disarm()
		d = dk.start()
		if dk.waitKilledOrConverged(d) {
			t.Fatal("a disarmed daemon was killed")
		}
	}
	dk.stop(d)
	created := e.check(desired(t, e))
	e.mustConverge(created)
	first := sidsOf(e.readState())
	f.seen = map[string]bool{}
	for _, name := range f.order {
		f.seen[name] = true
	}

	// Phase 2: edits while the daemon runs, or while it is down after a kill.
	dk.disarm()
	d = dk.start()
	if dk.waitKilledOrConverged(d) {
		t.Fatal("a disarmed daemon was killed")
	}
	editKills := 0
	var between audit // audits of the rounds the daemon finished unkilled
	for round := 0; round < daemonEditRounds; round++ {
		dk.arm(20, 600*time.Millisecond)
		switch {
		case d != nil:
			f.edit(e, rnd)
		case rnd.IntN(2) == 0: // the edit lands while the daemon is down
			f.edit(e, rnd)
			d = dk.start()
		default: // the edit lands during the restarted daemon's first pass
			d = dk.start()
			f.edit(e, rnd)
		}
		dk.startTimer()
		if !dk.waitKilledOrConverged(d) {
			// The daemon says it is done: Twilio must say so too, now,
			// while it runs (the state is read without its lock; the
			// daemon is idle).
			a := e.check(desired(t, e))
			if len(a.problems) > 0 || a.duplicates > 0 || a.orphans > 0 {
				t.Fatalf("edit round %d: the daemon reports convergence, but Twilio does not match the specs and the state (%d duplicates, %d orphans):\n  %s",
					round, a.duplicates, a.orphans, strings.Join(a.problems, "\n  "))
			}
			between.resources += a.resources
			continue
		}
		editKills++
		d = nil
		if rnd.IntN(4) != 0 {
			// Mostly, kill the restart too, while it finishes this edit.
			dk.arm(20, 400*time.Millisecond)
			d = dk.start()
			dk.startTimer()
			if dk.waitKilledOrConverged(d) {
				editKills++
				d = nil
			}
		}
	}
	if d == nil {
		dk.disarm()
		d = dk.start()
		if dk.waitKilledOrConverged(d) {
			t.Fatal("a disarmed daemon was killed")
		}
	}
	dk.stop(d)
	edited := e.check(desired(t, e))
	e.mustConverge(edited)

	// Nothing deleted that the specs still want: every resource present at
	// the first convergence and neither removed nor moved since is still the
	// very same one (renames are updates, never replaces).
	last := sidsOf(e.readState())
	var lost []string
	for key, sid := range first {
		addr, err := resource.ParseAddress(key)
		if err != nil {
			t.Fatalf("state key %q: %v", key, err)
		}
		if addr.Kind == resource.KindConversation && (f.removed[addr.Name] || f.movedTo[addr.Name] != "") {
			continue
		}
		if last[key] != sid {
			lost = append(lost, fmt.Sprintf("%s: %s at first, %q now", key, sid, last[key]))
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("%d resources the specs kept were deleted or replaced:\n  %s", len(lost), strings.Join(lost, "\n  "))
	}

	kills := createKills + editKills
	t.Logf("kill moments: %s", dk.k.summary())
	t.Logf("daemons started %d; creates adopted after a lost answer %d", len(dk.procs), dk.adoptions())
	t.Logf("edits: %d added, %d renamed, %d moved, %d removed", f.stats["added"], f.stats["updated"], f.stats["moved"], f.stats["removed"])
	t.Logf("daemon kill summary: kills performed %d (creates %d, edits %d); resources checked %d; duplicates found %d; orphans found %d; kept resources deleted %d",
		kills, createKills, editKills, created.resources+between.resources+edited.resources, created.duplicates+edited.duplicates, created.orphans+edited.orphans, len(lost))
	if kills < 10 {
		t.Errorf("only %d kills landed while the daemon worked; the test did not exercise what it claims", kills)
	}
}
