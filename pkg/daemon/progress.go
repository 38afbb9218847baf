package daemon

import (
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// Pass phases, as /readyz and the progress log lines show them.
const (
	PhaseRefreshing = "refreshing" // reading Twilio and planning
	PhaseApplying   = "applying"   // carrying out the plan's steps
)

// Progress follows the pass in flight: it logs one line per step as the
// step ends (address, action, SID, duration; a failure with its Twilio error
// code), a progress line every few seconds during a long pass, and gives
// /readyz the pass's steps done and total. It also holds the --dry-run
// switch: in a dry run BeforeApply says no, and nothing is applied.
//
// Wire it into the reconciler: engine.Reconciler.BeforeApply =
// p.BeforeApply, apply.Options.OnEvent = p.Step, and the Twilio client's
// per-attempt hook to p.Request; then give it to LoopOptions.Progress.
type Progress struct {
	log    *zap.Logger
	dryRun bool
	now    func() time.Time

	mu  sync.Mutex
	cur *passProgress // nil between passes
	// stop ends the progress ticker of the pass in flight.
	stop chan struct{}
	wg   sync.WaitGroup
}

// passProgress is what is known of the pass in flight.
type passProgress struct {
	trigger      Trigger
	started      time.Time
	applyStarted time.Time
	phase        string
	total        int
	done, failed int
	requests     int
	// ended holds the addresses whose step has ended (a replace's two halves
	// are one step); logged, those whose line was written.
	ended map[resource.Address]bool
	// oldSID is a replaced resource's SID before the pass.
	oldSID map[resource.Address]string
}

// PassProgress is the pass in flight, as /readyz shows it.
type PassProgress struct {
	Trigger        Trigger   `json:"trigger"`
	Started        time.Time `json:"started"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
	// Phase is "refreshing" (reading Twilio, planning) or "applying".
	Phase       string `json:"phase"`
	StepsTotal  int    `json:"steps_total"`
	StepsDone   int    `json:"steps_done"`
	StepsFailed int    `json:"steps_failed"`
	// StepsPerSecond is the rate since the first step started.
	StepsPerSecond float64 `json:"steps_per_second"`
	// APIRequests counts the HTTP attempts to Twilio made by this pass so far.
	APIRequests int  `json:"api_requests"`
	DryRun      bool `json:"dry_run,omitempty"`
}

// NewProgress returns a tracker logging to log. With dryRun, BeforeApply
// refuses every plan: the daemon plans and reports, and changes nothing.
func NewProgress(log *zap.Logger, dryRun bool) *Progress {
	if log == nil {
		log = zap.NewNop()
	}
	return &Progress{log: log, dryRun: dryRun, now: time.Now}
}

// DryRun reports whether the daemon only plans.
func (p *Progress) DryRun() bool { return p != nil && p.dryRun }

// begin marks a pass as started; every > 0 logs its progress at that
// interval until end.
func (p *Progress) begin(trigger Trigger, every time.Duration) {
	p.mu.Lock()
	p.cur = &passProgress{trigger: trigger, started: p.now(), phase: PhaseRefreshing,
		ended: map[resource.Address]bool{}, oldSID: map[resource.Address]string{}}
	stop := make(chan struct{})
	p.stop = stop
	p.mu.Unlock()
	if every <= 0 {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.logProgress()
			}
		}
	}()
}

// end marks the pass as over and returns the addresses whose step line was
// logged (the loop logs the other failures itself).
func (p *Progress) end() map[resource.Address]bool {
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	var logged map[resource.Address]bool
	if p.cur != nil {
		logged = p.cur.ended
	}
	p.cur = nil
	return logged
}

// BeforeApply is engine.Reconciler.BeforeApply: it learns the pass's size
// and, in a dry run, says no.
func (p *Progress) BeforeApply(plan *planner.Plan) bool {
	if p.dryRun {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return true
	}
	p.cur.phase = PhaseApplying
	p.cur.applyStarted = p.now()
	p.cur.total = 0
	for _, c := range plan.Changes {
		if c.Action == planner.NoOp {
			continue
		}
		p.cur.total++
		if c.Action == planner.Replace && c.SID != "" {
			p.cur.oldSID[c.Address] = c.SID
		}
	}
	return true
}

// Request counts one HTTP attempt to Twilio (the client's per-attempt hook).
func (p *Progress) Request() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.cur != nil {
		p.cur.requests++
	}
	p.mu.Unlock()
}

// Step is apply.Options.OnEvent: one log line per step as it ends.
func (p *Progress) Step(e apply.Event) {
	if e.Phase == apply.Started {
		return
	}
	p.mu.Lock()
	var oldSID string
	var trigger Trigger
	if p.cur != nil {
		trigger = p.cur.trigger
		if p.cur.ended[e.Address] {
			// A replace whose delete failed: its create is skipped, and the
			// step was already reported.
			p.mu.Unlock()
			return
		}
		p.cur.ended[e.Address] = true
		switch e.Phase {
		case apply.NotStarted:
			// The pass was stopped before this step: not a change, and not
			// a line (a stop with 1,000 steps to go would log 1,000).
			p.mu.Unlock()
			return
		case apply.Succeeded:
		default:
			p.cur.failed++
		}
		p.cur.done++
		oldSID = p.cur.oldSID[e.Address]
	}
	p.mu.Unlock()

	fields := []zap.Field{zap.String("address", e.Address.String()), zap.String("action", string(e.Action))}
	if e.SID != "" {
		fields = append(fields, zap.String("sid", e.SID))
	}
	if oldSID != "" && oldSID != e.SID {
		fields = append(fields, zap.String("replaced_sid", oldSID))
	}
	fields = append(fields, zap.Duration("duration", e.Duration))
	if trigger != "" {
		fields = append(fields, zap.String("trigger", string(trigger)))
	}
	switch e.Phase {
	case apply.Succeeded:
		p.log.Info("step succeeded", fields...)
	case apply.Failed:
		p.log.Warn("step failed", append(fields, errorFields(e.Err)...)...)
	case apply.Skipped:
		p.log.Warn("step skipped: a step it waits for failed", append(fields, zap.String("error", errText(e.Err)))...)
	}
}

// errorFields describes a step's error: its text and, when Twilio answered,
// the HTTP status and Twilio's error code (https://www.twilio.com/docs/api/errors).
func errorFields(err error) []zap.Field {
	fields := []zap.Field{zap.String("error", errText(err))}
	var apiErr *twilioapi.APIError
	if errors.As(err, &apiErr) {
		fields = append(fields, zap.Int("http_status", apiErr.Status))
		if apiErr.Code != 0 {
			fields = append(fields, zap.Int("twilio_code", apiErr.Code))
		}
		if apiErr.MoreInfo != "" {
			fields = append(fields, zap.String("more_info", apiErr.MoreInfo))
		}
	}
	return fields
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// twilioCode returns Twilio's error code and the HTTP status in err, if any.
func twilioCode(err error) (code, status int) {
	var apiErr *twilioapi.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code, apiErr.Status
	}
	return 0, 0
}

// Snapshot returns the pass in flight, or nil between passes.
func (p *Progress) Snapshot() *PassProgress {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.cur
	if c == nil {
		return nil
	}
	now := p.now()
	s := &PassProgress{Trigger: c.trigger, Started: c.started, ElapsedSeconds: now.Sub(c.started).Seconds(), Phase: c.phase,
		StepsTotal: c.total, StepsDone: c.done, StepsFailed: c.failed, APIRequests: c.requests, DryRun: p.dryRun}
	if !c.applyStarted.IsZero() {
		if d := now.Sub(c.applyStarted).Seconds(); d > 0 {
			s.StepsPerSecond = float64(c.done) / d
		}
	}
	return s
}

func (p *Progress) logProgress() {
	s := p.Snapshot()
	if s == nil {
		return
	}
	fields := []zap.Field{zap.String("trigger", string(s.Trigger)), zap.String("phase", s.Phase),
		zap.Duration("elapsed", time.Duration(s.ElapsedSeconds*float64(time.Second))), zap.Int("api_requests", s.APIRequests)}
	if s.Phase == PhaseApplying {
		fields = append(fields, zap.Int("steps_done", s.StepsDone), zap.Int("steps_total", s.StepsTotal),
			zap.Int("steps_failed", s.StepsFailed), zap.Float64("steps_per_second", round2(s.StepsPerSecond)))
		if s.StepsPerSecond > 0 && s.StepsTotal > s.StepsDone {
			eta := time.Duration(float64(s.StepsTotal-s.StepsDone) / s.StepsPerSecond * float64(time.Second))
			fields = append(fields, zap.Duration("eta", eta.Round(time.Second)))
		}
		p.log.Info("pass in progress: applying", fields...)
		return
	}
	p.log.Info("pass in progress: reading Twilio and planning", fields...)
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// ApplyLogger is the logger to give apply.Options when Progress.Step is its
// OnEvent: the applier's own "step failed" line is dropped, since Progress
// logs the step once, with its SID, duration and Twilio error code. The
// applier's other lines (a create's unknown outcome, a late duplicate) stay.
func ApplyLogger(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return withoutStepLines{c} }))
}

type withoutStepLines struct{ zapcore.Core }

func (c withoutStepLines) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == "step failed" {
		return ce
	}
	return c.Core.Check(e, ce)
}

func (c withoutStepLines) With(fields []zapcore.Field) zapcore.Core {
	return withoutStepLines{c.Core.With(fields)}
}
