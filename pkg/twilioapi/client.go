package twilioapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	openapi "github.com/twilio/twilio-go/rest/conversations/v1"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// API is what the planner and applier need from Twilio. *Client implements it;
// tests elsewhere can fake it.
type API interface {
	List(ctx context.Context, kind resource.Kind, parentSID string) ([]resource.Observed, error)
	Fetch(ctx context.Context, kind resource.Kind, parentSID, id string) (resource.Observed, error)
	Create(ctx context.Context, kind resource.Kind, parentSID string, v resource.Values, o CallOptions) (resource.Observed, error)
	Update(ctx context.Context, kind resource.Kind, parentSID, sid string, v resource.Values, o CallOptions) (resource.Observed, error)
	Delete(ctx context.Context, kind resource.Kind, parentSID, sid string, o CallOptions) error
}

var _ API = (*Client)(nil)

// CallOptions tune one write.
type CallOptions struct {
	// WebhookEnabled sends X-Twilio-Webhook-Enabled: true so the service's
	// webhooks fire. Off by default: a reconciler should not trigger them.
	// Service writes have no such header and ignore it.
	WebhookEnabled bool
}

// Client talks to the Conversations API. It is safe for concurrent use.
type Client struct {
	cfg                Config
	username, password string
	base               *url.URL
	transport          http.RoundTripper
	log                *zap.Logger

	limMu    sync.Mutex
	limiters map[string]*rate.Limiter
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	username, password, err := cfg.credentials()
	if err != nil {
		return nil, err
	}
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// An apply runs many requests in parallel against one host.
	transport.MaxIdleConnsPerHost = 64
	return &Client{
		cfg:       cfg,
		username:  username,
		password:  password,
		base:      base,
		transport: transport,
		log:       cfg.Logger,
		limiters:  map[string]*rate.Limiter{},
	}, nil
}

// List returns every resource of kind under parentSID ("" for services),
// following next_page_url as Twilio gives it.
func (c *Client) List(ctx context.Context, kind resource.Kind, parentSID string) ([]resource.Observed, error) {
	k, err := adapterFor(kind, parentSID)
	if err != nil {
		return nil, err
	}
	return c.list(ctx, k, func(api *openapi.ApiService) (listPage, error) { return k.firstPage(api, parentSID) })
}

// ListCreatedBetween lists kind's resources under parentSID created from
// firstDay 00:00:00Z to lastDay 23:59:59Z (UTC days, both included; a zero
// day leaves that end open), with Twilio's StartDate/EndDate filters at the
// whole-day precision Twilio documents. The planner uses it to read one
// large service as several day ranges at once (planner.DayRangeLister).
func (c *Client) ListCreatedBetween(ctx context.Context, kind resource.Kind, parentSID string, firstDay, lastDay time.Time) ([]resource.Observed, error) {
	k, err := adapterFor(kind, parentSID)
	if err != nil {
		return nil, err
	}
	if k.firstPageCreatedBetween == nil {
		return nil, inputErrorf("%s lists cannot be filtered by creation date", strings.ToLower(string(kind)))
	}
	// Whole seconds only: twilio-go cuts ".digits" runs from GET queries.
	var start, end string
	if !firstDay.IsZero() {
		start = firstDay.UTC().Format("2006-01-02") + "T00:00:00Z"
	}
	if !lastDay.IsZero() {
		end = lastDay.UTC().Format("2006-01-02") + "T23:59:59Z"
	}
	return c.list(ctx, k, func(api *openapi.ApiService) (listPage, error) {
		return k.firstPageCreatedBetween(api, parentSID, start, end)
	})
}

// list follows a list's pages from first, then meta.next_page_url as given.
func (c *Client) list(ctx context.Context, k *kindAdapter, first func(api *openapi.ApiService) (listPage, error)) ([]resource.Observed, error) {
	var err error
	var (
		out  []resource.Observed
		next string
		seen = map[string]bool{}
	)
	for page := 1; ; page++ {
		var p listPage
		spec := call{method: http.MethodGet, route: k.collectionRoute}
		if page == 1 {
			spec.send = func(api *openapi.ApiService) (err error) {
				p, err = first(api)
				return err
			}
		} else {
			nextURL := next
			spec.send = func(api *openapi.ApiService) (err error) {
				p, err = k.nextPage(api, nextURL)
				return err
			}
		}
		if err := c.run(ctx, spec); err != nil {
			return nil, err
		}
		out = append(out, p.items...)
		if p.next == "" {
			return out, nil
		}
		if next, err = c.resolveNextPageURL(p.next); err != nil {
			return nil, fmt.Errorf("GET %s page %d: %w", k.collectionRoute, page, err)
		}
		if seen[next] {
			return nil, fmt.Errorf("GET %s page %d: next_page_url repeats an earlier page", k.collectionRoute, page)
		}
		seen[next] = true
	}
}

func (c *Client) resolveNextPageURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("next_page_url is not a URL: %v", err)
	}
	if u.Host == "" { // a path only: resolve against the API host
		u = (&url.URL{Scheme: "https", Host: apiHost}).ResolveReference(u)
	}
	s := u.String()
	if err := c.checkNextPageURL(s); err != nil {
		return "", err
	}
	return s, nil
}

// Fetch reads one resource by SID, (conversations) unique_name or (users)
// identity; a singleton by its resource.SingletonID.
func (c *Client) Fetch(ctx context.Context, kind resource.Kind, parentSID, id string) (resource.Observed, error) {
	k, err := adapterFor(kind, parentSID)
	if err != nil {
		return resource.Observed{}, err
	}
	if id == "" {
		return resource.Observed{}, inputErrorf("fetch %s: empty SID", kindName(kind))
	}
	if err := checkSingletonID(k, "fetch", parentSID, id); err != nil {
		return resource.Observed{}, err
	}
	var obs resource.Observed
	err = c.run(ctx, call{method: http.MethodGet, route: k.itemRoute, send: func(api *openapi.ApiService) (err error) {
		obs, err = k.fetch(api, parentSID, url.PathEscape(id))
		return err
	}})
	return obs, err
}

// Create makes a resource. An error wrapping ErrOutcomeUnknown means the
// resource may exist anyway: look before creating again.
func (c *Client) Create(ctx context.Context, kind resource.Kind, parentSID string, v resource.Values, o CallOptions) (resource.Observed, error) {
	k, err := adapterFor(kind, parentSID)
	if err != nil {
		return resource.Observed{}, err
	}
	if k.create == nil {
		return resource.Observed{}, neverCreatedOrDeleted("create", kind)
	}
	send, err := k.create(parentSID, v, o)
	if err != nil {
		return resource.Observed{}, err
	}
	var obs resource.Observed
	err = c.run(ctx, call{method: http.MethodPost, route: k.collectionRoute, create: true, limiter: c.limiter(k.limiterKey(parentSID)),
		secrets: secretValues(kind, v),
		send: func(api *openapi.ApiService) (err error) {
			obs, err = send(api)
			return err
		}})
	return obs, err
}

// Update changes the fields in v (and only those). Updates set absolute values,
// so they are retried like reads.
func (c *Client) Update(ctx context.Context, kind resource.Kind, parentSID, sid string, v resource.Values, o CallOptions) (resource.Observed, error) {
	k, err := adapterFor(kind, parentSID)
	if err != nil {
		return resource.Observed{}, err
	}
	if sid == "" {
		return resource.Observed{}, inputErrorf("update %s: empty SID", kindName(kind))
	}
	if err := checkSingletonID(k, "update", parentSID, sid); err != nil {
		return resource.Observed{}, err
	}
	if k.update == nil {
		return resource.Observed{}, inputErrorf("update %s: Twilio has no update for this kind (it must be replaced)", kindName(kind))
	}
	send, err := k.update(parentSID, url.PathEscape(sid), v, o)
	if err != nil {
		return resource.Observed{}, err
	}
	var lim *rate.Limiter
	if k.updateLimiterKey != nil {
		lim = c.limiter(k.updateLimiterKey(parentSID))
	}
	var obs resource.Observed
	attempts := 0
	err = c.run(ctx, call{method: http.MethodPost, route: k.itemRoute, limiter: lim, secrets: secretValues(kind, v), send: func(api *openapi.ApiService) (err error) {
		attempts++
		obs, err = send(api)
		return err
	}})
	if err != nil && attempts > 1 && isClosedRefusal(err) {
		// A retried update that closes a conversation is refused (50377)
		// when the attempt whose answer was lost closed it already: closed is
		// final. Read it back; if it holds what was sent, the update is done.
		if got, ferr := c.Fetch(ctx, kind, parentSID, sid); ferr == nil && holds(kind, got.Values, v) {
			return got, nil
		}
	}
	return obs, err
}

// isClosedRefusal reports Twilio's "conversation is closed and cannot be
// updated" (50377).
func isClosedRefusal(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == 50377
}

// holds reports whether have shows every readable value in sent.
func holds(kind resource.Kind, have, sent resource.Values) bool {
	schema := resource.Schema(kind)
	for name, want := range sent {
		f := schema.Field(name)
		if f == nil || f.WriteOnly {
			continue
		}
		got := have[name]
		if !f.Equal(want, got) {
			return false
		}
	}
	return true
}

// Delete removes a resource. A 404 on the first attempt is returned (IsNotFound);
// a 404 after an attempt that may have deleted it counts as success.
func (c *Client) Delete(ctx context.Context, kind resource.Kind, parentSID, sid string, o CallOptions) error {
	k, err := adapterFor(kind, parentSID)
	if err != nil {
		return err
	}
	if k.delete == nil {
		return neverCreatedOrDeleted("delete", kind)
	}
	if sid == "" {
		return inputErrorf("delete %s: empty SID", kindName(kind))
	}
	escaped := url.PathEscape(sid)
	return c.run(ctx, call{method: http.MethodDelete, route: k.itemRoute, delete: true, limiter: c.limiter(k.limiterKey(parentSID)),
		send: func(api *openapi.ApiService) error {
			return k.delete(api, parentSID, escaped, o)
		}})
}

// neverCreatedOrDeleted refuses a create or delete of a singleton.
func neverCreatedOrDeleted(op string, kind resource.Kind) error {
	return inputErrorf("%s %s: a singleton is never created or deleted (it exists with its %s; update it instead)",
		op, kindName(kind), kindName(resource.Schema(kind).Parent))
}

// checkSingletonID refuses, for a singleton kind, an ID other than its
// path under parentSID (resource.SingletonID).
func checkSingletonID(k *kindAdapter, op, parentSID, id string) error {
	if !k.singleton {
		return nil
	}
	if want := resource.SingletonID(k.kind, parentSID); id != want {
		return inputErrorf("%s %s: a singleton's ID is its path %s, got %q", op, kindName(k.kind), want, id)
	}
	return nil
}

// limiter returns the token bucket for key, or nil when limiting is off.
func (c *Client) limiter(key string) *rate.Limiter {
	if c.cfg.ActionsPerSecondPerService < 0 {
		return nil
	}
	c.limMu.Lock()
	defer c.limMu.Unlock()
	l, ok := c.limiters[key]
	if !ok {
		// Burst 1: requests are spaced evenly, so no one-second window of
		// Twilio's ever sees more than the limit.
		l = rate.NewLimiter(rate.Limit(c.cfg.ActionsPerSecondPerService), 1)
		c.limiters[key] = l
	}
	return l
}

// waitLimiter is rate.Limiter.Wait with the injectable clock and sleep.
func (c *Client) waitLimiter(ctx context.Context, l *rate.Limiter) error {
	now := c.cfg.Now()
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("rate limiter refused the request")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if err := c.cfg.Sleep(ctx, d); err != nil {
		r.CancelAt(c.cfg.Now())
		return err
	}
	return nil
}

// call is one logical operation, possibly sent several times.
type call struct {
	method, route string
	// create marks a POST that makes a resource: it is never sent again once it
	// may have reached Twilio, because Twilio has no idempotency key.
	create bool
	// delete turns a 404 after a possibly-successful attempt into success.
	delete  bool
	limiter *rate.Limiter
	// secrets are the secret values sent, scrubbed from whatever the
	// server answers (see redactSecrets).
	secrets []string
	send    func(api *openapi.ApiService) error
}

// verdict is what to do after one attempt.
type verdict struct {
	err        error // nil = success
	retry      bool
	retryAfter time.Duration
	// mayHaveActed: the attempt may have changed something on Twilio's side.
	mayHaveActed bool
	// attempts, if not 0, caps the operation's attempts below MaxAttempts.
	attempts int
}

func (c *Client) run(ctx context.Context, cl call) error {
	mayHaveActed := false
	for attemptNo := 1; ; attemptNo++ {
		if cl.limiter != nil {
			if err := c.waitLimiter(ctx, cl.limiter); err != nil {
				return fmt.Errorf("%s %s: waiting for the rate limiter: %w", cl.method, cl.route, err)
			}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s %s: %w", cl.method, cl.route, err)
		}
		at := &attempt{}
		actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		gctx, gcancel, notAfter, gerr := c.guardAttempt(actx, cl.method, cl.route)
		if gerr != nil {
			cancel()
			return gerr
		}
		if c.cfg.BeforeSend != nil {
			c.cfg.BeforeSend(cl.method, cl.route)
		}
		start := time.Now()
		err := cl.send(c.newGuardedAPI(gctx, at, notAfter))
		elapsed := time.Since(start)
		gcancel()
		cancel()

		v := c.judge(ctx, cl, at, err, mayHaveActed)
		mayHaveActed = mayHaveActed || v.mayHaveActed
		willRetry := v.retry && attemptNo < c.cfg.MaxAttempts && (v.attempts == 0 || attemptNo < v.attempts)
		c.record(cl, at, attemptNo, elapsed, v.err, willRetry)
		if v.err == nil {
			return nil
		}
		if !v.retry {
			return v.err
		}
		if !willRetry {
			return fmt.Errorf("giving up after %d attempts: %w", attemptNo, v.err)
		}
		wait := c.backoff(attemptNo)
		if v.retryAfter > wait {
			wait = v.retryAfter
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("not retried: the next attempt (in %s) would start after the deadline: %w", wait.Round(time.Millisecond), v.err)
		}
		c.log.Info("retrying Twilio request",
			zap.String("method", cl.method), zap.String("route", cl.route),
			zap.Int("status", at.status), zap.Int("attempt", attemptNo),
			zap.Duration("wait", wait), zap.String("reason", v.err.Error()))
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("%w (while waiting to retry after: %v)", err, v.err)
		}
	}
}

// judge classifies one attempt's outcome.
func (c *Client) judge(ctx context.Context, cl call, at *attempt, err error, earlierMayHaveActed bool) verdict {
	if err == nil {
		return verdict{}
	}
	if at.status >= 300 {
		apiErr := decodeAPIError(cl.method, cl.route, at.status, []byte(redactSecrets(string(at.errBody), cl.secrets)))
		c.redact(apiErr)
		apiErr.Message, apiErr.MoreInfo = redactSecrets(apiErr.Message, cl.secrets), redactSecrets(apiErr.MoreInfo, cl.secrets)
		switch {
		case at.status == http.StatusTooManyRequests:
			// Twilio: a 429 was never processed, so even a create may be resent.
			return verdict{err: apiErr, retry: true, retryAfter: parseRetryAfter(at.retryAfter, c.cfg.Now())}
		case at.status >= 500:
			if cl.create {
				return verdict{err: fmt.Errorf("%w: %w", ErrOutcomeUnknown, apiErr)}
			}
			return verdict{err: apiErr, retry: true, mayHaveActed: true, retryAfter: parseRetryAfter(at.retryAfter, c.cfg.Now())}
		case at.status == http.StatusNotFound && cl.delete && earlierMayHaveActed:
			return verdict{} // an earlier attempt deleted it
		case at.status < 400:
			apiErr.Message = "unexpected redirect (" + http.StatusText(at.status) + "); is the base URL right?"
		}
		return verdict{err: apiErr}
	}
	if at.status != 0 {
		// A 2xx whose body could not be read or decoded: the request was carried
		// out, the answer is lost.
		if cl.create {
			return verdict{err: fmt.Errorf("%w: %s %s: HTTP %d with an unreadable body: %v", ErrOutcomeUnknown, cl.method, cl.route, at.status, err)}
		}
		return verdict{err: fmt.Errorf("%s %s: HTTP %d with an unreadable body: %w", cl.method, cl.route, at.status, err), retry: true}
	}
	var urlErr *url.Error
	if !errors.As(err, &urlErr) {
		// Refused before any I/O (twilio-go's own checks): sending again cannot help.
		return verdict{err: &InputError{msg: fmt.Sprintf("%s %s: %v", cl.method, cl.route, err)}}
	}
	sent := at.sent.Load()
	terr := &transportError{method: cl.method, route: cl.route, sent: sent, err: urlErr.Err}
	if ctx.Err() != nil {
		// The caller gave up: stop, whatever the method.
		terr.callerGaveUp = true
		if cl.create && sent {
			return verdict{err: fmt.Errorf("%w: %w", ErrOutcomeUnknown, terr)}
		}
		return verdict{err: terr}
	}
	if !sent {
		// Nothing reached Twilio; some errors deserve few or no retries.
		if explained, attempts := explainTransport(c.base, terr.err); attempts > 0 {
			terr.err = explained
			return verdict{err: terr, retry: attempts > 1, attempts: attempts}
		}
		return verdict{err: terr, retry: true}
	}
	if cl.create {
		return verdict{err: fmt.Errorf("%w: %w", ErrOutcomeUnknown, terr)}
	}
	return verdict{err: terr, retry: true, mayHaveActed: true}
}

// record logs and reports one attempt.
func (c *Client) record(cl call, at *attempt, attemptNo int, elapsed time.Duration, err error, willRetry bool) {
	if ce := c.log.Check(zap.DebugLevel, "twilio request"); ce != nil {
		fields := []zap.Field{
			zap.String("method", cl.method), zap.String("route", cl.route),
			zap.Int("status", at.status), zap.Duration("duration", elapsed),
			zap.Int("attempt", attemptNo),
		}
		if err != nil {
			fields = append(fields, zap.String("error", err.Error()))
		}
		ce.Write(fields...)
	}
	if c.cfg.Observe != nil {
		c.cfg.Observe(Call{Method: cl.method, Route: cl.route, Status: at.status, Duration: elapsed, Attempt: attemptNo, Retried: willRetry})
	}
}

// backoff is exponential with full jitter: uniform in [0, min(max, base·2^(n-1))).
func (c *Client) backoff(attemptNo int) time.Duration {
	ceiling := c.cfg.MaxBackoff
	if shift := attemptNo - 1; shift < 32 {
		if d := c.cfg.BaseBackoff << shift; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return time.Duration(c.cfg.Rand() * float64(ceiling))
}

// parseRetryAfter reads delta-seconds or an HTTP date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redact removes the secret from text a server sent back, in case it echoes it.
func (c *Client) redact(e *APIError) {
	if c.password == "" {
		return
	}
	e.Message = strings.ReplaceAll(e.Message, c.password, "[redacted]")
	e.MoreInfo = strings.ReplaceAll(e.MoreInfo, c.password, "[redacted]")
}
