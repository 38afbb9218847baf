package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// handler serves the daemon's HTTP endpoints.
type handler struct {
	loop    *Loop
	metrics *Metrics
	status  func() Status
}

// NewHandler returns the daemon's HTTP handler:
//
//	GET  /healthz                 200 while the process runs
//	GET  /readyz                  200 or 503, with the status as JSON either way
//	GET  /metrics                 Prometheus metrics
//	GET  /plan                    the last pass's plan, as plan --json writes it
//	POST /allow-destroy?count=N   allow one pass to delete or replace up to N resources
func newHandler(loop *Loop, metrics *Metrics, status func() Status) http.Handler {
	h := &handler{loop: loop, metrics: metrics, status: status}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics.Handler())
	}
	mux.HandleFunc("POST /allow-destroy", h.allowDestroy)
	mux.HandleFunc("GET /plan", h.plan)
	mux.HandleFunc("GET /{$}", h.index)
	return mux
}

func (h *handler) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "convsync run\n\nGET  /healthz\nGET  /readyz\nGET  /metrics\nGET  /plan\nPOST /allow-destroy?count=N\n")
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

func (h *handler) readyz(w http.ResponseWriter, _ *http.Request) {
	s := h.status()
	code := http.StatusOK
	if !s.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, s)
}

// allowDestroy lets the next pass delete or replace up to count resources,
// runs it, and answers with its report. Only the operator should reach this
// endpoint: the listener is on loopback unless --listen says otherwise.
func (h *handler) allowDestroy(w http.ResponseWriter, r *http.Request) {
	if fromWebPage(r, false) {
		// Browsers mark their requests; an operator's curl does not. Without
		// this, any web page open while the port is forwarded could post a
		// plain form here and allow deletions.
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "refused: this request comes from a web browser; allow deletions with curl -X POST from a shell"})
		return
	}
	raw := r.URL.Query().Get("count")
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		writeJSON(w, http.StatusBadRequest, map[string]string{
			"error": fmt.Sprintf("count=%q: give the number of deletions or replacements to allow for one pass, e.g. POST /allow-destroy?count=12 (see the refused pass in /readyz)", raw)})
		return
	}
	done := h.loop.AllowDestroy(n)
	select {
	case report := <-done:
		code := http.StatusOK
		if report.Outcome == OutcomeRefused || report.Outcome == OutcomeError {
			code = http.StatusConflict
		}
		writeJSON(w, code, report)
	case <-r.Context().Done():
		// The allowance stays queued for the next pass.
	}
}

// fromWebPage reports whether a request was made by a web page: browsers
// mark their requests (Origin on cross-origin ones, Sec-Fetch-Site on all),
// an operator's curl does not. For a GET, a person typing the URL in the
// browser (Sec-Fetch-Site: none) is not a web page.
func fromWebPage(r *http.Request, allowTyped bool) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if allowTyped && site == "none" && r.Header.Get("Origin") == "" {
		return false
	}
	return r.Header.Get("Origin") != "" || site != ""
}

// plan serves the last pass's plan in the format of plan --json. The plan
// names resources and their field values (secrets are never in it), so a
// web page must not read it: requests from other pages are refused (as for
// POST /allow-destroy) and no CORS header is ever sent; a fetch made after
// a DNS rebinding is same-origin to the browser, and refused the same way.
func (h *handler) plan(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if fromWebPage(r, true) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "refused: this request comes from a web page; read the plan with curl from a shell"})
		return
	}
	body, meta, ok := h.loop.LastPlan()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no plan yet: the first pass has not made one (it is still reading Twilio, or failed: see /readyz)"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Last-Modified", meta.finished.UTC().Format(http.TimeFormat))
	w.Header().Set("X-Convsync-Pass-Trigger", string(meta.trigger))
	w.Header().Set("X-Convsync-Pass-Outcome", string(meta.outcome))
	w.Header().Set("X-Convsync-Dry-Run", strconv.FormatBool(meta.dryRun))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
