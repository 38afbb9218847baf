package emulator

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testAuthToken  = "testauthtoken0123"
	testAPIKey     = "SK0123456789abcdef0123456789abcdef"
	testAPISecret  = "testapisecret0123"
	testMG         = "MG0123456789abcdef0123456789abcdef"
	// twilioBase is where answers point: the client keeps Host conversations.twilio.com.
	twilioBase = "https://conversations.twilio.com"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testOptions(clock *fakeClock) Options {
	return Options{AccountSID: testAccountSID, AuthToken: testAuthToken, APIKey: testAPIKey, APISecret: testAPISecret, Now: clock.Now}
}

// startEmulator serves a new emulator over HTTP for the test's lifetime.
func startEmulator(t testing.TB, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs
}

// startServer serves an existing emulator over HTTP for the test's lifetime.
func startServer(t testing.TB, s *Server) *httptest.Server {
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return hs
}

// rewriteTransport sends every request to target while keeping the Host the
// client asked for, exactly as convsync points twilio-go elsewhere.
type rewriteTransport struct {
	target *url.URL
	base   http.RoundTripper
	// onResponse, if set, sees every response (the contract test reads Prism's
	// sl-violations header here).
	onResponse func(*http.Request, *http.Response)
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Scheme = t.target.Scheme
	out.URL.Host = t.target.Host
	out.Host = req.URL.Host
	resp, err := t.base.RoundTrip(out)
	if err == nil && t.onResponse != nil {
		t.onResponse(req, resp)
	}
	return resp, err
}

// newTwilio returns a twilio-go Conversations client that talks to baseURL.
func newTwilio(t testing.TB, baseURL, username, password string, onResponse func(*http.Request, *http.Response)) *conversations.ApiService {
	t.Helper()
	target, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{
		Credentials: client.NewCredentials(username, password),
		HTTPClient: &http.Client{
			Transport: &rewriteTransport{target: target, base: http.DefaultTransport, onResponse: onResponse},
			Timeout:   30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	c.SetAccountSid(testAccountSID)
	rh := client.NewRequestHandler(c)
	rh.Edge, rh.Region = "", ""
	return conversations.NewApiService(rh)
}

func twilioFor(t testing.TB, hs *httptest.Server) *conversations.ApiService {
	return newTwilio(t, hs.URL, testAccountSID, testAuthToken, nil)
}

// restError asserts err is a Twilio error with this status and code.
func wantRestError(t testing.TB, err error, status, code int) {
	t.Helper()
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("want *client.TwilioRestError %d/%d, got %T: %v", status, code, err, err)
	}
	if te.Status != status || te.Code != code {
		t.Fatalf("want status %d code %d, got status %d code %d (%s)", status, code, te.Status, te.Code, te.Message)
	}
	if want := "https://www.twilio.com/docs/errors/" + itoa(code); te.MoreInfo != want {
		t.Fatalf("more_info = %q, want %q", te.MoreInfo, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func ptr[T any](v T) *T { return &v }
