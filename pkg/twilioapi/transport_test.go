package twilioapi

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

// TestUnreachableServerFailsFast: a server that cannot answer is reported in
// one clear line after at most one quick retry, not after MaxAttempts.
func TestUnreachableServerFailsFast(t *testing.T) {
	plain := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, serviceJSON(testService, "x")) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name         string
		baseURL      string
		wantMessage  string
		wantAttempts int
	}{
		{"TLS to a plain-HTTP port", "https://" + plain.Listener.Addr().String(),
			"the server at https://" + plain.Listener.Addr().String() + " does not speak TLS; use http:// for the emulator", 1},
		{"connection refused", "http://" + closed,
			"connection refused: nothing listens at http://" + closed + "; is the emulator running, and is --api-url / CONVSYNC_API_URL right?", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sleeps{}
			cfg := testConfig(tt.baseURL, s)
			cfg.MaxAttempts = 8
			var mu sync.Mutex
			attempts := 0
			cfg.Observe = func(Call) { mu.Lock(); attempts++; mu.Unlock() }
			c := newTestClient(t, cfg)
			_, err := c.Fetch(context.Background(), resource.KindService, "", testService)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.wantMessage) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %q, want one line with %q", err, tt.wantMessage)
			}
			if attempts != tt.wantAttempts || len(s.all()) != tt.wantAttempts-1 {
				t.Errorf("%d attempts and waits %v, want %d attempts", attempts, s.all(), tt.wantAttempts)
			}
			if n := len(plain.seen()); n != 0 {
				t.Errorf("the plain server answered %d requests", n)
			}
		})
	}
}

func TestUnauthorizedSuggestsTheCredentials(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) { twilioError(w, 401, 20003, "Authenticate") })
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	_, err := c.Fetch(context.Background(), resource.KindService, "", testService)
	msg := err.Error()
	for _, want := range []string{"HTTP 401", "Authenticate", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "--api-url"} {
		if !strings.Contains(msg, want) {
			t.Errorf("err = %q, lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, testToken) || strings.Contains(msg, "\n") {
		t.Errorf("err = %q: must be one line without the token", msg)
	}
	if !IsTerminal(err) {
		t.Errorf("IsTerminal(%v) = false", err)
	}
}
