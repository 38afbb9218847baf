package daemon

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// Metric names, for docs/daemon.md and the tests.
const (
	MetricPasses           = "convsync_passes_total"
	MetricPassDuration     = "convsync_pass_duration_seconds"
	MetricRefusedPasses    = "convsync_refused_passes_total"
	MetricSteps            = "convsync_steps_total"
	MetricAPIRequests      = "convsync_api_requests_total"
	MetricAPIDuration      = "convsync_api_request_duration_seconds"
	MetricAPIRateLimited   = "convsync_api_rate_limited_total"
	MetricLastSuccess      = "convsync_last_successful_pass_timestamp_seconds"
	MetricReloads          = "convsync_spec_reloads_total"
	MetricLastReloadOK     = "convsync_last_reload_successful"
	MetricLastReloadTime   = "convsync_last_reload_success_timestamp_seconds"
	MetricManaged          = "convsync_managed_resources"
	MetricFailing          = "convsync_failing_resources"
	MetricSpecResources    = "convsync_spec_resources"
	MetricReady            = "convsync_ready"
	MetricDestroyAllowance = "convsync_destroy_allowance_pending"
	MetricHeldBack         = "convsync_held_back_resources"
	MetricDryRun           = "convsync_dry_run"
	MetricPlannedSteps     = "convsync_planned_steps"
)

// Metrics are the daemon's Prometheus metrics, on their own registry (with
// the Go runtime and process collectors) so tests can read them in isolation.
type Metrics struct {
	Registry *prometheus.Registry

	passes        *prometheus.CounterVec
	passDuration  prometheus.Histogram
	refused       prometheus.Counter
	steps         *prometheus.CounterVec
	apiRequests   *prometheus.CounterVec
	apiDuration   *prometheus.HistogramVec
	rateLimited   *prometheus.CounterVec
	lastSuccess   prometheus.Gauge
	reloads       *prometheus.CounterVec
	lastReloadOK  prometheus.Gauge
	lastReloadAt  prometheus.Gauge
	managed       *prometheus.GaugeVec
	failing       prometheus.Gauge
	specResources prometheus.Gauge
	ready         prometheus.Gauge
	allowance     prometheus.Gauge
	heldBack      prometheus.Gauge
	dryRun        prometheus.Gauge
	planned       *prometheus.GaugeVec
}

// NewMetrics registers every metric on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricPasses,
			Help: "Reconciliation passes, by what triggered them and how they ended (success, partial, refused, error)."},
			[]string{"trigger", "outcome"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricPassDuration,
			Help:    "How long a pass took, refresh and apply included.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricRefusedPasses,
			Help: "Passes refused because they would delete or replace more resources than --max-destroy allows."}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricSteps,
			Help: "Applied steps, by action (create, update, replace, delete, adopt, forget) and outcome (success, failed, skipped)."},
			[]string{"action", "outcome"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricAPIRequests,
			Help: "HTTP attempts to the Twilio API, by method, templated route and status (\"none\" when no answer arrived)."},
			[]string{"method", "route", "status"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricAPIDuration,
			Help:    "Latency of HTTP attempts to the Twilio API, by method, templated route and status.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}},
			[]string{"method", "route", "status"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricAPIRateLimited,
			Help: "Twilio answers 429 Too Many Requests, by route."},
			[]string{"route"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastSuccess,
			Help: "Unix time of the end of the last pass in which every step succeeded (0: none yet)."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReloads,
			Help: "Loads of the spec folder that found new content or failed, by outcome (success, failure)."},
			[]string{"outcome"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastReloadOK,
			Help: "1 when the last load of the spec folder succeeded, 0 when it failed (the last good specs stay in force)."}),
		lastReloadAt: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastReloadTime,
			Help: "Unix time of the last successful load of the spec folder."}),
		managed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricManaged,
			Help: "Resources recorded in the state file, by kind."},
			[]string{"kind"}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricFailing,
			Help: "Resources whose last step failed and which are waiting in backoff (or for a spec change, after a 4xx)."}),
		specResources: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricSpecResources,
			Help: "Resources declared in the spec set in force."}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricReady,
			Help: "1 when /readyz answers 200."}),
		allowance: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricDestroyAllowance,
			Help: "1 while an operator's one-pass deletion allowance waits for its pass."}),
		heldBack: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricHeldBack,
			Help: "Resources the last pass held back because planning found a problem with them (or with a step they wait for); the rest was applied."}),
		dryRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricDryRun,
			Help: "1 when convsync run only plans and reports (--dry-run): nothing is applied to Twilio or the state."}),
		planned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricPlannedSteps,
			Help: "Steps in the last pass's plan, by action: what it applied or, with --dry-run, what it would have applied."},
			[]string{"action"}),
	}
	m.Registry.MustRegister(m.passes, m.passDuration, m.refused, m.steps, m.apiRequests, m.apiDuration,
		m.rateLimited, m.lastSuccess, m.reloads, m.lastReloadOK, m.lastReloadAt, m.managed, m.failing,
		m.specResources, m.ready, m.allowance, m.heldBack, m.dryRun, m.planned,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveAPICall is a twilioapi.Config.Observe hook.
func (m *Metrics) ObserveAPICall(c twilioapi.Call) {
	if m == nil {
		return
	}
	status := "none"
	if c.Status != 0 {
		status = strconv.Itoa(c.Status)
	}
	m.apiRequests.WithLabelValues(c.Method, c.Route, status).Inc()
	m.apiDuration.WithLabelValues(c.Method, c.Route, status).Observe(c.Duration.Seconds())
	if c.Status == http.StatusTooManyRequests {
		m.rateLimited.WithLabelValues(c.Route).Inc()
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

func (m *Metrics) reload(ok bool, at time.Time) {
	if m == nil {
		return
	}
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReloadOK.Set(1)
		m.lastReloadAt.Set(float64(at.UnixNano()) / 1e9)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastReloadOK.Set(0)
}

func (m *Metrics) pass(r *PassReport, steps []stepOutcome) {
	if m == nil {
		return
	}
	m.passes.WithLabelValues(string(r.Trigger), string(r.Outcome)).Inc()
	m.passDuration.Observe(r.Duration.Seconds())
	if r.Outcome == OutcomeRefused {
		m.refused.Inc()
	}
	wouldChange := false
	for _, n := range r.Planned {
		wouldChange = wouldChange || (r.DryRun && n > 0)
	}
	if r.Outcome == OutcomeSuccess && len(r.Deferred) == 0 && len(r.HeldBack) == 0 && r.FailingResources == 0 && !wouldChange {
		// Only a pass that left nothing undone: a resource stuck in backoff
		// must not keep this fresh (alerts key on it).
		m.lastSuccess.Set(float64(r.Finished.UnixNano()) / 1e9)
	}
	for _, s := range steps {
		m.steps.WithLabelValues(s.action, s.outcome).Inc()
	}
	m.failing.Set(float64(r.FailingResources))
	if r.Outcome != OutcomeError {
		m.heldBack.Set(float64(len(r.HeldBack)))
	}
}

func (m *Metrics) setManaged(byKind map[string]int) {
	if m == nil || byKind == nil {
		return
	}
	m.managed.Reset()
	for k, n := range byKind {
		m.managed.WithLabelValues(k).Set(float64(n))
	}
}

func (m *Metrics) setSpecResources(n int) {
	if m != nil {
		m.specResources.Set(float64(n))
	}
}

func (m *Metrics) setReady(ready bool) {
	if m != nil {
		m.ready.Set(map[bool]float64{true: 1}[ready])
	}
}

func (m *Metrics) setAllowance(pending bool) {
	if m != nil {
		m.allowance.Set(map[bool]float64{true: 1}[pending])
	}
}

// SetDryRun sets convsync_dry_run.
func (m *Metrics) SetDryRun(on bool) {
	if m != nil {
		m.dryRun.Set(map[bool]float64{true: 1}[on])
	}
}

// plannedActions are the actions convsync_planned_steps always shows.
var plannedActions = []planner.Action{planner.Create, planner.Update, planner.Replace, planner.Delete, planner.Adopt, planner.Move, planner.Forget}

func (m *Metrics) setPlanned(byAction map[string]int) {
	if m == nil {
		return
	}
	for _, a := range plannedActions {
		m.planned.WithLabelValues(string(a)).Set(float64(byAction[string(a)]))
	}
}
