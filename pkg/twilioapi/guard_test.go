package twilioapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

type fakeGuard struct {
	deadline time.Time
	err      error
}

func (g *fakeGuard) RequestDeadline() (time.Time, error) { return g.deadline, g.err }

func TestGuardRefusalSendsNothing(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 201, conversationJSON(testConv, "vip"))
	})
	cfg := testConfig(srv.URL, &sleeps{})
	cfg.Guard = &fakeGuard{err: errors.New("this convsync does not hold the state's lease")}
	c := newTestClient(t, cfg)
	_, err := c.Create(context.Background(), resource.KindConversation, testService, resource.Values{resource.FieldUniqueName: "vip"}, CallOptions{})
	if !errors.Is(err, ErrNotSent) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Create error = %v, want ErrNotSent and not an unknown outcome", err)
	}
	if got := len(srv.seen()); got != 0 {
		t.Fatalf("%d requests reached Twilio, want 0", got)
	}
}

// recordingTransport records the context deadline of what it is asked to send.
type recordingTransport struct {
	deadlines []time.Time
	sent      int
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	d, _ := req.Context().Deadline()
	r.deadlines = append(r.deadlines, d)
	r.sent++
	return nil, errors.New("recorded, not sent")
}

func TestGuardCapsEveryRequestAtTheLeaseDeadline(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1", &sleeps{})
	cfg.MaxAttempts = 1
	leaseEnd := time.Now().Add(3 * time.Second)
	cfg.Guard = &fakeGuard{deadline: leaseEnd}
	c := newTestClient(t, cfg)
	rec := &recordingTransport{}
	c.transport = rec
	_, _ = c.List(context.Background(), resource.KindConversation, testService)
	if rec.sent != 1 {
		t.Fatalf("%d attempts reached the transport, want 1", rec.sent)
	}
	if d := rec.deadlines[0]; d.IsZero() || d.After(leaseEnd) {
		t.Fatalf("request deadline = %v, want at or before the lease deadline %v", d, leaseEnd)
	}
}

// The context alone does not stop a request after a pause: the goroutine
// may run before the deadline timer fires. The transport checks the clock.
func TestSendTimeCheckRefusesARequestPastTheLeaseDeadline(t *testing.T) {
	rec := &recordingTransport{}
	at := &attemptTransport{ctx: context.Background(), next: rec, at: &attempt{}, notAfter: time.Now().Add(-time.Millisecond)}
	req, _ := http.NewRequest(http.MethodPost, "https://conversations.twilio.com/v1/Conversations", nil)
	if _, err := at.RoundTrip(req); !errors.Is(err, errPastDeadline) {
		t.Fatalf("RoundTrip error = %v, want errPastDeadline", err)
	}
	if rec.sent != 0 {
		t.Fatal("a request past the lease deadline was handed to the network")
	}
}

func TestAGuardWithoutADeadlineLimitsNothing(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, `{"conversations": [], "meta": {"next_page_url": null}}`)
	})
	cfg := testConfig(srv.URL, &sleeps{})
	cfg.Guard = &fakeGuard{} // a read-only command holds no lease
	c := newTestClient(t, cfg)
	if _, err := c.List(context.Background(), resource.KindConversation, testService); err != nil {
		t.Fatalf("List with a guard setting no deadline: %v", err)
	}
}
