package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/planner"
)

// ApplyJSONFormatVersion versions apply --json's event lines (every line
// carries it). A minor version adds fields or event types; a major one
// changes or removes them.
const ApplyJSONFormatVersion = "1.0"

// applyView shows an apply's progress: a line per step event on stdout
// (human), the same with a status line kept up to date in place (human on
// a terminal), or one JSON object per line (--json). Its methods may be
// called from several goroutines.
type applyView struct {
	mu     sync.Mutex
	out    io.Writer // stdout
	errOut io.Writer // notices (stderr)
	json   bool
	tty    bool
	now    func() time.Time

	total    int
	finished int // done, failed or skipped
	inFlight int
	start    time.Time
	status   bool // the status line is shown (tty)
	ticker   *time.Ticker
	quit     chan struct{}
	wg       sync.WaitGroup
}

func newApplyView(out, errOut io.Writer, jsonMode, tty bool, total int) *applyView {
	v := &applyView{out: out, errOut: errOut, json: jsonMode, tty: tty && !jsonMode, now: time.Now, total: total}
	v.start = v.now()
	return v
}

// begin starts the view: the JSON start event, or the status line and its
// once-a-second refresh on a terminal.
func (v *applyView) begin() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.json {
		v.writeJSON(jsonStart{FormatVersion: ApplyJSONFormatVersion, Type: "start", Total: v.total})
		return
	}
	if v.tty {
		v.drawStatus()
		v.ticker = time.NewTicker(time.Second)
		v.quit = make(chan struct{})
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			for {
				select {
				case <-v.quit:
					return
				case <-v.ticker.C:
					v.mu.Lock()
					v.drawStatus()
					v.mu.Unlock()
				}
			}
		}()
	}
}

// end stops the refresh and clears the status line.
func (v *applyView) end() {
	if v.ticker != nil {
		v.ticker.Stop()
		close(v.quit)
		v.wg.Wait()
		v.ticker = nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clearStatus()
}

// event shows one step event.
func (v *applyView) event(e apply.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch e.Phase {
	case apply.Started:
		v.inFlight++
	case apply.Succeeded, apply.Failed:
		v.inFlight--
		v.finished++
	case apply.Skipped:
		v.finished++
	}
	if v.json {
		v.writeJSON(stepJSON(e))
		return
	}
	var line string
	switch e.Phase {
	case apply.Started:
		if v.tty {
			v.drawStatus()
			return // the status line says how many are in flight
		}
		line = fmt.Sprintf("%s: %s...", e.Address, progressive[e.Action])
	case apply.Succeeded:
		sid := ""
		if e.SID != "" {
			sid = " " + e.SID
		}
		line = fmt.Sprintf("%s: %s%s (%.1fs)", e.Address, pastTense[e.Action], sid, e.Duration.Seconds())
	case apply.Failed:
		line = fmt.Sprintf("%s: FAILED: %v", e.Address, e.Err)
	case apply.Skipped:
		line = fmt.Sprintf("%s: skipped (%v)", e.Address, e.Err)
	default:
		// Not started: listed once, in the summary.
		return
	}
	v.clearStatus()
	fmt.Fprintf(v.out, "[%d/%d] %s\n", v.finished, v.total, line)
	if v.tty {
		v.drawStatus()
	}
}

// stopping tells that the first interrupt arrived.
func (v *applyView) stopping(signal string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clearStatus()
	if v.json {
		v.writeJSON(jsonStopping{FormatVersion: ApplyJSONFormatVersion, Type: "stopping", InFlight: v.inFlight})
	}
	fmt.Fprintf(v.errOut, "\n%s: stopping. No new step starts; waiting for the %d %s in flight to finish, and saving the state. Press Ctrl-C again to abort at once.\n",
		signal, v.inFlight, plural(v.inFlight, "step", "steps"))
	if v.tty {
		v.drawStatus()
	}
}

func (v *applyView) clearStatus() {
	if v.status {
		fmt.Fprint(v.out, "\r\x1b[K")
		v.status = false
	}
}

func (v *applyView) drawStatus() {
	if !v.tty {
		return
	}
	fmt.Fprint(v.out, "\r\x1b[K"+formatProgress(v.finished, v.total, v.inFlight, v.now().Sub(v.start)))
	v.status = true
}

// formatProgress is the terminal's status line: steps finished of all, the
// rate so far and the time left at that rate.
func formatProgress(finished, total, inFlight int, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%d/%d]", finished, total)
	if finished > 0 && elapsed > 0 {
		rate := float64(finished) / elapsed.Seconds()
		left := time.Duration(float64(total-finished) / rate * float64(time.Second))
		fmt.Fprintf(&b, " %.1f steps/s, %s left", rate, formatLeft(left))
	} else {
		b.WriteString(" starting")
	}
	if inFlight > 0 {
		fmt.Fprintf(&b, ", %d in flight", inFlight)
	}
	return b.String()
}

// formatLeft rounds an estimate to what a reader needs: seconds under a
// minute, then minutes and seconds, then hours and minutes.
func formatLeft(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func (v *applyView) writeJSON(x any) {
	b, err := json.Marshal(x)
	if err != nil {
		panic(err) // plain structs of strings and numbers
	}
	_, _ = v.out.Write(append(b, '\n'))
}

type jsonStart struct {
	FormatVersion string `json:"format_version"`
	Type          string `json:"type"`
	Total         int    `json:"total"`
}

type jsonStopping struct {
	FormatVersion string `json:"format_version"`
	Type          string `json:"type"`
	InFlight      int    `json:"in_flight"`
}

type jsonStep struct {
	FormatVersion string `json:"format_version"`
	Type          string `json:"type"`
	Address       string `json:"address"`
	Action        string `json:"action"`
	SID           string `json:"sid,omitempty"`
	DurationMS    *int64 `json:"duration_ms,omitempty"`
	Error         string `json:"error,omitempty"`
}

var jsonPhase = map[apply.Phase]string{
	apply.Started: "started", apply.Succeeded: "done", apply.Failed: "failed",
	apply.Skipped: "skipped", apply.NotStarted: "not_started",
}

func stepJSON(e apply.Event) jsonStep {
	s := jsonStep{FormatVersion: ApplyJSONFormatVersion, Type: jsonPhase[e.Phase], Address: e.Address.String(), Action: string(e.Action), SID: e.SID}
	if e.Phase == apply.Succeeded || e.Phase == apply.Failed {
		ms := e.Duration.Milliseconds()
		s.DurationMS = &ms
	}
	if e.Err != nil {
		s.Error = e.Err.Error()
	}
	return s
}

type jsonSummary struct {
	FormatVersion string         `json:"format_version"`
	Type          string         `json:"type"`
	Outcome       string         `json:"outcome"` // complete, no_changes, errors, stopped
	Total         int            `json:"total"`
	Done          map[string]int `json:"done"` // by action
	Failed        int            `json:"failed"`
	Skipped       int            `json:"skipped"`
	NotStarted    int            `json:"not_started"`
	DurationMS    int64          `json:"duration_ms"`
}

// summary prints the outcome of the apply (res nil: no changes) and
// returns the exit error when not every step was done.
func (v *applyView) summary(res *apply.Result) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clearStatus()
	if res == nil {
		if v.json {
			v.writeJSON(jsonSummary{FormatVersion: ApplyJSONFormatVersion, Type: "summary", Outcome: "no_changes", Done: map[string]int{}})
		} else {
			fmt.Fprintf(v.out, "No changes. Twilio matches the specs.\n")
		}
		return nil
	}
	done, _ := res.Counts()
	n := res.Outcomes()
	outcome := "complete"
	switch {
	case res.Stopped:
		outcome = "stopped"
	case len(res.Steps) > n[apply.OutcomeDone]:
		outcome = "errors"
	}
	var code error
	if len(res.Steps) > n[apply.OutcomeDone] {
		code = exitError{code: ExitError}
	}
	if v.json {
		byAction := map[string]int{}
		for a, k := range done {
			byAction[string(a)] = k
		}
		v.writeJSON(jsonSummary{FormatVersion: ApplyJSONFormatVersion, Type: "summary", Outcome: outcome, Total: len(res.Steps), Done: byAction,
			Failed: n[apply.OutcomeFailed], Skipped: n[apply.OutcomeSkipped], NotStarted: n[apply.OutcomeNotStarted], DurationMS: v.now().Sub(v.start).Milliseconds()})
		return code
	}
	p := func(format string, args ...any) { fmt.Fprintf(v.out, format, args...) }
	p("\nApply %s: %d created, %d updated, %d replaced, %d deleted",
		map[string]string{"complete": "complete", "errors": "finished with errors", "stopped": "stopped"}[outcome],
		done[planner.Create], done[planner.Update], done[planner.Replace], done[planner.Delete])
	if done[planner.Adopt]+done[planner.Forget]+done[planner.Move] > 0 {
		p(", %d adopted, %d moved, %d forgotten", done[planner.Adopt], done[planner.Move], done[planner.Forget])
	}
	if failed := n[apply.OutcomeFailed] + n[apply.OutcomeSkipped]; failed > 0 {
		p(", %d failed", failed)
	}
	if ns := n[apply.OutcomeNotStarted]; ns > 0 {
		p(", %d not started", ns)
	}
	p(".\n")
	if code == nil {
		return nil
	}
	var failed, notStarted []apply.StepResult
	for _, s := range res.Steps {
		switch s.Outcome() {
		case apply.OutcomeFailed, apply.OutcomeSkipped:
			failed = append(failed, s)
		case apply.OutcomeNotStarted:
			notStarted = append(notStarted, s)
		}
	}
	if len(failed) > 0 {
		p("\nFailed steps:\n")
		for _, s := range failed {
			p("  %s: %v\n", s.Address, s.Err)
		}
	}
	if len(notStarted) > 0 {
		sort.Slice(notStarted, func(i, j int) bool { return notStarted[i].Address.String() < notStarted[j].Address.String() })
		p("\nNot started:\n")
		for _, s := range notStarted {
			what := string(s.Action)
			if msg := s.Err.Error(); strings.Contains(msg, "between the two halves") {
				what += ": " + strings.TrimPrefix(msg, apply.ErrNotStarted.Error()+": ")
			}
			p("  %s: %s\n", s.Address, what)
		}
	}
	if len(failed) > 0 {
		p("\nEverything that succeeded is recorded in the state. Fix the cause and run apply again.\n")
	} else {
		p("\nEverything that was done is recorded in the state. Run apply again to carry out the rest.\n")
	}
	return code
}
