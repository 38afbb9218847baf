package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
)

// logEntries returns the daemon's JSON log lines with this message.
func (d *daemon) logEntries(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(d.log(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == msg {
			out = append(out, entry)
		}
	}
	return out
}

// stepLine returns the "step succeeded" line of this address and action.
func (d *daemon) stepLine(address, action string) map[string]any {
	for _, e := range d.logEntries("step succeeded") {
		if e["address"] == address && e["action"] == action {
			return e
		}
	}
	return nil
}

// writes counts the emulator's answers to anything but a GET.
func writes(emu *emulator.Server) int64 {
	var n int64
	for route, c := range emu.Stats().ByRoute {
		if !strings.HasPrefix(route, "GET ") {
			n += c
		}
	}
	return n
}

// readyz returns /readyz decoded.
func (d *daemon) readyz() map[string]any {
	d.e.t.Helper()
	_, body := d.get("/readyz")
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		d.e.t.Fatalf("/readyz is not JSON: %v\n%s", err, body)
	}
	return out
}

func lastPass(r map[string]any) map[string]any {
	p, _ := r["last_pass"].(map[string]any)
	return p
}

// TestDaemonVisibilityLogsEveryChange: each change is one log line with its
// address, action, SID and duration; the token never shows.
func TestDaemonVisibilityLogsEveryChange(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP"))
	d := e.startDaemon()
	var support string
	var vip emulator.Conversation
	e.eventually("vip in Twilio and its line in the log", func() bool {
		support = e.serviceSID("Customer support")
		var ok bool
		vip, ok = e.conversation(support, "vip")
		return ok && d.stepLine("conversation.vip", "create") != nil
	})
	created := d.stepLine("conversation.vip", "create")
	if created["sid"] != vip.SID {
		t.Fatalf("the create's line names SID %v, Twilio has %s: %v", created["sid"], vip.SID, created)
	}
	if _, ok := created["duration"].(float64); !ok {
		t.Fatalf("the create's line has no duration: %v", created)
	}
	if s := d.stepLine("service.support", "create"); s == nil || s["sid"] != support {
		t.Fatalf("the service's create line: %v (SID %s)", s, support)
	}

	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP customers"))
	e.eventually("the update's line", func() bool { return d.stepLine("conversation.vip", "update") != nil })
	if u := d.stepLine("conversation.vip", "update"); u["sid"] != vip.SID {
		t.Fatalf("the update's line: %v, want SID %s", u, vip.SID)
	}
	if n := len(d.logEntries("step succeeded")); n != 3 {
		t.Fatalf("%d step lines for 3 changes:\n%s", n, d.log())
	}
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if strings.Contains(d.log(), authToken) {
		t.Fatal("the auth token is in the daemon's log")
	}
}

// TestDaemonVisibilityProgressOfALongPass: a slow pass logs its progress
// (done/total, rate) and /readyz shows it while it runs.
func TestDaemonVisibilityProgressOfALongPass(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	d := e.startDaemon("--parallelism", "1", "--progress-interval", "100ms")
	e.eventually("the service in Twilio", func() bool { return e.serviceSID("Customer support") != "" && len(d.logEntries("step succeeded")) > 0 })
	if err := e.emu.SetFaults(emulator.Faults{Latency: 60 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	names := []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10"}
	var all strings.Builder
	for _, n := range names {
		all.WriteString("---\n" + conversationSpec(n, "Room "+n))
	}
	// One file, renamed into place so no read sees part of it: one pass of 10 creates.
	e.writeSpec(".rooms.yaml.tmp", all.String())
	if err := os.Rename(filepath.Join(e.dir, ".rooms.yaml.tmp"), filepath.Join(e.dir, "rooms.yaml")); err != nil {
		t.Fatal(err)
	}
	var seen map[string]any
	e.eventually("/readyz shows the pass in progress", func() bool {
		p, _ := d.readyz()["pass_in_progress"].(map[string]any)
		if p != nil && p["phase"] == "applying" && p["steps_total"] == float64(10) {
			seen = p
			return true
		}
		return false
	})
	if done := seen["steps_done"].(float64); done >= 10 {
		t.Fatalf("pass_in_progress: %v", seen)
	}
	e.eventually("a progress line", func() bool {
		for _, l := range d.logEntries("pass in progress: applying") {
			if l["steps_total"] == float64(10) && l["steps_per_second"] != nil {
				return true
			}
		}
		return false
	})
	e.eventually("all ten created", func() bool {
		convs, _ := e.emu.Conversations(e.serviceSID("Customer support"))
		return len(convs) == 10 && lastPass(d.readyz())["summary"] == "10 created"
	})
	if _, running := d.readyz()["pass_in_progress"]; running {
		t.Fatal("/readyz still shows a pass in progress after it ended")
	}
	e.emu.SetFaults(emulator.Faults{})
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
}

// TestDaemonVisibilityDryRun: with --dry-run an edited spec is reported as
// a planned change (log, /readyz, metrics, GET /plan), nothing is written
// to Twilio, and the state file is unchanged.
func TestDaemonVisibilityDryRun(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP"))
	e.must(0, "apply", "--auto-approve")
	support := e.serviceSID("Customer support")
	before, err := os.ReadFile(e.state)
	if err != nil {
		t.Fatal(err)
	}
	e.emu.ResetStats()

	d := e.startDaemon("--dry-run")
	e.eventually("the first dry-run pass", func() bool {
		p := lastPass(d.readyz())
		return p != nil && p["dry_run"] == true && p["summary"] == "dry run: no changes"
	})
	if code, body := d.get("/plan"); code != 200 || !strings.Contains(body, `"has_changes": false`) {
		t.Fatalf("GET /plan with nothing to do: %d %s", code, body)
	}

	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP customers"))
	e.writeSpec("ops.yaml", conversationSpec("ops", "Ops"))
	e.eventually("the planned changes in /readyz", func() bool {
		p := lastPass(d.readyz())
		return p != nil && p["summary"] == "dry run: would create 1, update 1"
	})
	r := d.readyz()
	if r["dry_run"] != true {
		t.Fatalf("/readyz does not say it is a dry run: %v", r)
	}
	planned, _ := json.Marshal(lastPass(r)["planned_changes"])
	var steps []struct{ Address, Action, SID string }
	if err := json.Unmarshal(planned, &steps); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range steps {
		got[s.Address] = s.Action
	}
	if len(steps) != 2 || got["conversation.vip"] != "update" || got["conversation.ops"] != "create" {
		t.Fatalf("/readyz planned_changes: %s", planned)
	}
	var updateLine map[string]any
	for _, l := range d.logEntries("dry run: would update") {
		if l["address"] == "conversation.vip" {
			updateLine = l
		}
	}
	if updateLine == nil || updateLine["sid"] == nil {
		t.Fatalf("no log line for the planned update:\n%s", d.log())
	}
	if got := d.metric(`convsync_planned_steps{action="update"}`); got != "1" {
		t.Fatalf(`convsync_planned_steps{action="update"} = %q, want 1`, got)
	}
	if got := d.metric("convsync_dry_run"); got != "1" {
		t.Fatalf("convsync_dry_run = %q, want 1", got)
	}

	// GET /plan is plan --json.
	code, body := d.get("/plan")
	if code != 200 {
		t.Fatalf("GET /plan: %d %s", code, body)
	}
	var served jsonPlan
	if err := json.Unmarshal([]byte(body), &served); err != nil {
		t.Fatalf("GET /plan is not JSON: %v\n%s", err, body)
	}
	if cli := e.must(0, "plan", "--json"); body != cli.stdout {
		t.Fatalf("GET /plan differs from plan --json:\n/plan: %s\nCLI:   %s", body, cli.stdout)
	}
	if len(served.Changes) != 2 || served.Summary.Create != 1 || served.Summary.Update != 1 {
		t.Fatalf("GET /plan: %s", body)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.addr+"/plan", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("GET /plan from a web page: %d %v", resp.StatusCode, resp.Header)
	}

	// SIGHUP: a full resync, still nothing written.
	n := len(d.logEntries("dry run: planned; nothing was applied to Twilio or the state"))
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.eventually("the resync's dry run", func() bool {
		return len(d.logEntries("dry run: planned; nothing was applied to Twilio or the state")) > n
	})
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if w := writes(e.emu); w != 0 {
		t.Fatalf("a dry run wrote to Twilio: %d writes (%v)", w, e.emu.Stats().ByRoute)
	}
	if c, _ := e.conversation(support, "vip"); friendlyName(c) != "VIP" {
		t.Fatalf("vip changed in Twilio: %q", friendlyName(c))
	}
	after, err := os.ReadFile(e.state)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("a dry run changed the state file:\nbefore %s\nafter  %s", before, after)
	}
	if len(d.logEntries("step succeeded")) != 0 {
		t.Fatal("a dry run logged an applied step")
	}
}
