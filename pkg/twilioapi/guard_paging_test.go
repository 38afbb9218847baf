package twilioapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

// countingGuard allows `allow` attempts, then refuses.
type countingGuard struct {
	mu    sync.Mutex
	asked int
	allow int
}

func (g *countingGuard) RequestDeadline() (time.Time, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked++
	if g.asked > g.allow {
		return time.Time{}, errors.New("lease lost")
	}
	return time.Now().Add(time.Minute), nil
}

// The guard is asked before every HTTP attempt of a list: each
// next_page_url GET and each retry; once it refuses, nothing more is sent.
func TestGuardIsAskedForEveryPageAndRetry(t *testing.T) {
	page := func(n int, next string) string {
		nx := "null"
		if next != "" {
			nx = fmt.Sprintf("%q", next)
		}
		return fmt.Sprintf(`{"conversations": [%s], "meta": {"next_page_url": %s}}`, conversationJSON(sid("CH", n), fmt.Sprintf("c%d", n)), nx)
	}
	var srv *fakeTwilio
	srv = newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 0:
			writeJSON(w, 200, page(1, srv.URL+"/v1/Services/"+testService+"/Conversations?PageSize=1&Page=1&PageToken=PT1"))
		case 1:
			twilioError(w, 503, 20503, "busy") // retried
		case 2:
			writeJSON(w, 200, page(2, srv.URL+"/v1/Services/"+testService+"/Conversations?PageSize=1&Page=2&PageToken=PT2"))
		default:
			writeJSON(w, 200, page(3, ""))
		}
	})
	for _, tc := range []struct {
		allow, wantSent int
		wantErr         bool
	}{
		{allow: 4, wantSent: 4},                // page 1, page 2 twice, page 3
		{allow: 3, wantSent: 3, wantErr: true}, // refused before page 3
		{allow: 1, wantSent: 1, wantErr: true}, // refused before page 2
	} {
		t.Run(fmt.Sprint(tc.allow), func(t *testing.T) {
			srv.mu.Lock()
			srv.requests = nil
			srv.mu.Unlock()
			g := &countingGuard{allow: tc.allow}
			cfg := testConfig(srv.URL, &sleeps{})
			cfg.Guard = g
			c := newTestClient(t, cfg)
			items, err := c.List(context.Background(), resource.KindConversation, testService)
			if got := len(srv.seen()); got != tc.wantSent {
				t.Errorf("%d requests sent, want %d", got, tc.wantSent)
			}
			switch {
			case tc.wantErr && !errors.Is(err, ErrNotSent):
				t.Errorf("List error = %v, want ErrNotSent", err)
			case !tc.wantErr && (err != nil || len(items) != 3):
				t.Errorf("List = %d items, %v; want 3", len(items), err)
			}
		})
	}
}
