package daemon

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/convsync/convsync/pkg/planner"
)

// planMeta says which pass made the plan GET /plan serves.
type planMeta struct {
	trigger  Trigger
	outcome  Outcome
	finished time.Time
	dryRun   bool
}

// keepPlan renders the pass's plan as plan --json does, for GET /plan, and
// notes in the report whether it differs from the plan kept before.
func (l *Loop) keepPlan(plan *planner.Plan, report *PassReport) {
	var buf bytes.Buffer
	if err := planner.RenderJSON(&buf, plan); err != nil {
		l.opts.Logger.Error("the pass's plan could not be rendered as JSON for GET /plan", zap.Error(err))
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	report.planChanged = !bytes.Equal(buf.Bytes(), l.lastPlan)
	l.lastPlan = buf.Bytes()
	l.lastPlanPass = planMeta{trigger: report.Trigger, outcome: report.Outcome, finished: report.Finished, dryRun: report.DryRun}
	l.opts.Metrics.setPlanned(report.Planned)
}

// LastPlan returns the last plan a pass made, rendered as plan --json
// renders it, and which pass made it; ok is false before the first plan.
func (l *Loop) LastPlan() (plan []byte, meta planMeta, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastPlan, l.lastPlanPass, l.lastPlan != nil
}

// fillPlanned counts the plan's steps by action and, in a dry run, lists them.
func (r *PassReport) fillPlanned(plan *planner.Plan) {
	r.Planned = map[string]int{}
	for _, c := range plan.Changes {
		if c.Action == planner.NoOp {
			continue
		}
		r.Planned[string(c.Action)]++
		if !r.DryRun {
			continue
		}
		if len(r.PlannedChanges) == maxPlannedChanges {
			r.PlannedTruncated = true
			continue
		}
		pc := PlannedChange{Address: c.Address.String(), Action: string(c.Action), SID: c.SID, Reason: c.Reason}
		for _, f := range c.Fields {
			pc.Fields = append(pc.Fields, f.Name)
		}
		r.PlannedChanges = append(r.PlannedChanges, pc)
	}
}

// logDryRun logs what a dry-run pass would have done: a line per planned
// step when the plan changed since the last one (else only the summary).
// Field names are logged, never their values.
func (l *Loop) logDryRun(log *zap.Logger, r *PassReport) {
	if r.Outcome == OutcomeError {
		return
	}
	if r.planChanged {
		for _, c := range r.PlannedChanges {
			fields := []zap.Field{zap.String("address", c.Address), zap.String("action", c.Action)}
			if c.SID != "" {
				fields = append(fields, zap.String("sid", c.SID))
			}
			if len(c.Fields) > 0 {
				fields = append(fields, zap.Strings("fields", c.Fields))
			}
			fields = append(fields, zap.String("reason", c.Reason))
			log.Info("dry run: would "+c.Action, fields...)
		}
		if r.PlannedTruncated {
			total := 0
			for _, n := range r.Planned {
				total += n
			}
			log.Info(fmt.Sprintf("dry run: and %d more steps; GET /plan lists them all", total-len(r.PlannedChanges)))
		}
	}
	log.Info("dry run: planned; nothing was applied to Twilio or the state", zap.String("summary", r.Summary),
		zap.Bool("plan_changed", r.planChanged))
}

// summarizePlanned says what a dry run would do: "would create 1, update 2".
func summarizePlanned(planned map[string]int, deferred int) string {
	order := []planner.Action{planner.Create, planner.Update, planner.Replace, planner.Delete, planner.Adopt, planner.Move, planner.Forget}
	var parts []string
	for _, a := range order {
		if n := planned[string(a)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", a, n))
		}
	}
	out := "no changes"
	if len(parts) > 0 {
		out = "would " + strings.Join(parts, ", ")
	}
	if deferred > 0 {
		out += fmt.Sprintf(", %d waiting", deferred)
	}
	return out
}
