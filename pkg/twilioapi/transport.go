package twilioapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/conversations/v1"
)

// maxErrorBody bounds how much of an error response is kept for decoding.
const maxErrorBody = 64 << 10

// maxDrain bounds how much of an unread success body is discarded so the
// connection can be reused (twilio-go's JSON decoder stops before EOF).
const maxDrain = 256 << 10

// errRedirect refuses redirects: Twilio never redirects API calls, and following
// one would resend credentials to wherever it points.
var errRedirect = errors.New("redirect refused")

// attempt records what one HTTP attempt saw: twilio-go returns neither the
// status of an error whose body is not JSON nor any header.
type attempt struct {
	status     int
	retryAfter string
	errBody    []byte
	sent       atomic.Bool // request headers reached the wire
}

// attemptTransport carries one attempt: it gives the request the attempt's
// context (twilio-go uses context.Background), points it at the base URL, and
// records the answer.
type attemptTransport struct {
	ctx  context.Context
	base *url.URL // nil = leave the URL alone
	next http.RoundTripper
	at   *attempt
	// notAfter, if set, is the guard's deadline, checked again right
	// before sending (see errPastDeadline).
	notAfter time.Time
}

func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.notAfter.IsZero() && !time.Now().Before(t.notAfter) {
		return nil, errPastDeadline
	}
	trace := &httptrace.ClientTrace{WroteHeaders: func() { t.at.sent.Store(true) }}
	r := req.Clone(httptrace.WithClientTrace(t.ctx, trace))
	if t.base != nil {
		// Keep Host: the server tells Twilio products apart by it.
		r.Host = req.URL.Host
		r.URL.Scheme, r.URL.Host = t.base.Scheme, t.base.Host
	}
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	t.at.status = resp.StatusCode
	t.at.retryAfter = resp.Header.Get("Retry-After")
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Keep the body for our own decoding, and close it: twilio-go never
		// closes error bodies, which would leak the connection.
		body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		if readErr != nil {
			return nil, readErr
		}
		t.at.errBody = body
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	resp.Body = &drainOnClose{resp.Body}
	return resp, nil
}

type drainOnClose struct{ io.ReadCloser }

func (d *drainOnClose) Close() error {
	_, _ = io.Copy(io.Discard, io.LimitReader(d.ReadCloser, maxDrain))
	return d.ReadCloser.Close()
}

// newAPI builds the twilio-go objects for one attempt. They are small structs;
// the connection pool lives in c.transport and is shared.
func (c *Client) newAPI(ctx context.Context, at *attempt) *openapi.ApiService {
	return c.newGuardedAPI(ctx, at, time.Time{})
}

// newGuardedAPI is newAPI with the guard's send-time deadline.
func (c *Client) newGuardedAPI(ctx context.Context, at *attempt, notAfter time.Time) *openapi.ApiService {
	httpClient := &http.Client{
		Transport: &attemptTransport{ctx: ctx, base: c.base, next: c.transport, at: at, notAfter: notAfter},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errRedirect
		},
		// No Client.Timeout: it would live in the request's context, which the
		// transport replaces. The per-attempt timeout is in ctx instead.
	}
	tc := &client.Client{Credentials: client.NewCredentials(c.username, c.password), HTTPClient: httpClient}
	tc.SetAccountSid(c.cfg.AccountSID)
	// Built directly rather than with NewRequestHandler, which reads
	// TWILIO_EDGE/TWILIO_REGION: they rewrite hosts and would mangle the base URL.
	return openapi.NewApiService(&client.RequestHandler{Client: tc})
}

// checkNextPageURL makes sure a next_page_url points at the API host before
// credentials are sent to it.
func (c *Client) checkNextPageURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("next_page_url is not a URL: %v", err)
	}
	switch {
	case u.Host == apiHost && (u.Scheme == "https" || c.base != nil):
		return nil
	case c.base != nil && u.Host == c.base.Host:
		return nil
	}
	return fmt.Errorf("next_page_url points at %s://%s, not the Twilio API: refusing to send credentials there", u.Scheme, u.Host)
}

// apiHost is the host twilio-go puts in every Conversations URL.
const apiHost = "conversations.twilio.com"
