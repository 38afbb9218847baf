package twilioapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

func TestFetchRewritesBaseURLAndKeepsHost(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, 200, conversationJSON(testConv, "vip"))
	})
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))

	got, err := c.Fetch(context.Background(), resource.KindConversation, testService, testConv)
	if err != nil {
		t.Fatal(err)
	}
	req := srv.seen()[0]
	if req.Host != "conversations.twilio.com" {
		t.Errorf("Host = %q, want conversations.twilio.com", req.Host)
	}
	if want := "/v1/Services/" + testService + "/Conversations/" + testConv; req.RequestURI != want {
		t.Errorf("RequestURI = %q, want %q", req.RequestURI, want)
	}
	if user, pass, ok := (&http.Request{Header: req.Header}).BasicAuth(); !ok || user != testAccountSID || pass != testToken {
		t.Errorf("basic auth = %q/%v, want the account SID and token", user, ok)
	}
	want := resource.Observed{
		Kind:      resource.KindConversation,
		SID:       testConv,
		ParentSID: testService,
		Values: resource.Values{
			resource.FieldFriendlyName:        "VIP line",
			resource.FieldUniqueName:          "vip",
			resource.FieldAttributes:          `{"a":1,"tier":"gold"}`,
			resource.FieldMessagingServiceSID: "MG0123456789abcdef0123456789abcdef",
			resource.FieldState:               "active",
		},
		DateCreated: time.Date(2024, 4, 1, 10, 0, 0, 0, time.UTC),
		DateUpdated: time.Date(2024, 4, 2, 11, 30, 0, 0, time.UTC),
		Extra: resource.Values{
			"timers.date_inactive": "2024-04-03T00:00:00Z",
			"timers.date_closed":   "2024-04-10T00:00:00Z",
			"url":                  "https://conversations.twilio.com/v1/Services/" + testService + "/Conversations/" + testConv,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fetch =\n%#v\nwant\n%#v", got, want)
	}
}

func TestObservedOmitsNullFields(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, 200, fmt.Sprintf(`{"sid": %q, "chat_service_sid": %q, "friendly_name": null, "unique_name": null,
			"messaging_service_sid": null, "attributes": "{}", "state": "inactive", "timers": {}, "url": null}`, testConv, testService))
	})
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	got, err := c.Fetch(context.Background(), resource.KindConversation, testService, testConv)
	if err != nil {
		t.Fatal(err)
	}
	if want := (resource.Values{resource.FieldAttributes: "{}", resource.FieldState: "inactive"}); !reflect.DeepEqual(got.Values, want) {
		t.Errorf("Values = %v, want %v", got.Values, want)
	}
	if len(got.Extra) != 0 {
		t.Errorf("Extra = %v, want empty", got.Extra)
	}
}

func TestListFollowsNextPageURLExactly(t *testing.T) {
	const total = 250
	// The page token has a ".digits" run, which twilio-go would strip from query
	// values it encodes itself; a URL followed as given keeps it.
	nextURL := func(page int) string {
		return fmt.Sprintf("https://conversations.twilio.com/v1/Services/%s/Conversations?PageSize=100&Page=%d&PageToken=PT.%d.5", testService, page, page)
	}
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
		start, end := n*100, min(n*100+100, total)
		var items []string
		for i := start; i < end; i++ {
			items = append(items, conversationJSON(sid("CH", i), fmt.Sprintf("c%d", i)))
		}
		next := "null"
		if end < total {
			next = fmt.Sprintf("%q", nextURL(n+1))
		}
		writeJSON(w, 200, fmt.Sprintf(`{"conversations": [%s], "meta": {"page": %d, "page_size": 100, "key": "conversations", "next_page_url": %s}}`,
			strings.Join(items, ","), n, next))
	})
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))

	got, err := c.List(context.Background(), resource.KindConversation, testService)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total {
		t.Fatalf("got %d conversations, want %d", len(got), total)
	}
	for i, o := range got {
		if o.SID != sid("CH", i) || o.ParentSID != testService {
			t.Fatalf("item %d = %s in %s, want %s in %s", i, o.SID, o.ParentSID, sid("CH", i), testService)
		}
	}
	reqs := srv.seen()
	wantURIs := []string{
		"/v1/Services/" + testService + "/Conversations?PageSize=100",
		strings.TrimPrefix(nextURL(1), "https://conversations.twilio.com"),
		strings.TrimPrefix(nextURL(2), "https://conversations.twilio.com"),
	}
	var gotURIs []string
	for _, r := range reqs {
		gotURIs = append(gotURIs, r.RequestURI)
		if r.Host != "conversations.twilio.com" {
			t.Errorf("%s: Host = %q", r.RequestURI, r.Host)
		}
	}
	if !reflect.DeepEqual(gotURIs, wantURIs) {
		t.Errorf("requests =\n%q\nwant\n%q", gotURIs, wantURIs)
	}
}

func TestListServices(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, fmt.Sprintf(`{"services": [%s], "meta": {"key": "services", "next_page_url": null}}`, serviceJSON(testService, "support")))
	})
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	got, err := c.List(context.Background(), resource.KindService, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SID != testService || got[0].Values[resource.FieldFriendlyName] != "support" || got[0].ParentSID != "" {
		t.Errorf("List services = %+v", got)
	}
	if uri := srv.seen()[0].RequestURI; uri != "/v1/Services?PageSize=100" {
		t.Errorf("RequestURI = %q", uri)
	}
}

func TestListRefusesNextPageURLOnAnotherHost(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, `{"services": [], "meta": {"next_page_url": "https://collector.example.com/v1/Services?Page=1"}}`)
	})
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	_, err := c.List(context.Background(), resource.KindService, "")
	if err == nil || !strings.Contains(err.Error(), "collector.example.com") {
		t.Fatalf("err = %v, want a refusal naming the host", err)
	}
	if n := len(srv.seen()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestFetchEscapesUniqueName(t *testing.T) {
	for _, name := range []string{"team/support", "what?now", "with space", "100%", "hash#tag", "semi;colon"} {
		t.Run(name, func(t *testing.T) {
			srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, conversationJSON(testConv, name))
			})
			c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
			got, err := c.Fetch(context.Background(), resource.KindConversation, testService, name)
			if err != nil {
				t.Fatal(err)
			}
			req := srv.seen()[0]
			prefix := "/v1/Services/" + testService + "/Conversations/"
			if req.Path != prefix+name {
				t.Errorf("decoded path = %q, want %q", req.Path, prefix+name)
			}
			if req.RequestURI != prefix+url.PathEscape(name) {
				t.Errorf("RequestURI = %q, want %q", req.RequestURI, prefix+url.PathEscape(name))
			}
			if got.Values[resource.FieldUniqueName] != name {
				t.Errorf("unique_name = %q", got.Values[resource.FieldUniqueName])
			}
		})
	}
}

func TestCreateSendsFormAndWebhookHeaderOnlyWhenEnabled(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.Method {
		case http.MethodPost:
			writeJSON(w, 201, conversationJSON(testConv, "vip"))
		case http.MethodDelete:
			w.WriteHeader(204)
		}
	})
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	ctx := context.Background()
	values := resource.Values{
		resource.FieldFriendlyName: "VIP line", resource.FieldUniqueName: "vip", resource.FieldAttributes: `{"a":1}`,
		resource.FieldMessagingServiceSID: "MG0123456789abcdef0123456789abcdef", resource.FieldState: "active",
		resource.FieldTimersInactive: "PT5M", resource.FieldTimersClosed: "P1D",
	}
	for _, enabled := range []bool{false, true} {
		o := CallOptions{WebhookEnabled: enabled}
		if _, err := c.Create(ctx, resource.KindConversation, testService, values, o); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Update(ctx, resource.KindConversation, testService, testConv, resource.Values{resource.FieldState: "inactive"}, o); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, resource.KindConversation, testService, testConv, o); err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.seen()
	if len(reqs) != 6 {
		t.Fatalf("%d requests, want 6", len(reqs))
	}
	for i, r := range reqs {
		want := ""
		if i >= 3 {
			want = "true"
		}
		if got := r.Header.Get("X-Twilio-Webhook-Enabled"); got != want {
			t.Errorf("request %d (%s %s): X-Twilio-Webhook-Enabled = %q, want %q", i, r.Method, r.Path, got, want)
		}
	}
	wantForm := url.Values{
		"FriendlyName": {"VIP line"}, "UniqueName": {"vip"}, "Attributes": {`{"a":1}`},
		"MessagingServiceSid": {"MG0123456789abcdef0123456789abcdef"}, "State": {"active"},
		"Timers.Inactive": {"PT5M"}, "Timers.Closed": {"P1D"},
	}
	if !reflect.DeepEqual(reqs[0].Form, wantForm) {
		t.Errorf("create form = %v, want %v", reqs[0].Form, wantForm)
	}
	if want := (url.Values{"State": {"inactive"}}); !reflect.DeepEqual(reqs[1].Form, want) {
		t.Errorf("update form = %v, want %v (only the fields given)", reqs[1].Form, want)
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) { w.WriteHeader(500) })
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"service update", func() error {
			_, err := c.Update(ctx, resource.KindService, "", testService, resource.Values{resource.FieldFriendlyName: "x"}, CallOptions{})
			return err
		}},
		{"unknown field", func() error {
			_, err := c.Create(ctx, resource.KindConversation, testService, resource.Values{"colour": "red"}, CallOptions{})
			return err
		}},
		{"service with conversation field", func() error {
			_, err := c.Create(ctx, resource.KindService, "", resource.Values{resource.FieldState: "active"}, CallOptions{})
			return err
		}},
		{"conversation without service", func() error {
			_, err := c.Fetch(ctx, resource.KindConversation, "", testConv)
			return err
		}},
		{"empty SID", func() error { return c.Delete(ctx, resource.KindConversation, testService, "", CallOptions{}) }},
		{"unknown kind", func() error { _, err := c.List(ctx, "Widget", ""); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !IsTerminal(err) || IsRetryable(err) {
				t.Errorf("err = %v; want terminal, not retryable", err)
			}
		})
	}
	if n := len(srv.seen()); n != 0 {
		t.Errorf("%d requests sent, want 0", n)
	}
}

func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n < 2 {
			w.Header().Set("Retry-After", "7")
			twilioError(w, 429, 20429, "Too Many Requests")
			return
		}
		writeJSON(w, 201, conversationJSON(testConv, "vip"))
	})
	s := &sleeps{}
	cfg := testConfig(srv.URL, s)
	var calls []Call
	cfg.Observe = func(c Call) { calls = append(calls, c) }
	c := newTestClient(t, cfg)

	// A create too: Twilio never processed a 429, so resending it is safe.
	got, err := c.Create(context.Background(), resource.KindConversation, testService, resource.Values{resource.FieldUniqueName: "vip"}, CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.SID != testConv {
		t.Errorf("SID = %q", got.SID)
	}
	if want := []time.Duration{7 * time.Second, 7 * time.Second}; !reflect.DeepEqual(s.all(), want) {
		t.Errorf("waits = %v, want %v", s.all(), want)
	}
	var summary []string
	for _, call := range calls {
		summary = append(summary, fmt.Sprintf("%s %s %d #%d retried=%v", call.Method, call.Route, call.Status, call.Attempt, call.Retried))
	}
	want := []string{
		"POST /v1/Services/{ServiceSid}/Conversations 429 #1 retried=true",
		"POST /v1/Services/{ServiceSid}/Conversations 429 #2 retried=true",
		"POST /v1/Services/{ServiceSid}/Conversations 201 #3 retried=false",
	}
	if !reflect.DeepEqual(summary, want) {
		t.Errorf("observed calls =\n%s\nwant\n%s", strings.Join(summary, "\n"), strings.Join(want, "\n"))
	}
}

func TestServerErrorRetriedExceptForCreate(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		call         func(c *Client) error
		wantRequests int
		wantUnknown  bool
	}{
		{"fetch", func(c *Client) error {
			_, err := c.Fetch(ctx, resource.KindConversation, testService, testConv)
			return err
		}, 2, false},
		{"list", func(c *Client) error { _, err := c.List(ctx, resource.KindService, ""); return err }, 2, false},
		{"update", func(c *Client) error {
			_, err := c.Update(ctx, resource.KindConversation, testService, testConv, resource.Values{resource.FieldState: "active"}, CallOptions{})
			return err
		}, 2, false},
		{"delete", func(c *Client) error {
			return c.Delete(ctx, resource.KindConversation, testService, testConv, CallOptions{})
		}, 2, false},
		{"create", func(c *Client) error {
			_, err := c.Create(ctx, resource.KindConversation, testService, resource.Values{}, CallOptions{})
			return err
		}, 1, true},
		{"create service", func(c *Client) error {
			_, err := c.Create(ctx, resource.KindService, "", resource.Values{resource.FieldFriendlyName: "x"}, CallOptions{})
			return err
		}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 0 {
					twilioError(w, 500, 20500, "Internal Server Error")
					return
				}
				switch {
				case r.Method == http.MethodDelete:
					w.WriteHeader(204)
				case r.URL.Path == "/v1/Services":
					writeJSON(w, 200, `{"services": [], "meta": {"next_page_url": null}}`)
				default:
					writeJSON(w, 200, conversationJSON(testConv, "vip"))
				}
			})
			s := &sleeps{}
			err := tt.call(newTestClient(t, testConfig(srv.URL, s)))
			if n := len(srv.seen()); n != tt.wantRequests {
				t.Errorf("%d requests, want %d", n, tt.wantRequests)
			}
			if tt.wantUnknown {
				if !errors.Is(err, ErrOutcomeUnknown) {
					t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
				}
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Status != 500 {
					t.Errorf("err = %v, want it to carry the 500", err)
				}
				if IsRetryable(err) {
					t.Error("IsRetryable(outcome unknown) = true; the caller must look first")
				}
				if len(s.all()) != 0 {
					t.Errorf("waits = %v, want none", s.all())
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want success after a retry", err)
			}
			if want := []time.Duration{50 * time.Millisecond}; !reflect.DeepEqual(s.all(), want) {
				t.Errorf("waits = %v, want %v", s.all(), want)
			}
		})
	}
}

// hijackAndClose reads the request and drops the connection without answering.
func hijackAndClose(w http.ResponseWriter) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	buf.Flush()
	conn.Close()
}

func TestCreateConnectionDroppedAfterSendIsOutcomeUnknown(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) { hijackAndClose(w) })
	s := &sleeps{}
	c := newTestClient(t, testConfig(srv.URL, s))
	_, err := c.Create(context.Background(), resource.KindConversation, testService, resource.Values{resource.FieldUniqueName: "vip"}, CallOptions{})
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
	}
	if n := len(srv.seen()); n != 1 {
		t.Errorf("%d requests, want exactly 1", n)
	}
}

func TestDroppedConnectionRetriedForFetch(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			hijackAndClose(w)
			return
		}
		writeJSON(w, 200, conversationJSON(testConv, "vip"))
	})
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	if _, err := c.Fetch(context.Background(), resource.KindConversation, testService, testConv); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.seen()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestCreateRetriedWhenNothingWasSent(t *testing.T) {
	// A listener closed at once: every dial is refused, so no byte reached a server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	s := &sleeps{}
	cfg := testConfig("http://"+addr, s)
	var calls []Call
	cfg.Observe = func(c Call) { calls = append(calls, c) }
	c := newTestClient(t, cfg)
	_, err = c.Create(context.Background(), resource.KindConversation, testService, resource.Values{}, CallOptions{})
	if errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v: a refused dial proves nothing was created", err)
	}
	// A refused connection gets one quick retry, not MaxAttempts.
	if !IsRetryable(err) || !strings.Contains(err.Error(), "giving up after 2 attempts") {
		t.Errorf("err = %v, want a retryable error after 2 attempts", err)
	}
	if len(calls) != 2 || calls[0].Status != 0 {
		t.Errorf("observed %+v, want 2 attempts with status 0", calls)
	}
	if want := []time.Duration{50 * time.Millisecond}; !reflect.DeepEqual(s.all(), want) {
		t.Errorf("waits = %v, want %v", s.all(), want)
	}
}

func TestBackoffIsExponentialCappedAndBounded(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		twilioError(w, 503, 20503, "Service Unavailable")
	})
	s := &sleeps{}
	cfg := testConfig(srv.URL, s)
	cfg.MaxAttempts = 7
	cfg.Rand = func() float64 { return 0.999 } // close to the ceiling of each full-jitter draw
	c := newTestClient(t, cfg)
	_, err := c.Fetch(context.Background(), resource.KindService, "", testService)
	if !IsRetryable(err) || !strings.Contains(err.Error(), "giving up after 7 attempts") {
		t.Errorf("err = %v", err)
	}
	if n := len(srv.seen()); n != 7 {
		t.Errorf("%d requests, want 7", n)
	}
	var got []string
	for _, d := range s.all() {
		got = append(got, d.Round(time.Millisecond).String())
	}
	want := []string{"100ms", "200ms", "400ms", "799ms", "999ms", "999ms"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("waits = %v, want %v (base 100ms doubling, capped at 1s)", got, want)
	}
}

func TestDeleteNotFound(t *testing.T) {
	tests := []struct {
		name         string
		first        func(w http.ResponseWriter)
		wantNotFound bool
	}{
		{"first attempt", nil, true},
		{"after a 503 that may have deleted it", func(w http.ResponseWriter) { twilioError(w, 503, 20503, "Service Unavailable") }, false},
		{"after a dropped connection", hijackAndClose, false},
		{"after a 429, which never deletes", func(w http.ResponseWriter) { twilioError(w, 429, 20429, "Too Many Requests") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 0 && tt.first != nil {
					tt.first(w)
					return
				}
				twilioError(w, 404, 20404, "The requested resource was not found")
			})
			c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
			err := c.Delete(context.Background(), resource.KindConversation, testService, testConv, CallOptions{})
			if IsNotFound(err) != tt.wantNotFound || (!tt.wantNotFound && err != nil) {
				t.Errorf("err = %v, want not-found = %v", err, tt.wantNotFound)
			}
		})
	}
}

func TestContextCancelAbortsInFlightRequest(t *testing.T) {
	for _, create := range []bool{false, true} {
		t.Run(fmt.Sprintf("create=%v", create), func(t *testing.T) {
			arrived := make(chan struct{})
			release := make(chan struct{})
			srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				close(arrived)
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			defer close(release)
			c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-arrived
				cancel()
			}()
			var err error
			if create {
				_, err = c.Create(ctx, resource.KindConversation, testService, resource.Values{}, CallOptions{})
			} else {
				_, err = c.Fetch(ctx, resource.KindConversation, testService, testConv)
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if errors.Is(err, ErrOutcomeUnknown) != create {
				t.Errorf("err = %v: outcome unknown should be reported for the create only", err)
			}
			if n := len(srv.seen()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry after cancel)", n)
			}
		})
	}
}

func TestCancelStopsWaitingToRetry(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Retry-After", "3600")
		twilioError(w, 429, 20429, "Too Many Requests")
	})
	cfg := testConfig(srv.URL, &sleeps{})
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleepContext(ctx, d) // the real sleep, which must return at once
	}
	c := newTestClient(t, cfg)
	_, err := c.Fetch(ctx, resource.KindService, "", testService)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name      string
		answer    func(w http.ResponseWriter)
		want      APIError
		check     func(error) bool
		checkName string
	}{
		{"unique name taken",
			func(w http.ResponseWriter) {
				twilioError(w, 409, 50353, "Conversation with provided unique name already exists")
			},
			APIError{Status: 409, Code: 50353, Message: "Conversation with provided unique name already exists", MoreInfo: "https://www.twilio.com/docs/errors/50353"},
			IsConflict, "IsConflict"},
		{"not found",
			func(w http.ResponseWriter) { twilioError(w, 404, 20404, "The requested resource was not found") },
			APIError{Status: 404, Code: 20404, Message: "The requested resource was not found", MoreInfo: "https://www.twilio.com/docs/errors/20404"},
			IsNotFound, "IsNotFound"},
		{"bad credentials",
			func(w http.ResponseWriter) { twilioError(w, 401, 20003, "Authenticate") },
			APIError{Status: 401, Code: 20003, Message: "Authenticate", MoreInfo: "https://www.twilio.com/docs/errors/20003"},
			IsTerminal, "IsTerminal"},
		{"status taken from HTTP, not the body",
			func(w http.ResponseWriter) {
				writeJSON(w, 400, `{"code": 50379, "message": "Invalid timer", "status": 200}`)
			},
			APIError{Status: 400, Code: 50379, Message: "Invalid timer"},
			IsTerminal, "IsTerminal"},
		{"non-JSON body",
			func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(403)
				fmt.Fprint(w, "<html>\n  <body>Forbidden by proxy</body>\n</html>")
			},
			APIError{Status: 403, Message: "<html> <body>Forbidden by proxy</body> </html>"},
			IsTerminal, "IsTerminal"},
		{"empty body",
			func(w http.ResponseWriter) { w.WriteHeader(405) },
			APIError{Status: 405, Message: "Method Not Allowed"},
			IsTerminal, "IsTerminal"},
		{"redirect is not followed",
			func(w http.ResponseWriter) {
				w.Header().Set("Location", "https://elsewhere.example.com/")
				w.WriteHeader(302)
			},
			APIError{Status: 302, Message: "unexpected redirect (Found); is the base URL right?"},
			func(err error) bool { return !IsRetryable(err) }, "!IsRetryable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) { tt.answer(w) })
			c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
			_, err := c.Fetch(context.Background(), resource.KindConversation, testService, testConv)
			var got *APIError
			if !errors.As(err, &got) {
				t.Fatalf("err = %T %v, want *APIError", err, err)
			}
			want := tt.want
			want.Method, want.Route = "GET", "/v1/Services/{ServiceSid}/Conversations/{Sid}"
			if *got != want {
				t.Errorf("APIError =\n%+v\nwant\n%+v", *got, want)
			}
			if !tt.check(err) {
				t.Errorf("%s(%v) = false", tt.checkName, err)
			}
			if n := len(srv.seen()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestAPIErrorMessage(t *testing.T) {
	err := &APIError{Status: 409, Code: 50353, Message: "Unique name taken", Method: "POST", Route: "/v1/Services/{ServiceSid}/Conversations"}
	if got, want := err.Error(), "POST /v1/Services/{ServiceSid}/Conversations: HTTP 409, Twilio error 50353: Unique name taken"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestRateLimitPerService(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case r.Method == http.MethodDelete:
			w.WriteHeader(204)
		case r.URL.Path == "/v1/Services":
			writeJSON(w, 201, serviceJSON(testService, "x"))
		default:
			writeJSON(w, 201, conversationJSON(testConv, "vip"))
		}
	})
	s := &sleeps{}
	cfg := testConfig(srv.URL, s)
	cfg.ActionsPerSecondPerService = 10 // one action per 100ms per bucket; the test clock never moves
	c := newTestClient(t, cfg)
	ctx := context.Background()
	steps := []struct {
		name     string
		call     func() error
		wantWait time.Duration // 0 = no wait
	}{
		{"create in A", func() error {
			_, err := c.Create(ctx, resource.KindConversation, testService, nil, CallOptions{})
			return err
		}, 0},
		{"create in A again", func() error {
			_, err := c.Create(ctx, resource.KindConversation, testService, nil, CallOptions{})
			return err
		}, 100 * time.Millisecond},
		{"create in B", func() error {
			_, err := c.Create(ctx, resource.KindConversation, testService2, nil, CallOptions{})
			return err
		}, 0},
		{"fetch in A is not an action", func() error {
			_, err := c.Fetch(ctx, resource.KindConversation, testService, testConv)
			return err
		}, 0},
		{"update in A is not limited here", func() error {
			_, err := c.Update(ctx, resource.KindConversation, testService, testConv, resource.Values{resource.FieldState: "active"}, CallOptions{})
			return err
		}, 0},
		{"delete in A", func() error { return c.Delete(ctx, resource.KindConversation, testService, testConv, CallOptions{}) }, 200 * time.Millisecond},
		{"create service", func() error {
			_, err := c.Create(ctx, resource.KindService, "", resource.Values{}, CallOptions{})
			return err
		}, 0},
		{"delete service", func() error { return c.Delete(ctx, resource.KindService, "", testService, CallOptions{}) }, 100 * time.Millisecond},
	}
	for _, step := range steps {
		before := len(s.all())
		if err := step.call(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		waits := s.all()[before:]
		var want []time.Duration
		if step.wantWait > 0 {
			want = []time.Duration{step.wantWait}
		}
		if fmt.Sprint(waits) != fmt.Sprint(want) {
			t.Errorf("%s: waits = %v, want %v", step.name, waits, want)
		}
	}
}

// TestSecretNeverLeaks drives successes, errors, retries and transport failures
// with debug logging on, and looks for the token in every log line and error.
func TestSecretNeverLeaks(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
		_, pass, _ := r.BasicAuth()
		switch n % 4 {
		case 0: // a server that echoes what it was sent
			twilioError(w, 401, 20003, "Authenticate: bad password "+pass)
		case 1:
			twilioError(w, 500, 20500, "oops "+pass)
		case 2:
			hijackAndClose(w)
		default:
			writeJSON(w, 200, conversationJSON(testConv, "vip"))
		}
	})
	var logs strings.Builder
	logger := newBufferLogger(&logs)
	cfg := testConfig(srv.URL, &sleeps{})
	cfg.Logger = logger
	c := newTestClient(t, cfg)
	ctx := context.Background()
	var errs []error
	for i := 0; i < 3; i++ {
		_, err := c.Fetch(ctx, resource.KindConversation, testService, testConv)
		errs = append(errs, err)
		_, err = c.Create(ctx, resource.KindConversation, testService, nil, CallOptions{})
		errs = append(errs, err)
	}
	_ = logger.Sync()
	for _, err := range errs {
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("error contains the token: %v", err)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no debug log written")
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("log contains the token:\n%s", logs.String())
	}
	for _, field := range []string{`"route":"/v1/Services/{ServiceSid}/Conversations/{Sid}"`, `"status":401`, `"attempt":1`, `"duration"`, `"wait"`} {
		if !strings.Contains(logs.String(), field) {
			t.Errorf("log lacks %s:\n%s", field, logs.String())
		}
	}
}

// An answer body that is cut short: the request was carried out, the answer lost.
func TestCreateTruncatedSuccessBodyIsOutcomeUnknown(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		conn, buf, _ := w.(http.Hijacker).Hijack()
		fmt.Fprint(buf, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"sid\": \"CH")
		buf.Flush()
		conn.Close()
	})
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	_, err := c.Create(context.Background(), resource.KindConversation, testService, nil, CallOptions{})
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
	}
	if n := len(srv.seen()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestRetryThatWouldOutliveTheDeadlineIsNotWaitedFor(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Retry-After", "7200")
		twilioError(w, 429, 20429, "Too Many Requests")
	})
	s := &sleeps{}
	c := newTestClient(t, testConfig(srv.URL, s))
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := c.Fetch(ctx, resource.KindService, "", testService)
	if !IsRetryable(err) || !strings.Contains(err.Error(), "after the deadline") {
		t.Errorf("err = %v", err)
	}
	if len(s.all()) != 0 || len(srv.seen()) != 1 {
		t.Errorf("waits = %v, requests = %d; want no wait and 1 request", s.all(), len(srv.seen()))
	}
}

func BenchmarkFetchConversation(b *testing.B) {
	body := conversationJSON(testConv, "vip")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, body) }))
	defer srv.Close()
	c, err := New(testConfig(srv.URL, &sleeps{}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Fetch(ctx, resource.KindConversation, testService, testConv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewAPIPerAttempt(b *testing.B) {
	c, err := New(testConfig("http://127.0.0.1:1", &sleeps{}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = c.newAPI(ctx, &attempt{})
	}
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		<-r.Context().Done() // never answers; the client gives up first
	})
	cfg := testConfig(srv.URL, &sleeps{})
	cfg.MaxAttempts = 2
	cfg.AttemptTimeout = time.Nanosecond // every attempt times out on its own
	var calls []Call
	cfg.Observe = func(c Call) { calls = append(calls, c) }
	c := newTestClient(t, cfg)
	_, err := c.Fetch(context.Background(), resource.KindConversation, testService, testConv)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "giving up after 2 attempts") {
		t.Fatalf("err = %v, want the attempt deadline after 2 attempts", err)
	}
	if !IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = false: the caller's context was fine, only the attempt timed out", err)
	}
	if len(calls) != 2 {
		t.Errorf("%d attempts, want 2", len(calls))
	}
}
