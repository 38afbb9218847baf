package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

const (
	accountSID = "AC22222222222222222222222222222222"
	// authToken and apiSecret are recognisable so that the secrets test can
	// look for them in everything convsync prints and writes.
	authToken = "ReliabilityAuthTokenQ7x9Zk4"
	apiKey    = "SK33333333333333333333333333333333"
	apiSecret = "ReliabilityApiSecretW3m8Pv2"
)

// binary is the convsync built once for the package.
var binary string

func TestMain(m *testing.M) { os.Exit(testenv.MainWithBinary(m, &binary)) }

// env is one emulator served over real HTTP, one spec folder and one state
// file. Requests pass through hook (when set) before the emulator: tests use
// it to kill the binary at chosen moments or to inject faults the emulator
// does not have.
type env struct {
	t     *testing.T
	emu   *emulator.Server
	url   string
	dir   string // specs
	state string // state file
	work  string
	// extraEnv is added to every run's environment.
	extraEnv []string

	hookMu sync.Mutex
	hook   func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

func newEnv(t *testing.T, faults emulator.Faults) *env {
	t.Helper()
	emu, err := emulator.New(emulator.Options{AccountSID: accountSID, AuthToken: authToken, APIKey: apiKey, APISecret: apiSecret, Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	e := &env{t: t, emu: emu, dir: filepath.Join(work, "specs"), state: filepath.Join(work, "convsync.state.json"), work: work}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hookMu.Lock()
		hook := e.hook
		e.hookMu.Unlock()
		if hook != nil {
			hook(w, r, emu)
			return
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) setHook(h func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	e.hookMu.Lock()
	defer e.hookMu.Unlock()
	e.hook = h
}

// result is one run of the binary.
type result struct {
	args           []string
	stdout, stderr string
	code           int
	killed         bool
}

func (r result) String() string {
	return fmt.Sprintf("convsync %s: exit %d (killed: %v)\n--- stdout ---\n%s\n--- stderr ---\n%s", strings.Join(r.args, " "), r.code, r.killed, r.stdout, r.stderr)
}

// credentialsEnv is the environment convsync reads its credentials from.
func (e *env) credentialsEnv() []string {
	return []string{"TWILIO_ACCOUNT_SID=" + accountSID, "TWILIO_AUTH_TOKEN=" + authToken}
}

// command prepares convsync with the emulator's URL, the spec folder and the
// state file (for the commands that take them), in the work folder.
func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{}, args...)
	switch args[0] {
	case "version", "emulator":
	case "state":
		full = append(full, "--state", e.state)
	default:
		full = append(full, "--dir", e.dir, "--state", e.state)
	}
	cmd := exec.CommandContext(ctx, binary, full...)
	cmd.Dir = e.work
	cmd.Env = append(append(append(os.Environ(), e.credentialsEnv()...), "CONVSYNC_API_URL="+e.url), e.extraEnv...)
	return cmd
}

// run runs convsync to the end.
func (e *env) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, args...)
	return e.wait(cmd, args, nil)
}

// wait runs cmd; started, if not nil, is given the running process.
func (e *env) wait(cmd *exec.Cmd, args []string, started func(*os.Process)) result {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting convsync %v: %v", args, err)
	}
	if started != nil {
		started(cmd.Process)
	}
	err := cmd.Wait()
	res := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
		res.killed = res.code == -1
	case err != nil:
		e.t.Fatalf("running convsync %v: %v", args, err)
	}
	return res
}

// must runs convsync and fails the test unless it exits with want.
func (e *env) must(want int, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != want {
		e.t.Fatalf("want exit %d, got %s", want, r)
	}
	return r
}

func (e *env) writeSpec(name, content string) {
	e.t.Helper()
	path := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// readState reads the state as convsync left it, through the state package
// (which also replays anything the file's companions hold), without the lock.
func (e *env) readState() *state.State {
	e.t.Helper()
	f, err := state.Open(e.state, state.Options{ReadOnly: true})
	if err != nil {
		e.t.Fatalf("state: %v", err)
	}
	defer f.Close()
	return f.State()
}

// writes counts the API writes (POST, DELETE) the emulator has answered.
func (e *env) writes() int64 {
	var n int64
	for route, c := range e.emu.Stats().ByRoute {
		if strings.HasPrefix(route, "POST ") || strings.HasPrefix(route, "DELETE ") {
			n += c
		}
	}
	return n
}

// audit compares the emulator's own data with the state and the specs.
type audit struct {
	resources  int // desired resources checked
	duplicates int // extra resources beyond one per spec
	orphans    int // resources in managed services (or services) the state does not know
	problems   []string
}

func (a *audit) problemf(format string, args ...any) {
	a.problems = append(a.problems, fmt.Sprintf(format, args...))
}

// check audits Twilio (the emulator) against the state and the desired
// resources: exactly one resource per spec, none unaccounted for, no pending
// intent left, and every readable field the spec sets equal in Twilio.
func (e *env) check(desired []resource.Desired) audit {
	e.t.Helper()
	st := e.readState()
	var a audit
	if len(st.Pending) > 0 {
		a.problemf("%d pending intents left in the state", len(st.Pending))
	}
	owned := map[string]string{} // SID → address
	for key, r := range st.Resources {
		if prev, dup := owned[r.SID]; dup {
			a.problemf("%s and %s share the SID %s", prev, key, r.SID)
		}
		owned[r.SID] = key
	}
	services := map[string]emulator.Service{}
	for _, s := range e.emu.Services() {
		services[s.SID] = s
	}
	desiredServices, desiredConversations := 0, 0
	desiredChildren := map[resource.Kind]int{}
	for _, d := range desired {
		a.resources++
		r := st.Get(d.Address)
		if r == nil {
			a.problemf("%s is not in the state", d.Address)
			continue
		}
		switch d.Address.Kind {
		case resource.KindRole, resource.KindUser:
			desiredChildren[d.Address.Kind]++
			parent := st.Get(d.Parent.Address)
			if parent == nil || parent.SID != r.ParentSID {
				a.problemf("%s lives in %s, not in its service's %v", d.Address, r.ParentSID, parent)
				continue
			}
			if !e.childExists(d.Address.Kind, r.ParentSID, r.SID, d.Values) {
				a.problemf("%s: %s is not in Twilio with the fields of its spec", d.Address, r.SID)
			}
		case resource.KindParticipant, resource.KindConversationWebhook:
			desiredChildren[d.Address.Kind]++
			conv := st.Get(d.Parent.Address)
			if conv == nil || conv.ParentSID+"/"+conv.SID != r.ParentSID {
				a.problemf("%s lives in %s, not in its conversation's %v", d.Address, r.ParentSID, conv)
				continue
			}
			if !e.grandchildExists(d.Address.Kind, conv.ParentSID, conv.SID, r.SID, d.Values) {
				a.problemf("%s: %s is not in Twilio with the fields of its spec", d.Address, r.SID)
			}
		case resource.KindService:
			desiredServices++
			s, ok := services[r.SID]
			if !ok {
				a.problemf("%s: %s is not in Twilio", d.Address, r.SID)
			} else if s.FriendlyName != d.Values[resource.FieldFriendlyName] {
				a.problemf("%s: friendly_name %q in Twilio, %q in the spec", d.Address, s.FriendlyName, d.Values[resource.FieldFriendlyName])
			}
		case resource.KindConversation:
			desiredConversations++
			parent := st.Get(d.Parent.Address)
			if parent == nil || parent.SID != r.ParentSID {
				a.problemf("%s lives in %s, not in its service's %v", d.Address, r.ParentSID, parent)
				continue
			}
			c, err := e.emu.Conversation(r.ParentSID, r.SID)
			if err != nil {
				a.problemf("%s: %s is not in Twilio: %v", d.Address, r.SID, err)
				continue
			}
			for field, want := range d.Values {
				var have string
				switch field {
				case resource.FieldFriendlyName:
					have = deref(c.FriendlyName)
				case resource.FieldUniqueName:
					have = deref(c.UniqueName)
				case resource.FieldAttributes:
					if !resource.JSONEqual(want, c.Attributes) {
						a.problemf("%s: attributes %s in Twilio, %s in the spec", d.Address, c.Attributes, want)
					}
					continue
				case resource.FieldState:
					have = c.State
				default:
					continue
				}
				if have != want {
					a.problemf("%s: %s %q in Twilio, %q in the spec", d.Address, field, have, want)
				}
			}
		}
	}
	// Every service besides the default one, and every conversation in a
	// managed service, must be owned.
	managedServices, conversations := 0, 0
	grandchildren := map[resource.Kind]int{}
	for sid := range services {
		if sid == e.emu.DefaultServiceSID() {
			continue
		}
		managedServices++
		if _, ok := owned[sid]; !ok {
			a.orphans++
			a.problemf("service %s (%s) is in Twilio but not in the state", sid, services[sid].FriendlyName)
		}
		convs, err := e.emu.Conversations(sid)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, c := range convs {
			conversations++
			if _, ok := owned[c.SID]; !ok {
				a.orphans++
				a.problemf("conversation %s (%q, unique_name %q) in service %s is in Twilio but not in the state", c.SID, deref(c.FriendlyName), deref(c.UniqueName), sid)
			}
			if c.State == resource.StateClosed {
				continue // a replaced conversation's old children stay with it
			}
			people, _ := e.emu.Participants(sid, c.SID)
			for _, p := range people {
				grandchildren[resource.KindParticipant]++
				if _, ok := owned[p.SID]; !ok {
					a.orphans++
					a.problemf("participant %s (%q%q) in conversation %s is in Twilio but not in the state", p.SID, p.Identity, p.Address, c.SID)
				}
			}
			hooks, _ := e.emu.ConversationWebhooks(sid, c.SID)
			for _, w := range hooks {
				grandchildren[resource.KindConversationWebhook]++
				if _, ok := owned[w.SID]; !ok {
					a.orphans++
					a.problemf("webhook %s in conversation %s is in Twilio but not in the state", w.SID, c.SID)
				}
			}
		}
	}
	children := e.unownedChildren(owned, services, &a)
	for kind, n := range grandchildren {
		children[kind] += n
	}
	for kind, n := range children {
		a.duplicates += max(0, n-desiredChildren[kind])
	}
	a.duplicates += max(0, managedServices-desiredServices) + max(0, conversations-desiredConversations)
	sort.Strings(a.problems)
	return a
}

// childExists reports whether a role or user with the spec's identifying
// fields is in Twilio under sid.
func (e *env) childExists(kind resource.Kind, serviceSID, sid string, want resource.Values) bool {
	switch kind {
	case resource.KindRole:
		roles, _ := e.emu.Roles(serviceSID)
		for _, r := range roles {
			if r.SID == sid {
				return r.FriendlyName == want[resource.FieldFriendlyName] && r.Type == want[resource.FieldRoleType]
			}
		}
	case resource.KindUser:
		users, _ := e.emu.Users(serviceSID)
		for _, u := range users {
			if u.SID == sid {
				return u.Identity == want[resource.FieldIdentity]
			}
		}
	}
	return false
}

// grandchildExists reports whether a participant or webhook with the spec's
// identifying fields is in Twilio under the conversation.
func (e *env) grandchildExists(kind resource.Kind, serviceSID, convSID, sid string, want resource.Values) bool {
	switch kind {
	case resource.KindParticipant:
		people, _ := e.emu.Participants(serviceSID, convSID)
		for _, p := range people {
			if p.SID == sid {
				return p.Identity == want[resource.FieldIdentity] && p.Address == want[resource.FieldBindingAddress]
			}
		}
	case resource.KindConversationWebhook:
		hooks, _ := e.emu.ConversationWebhooks(serviceSID, convSID)
		for _, w := range hooks {
			if w.SID == sid {
				return w.URL != nil && *w.URL == want[resource.FieldWebhookURL]
			}
		}
	}
	return false
}

// unownedChildren counts the roles and users of managed services, and
// reports those the state does not know as orphans. A service's default
// roles (Twilio makes them with the service; its configuration points at
// them) belong to Twilio, not to convsync.
func (e *env) unownedChildren(owned map[string]string, services map[string]emulator.Service, a *audit) map[resource.Kind]int {
	counts := map[resource.Kind]int{}
	for sid := range services {
		if sid == e.emu.DefaultServiceSID() {
			continue
		}
		settings, err := e.emu.Settings(sid)
		if err != nil {
			e.t.Fatal(err)
		}
		defaults := map[string]bool{}
		c := settings.Configuration
		for _, d := range []string{c.DefaultChatServiceRoleSID, c.DefaultConversationRoleSID, c.DefaultConversationCreatorRoleSID} {
			defaults[d] = true
		}
		roles, _ := e.emu.Roles(sid)
		for _, r := range roles {
			if _, ok := owned[r.SID]; ok {
				counts[resource.KindRole]++
				continue
			}
			if defaults[r.SID] || isDefaultRoleName(r.FriendlyName) {
				continue
			}
			counts[resource.KindRole]++
			a.orphans++
			a.problemf("role %s (%q) in service %s is in Twilio but not in the state", r.SID, r.FriendlyName, sid)
		}
		users, _ := e.emu.Users(sid)
		for _, u := range users {
			counts[resource.KindUser]++
			if _, ok := owned[u.SID]; !ok {
				a.orphans++
				a.problemf("user %s (%q) in service %s is in Twilio but not in the state", u.SID, u.Identity, sid)
			}
		}
	}
	return counts
}

// isDefaultRoleName: the emulator's default roles (docs/emulator.md).
func isDefaultRoleName(name string) bool {
	switch name {
	case "service admin", "service user", "channel admin", "channel user":
		return true
	}
	return false
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// mustConverge fails the test with every problem the audit found.
func (e *env) mustConverge(a audit) {
	e.t.Helper()
	if len(a.problems) > 0 || a.duplicates > 0 || a.orphans > 0 {
		e.t.Fatalf("Twilio does not match the specs and the state (%d duplicates, %d orphans):\n  %s", a.duplicates, a.orphans, strings.Join(a.problems, "\n  "))
	}
	if r := e.run("plan", "--detailed-exitcode"); r.code != 0 {
		e.t.Fatalf("after convergence the plan still has changes: %s", r)
	}
}
