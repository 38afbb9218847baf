package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

func convAddr(name string) resource.Address {
	return resource.Address{Kind: resource.KindConversation, Name: name}
}

// threeSteps is a plan: a replace, a create and an update (and a no-op).
func threeSteps() *planner.Plan {
	return &planner.Plan{StateLineage: "lin", StateSerial: 7, Changes: []planner.Change{
		{Address: convAddr("old"), Action: planner.Replace, SID: "CHold", Reason: "unique_name changes"},
		{Address: convAddr("new"), Action: planner.Create, Reason: "not in Twilio"},
		{Address: convAddr("vip"), Action: planner.Update, SID: "CHvip", Reason: "friendly_name differs",
			Fields: []planner.FieldChange{{Name: "friendly_name", Type: resource.TypeString, Before: "VIP", After: "VIP customers"}}},
		{Address: convAddr("same"), Action: planner.NoOp, SID: "CHsame"},
	}}
}

func fieldsOf(e observer.LoggedEntry) map[string]any { return e.ContextMap() }

func TestProgressLogsOneLinePerStepWithSIDDurationAndTwilioCode(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	p := NewProgress(zap.New(core), false)
	p.begin(TriggerFile, -1)
	if !p.BeforeApply(threeSteps()) {
		t.Fatal("BeforeApply refused outside a dry run")
	}
	if s := p.Snapshot(); s.Phase != PhaseApplying || s.StepsTotal != 3 || s.StepsDone != 0 {
		t.Fatalf("snapshot after BeforeApply: %+v, want applying 0/3 (the no-op is not a step)", s)
	}
	taken := &twilioapi.APIError{Status: 409, Code: 50353, Message: "Conversation with provided unique name already exists", Method: "POST", Route: "/v1/Services/{ServiceSid}/Conversations"}
	p.Step(apply.Event{Address: convAddr("old"), Action: planner.Replace, Phase: apply.Started, SID: "CHold"})
	p.Step(apply.Event{Address: convAddr("old"), Action: planner.Replace, Phase: apply.Failed, SID: "CHold", Err: fmt.Errorf("create: %w", taken), Duration: 30 * time.Millisecond})
	// The replace's second half is skipped: the step was reported already.
	p.Step(apply.Event{Address: convAddr("old"), Action: planner.Replace, Phase: apply.Skipped, Err: apply.ErrSkipped})
	p.Step(apply.Event{Address: convAddr("new"), Action: planner.Create, Phase: apply.Succeeded, SID: "CHnew", Duration: 120 * time.Millisecond})
	if s := p.Snapshot(); s.StepsDone != 2 || s.StepsFailed != 1 || s.StepsTotal != 3 {
		t.Fatalf("snapshot: %+v, want 2/3 done, 1 failed", s)
	}
	logged := p.end()
	if p.Snapshot() != nil {
		t.Fatal("a snapshot between passes must be nil")
	}
	if !logged[convAddr("old")] || !logged[convAddr("new")] || logged[convAddr("vip")] {
		t.Fatalf("logged steps: %v", logged)
	}

	failed := logs.FilterMessage("step failed").All()
	if len(failed) != 1 {
		t.Fatalf("want one failure line, got %d: %v", len(failed), logs.All())
	}
	f := fieldsOf(failed[0])
	if f["address"] != "conversation.old" || f["action"] != "replace" || f["sid"] != "CHold" || f["twilio_code"] != int64(50353) || f["http_status"] != int64(409) ||
		f["duration"] != 30*time.Millisecond || !strings.Contains(f["error"].(string), "Twilio error 50353") {
		t.Fatalf("failure line fields: %v", f)
	}
	if failed[0].Level != zapcore.WarnLevel {
		t.Fatalf("failure logged at %s", failed[0].Level)
	}
	ok := logs.FilterMessage("step succeeded").All()
	if len(ok) != 1 {
		t.Fatalf("want one success line, got %v", logs.All())
	}
	if f := fieldsOf(ok[0]); f["address"] != "conversation.new" || f["action"] != "create" || f["sid"] != "CHnew" || f["duration"] != 120*time.Millisecond || f["trigger"] != "file" {
		t.Fatalf("success line fields: %v", f)
	}
	if n := logs.FilterMessageSnippet("skipped").Len(); n != 0 {
		t.Fatalf("the skipped half of a failed replace was logged again (%d lines)", n)
	}
}

func TestProgressNamesTheReplacedSID(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	p := NewProgress(zap.New(core), false)
	p.begin(TriggerFile, -1)
	p.BeforeApply(threeSteps())
	p.Step(apply.Event{Address: convAddr("old"), Action: planner.Replace, Phase: apply.Succeeded, SID: "CHfresh", Duration: time.Millisecond})
	p.end()
	f := fieldsOf(logs.FilterMessage("step succeeded").All()[0])
	if f["sid"] != "CHfresh" || f["replaced_sid"] != "CHold" {
		t.Fatalf("a replace's line must carry the new SID and the replaced one: %v", f)
	}
}

func TestDryRunProgressRefusesEveryPlan(t *testing.T) {
	p := NewProgress(nil, true)
	p.begin(TriggerStartup, -1)
	defer p.end()
	if p.BeforeApply(threeSteps()) {
		t.Fatal("a dry run's BeforeApply must refuse the plan")
	}
	if s := p.Snapshot(); s.Phase != PhaseRefreshing || !s.DryRun {
		t.Fatalf("a dry run never applies: %+v", s)
	}
}

// observed returns a logger recording every entry.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

func TestALongPassLogsItsProgressAndReadyzShowsIt(t *testing.T) {
	log, logs := observed()
	progress := NewProgress(log, false)
	rt := startRun(t, func(c *Config) {
		c.Loop.Logger = log
		c.Loop.Progress = progress
		c.Loop.ProgressEvery = 10 * time.Millisecond
	})
	release := make(chan struct{})
	rt.rec.set(func(r *fakeReconciler) {
		r.block = release
		r.during = func() {
			// What the real reconciler does: plan, then apply step by step.
			progress.BeforeApply(threeSteps())
			progress.Request()
			progress.Step(apply.Event{Address: convAddr("new"), Action: planner.Create, Phase: apply.Succeeded, SID: "CHnew"})
		}
	})
	rt.signals <- syscall.SIGHUP
	rt.eventually("a progress line with 1/3 steps", func() bool {
		for _, e := range logs.FilterMessage("pass in progress: applying").All() {
			f := e.ContextMap()
			if f["steps_done"] == int64(1) && f["steps_total"] == int64(3) && f["trigger"] == "signal" {
				return true
			}
		}
		return false
	})
	code, body := rt.get("/readyz")
	var s struct {
		PassInProgress *PassProgress `json:"pass_in_progress"`
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != http.StatusOK {
		t.Fatalf("/readyz: %d %s %v", code, body, err)
	}
	if p := s.PassInProgress; p == nil || p.Phase != PhaseApplying || p.StepsDone != 1 || p.StepsTotal != 3 || p.APIRequests != 1 || p.Trigger != TriggerSignal {
		t.Fatalf("/readyz pass_in_progress: %s", body)
	}
	close(release)
	rt.eventually("the pass to end", func() bool {
		_, body := rt.get("/readyz")
		return !strings.Contains(body, "pass_in_progress") && strings.Contains(body, `"trigger": "signal"`)
	})
	n := logs.FilterMessageSnippet("pass in progress").Len()
	rt.rec.set(func(r *fakeReconciler) { r.during = nil; r.block = nil })
	rt.signals <- syscall.SIGHUP
	rt.eventually("the next pass", func() bool { return len(rt.rec.passes()) == 3 })
	rt.eventually("the next pass reported", func() bool { _, body := rt.get("/readyz"); return !strings.Contains(body, "pass_in_progress") })
	if got := logs.FilterMessageSnippet("pass in progress").Len(); got > n+1 {
		// At most a tick racing the end of the pass, never a stream.
		t.Fatalf("progress lines kept coming between passes: %d, then %d", n, got)
	}
}

func TestDryRunReportsThePlanInReadyzLogsAndMetrics(t *testing.T) {
	log, logs := observed()
	var m *Metrics
	rt := startRun(t, func(c *Config) {
		c.Loop.Logger = log
		c.Loop.Progress = NewProgress(log, true)
		m = c.Loop.Metrics
		rt0 := c.Loop.Reconciler.(*fakeReconciler)
		rt0.plan = threeSteps()
	})
	rt.eventually("the dry run's report", func() bool { return logs.FilterMessageSnippet("dry run: planned").Len() == 1 })
	code, body := rt.get("/readyz")
	var s struct {
		DryRun   bool `json:"dry_run"`
		LastPass struct {
			DryRun         bool            `json:"dry_run"`
			Summary        string          `json:"summary"`
			Planned        map[string]int  `json:"planned"`
			PlannedChanges []PlannedChange `json:"planned_changes"`
			Counts         map[string]int  `json:"counts"`
		} `json:"last_pass"`
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != http.StatusOK {
		t.Fatalf("/readyz: %d %s %v", code, body, err)
	}
	lp := s.LastPass
	if !s.DryRun || !lp.DryRun || lp.Summary != "dry run: would create 1, update 1, replace 1" || lp.Planned["update"] != 1 || len(lp.Counts) != 0 {
		t.Fatalf("/readyz of a dry run: %s", body)
	}
	if len(lp.PlannedChanges) != 3 || lp.PlannedChanges[2].Address != "conversation.vip" || lp.PlannedChanges[2].Fields[0] != "friendly_name" {
		t.Fatalf("planned changes: %+v", lp.PlannedChanges)
	}
	if strings.Contains(body, "VIP customers") {
		t.Fatalf("/readyz must name the fields, not their values: %s", body)
	}
	would := logs.FilterMessage("dry run: would update").All()
	if len(would) != 1 || would[0].ContextMap()["address"] != "conversation.vip" || would[0].ContextMap()["sid"] != "CHvip" {
		t.Fatalf("the dry run's update line: %v", logs.All())
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.ContextMap()), "VIP customers") {
			t.Fatalf("a log line holds a field value: %v", e)
		}
	}
	if metric(t, m, MetricDryRun, nil) != 1 || metric(t, m, MetricPlannedSteps, map[string]string{"action": "update"}) != 1 ||
		metric(t, m, MetricPlannedSteps, map[string]string{"action": "delete"}) != 0 || metric(t, m, MetricSteps, nil) != 0 {
		t.Fatal("metrics of a dry run: want convsync_dry_run 1, one planned update, no step applied")
	}
	if metric(t, m, MetricLastSuccess, nil) != 0 {
		t.Fatal("a dry run with changes left to make must not count as a pass that left nothing undone")
	}

	// The same plan again: only the summary, not every step again.
	rt.signals <- syscall.SIGHUP
	rt.eventually("the second dry-run pass", func() bool { return logs.FilterMessageSnippet("dry run: planned").Len() == 2 })
	if n := logs.FilterMessage("dry run: would update").Len(); n != 1 {
		t.Fatalf("an unchanged plan logged its steps again (%d lines)", n)
	}
}

// getPlan asks GET /plan with the given headers.
func (rt *runTest) getPlan(headers map[string]string) (*http.Response, string) {
	rt.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rt.baseURL+"/plan", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rt.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestGetPlanServesTheLastPassesPlanAsPlanJSON(t *testing.T) {
	rt := startRun(t, func(c *Config) {
		c.Loop.Reconciler.(*fakeReconciler).err = errTwilioDown
	})
	rt.eventually("the failed first pass reported", func() bool { _, body := rt.get("/readyz"); return strings.Contains(body, `"outcome": "error"`) })
	resp, body := rt.getPlan(nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no plan yet") {
		t.Fatalf("GET /plan before any plan: %d %s", resp.StatusCode, body)
	}

	plan := threeSteps()
	rt.rec.set(func(r *fakeReconciler) { r.err = nil; r.plan = plan })
	rt.signals <- syscall.SIGHUP
	rt.eventually("a plan", func() bool { resp, _ := rt.getPlan(nil); return resp.StatusCode == http.StatusOK })
	resp, body = rt.getPlan(nil)
	var want bytes.Buffer
	if err := planner.RenderJSON(&want, plan); err != nil {
		t.Fatal(err)
	}
	if body != want.String() {
		t.Fatalf("GET /plan is not plan --json:\n got %s\nwant %s", body, want.String())
	}
	if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Convsync-Pass-Trigger") != "signal" ||
		resp.Header.Get("X-Convsync-Dry-Run") != "false" || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("GET /plan headers: %v", resp.Header)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("GET /plan must never send CORS headers")
	}

	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-origin"}, // a page after a DNS rebinding
		{"Sec-Fetch-Site": "none", "Origin": "null"},
	} {
		resp, body := rt.getPlan(h)
		if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "conversation.vip") || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("GET /plan from a web page (%v): %d %s", h, resp.StatusCode, body)
		}
	}
	if resp, _ := rt.getPlan(map[string]string{"Sec-Fetch-Site": "none"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /plan typed into a browser's address bar: %d", resp.StatusCode)
	}

	// A pass that failed as a whole keeps the last plan (it made none).
	rt.rec.set(func(r *fakeReconciler) { r.err = errors.New("GET /v1/Services: connection refused") })
	rt.signals <- syscall.SIGHUP
	rt.eventually("the failed pass reported", func() bool { _, body := rt.get("/readyz"); return strings.Contains(body, "connection refused") })
	if resp, body := rt.getPlan(nil); resp.StatusCode != http.StatusOK || body != want.String() {
		t.Fatalf("after a failed pass: %d %s", resp.StatusCode, body)
	}
}

func TestAFailedStepInThePassReportCarriesTheTwilioCode(t *testing.T) {
	var r PassReport
	err := fmt.Errorf("update: %w", &twilioapi.APIError{Status: 400, Code: 50101, Message: "Invalid attributes", Method: "POST", Route: "/v1/Services/{ServiceSid}/Conversations/{Sid}"})
	r.fill(&engine.PassResult{Plan: &planner.Plan{}, Applied: &apply.Result{Steps: []apply.StepResult{{Address: convAddr("vip"), Action: planner.Update, SID: "CHvip", Err: err}}}}, nil)
	if len(r.FailedSteps) != 1 || r.FailedSteps[0].TwilioCode != 50101 || r.FailedSteps[0].HTTPStatus != 400 {
		t.Fatalf("failed steps: %+v", r.FailedSteps)
	}
	b, _ := json.Marshal(r.FailedSteps[0])
	if !strings.Contains(string(b), `"twilio_code":50101`) {
		t.Fatalf("JSON: %s", b)
	}
}

func TestApplyLoggerDropsOnlyTheAppliersStepLine(t *testing.T) {
	log, logs := observed()
	l := ApplyLogger(log).With(zap.String("k", "v"))
	l.Warn("step failed", zap.String("address", "conversation.vip"))
	l.Warn("create outcome unknown; looking for it before trying again")
	if logs.Len() != 1 || logs.All()[0].Message != "create outcome unknown; looking for it before trying again" || logs.All()[0].ContextMap()["k"] != "v" {
		t.Fatalf("logged: %v", logs.All())
	}
}

func TestAStepNeverStartedIsNeitherDoneNorLogged(t *testing.T) {
	log, logs := observed()
	p := NewProgress(log, false)
	p.begin(TriggerFile, -1)
	p.BeforeApply(threeSteps())
	p.Step(apply.Event{Address: convAddr("new"), Action: planner.Create, Phase: apply.NotStarted, Err: apply.ErrNotStarted})
	if s := p.Snapshot(); s.StepsDone != 0 || s.StepsFailed != 0 {
		t.Fatalf("snapshot: %+v", s)
	}
	if logged := p.end(); len(logged) != 1 || logs.Len() != 0 {
		t.Fatalf("logged %v, lines %v", logged, logs.All())
	}
}

func TestAFailedStepNotLoggedLiveIsLoggedWithItsCodeAtTheEndOfThePass(t *testing.T) {
	log, logs := observed()
	rt := startRun(t, func(c *Config) {
		c.Loop.Logger = log
		c.Loop.Reconciler.(*fakeReconciler).applied = &apply.Result{Steps: []apply.StepResult{{Address: convAddr("vip"), Action: planner.Update,
			Err: &twilioapi.APIError{Status: 400, Code: 50101, Method: "POST", Route: "/v1/Services/{ServiceSid}/Conversations/{Sid}"}}}}
	})
	rt.eventually("the failure's line", func() bool { return logs.FilterMessage("step failed").Len() == 1 })
	if f := logs.FilterMessage("step failed").All()[0].ContextMap(); f["address"] != "conversation.vip" || f["twilio_code"] != int64(50101) || f["http_status"] != int64(400) {
		t.Fatalf("fields: %v", f)
	}
	_, body := rt.get("/readyz")
	if !strings.Contains(body, `"twilio_code": 50101`) {
		t.Fatalf("/readyz failed_steps lack the Twilio code: %s", body)
	}
}

func TestTheStatusLineSaysDryRun(t *testing.T) {
	s := Status{DryRun: true, LastPass: &PassReport{Trigger: TriggerFile, Summary: "dry run: would update 1"}}
	if line := s.statusLine(); !strings.Contains(line, "dry run: would update 1") || !strings.Contains(line, "DRY RUN, nothing is applied") {
		t.Fatalf("STATUS=%s", line)
	}
}
