package twilioapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testToken      = "S3cr3tT0k3nNeverPrintMe42"
	testService    = "IS0123456789abcdef0123456789abcdef"
	testService2   = "ISfedcba9876543210fedcba9876543210"
	testConv       = "CH0123456789abcdef0123456789abcdef"
)

// seen is one request as the fake server received it.
type seen struct {
	Method     string
	RequestURI string
	Path       string
	Host       string
	Header     http.Header
	Form       url.Values
}

// fakeTwilio is an httptest server whose answers each test scripts. It records
// every request it receives.
type fakeTwilio struct {
	*httptest.Server
	mu       sync.Mutex
	requests []seen
}

// newFakeTwilio starts a server; answer gets the request and its 0-based index.
func newFakeTwilio(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *fakeTwilio {
	t.Helper()
	f := &fakeTwilio{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		f.mu.Lock()
		n := len(f.requests)
		f.requests = append(f.requests, seen{Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, Host: r.Host, Header: r.Header.Clone(), Form: form})
		f.mu.Unlock()
		answer(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeTwilio) seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.requests...)
}

// sleeps records waits instead of waiting.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// testConfig points at baseURL with recorded sleeps, jitter 0.5, a frozen
// clock, and client-side rate limiting off (one test turns it on).
func testConfig(baseURL string, s *sleeps) Config {
	return Config{
		AccountSID:                 testAccountSID,
		AuthToken:                  testToken,
		BaseURL:                    baseURL,
		ActionsPerSecondPerService: -1,
		MaxAttempts:                4,
		BaseBackoff:                100 * time.Millisecond,
		MaxBackoff:                 time.Second,
		Sleep:                      s.sleep,
		Rand:                       func() float64 { return 0.5 },
		Now:                        func() time.Time { return testNow },
	}
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func twilioError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, fmt.Sprintf(`{"code": %d, "message": %q, "more_info": "https://www.twilio.com/docs/errors/%d", "status": %d}`, code, message, code, status))
}

func conversationJSON(sid, uniqueName string) string {
	return fmt.Sprintf(`{
  "account_sid": %q, "chat_service_sid": %q, "messaging_service_sid": "MG0123456789abcdef0123456789abcdef",
  "sid": %q, "friendly_name": "VIP line", "unique_name": %q,
  "attributes": "{ \"tier\": \"gold\",  \"a\": 1 }", "state": "active",
  "date_created": "2024-04-01T10:00:00Z", "date_updated": "2024-04-02T11:30:00Z",
  "timers": {"date_inactive": "2024-04-03T00:00:00Z", "date_closed": "2024-04-10T00:00:00Z"},
  "url": "https://conversations.twilio.com/v1/Services/%s/Conversations/%s",
  "links": {}, "bindings": null
}`, testAccountSID, testService, sid, uniqueName, testService, sid)
}

func serviceJSON(sid, name string) string {
	return fmt.Sprintf(`{"account_sid": %q, "sid": %q, "friendly_name": %q,
  "date_created": "2024-04-01T10:00:00Z", "date_updated": "2024-04-01T10:00:00Z",
  "url": "https://conversations.twilio.com/v1/Services/%s", "links": {}}`, testAccountSID, sid, name, sid)
}

// sid returns a SID with the given prefix and number n.
func sid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }
