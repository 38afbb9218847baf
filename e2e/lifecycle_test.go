package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

const supportSpec = `kind: Service
name: support
friendly_name: Customer support
---
kind: Service
name: sales
friendly_name: Sales
`

const vipSpec = `kind: Conversation
name: vip
service: support
unique_name: vip-support
friendly_name: VIP support
attributes: {tier: gold, level: 1}
timers: {inactive: PT1H}
state: active
`

// TestLifecycle walks the one-shot workflow a user relies on, step by step,
// with the real binary against the emulator.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", supportSpec)
	e.writeSpec("vip.yaml", vipSpec)
	e.writeSpec("closed.yaml", "kind: Conversation\nname: archive\nservice: support\nfriendly_name: Archive\nstate: closed\n")

	// Plan shows the creates and exits 2 with --detailed-exitcode.
	r := e.must(2, "plan", "--detailed-exitcode")
	for _, want := range []string{`+ service "support"`, `+ conversation "vip"`, "Plan: 4 to create, 0 to update, 0 to replace, 0 to delete."} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("plan output lacks %q:\n%s", want, r.stdout)
		}
	}
	if n := len(e.emu.Services()); n != 1 {
		t.Fatalf("plan changed Twilio: %d services, want only the default one", n)
	}

	// Apply without a terminal needs --auto-approve.
	r = e.must(1, "apply")
	if !strings.Contains(r.stderr, "--auto-approve") {
		t.Fatalf("apply without approval: %s", r)
	}
	r = e.must(0, "apply", "--auto-approve")
	if !strings.Contains(r.stdout, "Apply complete: 4 created, 0 updated, 0 replaced, 0 deleted.") {
		t.Fatalf("apply summary: %s", r)
	}
	supportSID := e.stateSID("service.support")
	vip, err := e.emu.Conversation(supportSID, "vip-support")
	if err != nil {
		t.Fatalf("vip is not in Twilio: %v", err)
	}
	if vip.SID != e.stateSID("conversation.vip") {
		t.Fatalf("state SID %s differs from Twilio's %s", e.stateSID("conversation.vip"), vip.SID)
	}
	archive, err := e.emu.Conversation(supportSID, e.stateSID("conversation.archive"))
	if err != nil || archive.State != "closed" {
		t.Fatalf("archive should be created, then closed: %+v, %v", archive, err)
	}

	// Nothing to do now: exit 0 with --detailed-exitcode.
	r = e.must(0, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("second plan: %s", r)
	}

	// Reformatting attributes (key order, a JSON string) changes nothing.
	e.writeSpec("vip.yaml", strings.Replace(vipSpec, "attributes: {tier: gold, level: 1}", `attributes: '{ "level": 1,   "tier": "gold" }'`, 1))
	e.must(0, "plan", "--detailed-exitcode")

	// A friendly_name edit is one update.
	e.writeSpec("vip.yaml", strings.Replace(vipSpec, "friendly_name: VIP support", "friendly_name: VIP customers", 1))
	p := e.planJSON()
	if got := p.actions(); !reflect.DeepEqual(got, []string{"conversation.vip:update"}) {
		t.Fatalf("friendly_name edit: actions %v", got)
	}
	e.emu.ResetStats()
	e.must(0, "apply", "--auto-approve")
	if got := e.emu.Stats().ByRoute["POST /v1/Services/{ServiceSid}/Conversations/{Sid}"]; got != 1 {
		t.Fatalf("the update took %d POSTs, want 1", got)
	}
	if vip, _ = e.emu.Conversation(supportSID, "vip-support"); vip.FriendlyName == nil || *vip.FriendlyName != "VIP customers" {
		t.Fatalf("friendly_name in Twilio: %v", vip.FriendlyName)
	}

	// Deleted behind convsync's back: the plan creates it again and says why.
	if err := e.emu.DeleteConversationOOB(supportSID, "vip-support"); err != nil {
		t.Fatal(err)
	}
	p = e.planJSON()
	if got := p.actions(); !reflect.DeepEqual(got, []string{"conversation.vip:create"}) || !strings.Contains(p.Changes[0].Reason, "deleted outside convsync") {
		t.Fatalf("after an out-of-band delete: %+v", p)
	}
	e.must(0, "apply", "--auto-approve")

	// Removing a spec plans a delete.
	e.removeSpec("closed.yaml")
	p = e.planJSON()
	if got := p.actions(); !reflect.DeepEqual(got, []string{"conversation.archive:delete"}) {
		t.Fatalf("after removing a spec: %v", got)
	}
	archiveSID := e.stateSID("conversation.archive")
	e.must(0, "apply", "--auto-approve")
	if _, err := e.emu.Conversation(supportSID, archiveSID); err == nil {
		t.Fatal("the archive conversation is still in Twilio")
	}

	// A conversation created outside convsync with a unique_name a new spec
	// wants: the plan refuses and gives the import command, which adopts it.
	someoneElse := e.client()
	ops, err := someoneElse.Create(context.Background(), resource.KindConversation, supportSID, resource.Values{resource.FieldUniqueName: "ops", resource.FieldFriendlyName: "Ops room"}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.writeSpec("ops.yaml", "kind: Conversation\nname: ops\nservice: support\nunique_name: ops\nfriendly_name: Ops room\n")
	r = e.must(1, "plan")
	wantCmd := e.pasted("convsync import conversation.ops /Services/" + supportSID + "/Conversations/" + ops.SID)
	if !strings.Contains(r.stderr, wantCmd) {
		t.Fatalf("plan should name the import command %q:\n%s", wantCmd, r)
	}
	e.must(0, "import", "conversation.ops", "/Services/"+supportSID+"/Conversations/"+ops.SID)
	if e.stateSID("conversation.ops") != ops.SID {
		t.Fatal("import did not record the SID")
	}
	e.must(0, "plan", "--detailed-exitcode")

	// Moving a conversation to another service is a replace.
	e.writeSpec("ops.yaml", "kind: Conversation\nname: ops\nservice: sales\nunique_name: ops\nfriendly_name: Ops room\n")
	p = e.planJSON()
	if got := p.actions(); !reflect.DeepEqual(got, []string{"conversation.ops:replace"}) {
		t.Fatalf("moving services: %v", got)
	}
	r = e.must(0, "apply", "--auto-approve")
	salesSID := e.stateSID("service.sales")
	if moved, err := e.emu.Conversation(salesSID, "ops"); err != nil || moved.SID == ops.SID {
		t.Fatalf("ops should be a new conversation in sales: %+v %v\n%s", moved, err, r)
	}
	if _, err := e.emu.Conversation(supportSID, ops.SID); err == nil {
		t.Fatal("the old ops conversation is still in support")
	}

	// A saved plan is refused once the state has moved on.
	e.writeSpec("vip.yaml", strings.Replace(vipSpec, "friendly_name: VIP support", "friendly_name: Saved plan", 1))
	planFile := filepath.Join(e.work, "saved.plan")
	e.must(0, "plan", "--out", planFile)
	e.writeSpec("vip.yaml", strings.Replace(vipSpec, "friendly_name: VIP support", "friendly_name: Applied first", 1))
	e.must(0, "apply", "--auto-approve")
	r = e.must(1, "apply", planFile)
	if !strings.Contains(r.stderr, "stale") {
		t.Fatalf("a stale plan should be refused: %s", r)
	}
	// A fresh saved plan applies.
	e.must(0, "plan", "--out", planFile)
	e.must(0, "apply", planFile)
}

// TestNoChangePlanRequestCount checks the refresh cost: a no-change plan
// over 1,000 conversations in one service is a handful of list calls.
func TestNoChangePlanRequestCount(t *testing.T) {
	e := newEnv(t)
	const n = 1000
	svc, err := e.emu.AddService("Bulk")
	if err != nil {
		t.Fatal(err)
	}
	sids, err := e.emu.SeedConversations(svc.SID, n, "bulk-")
	if err != nil {
		t.Fatal(err)
	}
	var specs strings.Builder
	for i := range n {
		specs.WriteString("---\nkind: Conversation\nname: c" + itoa(i) + "\nservice_sid: " + svc.SID + "\nunique_name: bulk-" + itoa(i) + "\n")
	}
	e.writeSpec("bulk.yaml", specs.String())
	writeState(t, e.state, svc.SID, sids)

	e.emu.ResetStats()
	r := e.must(0, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("plan: %s", r)
	}
	stats := e.emu.Stats()
	t.Logf("no-change plan over %d conversations: %d API requests (%v)", n, stats.Total, stats.ByRoute)
	if stats.Total > 12 {
		t.Fatalf("no-change plan made %d requests, want at most 12", stats.Total)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// writeState writes a state file that owns the given conversations as
// conversation.c0, c1, ... in service svc.
func writeState(t *testing.T, path, svc string, sids []string) {
	t.Helper()
	f, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Update(func(s *state.State) error {
		for i, sid := range sids {
			s.Put(&state.Resource{Address: resource.Address{Kind: resource.KindConversation, Name: "c" + itoa(i)}, SID: sid, ParentSID: svc, Applied: resource.Values{resource.FieldUniqueName: "bulk-" + itoa(i)}})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPlanFetchesFewOwnedConversationsInABigService checks that the CLI
// remembers service sizes between runs: with 20 owned conversations in a
// service of 5,020, the second run fetches 20 instead of listing 51 pages.
func TestPlanFetchesFewOwnedConversationsInABigService(t *testing.T) {
	e := newEnv(t)
	svc, err := e.emu.AddService("Big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.emu.SeedConversations(svc.SID, 5000, "theirs-"); err != nil {
		t.Fatal(err)
	}
	sids, err := e.emu.SeedConversations(svc.SID, 20, "bulk-")
	if err != nil {
		t.Fatal(err)
	}
	var specs strings.Builder
	for i := range sids {
		specs.WriteString("---\nkind: Conversation\nname: c" + itoa(i) + "\nservice_sid: " + svc.SID + "\nunique_name: bulk-" + itoa(i) + "\n")
	}
	e.writeSpec("bulk.yaml", specs.String())
	writeState(t, e.state, svc.SID, sids)

	e.emu.ResetStats()
	e.must(0, "apply", "--auto-approve") // nothing to do; lists, and keeps the sizes
	listed := e.emu.Stats().Total
	e.emu.ResetStats()
	r := e.must(0, "plan", "--detailed-exitcode")
	fetched := e.emu.Stats()
	t.Logf("first run (sizes unknown): %d requests; second run: %d (%v)", listed, fetched.Total, fetched.ByRoute)
	if listed != 52 || fetched.Total != 21 || !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("want 52 requests (1 + 51 pages) then 21 (1 + 20 fetches), got %d then %d\n%s", listed, fetched.Total, r)
	}
}

// Swapping two managed conversations' unique_names cannot be done in one
// apply (Twilio lets one conversation hold a name at a time): plan and apply
// refuse it at once, naming both and saying how to do it in two applies,
// which then works. A chain of renames (ua→ub, ub→uc) is ordered and applied.
func TestUniqueNameSwapIsRefusedNotHung(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", "kind: Service\nname: support\nfriendly_name: Support\n")
	conv := func(name, unique string) string {
		return "kind: Conversation\nname: " + name + "\nservice: support\nunique_name: " + unique + "\n"
	}
	e.writeSpec("a.yaml", conv("a", "ua"))
	e.writeSpec("b.yaml", conv("b", "ub"))
	e.must(0, "apply", "--auto-approve")
	sidA, sidB := e.stateSID("conversation.a"), e.stateSID("conversation.b")

	e.writeSpec("a.yaml", conv("a", "ub"))
	e.writeSpec("b.yaml", conv("b", "ua"))
	for _, cmd := range [][]string{{"plan"}, {"apply", "--auto-approve"}} {
		r := e.must(1, cmd...)
		for _, want := range []string{"conversation.a", `conversation.b takes unique_name "ua" from conversation.a`, `conversation.a takes unique_name "ub" from conversation.b`, "two applies", "nothing was changed"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd[0], want, r)
			}
		}
	}
	// The way out the message gives: a temporary name first.
	e.writeSpec("a.yaml", conv("a", "ub-tmp"))
	e.must(0, "apply", "--auto-approve")
	e.writeSpec("a.yaml", conv("a", "ub"))
	e.must(0, "apply", "--auto-approve")
	svc := e.stateSID("service.support")
	for sid, want := range map[string]string{sidA: "ub", sidB: "ua"} {
		c, err := e.emu.Conversation(svc, sid)
		if err != nil || c.UniqueName == nil || *c.UniqueName != want {
			t.Errorf("%s: %+v %v, want unique_name %s", sid, c, err, want)
		}
	}
	if cs, _ := e.emu.Conversations(svc); len(cs) != 2 {
		t.Errorf("%d conversations in Twilio, want 2", len(cs))
	}
	// A chain is ordered, not refused: b takes a's "ub", a takes a free one.
	e.writeSpec("a.yaml", conv("a", "uc"))
	e.writeSpec("b.yaml", conv("b", "ub"))
	e.must(0, "apply", "--auto-approve")
	e.must(0, "plan", "--detailed-exitcode")
}

// TestSecondSignalEndsApplyAtOnce: the first SIGTERM asks plan/apply to stop
// at the next step; whatever the process is then stuck on (here: waiting for
// a state lock that another run holds, for up to an hour), a second one ends
// it at once.
func TestSecondSignalEndsApplyAtOnce(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", "kind: Service\nname: support\nfriendly_name: Support\n")
	holder, err := state.Open(e.state, state.Options{Holder: "the test"})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	cmd := exec.Command(binary, "apply", "--auto-approve", "--dir", e.dir, "--state", e.state, "--lock-timeout", "1h")
	cmd.Env = append(os.Environ(), "TWILIO_ACCOUNT_SID="+accountSID, "TWILIO_AUTH_TOKEN="+authToken, "CONVSYNC_API_URL="+e.url)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	e.eventually("convsync handling SIGTERM", func() bool { return catchesSIGTERM(cmd.Process.Pid) })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The second signal, repeated until the process is gone (a user
	// pressing Ctrl-C again): before the fix, every one was swallowed.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if err == nil {
				t.Fatal("apply exited 0 while another run held the state lock")
			}
			return
		case <-tick.C:
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}
}

// catchesSIGTERM reports whether process pid has a handler for SIGTERM
// (Linux: the SigCgt mask in /proc/PID/status).
func catchesSIGTERM(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if mask, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			v, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			return err == nil && v&(1<<(uint(syscall.SIGTERM)-1)) != 0
		}
	}
	return false
}
