package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// runTest runs the whole daemon (real watcher, HTTP listener, signals from
// a channel) around a fake reconciler. Waits poll observable conditions with
// a deadline.
type runTest struct {
	t       *testing.T
	specs   *fakeSpecs
	rec     *fakeReconciler
	signals chan os.Signal
	exited  chan struct{}
	result  chan error
	baseURL string
	gate    *Gate
}

func startRun(t *testing.T, configure func(*Config)) *runTest {
	t.Helper()
	rt := &runTest{t: t, specs: &fakeSpecs{}, rec: &fakeReconciler{maxDestroy: 5}, signals: make(chan os.Signal, 4),
		exited: make(chan struct{}), result: make(chan error, 1)}
	rt.specs.write("h1", "a")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rt.baseURL = "http://" + l.Addr().String()
	rt.gate = NewGate(unreachableAPI{})
	cfg := Config{
		Loop:        LoopOptions{Dir: t.TempDir(), Load: rt.specs.load, Reconciler: rt.rec, Metrics: NewMetrics()},
		Listener:    l,
		Gate:        rt.gate,
		Signals:     rt.signals,
		Exit:        func() { close(rt.exited) },
		StopTimeout: time.Minute,
	}
	if configure != nil {
		configure(&cfg)
	}
	go func() { rt.result <- Run(t.Context(), cfg) }()
	rt.eventually("the first pass", func() bool { return len(rt.rec.passes()) == 1 })
	return rt
}

func (rt *runTest) eventually(what string, cond func() bool) {
	rt.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			rt.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition, not synchronisation
	}
}

func (rt *runTest) get(path string) (int, string) {
	rt.t.Helper()
	resp, err := http.Get(rt.baseURL + path)
	if err != nil {
		rt.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (rt *runTest) wait() error {
	rt.t.Helper()
	select {
	case err := <-rt.result:
		return err
	case <-time.After(30 * time.Second):
		rt.t.Fatal("Run did not return")
		return nil
	}
}

// unreachableAPI stands for Twilio behind the gate.
type unreachableAPI struct{ twilioapi.API }

func (unreachableAPI) Fetch(context.Context, resource.Kind, string, string) (resource.Observed, error) {
	return resource.Observed{}, nil
}

func TestSIGTERMLetsThePassInFlightFinishThenExitsCleanly(t *testing.T) {
	rt := startRun(t, nil)
	release := make(chan struct{})
	rt.rec.set(func(r *fakeReconciler) { r.block = release })
	rt.signals <- syscall.SIGHUP
	rt.eventually("the SIGHUP pass", func() bool { return len(rt.rec.passes()) == 2 })
	if p := rt.rec.passes()[1]; !p.full {
		t.Fatalf("SIGHUP must ask for a full resync: %+v", p)
	}

	rt.signals <- syscall.SIGTERM
	rt.eventually("the gate closing", func() bool {
		_, err := rt.gate.Fetch(t.Context(), resource.KindService, "", "IS1")
		return errors.Is(err, ErrStopping)
	})
	if code, body := rt.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "stopping") {
		t.Fatalf("/readyz while stopping: %d %s", code, body)
	}
	select {
	case err := <-rt.result:
		t.Fatalf("Run returned (%v) with a pass in flight", err)
	default:
	}
	close(release)
	if err := rt.wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	rt.rec.set(func(r *fakeReconciler) {
		if r.ctxErrs[1] != nil {
			t.Fatalf("the pass in flight was cancelled: %v", r.ctxErrs[1])
		}
	})
	if n := len(rt.rec.passes()); n != 2 {
		t.Fatalf("%d passes; no new work may start after SIGTERM", n)
	}
}

func TestASecondSignalExitsAtOnce(t *testing.T) {
	rt := startRun(t, nil)
	release := make(chan struct{})
	defer close(release)
	rt.rec.set(func(r *fakeReconciler) { r.block = release })
	rt.signals <- syscall.SIGHUP
	rt.eventually("the blocked pass", func() bool { return len(rt.rec.passes()) == 2 })
	rt.signals <- os.Interrupt
	rt.signals <- syscall.SIGTERM
	select {
	case <-rt.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal did not exit")
	}
}

func TestStopTimeoutCancelsThePassInFlight(t *testing.T) {
	rt := startRun(t, func(c *Config) { c.StopTimeout = 50 * time.Millisecond })
	rt.rec.set(func(r *fakeReconciler) { r.block = make(chan struct{}) }) // never released
	rt.signals <- syscall.SIGHUP
	rt.eventually("the blocked pass", func() bool { return len(rt.rec.passes()) == 2 })
	rt.signals <- syscall.SIGTERM
	if err := rt.wait(); !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("want ErrStopTimeout, got %v", err)
	}
	rt.rec.set(func(r *fakeReconciler) {
		if !errors.Is(r.ctxErrs[1], context.Canceled) {
			t.Fatalf("the pass was not cancelled at the stop timeout: %v", r.ctxErrs[1])
		}
	})
}

// A pass that ignores its cancellation (stuck) does not keep the daemon
// alive past the stop timeout (and one more for the cancellation to land).
func TestStopTimeoutStopsAStuckPass(t *testing.T) {
	rt := startRun(t, func(c *Config) { c.StopTimeout = 50 * time.Millisecond })
	release := make(chan struct{})
	defer close(release)
	rt.rec.set(func(r *fakeReconciler) { r.block, r.deaf = release, true })
	rt.signals <- syscall.SIGHUP
	rt.eventually("the stuck pass", func() bool { return len(rt.rec.passes()) == 2 })
	rt.signals <- syscall.SIGTERM
	if err := rt.wait(); !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("want ErrStopTimeout, got %v", err)
	}
}

// A pass that held resources back (a plan problem touching them) applied
// the rest: the daemon stays ready and reports them in /readyz, the logs'
// pass report and the metrics.
func TestHeldBackResourcesAreReportedAndKeepTheDaemonReady(t *testing.T) {
	rt := startRun(t, nil)
	defer func() { rt.signals <- syscall.SIGTERM; rt.wait() }()
	clash := resource.Address{Kind: resource.KindConversation, Name: "clash"}
	rt.rec.set(func(r *fakeReconciler) {
		r.heldBack = map[resource.Address]string{clash: `conversation.clash: unique_name "x" is already taken`}
		r.failing = map[resource.Address]error{clash: errors.New("held back: unique_name \"x\" is already taken")}
	})
	rt.signals <- syscall.SIGHUP
	rt.eventually("the held-back resource in /readyz", func() bool {
		_, body := rt.get("/readyz")
		return strings.Contains(body, `"held_back"`)
	})
	code, body := rt.get("/readyz")
	var s Status
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != 200 || !s.Ready {
		t.Fatalf("/readyz: %d %s (%v)", code, body, err)
	}
	if p := s.LastPass; p.Outcome != OutcomePartial || len(p.HeldBack) != 1 || p.HeldBack[0].Address != "conversation.clash" ||
		!strings.Contains(p.HeldBack[0].Problem, "already taken") || !strings.Contains(p.Summary, "1 held back") {
		t.Errorf("last pass: %+v", p)
	}
	if _, failing := s.Failing["conversation.clash"]; !failing {
		t.Errorf("/readyz failing: %v", s.Failing)
	}
	_, metrics := rt.get("/metrics")
	if !strings.Contains(metrics, MetricHeldBack+" 1") {
		t.Errorf("/metrics lacks %s 1", MetricHeldBack)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	rt := startRun(t, nil)
	defer func() { rt.signals <- syscall.SIGTERM; rt.wait() }()

	if code, body := rt.get("/healthz"); code != 200 || !strings.Contains(body, "alive") {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	code, body := rt.get("/readyz")
	var s Status
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != 200 || !s.Ready || !s.State.LockHeld || !s.Specs.Loaded {
		t.Fatalf("/readyz: %d %s (%v)", code, body, err)
	}

	// A bad edit keeps readiness (the last good specs are in force) and says so.
	rt.specs.breakSyntax()
	rt.signals <- syscall.SIGHUP
	rt.eventually("the reload failure in /readyz", func() bool {
		_, body := rt.get("/readyz")
		return strings.Contains(body, `"last_reload_ok": false`) && strings.Contains(body, "specs.yaml:3")
	})

	// Guard refusal, then a one-pass allowance.
	rt.specs.write("h-empty")
	rt.rec.set(func(r *fakeReconciler) { r.destroys = 7 })
	rt.signals <- syscall.SIGHUP
	rt.eventually("the refusal in /readyz", func() bool {
		_, body := rt.get("/readyz")
		return strings.Contains(body, `"outcome": "refused"`)
	})
	for _, bad := range []string{"", "?count=0", "?count=many"} {
		resp, err := http.Post(rt.baseURL+"/allow-destroy"+bad, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("POST /allow-destroy%s: %d, want 400", bad, resp.StatusCode)
		}
	}
	// A web page cannot allow deletions (a plain cross-site form POST).
	fromPage, _ := http.NewRequest(http.MethodPost, rt.baseURL+"/allow-destroy?count=7", strings.NewReader("x=1"))
	fromPage.Header.Set("Origin", "https://evil.example")
	fromPage.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(fromPage); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a browser's POST must be refused: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err := http.Post(rt.baseURL+"/allow-destroy?count=7", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var report PassReport
	json.NewDecoder(resp.Body).Decode(&report)
	resp.Body.Close()
	if resp.StatusCode != 200 || report.Outcome != OutcomeSuccess || report.Counts["delete"] != 7 {
		t.Fatalf("POST /allow-destroy?count=7: %d %+v", resp.StatusCode, report)
	}
	if resp, err := http.Get(rt.baseURL + "/allow-destroy?count=7"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /allow-destroy must be refused: %v %v", resp.StatusCode, err)
	}

	_, metrics := rt.get("/metrics")
	for _, want := range []string{
		MetricPasses + `{outcome="refused",trigger="signal"} 1`,
		MetricPasses + `{outcome="success",trigger="allow-destroy"} 1`,
		MetricRefusedPasses + " 1",
		MetricSteps + `{action="delete",outcome="success"} 7`,
		MetricLastReloadOK + " 1",
		MetricReloads + `{outcome="failure"} 1`,
		MetricReady + " 1",
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestSystemdReadyStatusAndWatchdog(t *testing.T) {
	socket, messages := fakeSystemd(t)
	rt := startRun(t, func(c *Config) {
		c.Notifier = NotifierFromEnv(envOf(map[string]string{"NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "200000"}))
	})
	defer func() { rt.signals <- syscall.SIGTERM; rt.wait() }()
	var seen []string
	want := map[string]bool{"READY=1": false, "STATUS=last pass": false, "WATCHDOG=1": false}
	deadline := time.After(10 * time.Second)
	for {
		done := true
		for _, ok := range want {
			done = done && ok
		}
		if done {
			break
		}
		select {
		case m := <-messages:
			seen = append(seen, m)
			for k := range want {
				if strings.Contains(m, k) {
					want[k] = true
				}
			}
		case <-deadline:
			t.Fatalf("systemd saw %q; missing some of %v", seen, want)
		}
	}
	if !strings.HasPrefix(seen[0], "READY=1\nSTATUS=") {
		t.Fatalf("the first message must be READY=1 with a STATUS line, got %q", seen[0])
	}
}

func TestMetricsObserveTwilioCalls(t *testing.T) {
	m := NewMetrics()
	route := "/v1/Services/{ServiceSid}/Conversations"
	m.ObserveAPICall(twilioapi.Call{Method: "POST", Route: route, Status: 429, Duration: 30 * time.Millisecond})
	m.ObserveAPICall(twilioapi.Call{Method: "POST", Route: route, Status: 201, Duration: 40 * time.Millisecond})
	m.ObserveAPICall(twilioapi.Call{Method: "GET", Route: "/v1/Services", Status: 0})
	if got := metric(t, m, MetricAPIRequests, map[string]string{"route": route}); got != 2 {
		t.Fatalf("requests for %s: %v", route, got)
	}
	if got := metric(t, m, MetricAPIRateLimited, nil); got != 1 {
		t.Fatalf("429s: %v", got)
	}
	if got := metric(t, m, MetricAPIRequests, map[string]string{"status": "none"}); got != 1 {
		t.Fatalf("calls without an answer: %v", got)
	}
}
