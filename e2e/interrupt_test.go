package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// holdCreates puts a handler in front of e's emulator (e.url is moved to
// it) that holds every conversation create until release is called, and
// tells arrived about each as it arrives. Nothing is timed: the test says
// when Twilio answers.
type heldCreates struct {
	arrived chan string
	release func()
	mu      sync.Mutex
	count   int
	handled sync.WaitGroup // creates held, then passed on to the emulator
}

func (e *env) holdCreates() *heldCreates {
	e.t.Helper()
	h := &heldCreates{arrived: make(chan string, 1000)}
	gate := make(chan struct{})
	var once sync.Once
	h.release = func() { once.Do(func() { close(gate) }) }
	// The handler keeps its own reference: it may still serve a request of
	// a killed process while the test ends.
	emu := e.emu
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Conversations") {
			h.handled.Add(1)
			defer h.handled.Done()
			// Read the form now: once released, the client may be gone.
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			h.mu.Lock()
			h.count++
			h.mu.Unlock()
			h.arrived <- r.PostForm.Get("UniqueName")
			<-gate
		}
		emu.ServeHTTP(w, r)
	}))
	e.t.Cleanup(func() { h.release(); srv.Close() })
	e.url = srv.URL
	return h
}

// await waits until n creates are held.
func (h *heldCreates) await(t *testing.T, n int) {
	t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for range n {
		select {
		case <-h.arrived:
		case <-timeout.C:
			t.Fatalf("%d conversation creates arrived, want %d", h.sent(), n)
		}
	}
}

func (h *heldCreates) sent() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// process is a convsync run whose output is read line by line as it comes.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string // stdout and stderr lines, as they come
	mu     sync.Mutex
	stdout strings.Builder
	stderr strings.Builder
	exited chan struct{}
	state  *os.ProcessState
}

func (e *env) start(args ...string) *process {
	e.t.Helper()
	full := append([]string{args[0], "--dir", e.dir, "--state", e.state}, args[1:]...)
	p := &process{t: e.t, cmd: exec.Command(binary, full...), lines: make(chan string, 10000), exited: make(chan struct{})}
	p.cmd.Dir = e.work
	p.cmd.Env = append(os.Environ(), "TWILIO_ACCOUNT_SID="+accountSID, "TWILIO_AUTH_TOKEN="+authToken, "CONVSYNC_API_URL="+e.url)
	outPipe, err := p.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	var readers sync.WaitGroup
	read := func(r io.Reader, into *strings.Builder) {
		defer readers.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			into.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
	}
	readers.Add(2)
	go read(outPipe, &p.stdout)
	go read(errPipe, &p.stderr)
	go func() {
		readers.Wait()
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.exited)
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitFor reads output lines until one contains want.
func (p *process) waitFor(want string) {
	p.t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		select {
		case line := <-p.lines:
			if strings.Contains(line, want) {
				return
			}
		case <-p.exited:
			p.t.Fatalf("convsync exited before printing %q:\n%s", want, p.output())
		case <-timeout.C:
			p.t.Fatalf("convsync did not print %q:\n%s", want, p.output())
		}
	}
}

func (p *process) wait() *os.ProcessState {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.state
	case <-time.After(time.Minute):
		p.t.Fatalf("convsync did not exit:\n%s", p.output())
		return nil
	}
}

func (p *process) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "--- stdout ---\n" + p.stdout.String() + "--- stderr ---\n" + p.stderr.String()
}

func (p *process) out() (stdout, stderr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), p.stderr.String()
}

// conversationSpecs writes one service and n conversations c01…cNN.
func (e *env) conversationSpecs(n int) {
	var b strings.Builder
	b.WriteString("kind: Service\nname: support\nfriendly_name: Support\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "---\nkind: Conversation\nname: c%02d\nservice: support\nunique_name: u%02d\nfriendly_name: Room %d\n", i, i, i)
	}
	e.writeSpec("specs.yaml", b.String())
}

// TestInterruptLetsCallsInFlightFinish: the first SIGINT (or SIGTERM)
// during apply starts no new step, lets the three creates in flight finish
// and records them, lists each never-sent step once as not started, and
// exits 1; the next apply creates the rest.
func TestInterruptLetsCallsInFlightFinish(t *testing.T) {
	for _, tt := range []struct {
		name string
		sig  syscall.Signal
		json bool
	}{{"SIGINT", syscall.SIGINT, false}, {"SIGTERM --json", syscall.SIGTERM, true}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.conversationSpecs(12)
			held := e.holdCreates()
			args := []string{"apply", "--auto-approve", "--parallelism", "3"}
			if tt.json {
				args = append(args, "--json")
			}
			p := e.start(args...)
			held.await(t, 3)
			p.signal(tt.sig)
			// The signal was handled (it is printed) before Twilio answers.
			if tt.json {
				p.waitFor(`"type":"stopping","in_flight":3`)
			} else {
				p.waitFor("stopping. No new step starts; waiting for the 3 steps in flight to finish")
			}
			held.release()
			st := p.wait()
			stdout, stderr := p.out()
			if st.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1:\n%s", st, p.output())
			}
			if n := held.sent(); n != 3 {
				t.Errorf("%d conversation creates sent, want the 3 in flight at the signal", n)
			}
			created := 0
			for i := 1; i <= 12; i++ {
				if _, ok := e.conversation(e.stateSID("service.support"), fmt.Sprintf("u%02d", i)); ok {
					created++
				}
			}
			if created != 3 {
				t.Errorf("%d conversations in Twilio, want 3", created)
			}
			if r := e.must(0, "state", "list"); strings.Count(r.stdout, "conversation.") != 3 {
				t.Errorf("the state does not hold the 3 conversations created:\n%s", r.stdout)
			}
			if strings.Contains(stderr, "step failed") || strings.Contains(stdout, "FAILED") {
				t.Errorf("a step was reported failed:\n%s", p.output())
			}
			notStarted := 0
			for i := 1; i <= 12; i++ {
				name := fmt.Sprintf("conversation.c%02d", i)
				if strings.Contains(stderr, name) {
					t.Errorf("%s is on stderr:\n%s", name, stderr)
				}
				if !strings.Contains(stdout, name+`"`) && !strings.Contains(stdout, name+":") {
					continue
				}
				if tt.json {
					if strings.Count(stdout, `"address":"`+name+`"`) == 1 && strings.Contains(stdout, `"type":"not_started","address":"`+name+`"`) {
						notStarted++
					}
				} else if strings.Count(stdout, name+":") == 1 && strings.Contains(stdout, "  "+name+": create\n") {
					notStarted++
				}
			}
			if notStarted != 9 {
				t.Errorf("%d steps listed exactly once as not started, want 9:\n%s", notStarted, stdout)
			}
			if tt.json {
				checkJSONLines(t, stdout)
				if !strings.Contains(stdout, `"type":"summary","outcome":"stopped","total":13,"done":{"create":4},"failed":0,"skipped":0,"not_started":9`) {
					t.Errorf("summary:\n%s", stdout)
				}
			} else if !strings.Contains(stdout, "Apply stopped: 4 created, 0 updated, 0 replaced, 0 deleted, 9 not started.\n") {
				t.Errorf("summary:\n%s", stdout)
			}

			r := e.must(0, "apply", "--auto-approve")
			if !strings.Contains(r.stdout, "Apply complete: 9 created, 0 updated, 0 replaced, 0 deleted.") {
				t.Errorf("second apply:\n%s", r)
			}
			e.must(0, "plan", "--detailed-exitcode")
			if cs, _ := e.emu.Conversations(e.stateSID("service.support")); len(cs) != 12 {
				t.Errorf("%d conversations in Twilio, want 12", len(cs))
			}
		})
	}
}

// checkJSONLines: every line of stdout is one JSON object of format 1.0.
func checkJSONLines(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var events []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Errorf("stdout line %d is not JSON (%v): %q", i+1, err, line)
			continue
		}
		if ev["format_version"] != "1.0" {
			t.Errorf("line %d: format_version %v", i+1, ev["format_version"])
		}
		events = append(events, ev)
	}
	return events
}

// TestApplyJSON: apply --json prints only JSON events: a start with the
// step count, started and done for every step (SID, duration), a summary.
func TestApplyJSON(t *testing.T) {
	e := newEnv(t)
	e.conversationSpecs(2)
	if r := e.must(1, "apply", "--json"); !strings.Contains(r.stderr, "--auto-approve") || r.stdout != "" {
		t.Errorf("--json without --auto-approve:\n%s", r)
	}
	r := e.must(0, "apply", "--auto-approve", "--json")
	events := checkJSONLines(t, r.stdout)
	if len(events) != 1+2*3+1 {
		t.Fatalf("%d events, want 8:\n%s", len(events), r.stdout)
	}
	if events[0]["type"] != "start" || events[0]["total"] != 3.0 {
		t.Errorf("first event: %v", events[0])
	}
	last := events[len(events)-1]
	if last["type"] != "summary" || last["outcome"] != "complete" || last["total"] != 3.0 || last["not_started"] != 0.0 {
		t.Errorf("last event: %v", last)
	}
	seen := map[string][]string{}
	for _, ev := range events[1 : len(events)-1] {
		addr, _ := ev["address"].(string)
		seen[addr] = append(seen[addr], ev["type"].(string))
		if ev["action"] != "create" {
			t.Errorf("action: %v", ev)
		}
		if ev["type"] == "done" {
			if sid, _ := ev["sid"].(string); sid == "" || sid != e.stateSID(addr) {
				t.Errorf("done without the state's SID: %v", ev)
			}
			if _, ok := ev["duration_ms"].(float64); !ok {
				t.Errorf("done without duration_ms: %v", ev)
			}
		}
	}
	for _, addr := range []string{"service.support", "conversation.c01", "conversation.c02"} {
		if got := strings.Join(seen[addr], ","); got != "started,done" {
			t.Errorf("%s: events %s, want started,done", addr, got)
		}
	}
	// A saved plan, and no changes.
	e.must(0, "plan", "--out", "p.plan")
	r = e.must(0, "apply", "--json", "p.plan")
	if got := r.stdout; got != `{"format_version":"1.0","type":"start","total":0}`+"\n"+
		`{"format_version":"1.0","type":"summary","outcome":"no_changes","total":0,"done":{},"failed":0,"skipped":0,"not_started":0,"duration_ms":0}`+"\n" {
		t.Errorf("no changes:\n%s", got)
	}
}

// TestProgressLines: without a terminal, apply prints one line per step
// event, each prefixed [finished/all].
func TestProgressLines(t *testing.T) {
	e := newEnv(t)
	e.conversationSpecs(2)
	r := e.must(0, "apply", "--auto-approve", "--parallelism", "1")
	_, progress, ok := strings.Cut(r.stdout, "Plan: 3 to create, 0 to update, 0 to replace, 0 to delete.\n\n")
	if !ok {
		t.Fatalf("no plan line:\n%s", r)
	}
	norm := regexp.MustCompile(`(IS|CH)[0-9a-f]{32} \(\d+\.\ds\)`).ReplaceAllString(progress, "${1}… (Ns)")
	want := `[0/3] service.support: creating...
[1/3] service.support: created IS… (Ns)
[1/3] conversation.c01: creating...
[2/3] conversation.c01: created CH… (Ns)
[2/3] conversation.c02: creating...
[3/3] conversation.c02: created CH… (Ns)

Apply complete: 3 created, 0 updated, 0 replaced, 0 deleted.
`
	if norm != want {
		t.Errorf("progress:\n%s\nwant:\n%s", norm, want)
	}
}
