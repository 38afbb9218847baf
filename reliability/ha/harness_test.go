package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/pgtest"
	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/state/pgstate"
)

const (
	accountSID = "AC44444444444444444444444444444444"
	authToken  = "HaAuthTokenZ9q2"
	quarantine = time.Second
)

// leaseDuration is the tests' lease: short, so a failover takes seconds
// (the renew deadline is 2/3 of it, the retry period 2/15). HA_LEASE sets
// another, e.g. the default 15s to measure failover times as users get them.
var leaseDuration = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("HA_LEASE")); err == nil && d >= time.Second {
		return d
	}
	return 3 * time.Second
}()

var binary string

func TestMain(m *testing.M) {
	code := testenv.MainWithBinary(m, &binary)
	pgtest.Cleanup()
	if hookedDir != "" {
		os.RemoveAll(hookedDir)
	}
	os.Exit(code)
}

var (
	hookedOnce sync.Once
	hookedDir  string
	hooked     string
	hookedErr  error
)

// hookedBinary is convsync built with -tags convsync_testhooks, which can
// stop itself at a chosen moment (internal/cli/testhooks_on.go); built on
// first use.
func hookedBinary(t *testing.T) string {
	t.Helper()
	hookedOnce.Do(func() {
		if hookedDir, hookedErr = os.MkdirTemp("", "convsync-hooked-"); hookedErr != nil {
			return
		}
		hooked = filepath.Join(hookedDir, "convsync")
		build := exec.Command("go", "build", "-tags", "convsync_testhooks", "-o", hooked, "./cmd/convsync")
		build.Dir = testenv.RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			hookedErr = fmt.Errorf("building the hooked convsync: %v\n%s", err, out)
		}
	})
	if hookedErr != nil {
		t.Fatal(hookedErr)
	}
	return hooked
}

// cluster is one PostgreSQL, one emulator and one spec folder shared by
// the replicas.
type cluster struct {
	t      *testing.T
	pg     *pgtest.Server
	url    string // the state URL the replicas use
	emu    *emulator.Server
	emuURL string // the emulator for one-shot commands
	dir    string
	work   string
	extra  []string // more flags for every run
	// hookEnv, when set, starts the next replicas from the hooked binary
	// with this environment.
	hookEnv []string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	pg := pgtest.Start(t)
	emu, err := emulator.New(emulator.Options{AccountSID: accountSID, AuthToken: authToken})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	emuSrv := httptest.NewServer(emu)
	t.Cleanup(emuSrv.Close)
	c := &cluster{t: t, pg: pg, url: pg.URL(), emu: emu, emuURL: emuSrv.URL, dir: filepath.Join(work, "specs"), work: work}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) writeSpec(name, content string) {
	c.t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// conversations writes a service and n conversations; every other one has
// no unique_name (then only its fields recognise it) when mixed is set.
func (c *cluster) conversations(n int, mixed bool) {
	c.writeSpec("specs.yaml", c.specText(n, mixed, false))
}

// specText is the spec file of conversations; with access, also two
// roles and a user for every fifth conversation.
func (c *cluster) specText(n int, mixed, access bool) string {
	var b strings.Builder
	b.WriteString("kind: Service\nname: support\nfriendly_name: Support\n")
	if access {
		b.WriteString("---\nkind: Role\nname: staff\nservice: support\nfriendly_name: Storm staff\ntype: service\npermissions: [createConversation, joinConversation]\n")
		b.WriteString("---\nkind: Role\nname: agent\nservice: support\nfriendly_name: Storm agent\ntype: conversation\npermissions: [sendMessage, leaveConversation]\n")
		for i := 0; i < n; i += 5 {
			fmt.Fprintf(&b, "---\nkind: User\nname: user%03d\nservice: support\nidentity: user%03d@example.com\nfriendly_name: User %03d\nrole: staff\n", i, i, i)
		}
	}
	for i := range n {
		fmt.Fprintf(&b, "---\nkind: Conversation\nname: c%03d\nservice: support\nfriendly_name: Conversation %03d\n", i, i)
		if !mixed || i%2 == 0 {
			fmt.Fprintf(&b, "unique_name: u%03d\n", i)
		}
	}
	return b.String()
}

// auditAccess checks the roles and users of the specs against Twilio and
// the state: one role per spec'd friendly name, every user owned, and every
// owned role and user present.
func (c *cluster) auditAccess() (problems []string) {
	c.t.Helper()
	st := c.readState()
	owned := map[string]bool{}
	for _, r := range st.Resources {
		owned[r.SID] = true
	}
	spec := c.readSpec()
	for _, s := range c.emu.Services() {
		if s.SID == c.emu.DefaultServiceSID() {
			continue
		}
		roles, err := c.emu.Roles(s.SID)
		if err != nil {
			c.t.Fatal(err)
		}
		byName := map[string]int{}
		for _, r := range roles {
			if strings.HasPrefix(r.FriendlyName, "Storm ") {
				byName[r.FriendlyName]++
				if !owned[r.SID] {
					problems = append(problems, "role "+r.SID+" ("+r.FriendlyName+") not in the state")
				}
			}
		}
		for _, name := range []string{"Storm staff", "Storm agent"} {
			if n := byName[name]; n != 1 {
				problems = append(problems, fmt.Sprintf("role %q exists %d times", name, n))
			}
		}
		users, err := c.emu.Users(s.SID)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, u := range users {
			if !owned[u.SID] {
				problems = append(problems, "user "+u.Identity+" not in the state")
			}
		}
		if want := strings.Count(spec, "kind: User"); len(users) != want {
			problems = append(problems, fmt.Sprintf("%d users in Twilio, %d in the specs", len(users), want))
		}
	}
	return problems
}

// request is one request a replica sent, as its proxy saw it arrive.
type request struct {
	method, path string
	at           time.Time
}

// replica is one convsync run, talking to the emulator through its own
// proxy (which records and can hold its requests).
type replica struct {
	c      *cluster
	name   string
	cmd    *exec.Cmd
	listen string
	done   chan struct{}
	proxy  *httptest.Server

	mu       sync.Mutex
	requests []request
	hook     func(w http.ResponseWriter, r *http.Request) bool // true: handled
	stderr   bytes.Buffer
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (c *cluster) start(name string, extra ...string) *replica {
	c.t.Helper()
	return c.startWithState(name, c.url, extra...)
}

// startWithState starts a replica reaching the state at url (its own
// path to the database).
func (c *cluster) startWithState(name, url string, extra ...string) *replica {
	c.t.Helper()
	r := &replica{c: c, name: name, listen: freeAddr(c.t), done: make(chan struct{})}
	r.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, request{req.Method, req.URL.Path, time.Now()})
		hook := r.hook
		r.mu.Unlock()
		if hook != nil && hook(w, req) {
			return
		}
		c.emu.ServeHTTP(w, req)
	}))
	c.t.Cleanup(r.proxy.Close)
	args := []string{"run", "--dir", c.dir, "--state", url, "--listen", r.listen, "--lease-duration", leaseDuration.String(),
		"--quarantine", quarantine.String(), "--resync", "1h", "--poll", "0", "--debounce", "50ms", "--debounce-max", "200ms",
		"--log-format", "json", "--max-destroy", "-1", "--backoff-base", "200ms", "--backoff-max", "1s", "--stop-timeout", "10s"}
	args = append(append(args, c.extra...), extra...)
	bin := binary
	if c.hookEnv != nil {
		bin = hookedBinary(c.t)
	}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Dir = c.work
	r.cmd.Env = append(append(os.Environ(), "TWILIO_ACCOUNT_SID="+accountSID, "TWILIO_AUTH_TOKEN="+authToken, "CONVSYNC_API_URL="+r.proxy.URL), c.hookEnv...)
	r.cmd.Stdout = io.Discard
	r.cmd.Stderr = &lockedWriter{mu: &r.mu, w: &r.stderr}
	if err := r.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	c.t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
		if c.t.Failed() {
			c.t.Logf("--- %s log ---\n%s", r.name, r.log())
		}
	})
	return r
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (r *replica) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

func (r *replica) setHook(h func(w http.ResponseWriter, req *http.Request) bool) {
	r.mu.Lock()
	r.hook = h
	r.mu.Unlock()
}

// requestsSince lists the requests that arrived after t.
func (r *replica) requestsSince(t time.Time) []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []request
	for _, q := range r.requests {
		if q.at.After(t) {
			out = append(out, q)
		}
	}
	return out
}

func (r *replica) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

type readyz struct {
	Ready      bool     `json:"ready"`
	Reasons    []string `json:"reasons"`
	Leadership *struct {
		Role        string `json:"role"`
		Holder      string `json:"holder"`
		Epoch       int64  `json:"epoch"`
		Leader      string `json:"leader"`
		LeaderEpoch int64  `json:"leader_epoch"`
	} `json:"leadership"`
	LastPass *struct {
		Outcome  string `json:"outcome"`
		SpecHash string `json:"spec_hash"`
	} `json:"last_pass"`
	PassInProgress any `json:"pass_in_progress"`
}

// status asks /readyz; ok is false when the replica does not answer.
func (r *replica) status() (rz readyz, code int, ok bool) {
	if r.exited() {
		return rz, 0, false
	}
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + r.listen + "/readyz")
	if err != nil {
		return rz, 0, false
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&rz); err != nil {
		return rz, resp.StatusCode, false
	}
	return rz, resp.StatusCode, true
}

func (r *replica) leading() bool {
	rz, _, ok := r.status()
	return ok && rz.Leadership != nil && rz.Leadership.Role == "leader"
}

func (r *replica) metrics() string {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + r.listen + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond every 25 ms until it holds or within has passed.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(25 * time.Millisecond) // polling processes we do not control
	}
	return time.Since(start)
}

// leader waits until exactly one of rs leads and returns it.
func leader(t *testing.T, within time.Duration, rs ...*replica) *replica {
	t.Helper()
	var found *replica
	waitFor(t, within, "one replica leads", func() bool {
		found = nil
		n := 0
		for _, r := range rs {
			if r.leading() {
				found, n = r, n+1
			}
		}
		return n == 1
	})
	return found
}

// converged waits until r's last pass applied the current specs and
// succeeded, with nothing pending in the state.
func (c *cluster) converged(r *replica, within time.Duration) {
	c.t.Helper()
	waitFor(c.t, within, r.name+" converges", func() bool {
		rz, _, ok := r.status()
		if !ok || rz.LastPass == nil || rz.LastPass.Outcome != "success" || rz.PassInProgress != nil {
			return false
		}
		st := c.readState()
		return len(st.Pending) == 0 && c.ownedConversations(st) == c.specConversations()
	})
}

func (c *cluster) readSpec() string {
	data, err := os.ReadFile(filepath.Join(c.dir, "specs.yaml"))
	if err != nil {
		c.t.Fatal(err)
	}
	return string(data)
}

func (c *cluster) specConversations() int {
	data, _ := os.ReadFile(filepath.Join(c.dir, "specs.yaml"))
	return strings.Count(string(data), "kind: Conversation")
}

func (c *cluster) ownedConversations(st *state.State) int {
	n := 0
	for _, r := range st.Resources {
		if r.Address.Kind == "Conversation" {
			n++
		}
	}
	return n
}

// readState reads the shared state.
func (c *cluster) readState() *state.State {
	c.t.Helper()
	s, err := pgstate.Open(context.Background(), c.pg.URL(), pgstate.Options{ReadOnly: true})
	if err != nil {
		c.t.Fatalf("reading the state: %v", err)
	}
	defer s.Close()
	return s.State()
}

// audit checks Twilio (the emulator) against the specs and the state:
// every conversation of the specs exactly once, none the state does not
// own, no pending create left, and the state's SIDs all in Twilio.
func (c *cluster) audit() (duplicates, orphans int, problems []string) {
	c.t.Helper()
	st := c.readState()
	owned := map[string]string{}
	for k, r := range st.Resources {
		owned[r.SID] = k
	}
	if len(st.Pending) > 0 {
		problems = append(problems, fmt.Sprintf("%d pending creates left", len(st.Pending)))
	}
	byName := map[string]int{}
	for _, s := range c.emu.Services() {
		if s.SID == c.emu.DefaultServiceSID() {
			continue
		}
		if _, ok := owned[s.SID]; !ok {
			orphans++
			problems = append(problems, "service "+s.SID+" not in the state")
		}
		convs, err := c.emu.Conversations(s.SID)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, cv := range convs {
			name := ""
			if cv.FriendlyName != nil {
				name = *cv.FriendlyName
			}
			byName[name]++
			if _, ok := owned[cv.SID]; !ok {
				orphans++
				problems = append(problems, fmt.Sprintf("conversation %s (%q) not in the state", cv.SID, name))
			}
		}
	}
	for name, n := range byName {
		if n > 1 {
			duplicates += n - 1
			problems = append(problems, fmt.Sprintf("%q exists %d times", name, n))
		}
	}
	if got, want := len(byName), c.specConversations(); got != want {
		problems = append(problems, fmt.Sprintf("%d conversations in Twilio, %d in the specs", got, want))
	}
	return duplicates, orphans, problems
}

func (c *cluster) mustAudit() {
	c.t.Helper()
	dup, orph, problems := c.audit()
	if dup != 0 || orph != 0 || len(problems) > 0 {
		c.t.Fatalf("audit: %d duplicates, %d orphans: %s", dup, orph, strings.Join(problems, "; "))
	}
}

// cli runs a one-shot convsync against the shared state.
func (c *cluster) cli(timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{}, args...)
	if !slices.Contains(args, "--state") {
		full = append(full, "--state", c.url)
	}
	full = append(full, "--dir", c.dir, "--lease-duration", leaseDuration.String())
	cmd := exec.CommandContext(ctx, binary, full...)
	cmd.Dir = c.work
	cmd.Env = append(os.Environ(), "TWILIO_ACCOUNT_SID="+accountSID, "TWILIO_AUTH_TOKEN="+authToken, "CONVSYNC_API_URL="+c.emuURL)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func signal(t *testing.T, r *replica, sig syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
}

func exitCode(r *replica) int { return r.cmd.ProcessState.ExitCode() }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mustConversations(t *testing.T, c *cluster) []emulator.Conversation {
	t.Helper()
	var out []emulator.Conversation
	for _, s := range c.emu.Services() {
		convs, err := c.emu.Conversations(s.SID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, convs...)
	}
	return out
}
