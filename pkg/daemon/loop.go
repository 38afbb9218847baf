package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/leader"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/spec"
)

// Trigger says why a pass was asked for. Triggers only mark work pending:
// the pass itself always reloads the whole spec set.
type Trigger string

const (
	TriggerStartup      Trigger = "startup"       // the first pass, a full refresh
	TriggerFile         Trigger = "file"          // the watcher saw the spec folder change
	TriggerPoll         Trigger = "poll"          // the slow poll, in case the watcher missed something
	TriggerResync       Trigger = "resync"        // the periodic full refresh that catches drift
	TriggerSignal       Trigger = "signal"        // SIGHUP: reload and full refresh
	TriggerRetry        Trigger = "retry"         // a backoff expired
	TriggerAllowDestroy Trigger = "allow-destroy" // an operator allowed deletions for one pass
)

// triggerRank orders triggers when several collapse into one pass: the pass
// is labelled with the one that matters most to an operator.
var triggerRank = map[Trigger]int{
	TriggerAllowDestroy: 7, TriggerSignal: 6, TriggerStartup: 5, TriggerResync: 4,
	TriggerRetry: 3, TriggerFile: 2, TriggerPoll: 1,
}

// Outcome is how a pass ended.
type Outcome string

const (
	OutcomeSuccess Outcome = "success" // every step that ran succeeded
	OutcomePartial Outcome = "partial" // some steps failed (they back off and retry) or were held back by a plan problem
	OutcomeRefused Outcome = "refused" // the deletion guard refused the whole pass
	OutcomeError   Outcome = "error"   // the pass failed as a whole (refresh or plan)
)

// Reconciler is what the loop needs of engine.Reconciler.
type Reconciler interface {
	Pass(ctx context.Context, desired []resource.Desired, specHash string, full bool, allowDestroy int) (*engine.PassResult, error)
	NextRetry() (time.Time, bool)
	Failing() map[resource.Address]error
}

var _ Reconciler = (*engine.Reconciler)(nil)

// LoopOptions configure a Loop.
type LoopOptions struct {
	// Dir is the spec folder, read by Load (default: a spec.Cache) on every pass.
	Dir  string
	Load func(dir string) (*spec.Set, error)

	Reconciler Reconciler
	// Resync is the time between full refreshes of Twilio, which catch drift
	// made by others (default 10m).
	Resync time.Duration
	// RetryBase and RetryMax shape the wait after a pass that failed as a
	// whole (Twilio unreachable, say): exponential with jitter, capped.
	// Defaults 5s and 5m.
	RetryBase, RetryMax time.Duration
	// Managed counts the resources in the state, by kind (metrics, status).
	Managed func() map[string]int

	Logger  *zap.Logger
	Metrics *Metrics
	// Progress follows each pass's steps (see Progress for its wiring into
	// the reconciler) and holds the --dry-run switch. Nil: one that only
	// knows when passes start and end.
	Progress *Progress
	// ProgressEvery is how often a pass in flight logs its progress
	// (default 5s; negative: never).
	ProgressEvery time.Duration
	// OnChange is called (from the worker) after every reload and pass, for
	// systemd STATUS lines and readiness.
	OnChange func(Status)
}

// Loop is the daemon's level-triggered worker. Use its methods from any
// goroutine; Run is the one worker.
type Loop struct {
	opts LoopOptions
	kick chan struct{}
	// lastBeat is the loop's heartbeat (unix nanoseconds), for the watchdog.
	lastBeat atomic.Int64

	mu       sync.Mutex
	pending  request
	lastGood *spec.Set
	// passedHash is the spec hash of the last pass that got as far as a
	// plan; an unchanged folder then needs no pass.
	passedHash  string
	reloadErr   string
	reloadErrAt time.Time
	reloadOKAt  time.Time
	lastPass    *PassReport
	failures    int // passes in a row that failed as a whole
	retryAt     time.Time
	nextResync  time.Time
	stopping    bool
	failing     map[string]string
	// announced is set once the first valid specs were reported (worker only).
	announced bool
	// lastPassStart is when the last pass began.
	lastPassStart time.Time
	// lastPlan is the plan of the last pass that made one, as plan --json
	// renders it; lastPlanPass is that pass.
	lastPlan     []byte
	lastPlanPass planMeta
}

// request is the work pending for the next pass.
type request struct {
	triggers map[Trigger]bool
	full     bool
	// allowDestroy is the operator's one-pass deletion limit, -1 for none.
	allowDestroy int
	waiters      []chan<- PassReport
}

func (r *request) empty() bool { return len(r.triggers) == 0 }

func (r *request) primary() Trigger {
	var best Trigger
	for t := range r.triggers {
		if triggerRank[t] > triggerRank[best] {
			best = t
		}
	}
	return best
}

// NewLoop returns a loop with defaults applied.
func NewLoop(opts LoopOptions) *Loop {
	if opts.Load == nil {
		// Reloads parse only the files that changed.
		opts.Load = spec.NewCache().LoadDir
	}
	if opts.Resync <= 0 {
		opts.Resync = 10 * time.Minute
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 5 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Progress == nil {
		opts.Progress = NewProgress(opts.Logger, false)
	}
	if opts.ProgressEvery == 0 {
		opts.ProgressEvery = 5 * time.Second
	}
	l := &Loop{opts: opts, kick: make(chan struct{}, 1)}
	l.pending.allowDestroy = -1
	return l
}

// Request marks a pass pending. Full asks for a complete refresh of Twilio.
func (l *Loop) Request(t Trigger, full bool) {
	l.mu.Lock()
	l.markLocked(t, full)
	l.mu.Unlock()
	l.wake()
}

// AllowDestroy lets the next pass delete or replace up to n resources
// (instead of --max-destroy), and runs that pass even if nothing changed.
// The allowance is used up by that one pass. The channel receives the
// pass's report.
func (l *Loop) AllowDestroy(n int) <-chan PassReport {
	done := make(chan PassReport, 1)
	l.mu.Lock()
	l.markLocked(TriggerAllowDestroy, false)
	if n > l.pending.allowDestroy {
		l.pending.allowDestroy = n
	}
	l.pending.waiters = append(l.pending.waiters, done)
	l.mu.Unlock()
	l.opts.Metrics.setAllowance(true)
	l.wake()
	return done
}

func (l *Loop) markLocked(t Trigger, full bool) {
	if l.pending.triggers == nil {
		l.pending.triggers = map[Trigger]bool{}
	}
	l.pending.triggers[t] = true
	l.pending.full = l.pending.full || full
}

func (l *Loop) wake() {
	select {
	case l.kick <- struct{}{}:
	default: // already pending: it collapses into the pass to come
	}
}

func (l *Loop) take() request {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.pending
	l.pending = request{allowDestroy: -1}
	return r
}

// Beat records that the loop is alive (the watchdog pings only while it beats).
func (l *Loop) Beat() { l.lastBeat.Store(time.Now().UnixNano()) }

// Alive reports whether the loop beat within d.
func (l *Loop) Alive(d time.Duration) bool {
	return time.Since(time.Unix(0, l.lastBeat.Load())) < d
}

// Run is the worker: it runs passes until stop is done, then returns once
// the pass in progress (if any) has finished. Passes run with work, which
// the caller cancels only to abort (the stop timeout).
func (l *Loop) Run(stop, work context.Context, heartbeat time.Duration) {
	l.Beat()
	l.Request(TriggerStartup, true)
	resync := time.NewTimer(l.opts.Resync)
	defer resync.Stop()
	l.setNextResync(time.Now().Add(l.opts.Resync))
	var beatC <-chan time.Time
	if heartbeat > 0 {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		beatC = t.C
	}
	fullFailed := false
	for {
		var retryC <-chan time.Time
		var retry *time.Timer
		if at, ok := l.nextRetry(); ok {
			retry = time.NewTimer(time.Until(at))
			retryC = retry.C
		}
		beat := false
		select {
		case <-stop.Done():
		case <-beatC:
			beat = true
		case <-l.kick:
		case <-resync.C:
			l.Request(TriggerResync, true)
		case <-retryC:
			// A full pass that failed is retried in full: an incremental
			// retry would keep the stale snapshot and skip the drift check.
			l.Request(TriggerRetry, fullFailed)
		}
		if retry != nil {
			retry.Stop()
		}
		if beat {
			l.Beat()
			continue
		}
		if stop.Err() != nil {
			return // stop taking new work, even if some is pending
		}
		l.Beat()
		req := l.take()
		if req.empty() {
			continue
		}
		// Drain a kick that the requests just taken left behind.
		select {
		case <-l.kick:
		default:
		}
		ok := l.runOnce(work, req)
		if req.full {
			// Whatever the outcome, the resync timer runs again: a failed
			// full pass is retried (in full) by the backoff, and must not
			// leave the periodic resync stopped.
			fullFailed = !ok
			resync.Reset(l.opts.Resync)
			l.setNextResync(time.Now().Add(l.opts.Resync))
		}
		l.Beat()
	}
}

func (l *Loop) setNextResync(t time.Time) {
	l.mu.Lock()
	l.nextResync = t
	l.mu.Unlock()
}

// nextRetry is the earliest of the reconciler's per-resource backoff and
// the loop's own backoff after a pass that failed as a whole. A backoff
// that expired before the last pass started was that pass's to retry: it
// does not ask for another (else a backoff entry whose step vanished from
// the plan would spin the loop).
func (l *Loop) nextRetry() (time.Time, bool) {
	at, ok := l.opts.Reconciler.NextRetry()
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok && !at.After(l.lastPassStart) {
		ok = false
	}
	if !l.retryAt.IsZero() && (!ok || l.retryAt.Before(at)) {
		at, ok = l.retryAt, true
	}
	return at, ok
}

// runOnce reloads the specs and, unless nothing needs doing, runs one pass.
// It reports whether the pass was a full refresh.
func (l *Loop) runOnce(work context.Context, req request) (full bool) {
	trigger := req.primary()
	set := l.reload()
	if set != nil && !l.announced && l.opts.OnChange != nil {
		// Ready as soon as the first specs load, before the first (full,
		// possibly long) pass: systemd's start timeout must not wait for it.
		l.announced = true
		l.opts.OnChange(l.Status())
	}
	if set == nil {
		l.finish(req, &PassReport{Trigger: trigger, Outcome: OutcomeError, Started: time.Now(), Finished: time.Now(),
			Error: "no valid spec set has been loaded yet; fix the specs (see the reload error)"}, nil, false)
		return false
	}
	l.mu.Lock()
	unchanged := set.Hash == l.passedHash && l.retryAt.IsZero()
	l.mu.Unlock()
	_, retry := req.triggers[TriggerRetry]
	if unchanged && !req.full && !retry && req.allowDestroy < 0 {
		l.opts.Logger.Debug("the specs are unchanged; no pass needed", zap.String("trigger", string(trigger)), zap.String("spec_hash", set.Hash))
		if l.opts.OnChange != nil {
			// A reload that failed (the last good set stays) still changes
			// what systemctl status and /readyz must say.
			l.opts.OnChange(l.Status())
		}
		return false
	}

	report := &PassReport{Trigger: trigger, Full: req.full, Started: time.Now(), SpecHash: set.Hash, DryRun: l.opts.Progress.DryRun()}
	l.mu.Lock()
	l.lastPassStart = report.Started
	l.mu.Unlock()
	if req.allowDestroy >= 0 {
		report.AllowedDestroys = req.allowDestroy
	}
	l.opts.Progress.begin(trigger, l.opts.ProgressEvery)
	res, err := l.opts.Reconciler.Pass(work, set.Resources, set.Hash, req.full, req.allowDestroy)
	logged := l.opts.Progress.end()
	report.Finished = time.Now()
	report.Duration = report.Finished.Sub(report.Started)
	if res != nil {
		report.Full = res.Full
	}
	steps := report.fill(res, err)
	if report.DryRun && res != nil && res.Applied != nil {
		// The reconciler is not wired to Progress.BeforeApply: a bug, and
		// one an operator must hear of, since the dry run was not dry.
		l.opts.Logger.Error("--dry-run: the pass applied changes; the reconciler's BeforeApply is not wired to the daemon (a bug in convsync)")
	}
	if res != nil && res.Plan != nil {
		l.keepPlan(res.Plan, report)
	}
	report.loggedSteps = logged
	// Read here, between passes: the reconciler is busy (locked) during one.
	failing := map[string]string{}
	for a, err := range l.opts.Reconciler.Failing() {
		failing[a.String()] = fmt.Sprint(err)
	}
	report.FailingResources = len(failing)
	l.mu.Lock()
	l.failing = failing
	l.mu.Unlock()
	l.finish(req, report, steps, true)
	return report.Full && report.Outcome != OutcomeError
}

// reload loads the spec folder; on failure the last good set stays in force.
func (l *Loop) reload() *spec.Set {
	set, err := l.opts.Load(l.opts.Dir)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		msg := describeLoadError(err)
		if msg != l.reloadErr {
			// Logged once per distinct problem, not on every poll.
			l.opts.Logger.Error("the specs could not be loaded; the last good specs stay in force and nothing is deleted because of this",
				zap.String("dir", l.opts.Dir), zap.String("problems", msg), zap.Bool("have_last_good", l.lastGood != nil))
			l.reloadErrAt = now
		}
		l.reloadErr = msg
		l.opts.Metrics.reload(false, now)
		return l.lastGood
	}
	if l.reloadErr != "" {
		l.opts.Logger.Info("the specs load again", zap.String("dir", l.opts.Dir), zap.Int("resources", len(set.Resources)))
	}
	if l.lastGood == nil || l.lastGood.Hash != set.Hash || l.reloadErr != "" {
		l.opts.Metrics.reload(true, now)
		l.reloadOKAt = now
	}
	l.reloadErr = ""
	l.lastGood = set
	l.opts.Metrics.setSpecResources(len(set.Resources))
	return set
}

func describeLoadError(err error) string {
	var problems spec.Errors
	if errors.As(err, &problems) {
		lines := make([]string, len(problems))
		for i, p := range problems {
			lines[i] = p.String()
		}
		return strings.Join(lines, "; ")
	}
	return err.Error()
}

// finish records a pass (or a pass that could not run), logs it, schedules
// a retry after a wholesale failure, and answers the waiters.
func (l *Loop) finish(req request, report *PassReport, steps []stepOutcome, ran bool) {
	log := l.opts.Logger.With(zap.String("trigger", string(report.Trigger)), zap.Bool("full", report.Full),
		zap.String("outcome", string(report.Outcome)), zap.Duration("duration", report.Duration))
	l.mu.Lock()
	l.lastPass = report
	if report.Outcome == OutcomeError {
		l.failures++
		delay := l.opts.RetryBase << min(l.failures-1, 20)
		if delay > l.opts.RetryMax || delay <= 0 {
			delay = l.opts.RetryMax
		}
		delay = delay/2 + time.Duration(rand.Float64()*float64(delay/2))
		l.retryAt = time.Now().Add(delay)
		report.NextAttempt = l.retryAt
	} else {
		l.failures = 0
		l.retryAt = time.Time{}
		l.passedHash = report.SpecHash
	}
	l.mu.Unlock()

	for _, s := range report.Suspects {
		log.Warn("a resource nobody manages looks like a copy left by a late create", zap.String("problem", s))
	}
	if report.DryRun {
		l.logDryRun(log, report)
	}
	switch report.Outcome {
	case OutcomeSuccess:
		switch {
		case report.DryRun: // logDryRun said it all
		case report.Changed():
			log.Info("pass applied changes", zap.String("summary", report.Summary))
		default:
			log.Info("pass found nothing to change", zap.String("summary", report.Summary))
		}
	case OutcomePartial:
		log.Warn("pass finished with failed or held-back steps; failed steps are retried with backoff, held-back ones when their spec changes or at the next full resync", zap.String("summary", report.Summary))
		for _, f := range report.FailedSteps {
			if report.loggedSteps[f.addr] {
				continue // its own line was logged as it failed
			}
			fields := []zap.Field{zap.String("address", f.Address), zap.String("action", f.Action), zap.String("error", f.Error)}
			if f.HTTPStatus != 0 {
				fields = append(fields, zap.Int("http_status", f.HTTPStatus))
			}
			if f.TwilioCode != 0 {
				fields = append(fields, zap.Int("twilio_code", f.TwilioCode))
			}
			log.Warn("step failed", fields...)
		}
		for _, h := range report.HeldBack {
			log.Warn("held back: the plan found a problem with this resource; the rest of the plan was applied", zap.String("address", h.Address), zap.String("problem", h.Problem))
		}
	case OutcomeRefused:
		log.Error("pass refused by the deletion guard; nothing was changed. Allow it once with POST /allow-destroy?count=N, or run convsync apply by hand",
			zap.String("error", report.Error))
	case OutcomeError:
		if ran {
			log.Error("pass failed; trying again later", zap.String("error", report.Error), zap.Time("next_attempt", report.NextAttempt))
		}
	}
	if ran {
		l.opts.Metrics.pass(report, steps)
		if l.opts.Managed != nil {
			l.opts.Metrics.setManaged(l.opts.Managed())
		}
	}
	if req.allowDestroy >= 0 {
		l.opts.Metrics.setAllowance(false)
	}
	for _, w := range req.waiters {
		w <- *report
	}
	if l.opts.OnChange != nil {
		l.opts.OnChange(l.Status())
	}
}

// abandon answers the allow-destroy requests left pending at stop.
func (l *Loop) abandon() {
	req := l.take()
	for _, w := range req.waiters {
		w <- PassReport{Trigger: TriggerAllowDestroy, Outcome: OutcomeError, Error: "convsync is stopping; the allowance was not used"}
	}
}

// setStopping marks the loop as stopping (readiness goes false).
func (l *Loop) setStopping() {
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
}

// PassReport describes one pass for logs, /readyz, systemd and the
// allow-destroy answer.
type PassReport struct {
	Trigger  Trigger   `json:"trigger"`
	Full     bool      `json:"full_refresh"`
	Outcome  Outcome   `json:"outcome"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Duration is also in DurationSeconds for JSON readers.
	Duration        time.Duration  `json:"-"`
	DurationSeconds float64        `json:"duration_seconds"`
	SpecHash        string         `json:"spec_hash,omitempty"`
	Summary         string         `json:"summary"`
	Counts          map[string]int `json:"counts,omitempty"`
	Failed          int            `json:"failed"`
	FailedSteps     []FailedStep   `json:"failed_steps,omitempty"`
	Deferred        []string       `json:"deferred,omitempty"`
	// HeldBack are the resources left out of the pass because planning found
	// a problem with them (or a step they wait for); the rest was applied.
	HeldBack []HeldBack `json:"held_back,omitempty"`
	// Suspects are resources nobody manages that look like copies a late
	// create left behind (see planner.Suspect); reported, never acted on.
	Suspects []string `json:"suspects,omitempty"`
	// Refused is set when the deletion guard refused the pass.
	Refused          *Refusal  `json:"refused,omitempty"`
	AllowedDestroys  int       `json:"allowed_destroys,omitempty"`
	FailingResources int       `json:"failing_resources"`
	Error            string    `json:"error,omitempty"`
	NextAttempt      time.Time `json:"next_attempt,omitzero"`
	// DryRun: the pass planned and applied nothing (--dry-run).
	DryRun bool `json:"dry_run,omitempty"`
	// Planned counts the plan's steps by action: what the pass applied, or
	// in a dry run what it would have applied. Held-back and deferred steps
	// are not in it.
	Planned map[string]int `json:"planned,omitempty"`
	// PlannedChanges lists a dry run's steps (the first maxPlannedChanges;
	// GET /plan has them all).
	PlannedChanges   []PlannedChange `json:"planned_changes,omitempty"`
	PlannedTruncated bool            `json:"planned_changes_truncated,omitempty"`

	// loggedSteps are the steps whose end was logged as it happened.
	loggedSteps map[resource.Address]bool
	// planChanged: a dry run's plan differs from the last one logged.
	planChanged bool
}

// PlannedChange is one step a dry run would apply.
type PlannedChange struct {
	Address string   `json:"address"`
	Action  string   `json:"action"`
	SID     string   `json:"sid,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Fields  []string `json:"fields,omitempty"`
}

// maxPlannedChanges bounds PassReport.PlannedChanges (and /readyz).
const maxPlannedChanges = 100

// FailedStep is one step that failed in a pass.
type FailedStep struct {
	Address string `json:"address"`
	Action  string `json:"action"`
	Error   string `json:"error"`
	// HTTPStatus and TwilioCode are from Twilio's answer, when there was one.
	HTTPStatus int `json:"http_status,omitempty"`
	TwilioCode int `json:"twilio_code,omitempty"`

	addr resource.Address
}

// HeldBack is one resource a pass left out, and why.
type HeldBack struct {
	Address string `json:"address"`
	Problem string `json:"problem"`
}

// Refusal is what the deletion guard refused.
type Refusal struct {
	Count     int      `json:"count"`
	Limit     int      `json:"limit"`
	Addresses []string `json:"addresses"`
}

// Changed reports whether the pass changed anything.
func (r *PassReport) Changed() bool {
	for _, n := range r.Counts {
		if n > 0 {
			return true
		}
	}
	return false
}

type stepOutcome struct{ action, outcome string }

// fill classifies a pass's result and error into the report.
func (r *PassReport) fill(res *engine.PassResult, err error) []stepOutcome {
	r.DurationSeconds = r.Duration.Seconds()
	if res != nil && res.Plan != nil {
		r.fillPlanned(res.Plan)
	}
	var tooMany *engine.TooManyDestroysError
	switch {
	case errors.As(err, &tooMany):
		r.Outcome = OutcomeRefused
		r.Error = err.Error()
		r.Refused = &Refusal{Count: tooMany.Count, Limit: tooMany.Limit}
		for _, a := range tooMany.Addresses {
			r.Refused.Addresses = append(r.Refused.Addresses, a.String())
		}
		r.Summary = fmt.Sprintf("refused: would delete or replace %d resources, more than the limit of %d", tooMany.Count, tooMany.Limit)
		return nil
	case err != nil:
		r.Outcome = OutcomeError
		r.Error = planErrorText(err)
		r.Summary = "failed: " + r.Error
		return nil
	}
	r.Outcome = OutcomeSuccess
	for _, a := range res.Deferred {
		r.Deferred = append(r.Deferred, a.String())
	}
	for a, why := range res.HeldBack {
		r.HeldBack = append(r.HeldBack, HeldBack{Address: a.String(), Problem: why})
	}
	sort.Slice(r.HeldBack, func(i, j int) bool { return r.HeldBack[i].Address < r.HeldBack[j].Address })
	if res.Plan != nil {
		for _, s := range res.Plan.Suspects {
			r.Suspects = append(r.Suspects, s.Message)
		}
	}
	if len(r.HeldBack) > 0 {
		r.Outcome = OutcomePartial
	}
	var steps []stepOutcome
	if res.Applied != nil {
		done, failed := res.Applied.Counts()
		r.Counts = map[string]int{}
		for action, n := range done {
			r.Counts[string(action)] = n
		}
		r.Failed = failed
		for _, s := range res.Applied.Steps {
			outcome := "success"
			switch {
			case errors.Is(s.Err, apply.ErrSkipped):
				outcome = "skipped"
			case errors.Is(s.Err, apply.ErrNotStarted):
				// The daemon is stopping: never sent, not a failure.
				outcome = "not_started"
			case s.Err != nil:
				outcome = "failed"
			}
			steps = append(steps, stepOutcome{string(s.Action), outcome})
			if s.Err != nil && outcome == "failed" {
				code, status := twilioCode(s.Err)
				r.FailedSteps = append(r.FailedSteps, FailedStep{Address: s.Address.String(), Action: string(s.Action), Error: s.Err.Error(),
					HTTPStatus: status, TwilioCode: code, addr: s.Address})
			}
		}
		if failed > 0 {
			r.Outcome = OutcomePartial
		}
	}
	r.Summary = summarize(r.Counts, r.Failed, len(r.Deferred))
	if r.DryRun {
		r.Summary = "dry run: " + summarizePlanned(r.Planned, len(r.Deferred))
	}
	if n := len(r.HeldBack); n > 0 {
		r.Summary = strings.TrimSuffix(r.Summary, "no changes")
		if r.Summary != "" {
			r.Summary += ", "
		}
		r.Summary += fmt.Sprintf("%d held back by plan problems", n)
	}
	return steps
}

// planErrorText flattens planner.Errors into one line per problem.
func planErrorText(err error) string {
	var pe planner.Errors
	if errors.As(err, &pe) {
		lines := make([]string, len(pe))
		for i, e := range pe {
			lines[i] = strings.TrimSpace(e.Error())
		}
		return strings.Join(lines, "; ")
	}
	return err.Error()
}

func summarize(counts map[string]int, failed, deferred int) string {
	order := []planner.Action{planner.Create, planner.Update, planner.Replace, planner.Delete, planner.Adopt, planner.Move, planner.Forget}
	past := map[planner.Action]string{planner.Create: "created", planner.Update: "updated", planner.Replace: "replaced",
		planner.Delete: "deleted", planner.Adopt: "adopted", planner.Forget: "forgotten", planner.Move: "moved"}
	var parts []string
	for _, a := range order {
		if n := counts[string(a)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, past[a]))
		}
	}
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", failed))
	}
	if deferred > 0 {
		parts = append(parts, fmt.Sprintf("%d waiting in backoff", deferred))
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

// Status is the loop's state as /readyz and systemd show it.
type Status struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
	Specs   struct {
		Dir       string `json:"dir"`
		Loaded    bool   `json:"loaded"`
		Hash      string `json:"hash,omitempty"`
		Files     int    `json:"files"`
		Resources int    `json:"resources"`
		// LastReloadOK is false while the folder fails to load; the last
		// good specs (above) stay in force.
		LastReloadOK     bool      `json:"last_reload_ok"`
		LastReloadError  string    `json:"last_reload_error,omitempty"`
		LastReloadFailed time.Time `json:"last_reload_failed,omitzero"`
		LastReloadOKAt   time.Time `json:"last_reload_ok_at,omitzero"`
	} `json:"specs"`
	State struct {
		LockHeld bool           `json:"lock_held"`
		Managed  map[string]int `json:"managed,omitempty"`
	} `json:"state"`
	// DryRun: the daemon plans and reports, and changes nothing (--dry-run).
	DryRun bool `json:"dry_run,omitempty"`
	// PassInProgress is the pass running now, with its steps done and total.
	PassInProgress *PassProgress     `json:"pass_in_progress,omitempty"`
	LastPass       *PassReport       `json:"last_pass,omitempty"`
	Failing        map[string]string `json:"failing,omitempty"`
	NextResync     time.Time         `json:"next_resync,omitzero"`
	Stopping       bool              `json:"stopping,omitempty"`
	// Leadership is this process's role when it shares the state with
	// others (the PostgreSQL backend): leader or standby, and who leads.
	Leadership *leader.Status `json:"leadership,omitempty"`
}

// standingBy reports whether another process leads: this one is healthy
// and waits, and its specs are not loaded (it does not act on them).
func (s *Status) standingBy() bool { return s.Leadership != nil && s.Leadership.Role != "leader" }

// Status returns the loop's current status. The state lock is filled in by
// the caller that owns it (see Run); here it is assumed held.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s Status
	s.Specs.Dir = l.opts.Dir
	if l.lastGood != nil {
		s.Specs.Loaded = true
		s.Specs.Hash = l.lastGood.Hash
		s.Specs.Files = len(l.lastGood.Files)
		s.Specs.Resources = len(l.lastGood.Resources)
	}
	s.Specs.LastReloadOK = l.reloadErr == ""
	s.Specs.LastReloadError = l.reloadErr
	s.Specs.LastReloadFailed = l.reloadErrAt
	s.Specs.LastReloadOKAt = l.reloadOKAt
	s.State.LockHeld = true
	if l.lastPass != nil {
		p := *l.lastPass
		s.LastPass = &p
	}
	if len(l.failing) > 0 {
		s.Failing = maps.Clone(l.failing)
	}
	s.NextResync = l.nextResync
	s.Stopping = l.stopping
	s.DryRun = l.opts.Progress.DryRun()
	s.PassInProgress = l.opts.Progress.Snapshot()
	s.evaluate()
	return s
}

// evaluate sets Ready and Reasons: ready means specs are loaded, the state
// lock is held, the daemon is not stopping, and the last pass did not fail
// as a whole. A refused pass, failed steps or a bad edit (with a good set
// still in force) are reported but do not make the daemon unready.
func (s *Status) evaluate() {
	s.Reasons = nil
	if s.standingBy() {
		// Ready: a stand-by serves its purpose by waiting. Not ready only
		// when it cannot reach the state, so could not take over.
		if s.Leadership.LastError != "" {
			s.Reasons = append(s.Reasons, "standing by, but the state cannot be reached: "+s.Leadership.LastError)
		}
		if s.Stopping {
			s.Reasons = append(s.Reasons, "stopping")
		}
		s.Ready = len(s.Reasons) == 0
		return
	}
	if !s.Specs.Loaded {
		s.Reasons = append(s.Reasons, "no valid spec set has been loaded yet")
	}
	if !s.State.LockHeld {
		s.Reasons = append(s.Reasons, "the state file lock is not held")
	}
	if s.LastPass != nil && s.LastPass.Outcome == OutcomeError {
		s.Reasons = append(s.Reasons, "the last pass failed: "+s.LastPass.Error)
	}
	if s.Stopping {
		s.Reasons = append(s.Reasons, "stopping")
	}
	s.Ready = len(s.Reasons) == 0
}

// statusLine is the one-line STATUS= for systemctl status.
func (s Status) statusLine() string {
	var b strings.Builder
	switch {
	case s.LastPass == nil && !s.Specs.Loaded:
		b.WriteString("waiting for valid specs")
	case s.LastPass == nil:
		b.WriteString("specs loaded; first pass running")
	default:
		p := s.LastPass
		fmt.Fprintf(&b, "last pass %s (%s): %s", p.Finished.Format(time.TimeOnly), p.Trigger, p.Summary)
	}
	managed := 0
	keys := make([]string, 0, len(s.State.Managed))
	for k, n := range s.State.Managed {
		managed += n
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(&b, "; %d managed", managed)
	if len(s.Failing) > 0 {
		fmt.Fprintf(&b, "; %d failing", len(s.Failing))
	}
	if !s.Specs.LastReloadOK {
		b.WriteString("; SPEC RELOAD FAILED, last good specs in force")
	}
	if s.DryRun {
		b.WriteString("; DRY RUN, nothing is applied")
	}
	return strings.ReplaceAll(b.String(), "\n", " ")
}
