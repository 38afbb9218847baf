package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	daemonpkg "github.com/convsync/convsync/pkg/daemon"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/state"
)

// daemon is one `convsync run` process against the env's emulator.
type daemon struct {
	e    *env
	cmd  *exec.Cmd
	addr string // the HTTP listener, from its log
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
	code int
}

// startDaemon runs `convsync run` with short debounce times and a free port.
func (e *env) startDaemon(extra ...string) *daemon {
	e.t.Helper()
	args := append([]string{"run", "--dir", e.dir, "--state", e.state, "--listen", "127.0.0.1:0",
		"--log-format", "json", "--debounce", "50ms", "--debounce-max", "500ms"}, extra...)
	d := &daemon{e: e, cmd: exec.Command(binary, args...), done: make(chan struct{})}
	d.cmd.Dir = e.work
	d.cmd.Env = append(os.Environ(), "TWILIO_ACCOUNT_SID="+accountSID, "TWILIO_AUTH_TOKEN="+authToken, "CONVSYNC_API_URL="+e.url)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	addrFound := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.logs.WriteString(line + "\n")
			d.mu.Unlock()
			var entry struct {
				Listen string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Listen != "" {
				select {
				case addrFound <- entry.Listen:
				default:
				}
			}
		}
		err := d.cmd.Wait()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			d.code = exitErr.ExitCode()
		}
		close(d.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		if e.t.Failed() {
			e.t.Logf("convsync run log:\n%s", d.log())
		}
	})
	select {
	case d.addr = <-addrFound:
	case <-d.done:
		e.t.Fatalf("convsync run exited at start (exit %d):\n%s", d.code, d.log())
	case <-time.After(30 * time.Second):
		e.t.Fatalf("convsync run did not start listening:\n%s", d.log())
	}
	return d
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// eventually polls an observable condition until it holds, with a deadline.
func (e *env) eventually(what string, cond func() bool) time.Duration {
	e.t.Helper()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling an observable condition, not synchronisation
	}
	return time.Since(start)
}

func (d *daemon) get(path string) (int, string) {
	d.e.t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		d.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric returns the value of one exposition line ("name{labels}"), or "".
func (d *daemon) metric(series string) string {
	_, body := d.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return rest
		}
	}
	return ""
}

// stop sends SIGTERM and returns the exit code.
func (d *daemon) stop() int {
	d.e.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.e.t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		d.e.t.Fatalf("convsync run did not stop after SIGTERM:\n%s", d.log())
	}
	return d.code
}

// serviceSID returns the SID of the emulator's service with this friendly name.
func (e *env) serviceSID(friendlyName string) string {
	for _, s := range e.emu.Services() {
		if s.FriendlyName == friendlyName {
			return s.SID
		}
	}
	return ""
}

func (e *env) conversation(serviceSID, uniqueName string) (emulator.Conversation, bool) {
	if serviceSID == "" {
		return emulator.Conversation{}, false
	}
	c, err := e.emu.Conversation(serviceSID, uniqueName)
	return c, err == nil
}

func friendlyName(c emulator.Conversation) string {
	if c.FriendlyName == nil {
		return ""
	}
	return *c.FriendlyName
}

const daemonServices = "kind: Service\nname: support\nfriendly_name: Customer support\n"

func conversationSpec(name, friendly string) string {
	return "kind: Conversation\nname: " + name + "\nservice: support\nunique_name: " + name + "\nfriendly_name: " + friendly + "\n"
}

// checkStateMatchesTwilio asserts that the state file (read after the
// daemon exited) records exactly the conversations Twilio holds in the
// managed service, with no create left pending.
func (e *env) checkStateMatchesTwilio(serviceSID string) {
	e.t.Helper()
	sf, err := state.Open(e.state, state.Options{ReadOnly: true})
	if err != nil {
		e.t.Fatalf("the state file cannot be opened after the daemon stopped: %v", err)
	}
	defer sf.Close()
	st := sf.State()
	if len(st.Pending) > 0 {
		e.t.Fatalf("creates left pending in the state: %v", st.Pending)
	}
	var inState, inTwilio []string
	for _, r := range st.Resources {
		if r.ParentSID == serviceSID {
			inState = append(inState, r.SID)
		}
	}
	convs, err := e.emu.Conversations(serviceSID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range convs {
		inTwilio = append(inTwilio, c.SID)
	}
	sort.Strings(inState)
	sort.Strings(inTwilio)
	if strings.Join(inState, ",") != strings.Join(inTwilio, ",") {
		e.t.Fatalf("state and Twilio disagree:\n state:  %v\n Twilio: %v", inState, inTwilio)
	}
}

// TestDaemonFollowsTheSpecFolder: new files, edits in place, editor rename
// saves and a syntax error, then SIGTERM, with the real binary.
func TestDaemonFollowsTheSpecFolder(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	d := e.startDaemon()
	e.eventually("the service exists and /readyz is 200", func() bool {
		code, _ := d.get("/readyz")
		return code == 200 && e.serviceSID("Customer support") != ""
	})
	support := e.serviceSID("Customer support")

	// A new spec file appears in Twilio within a second or two.
	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP"))
	took := e.eventually("vip exists in Twilio", func() bool { _, ok := e.conversation(support, "vip"); return ok })
	t.Logf("a new spec file reached Twilio in %s", took.Round(time.Millisecond))

	// An edit in place becomes an update (same SID).
	before, _ := e.conversation(support, "vip")
	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP customers"))
	e.eventually("the edit reaches Twilio", func() bool { c, _ := e.conversation(support, "vip"); return friendlyName(c) == "VIP customers" })
	if after, _ := e.conversation(support, "vip"); after.SID != before.SID {
		t.Fatalf("an edit replaced the conversation: %s → %s", before.SID, after.SID)
	}

	// An editor's save: write a temporary file, rename it over the spec.
	e.writeSpec(".vip.yaml.swp", conversationSpec("vip", "VIP (renamed save)"))
	if err := os.Rename(filepath.Join(e.dir, ".vip.yaml.swp"), filepath.Join(e.dir, "vip.yaml")); err != nil {
		t.Fatal(err)
	}
	e.eventually("the rename save reaches Twilio", func() bool {
		c, _ := e.conversation(support, "vip")
		return friendlyName(c) == "VIP (renamed save)"
	})

	// A syntax error: everything stays, readiness detail and the reload metric flip.
	e.writeSpec("broken.yaml", "kind: [Conversation\nname: oops\n")
	e.eventually("/readyz reports the reload failure", func() bool {
		_, body := d.get("/readyz")
		return strings.Contains(body, `"last_reload_ok": false`) && strings.Contains(body, "broken.yaml")
	})
	if got := d.metric("convsync_last_reload_successful"); got != "0" {
		t.Fatalf("convsync_last_reload_successful = %q after a syntax error, want 0", got)
	}
	if code, _ := d.get("/readyz"); code != 200 {
		t.Fatalf("/readyz %d: the last good specs are in force, so convsync stays ready", code)
	}
	if c, ok := e.conversation(support, "vip"); !ok || friendlyName(c) != "VIP (renamed save)" {
		t.Fatalf("a syntax error changed Twilio: %+v %v", c, ok)
	}
	e.removeSpec("broken.yaml")
	e.eventually("the reload metric recovers", func() bool { return d.metric("convsync_last_reload_successful") == "1" })

	// SIGTERM: exit 0, state consistent with Twilio.
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d, want 0:\n%s", code, d.log())
	}
	e.checkStateMatchesTwilio(support)
	if !strings.Contains(d.log(), `"trigger":"file"`) {
		t.Fatalf("no pass was triggered by a file change:\n%s", d.log())
	}
}

// TestDaemonFollowsAConfigMapSwap lays out the folder as a Kubernetes
// ConfigMap volume does and swaps the ..data symlink as the kubelet does.
func TestDaemonFollowsAConfigMapSwap(t *testing.T) {
	e := newEnv(t)
	version := func(name string, files map[string]string) {
		for file, content := range files {
			e.writeSpec(filepath.Join(name, file), content)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(e.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_01_01_00_00_00.1", map[string]string{"services.yaml": daemonServices, "vip.yaml": conversationSpec("vip", "VIP v1")})
	link("..2026_01_01_00_00_00.1", "..data")
	link("..data/services.yaml", "services.yaml")
	link("..data/vip.yaml", "vip.yaml")
	d := e.startDaemon()
	var support string
	e.eventually("v1 in Twilio", func() bool {
		support = e.serviceSID("Customer support")
		c, ok := e.conversation(support, "vip")
		return ok && friendlyName(c) == "VIP v1"
	})

	// The kubelet's update: new folder, ..data_tmp → new folder, renamed
	// over ..data, links for new keys, old folder removed.
	version("..2026_01_01_00_05_00.2", map[string]string{"services.yaml": daemonServices, "vip.yaml": conversationSpec("vip", "VIP v2"),
		"ops.yaml": conversationSpec("ops", "Ops")})
	link("..2026_01_01_00_05_00.2", "..data_tmp")
	if err := os.Rename(filepath.Join(e.dir, "..data_tmp"), filepath.Join(e.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	link("..data/ops.yaml", "ops.yaml")
	if err := os.RemoveAll(filepath.Join(e.dir, "..2026_01_01_00_00_00.1")); err != nil {
		t.Fatal(err)
	}
	e.eventually("v2 in Twilio", func() bool {
		c, ok := e.conversation(support, "vip")
		_, opsOK := e.conversation(support, "ops")
		return ok && friendlyName(c) == "VIP v2" && opsOK
	})
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	e.checkStateMatchesTwilio(support)
}

// TestDaemonDeletionGuard: removing more conversations than --max-destroy
// is refused until the operator allows it for one pass.
func TestDaemonDeletionGuard(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	names := []string{"a", "b", "c"}
	for _, n := range names {
		e.writeSpec(n+".yaml", conversationSpec(n, "Room "+n))
	}
	d := e.startDaemon("--max-destroy", "1")
	var support string
	e.eventually("three conversations in Twilio", func() bool {
		support = e.serviceSID("Customer support")
		convs, _ := e.emu.Conversations(support)
		return support != "" && len(convs) == 3
	})

	for _, n := range names {
		e.removeSpec(n + ".yaml")
	}
	e.eventually("the refusal in /readyz and the metric", func() bool {
		_, body := d.get("/readyz")
		return strings.Contains(body, `"outcome": "refused"`) && d.metric("convsync_refused_passes_total") != "" && d.metric("convsync_refused_passes_total") != "0"
	})
	if convs, _ := e.emu.Conversations(support); len(convs) != 3 {
		t.Fatalf("a refused pass deleted something: %d conversations left", len(convs))
	}

	resp, err := http.Post("http://"+d.addr+"/allow-destroy?count=3", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"delete": 3`) {
		t.Fatalf("POST /allow-destroy?count=3: %d %s", resp.StatusCode, body)
	}
	if convs, _ := e.emu.Conversations(support); len(convs) != 0 {
		t.Fatalf("after the allowance: %d conversations left, want 0", len(convs))
	}
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	e.checkStateMatchesTwilio(support)
}

// TestDaemonResyncUndoesDrift: a conversation deleted behind convsync's back
// is created again by the next full resync (no spec changed).
func TestDaemonResyncUndoesDrift(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP"))
	d := e.startDaemon("--resync", "1s")
	var support string
	var first emulator.Conversation
	e.eventually("vip in Twilio", func() bool {
		support = e.serviceSID("Customer support")
		var ok bool
		first, ok = e.conversation(support, "vip")
		return ok
	})
	if err := e.emu.DeleteConversationOOB(support, "vip"); err != nil {
		t.Fatal(err)
	}
	e.eventually("vip recreated by the resync", func() bool {
		c, ok := e.conversation(support, "vip")
		return ok && c.SID != first.SID
	})
	// The pass logs its steps once the apply is done, which may be after
	// the emulator already shows the new conversation.
	e.eventually("the recreate logged by a resync pass", func() bool {
		for _, line := range strings.Split(d.log(), "\n") {
			if strings.Contains(line, `"step succeeded"`) && strings.Contains(line, `"address":"conversation.vip"`) && strings.Contains(line, `"trigger":"resync"`) {
				return true
			}
		}
		return false
	})
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	e.checkStateMatchesTwilio(support)
}

// TestDaemonSIGTERMDuringAPass: with a slow Twilio, SIGTERM in the middle of
// a pass lets the calls in flight finish, exits 0, and leaves a state that
// matches Twilio exactly.
func TestDaemonSIGTERMDuringAPass(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	d := e.startDaemon("--parallelism", "2")
	var support string
	e.eventually("the service in Twilio", func() bool { support = e.serviceSID("Customer support"); return support != "" })
	if err := e.emu.SetFaults(emulator.Faults{Latency: 150 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"} {
		e.writeSpec(n+".yaml", conversationSpec(n, "Room "+n))
	}
	e.eventually("the pass has started creating", func() bool {
		convs, _ := e.emu.Conversations(support)
		return len(convs) >= 1
	})
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM during a pass: exit %d, want 0:\n%s", code, d.log())
	}
	e.checkStateMatchesTwilio(support)
	convs, _ := e.emu.Conversations(support)
	t.Logf("%d of 8 conversations were created before the stop", len(convs))

	// A later run picks up where the stopped one left off.
	e.emu.SetFaults(emulator.Faults{})
	e.must(0, "apply", "--auto-approve")
	if convs, _ := e.emu.Conversations(support); len(convs) != 8 {
		t.Fatalf("after a later apply: %d conversations, want 8", len(convs))
	}
}

// TestDaemonHoldsBackOnlyTheConflict: a new spec whose unique_name an
// unmanaged conversation holds is held back (logged, in /readyz and the
// metrics) while the daemon stays ready, applies an unrelated edit and
// repairs drift elsewhere at the next resync; the CLI still refuses the
// whole plan.
func TestDaemonHoldsBackOnlyTheConflict(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP"))
	e.writeSpec("other.yaml", conversationSpec("other", "Other"))
	e.must(0, "apply", "--auto-approve")
	support := e.serviceSID("Customer support")
	if _, err := e.emu.SeedConversations(support, 1, "taken-"); err != nil { // someone else's
		t.Fatal(err)
	}
	e.writeSpec("clash.yaml", "kind: Conversation\nname: clash\nservice: support\nunique_name: taken-0\n")
	d := e.startDaemon("--resync", "1s")
	e.eventually("the conflict held back in /readyz", func() bool {
		code, body := d.get("/readyz")
		return code == 200 && strings.Contains(body, `"held_back"`) && strings.Contains(body, "conversation.clash")
	})
	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP v2"))
	if err := e.emu.EditConversation(support, "other", func(c *emulator.Conversation) { n := "drift"; c.FriendlyName = &n }); err != nil {
		t.Fatal(err)
	}
	e.eventually("the edit applied and the drift repaired", func() bool {
		vip, _ := e.conversation(support, "vip")
		other, _ := e.conversation(support, "other")
		return friendlyName(vip) == "VIP v2" && friendlyName(other) == "Other"
	})
	if code, body := d.get("/readyz"); code != 200 || !strings.Contains(body, "convsync import conversation.clash") {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if got := d.metric(daemonpkg.MetricHeldBack); got != "1" {
		t.Errorf("%s = %q, want 1", daemonpkg.MetricHeldBack, got)
	}
	if !strings.Contains(d.log(), `"held back`) || !strings.Contains(d.log(), `"address":"conversation.clash"`) {
		t.Errorf("the log does not name the held-back resource:\n%s", d.log())
	}
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if r := e.must(1, "plan"); !strings.Contains(r.stderr, "conversation.clash") {
		t.Errorf("the CLI plan must still fail as a whole: %s", r)
	}
	if cs, _ := e.emu.Conversations(support); len(cs) != 3 {
		t.Errorf("%d conversations, want vip, other and the unmanaged one", len(cs))
	}
}
