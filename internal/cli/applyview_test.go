package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
)

func addr(kind resource.Kind, name string) resource.Address {
	return resource.Address{Kind: kind, Name: name}
}

// stoppedApply is the events and result of an apply of 4 steps stopped
// after the first two: one done, one failed, two never started.
func stoppedApply() ([]apply.Event, *apply.Result) {
	svc, a, b, c := addr(resource.KindService, "support"), addr(resource.KindConversation, "a"), addr(resource.KindConversation, "b"), addr(resource.KindConversation, "c")
	refused := errors.New("creating: Twilio refused it (HTTP 400, code 50353)")
	nb := fmt.Errorf("%w: the apply stopped (it was stopped) before this step could start; nothing of it was sent", apply.ErrNotStarted)
	nc := fmt.Errorf("%w: the apply stopped (it was stopped) before this step could start; nothing of it was sent", apply.ErrNotStarted)
	events := []apply.Event{
		{Address: svc, Action: planner.Create, Phase: apply.Started},
		{Address: svc, Action: planner.Create, Phase: apply.Succeeded, SID: "IS00000000000000000000000000000001", Duration: 120 * time.Millisecond},
		{Address: a, Action: planner.Create, Phase: apply.Started},
		{Address: a, Action: planner.Create, Phase: apply.Failed, Err: refused, Duration: 2 * time.Second},
		{Address: b, Action: planner.Create, Phase: apply.NotStarted, Err: nb},
		{Address: c, Action: planner.Create, Phase: apply.NotStarted, Err: nc},
	}
	res := &apply.Result{Stopped: true, Steps: []apply.StepResult{
		{Address: a, Action: planner.Create, Err: refused},
		{Address: b, Action: planner.Create, Err: nb},
		{Address: c, Action: planner.Create, Err: nc},
		{Address: svc, Action: planner.Create, SID: "IS00000000000000000000000000000001"},
	}}
	return events, res
}

// TestApplyViewPlainLines: without a terminal, one line per step event,
// prefixed [finished/all]; never-started steps once, in the summary.
func TestApplyViewPlainLines(t *testing.T) {
	var out, errOut bytes.Buffer
	v := newApplyView(&out, &errOut, false, false, 4)
	v.begin()
	events, res := stoppedApply()
	for _, e := range events[:3] {
		v.event(e)
	}
	v.stopping("interrupt signal received")
	for _, e := range events[3:] {
		v.event(e)
	}
	v.end()
	if err := v.summary(res); !errors.As(err, new(exitError)) {
		t.Errorf("summary returned %v, want exit 1", err)
	}
	want := `[0/4] service.support: creating...
[1/4] service.support: created IS00000000000000000000000000000001 (0.1s)
[1/4] conversation.a: creating...
[2/4] conversation.a: FAILED: creating: Twilio refused it (HTTP 400, code 50353)

Apply stopped: 1 created, 0 updated, 0 replaced, 0 deleted, 1 failed, 2 not started.

Failed steps:
  conversation.a: creating: Twilio refused it (HTTP 400, code 50353)

Not started:
  conversation.b: create
  conversation.c: create

Everything that succeeded is recorded in the state. Fix the cause and run apply again.
`
	if got := out.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	wantErr := "\ninterrupt signal received: stopping. No new step starts; waiting for the 1 step in flight to finish, and saving the state. Press Ctrl-C again to abort at once.\n"
	if got := errOut.String(); got != wantErr {
		t.Errorf("stderr: %q, want %q", got, wantErr)
	}
}

func TestApplyViewCompleteSummary(t *testing.T) {
	var out bytes.Buffer
	v := newApplyView(&out, &out, false, false, 1)
	res := &apply.Result{Steps: []apply.StepResult{{Address: addr(resource.KindRole, "r"), Action: planner.Update}}}
	if err := v.summary(res); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "\nApply complete: 0 created, 1 updated, 0 replaced, 0 deleted.\n"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestApplyViewJSON: every line is one JSON object carrying the format
// version; nothing else is written to stdout.
func TestApplyViewJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	v := newApplyView(&out, &errOut, true, true, 4)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v.now = func() time.Time { return start }
	v.start = start
	v.begin()
	events, res := stoppedApply()
	for _, e := range events[:3] {
		v.event(e)
	}
	v.stopping("interrupt signal received")
	for _, e := range events[3:] {
		v.event(e)
	}
	v.end()
	v.now = func() time.Time { return start.Add(2500 * time.Millisecond) }
	_ = v.summary(res)
	want := `{"format_version":"1.0","type":"start","total":4}
{"format_version":"1.0","type":"started","address":"service.support","action":"create"}
{"format_version":"1.0","type":"done","address":"service.support","action":"create","sid":"IS00000000000000000000000000000001","duration_ms":120}
{"format_version":"1.0","type":"started","address":"conversation.a","action":"create"}
{"format_version":"1.0","type":"stopping","in_flight":1}
{"format_version":"1.0","type":"failed","address":"conversation.a","action":"create","duration_ms":2000,"error":"creating: Twilio refused it (HTTP 400, code 50353)"}
{"format_version":"1.0","type":"not_started","address":"conversation.b","action":"create","error":"not started: the apply stopped (it was stopped) before this step could start; nothing of it was sent"}
{"format_version":"1.0","type":"not_started","address":"conversation.c","action":"create","error":"not started: the apply stopped (it was stopped) before this step could start; nothing of it was sent"}
{"format_version":"1.0","type":"summary","outcome":"stopped","total":4,"done":{"create":1},"failed":1,"skipped":0,"not_started":2,"duration_ms":2500}
`
	if got := out.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	for i, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["format_version"] != ApplyJSONFormatVersion {
			t.Errorf("line %d: %v %v", i+1, err, ev)
		}
	}
	if !strings.Contains(errOut.String(), "stopping") {
		t.Errorf("the stop notice is not on stderr: %q", errOut.String())
	}
}

// TestApplyViewTerminal: on a terminal the status line is redrawn in
// place (carriage return, erase line) and step lines are printed above it.
func TestApplyViewTerminal(t *testing.T) {
	var out bytes.Buffer
	v := newApplyView(&out, &out, false, true, 2)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v.now = func() time.Time { return start }
	v.start = start
	a := addr(resource.KindConversation, "a")
	v.drawStatus()
	v.event(apply.Event{Address: a, Action: planner.Create, Phase: apply.Started})
	v.now = func() time.Time { return start.Add(2 * time.Second) }
	v.event(apply.Event{Address: a, Action: planner.Create, Phase: apply.Succeeded, SID: "CH1", Duration: time.Second})
	v.end()
	want := "\r\x1b[K[0/2] starting" +
		"\r\x1b[K[0/2] starting, 1 in flight" +
		"\r\x1b[K[1/2] conversation.a: created CH1 (1.0s)\n" +
		"\r\x1b[K[1/2] 0.5 steps/s, 2s left" +
		"\r\x1b[K"
	if got := out.String(); got != want {
		t.Errorf("%q\nwant %q", got, want)
	}
}

func TestFormatProgress(t *testing.T) {
	for _, tt := range []struct {
		finished, total, inFlight int
		elapsed                   time.Duration
		want                      string
	}{
		{0, 750, 0, 0, "[0/750] starting"},
		{0, 750, 10, 3 * time.Second, "[0/750] starting, 10 in flight"},
		{123, 750, 10, 4100 * time.Millisecond, "[123/750] 30.0 steps/s, 21s left, 10 in flight"},
		{30, 1000, 0, 10 * time.Second, "[30/1000] 3.0 steps/s, 5m23s left"},
		{1, 10000, 1, 2 * time.Second, "[1/10000] 0.5 steps/s, 5h33m left, 1 in flight"},
		{750, 750, 0, 25 * time.Second, "[750/750] 30.0 steps/s, 0s left"},
	} {
		if got := formatProgress(tt.finished, tt.total, tt.inFlight, tt.elapsed); got != tt.want {
			t.Errorf("formatProgress(%d, %d, %d, %s) = %q, want %q", tt.finished, tt.total, tt.inFlight, tt.elapsed, got, tt.want)
		}
	}
}
