package reliability

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// steppingClock gives every reading one second after the previous one, so
// the emulator's date_created orders resources by when they were created.
type steppingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// TestLookAlikeCreatesWithLostAnswers: two specs in one service that Twilio
// cannot tell apart (no unique_name, same fields), created at the same time,
// and the answer to one create is lost. While it looks for what it created,
// the other's conversation already exists but is not yet recorded: taking it
// would give both specs one SID and leave a conversation nobody manages. The
// faults are arranged to open exactly that window if two look-alike creates
// are ever in flight together (each wait is bounded, so an applier that never
// lets them overlap just runs through).
func TestLookAlikeCreatesWithLostAnswers(t *testing.T) {
	const window = 500 * time.Millisecond
	clock := &steppingClock{now: time.Now().Add(-time.Minute)}
	emu, err := emulator.New(emulator.Options{AccountSID: accountSID, AuthToken: authToken, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	secondArrived := make(chan struct{})
	listedAfterLoss := make(chan struct{})
	var creates, lost atomic.Int32
	var once1, once2 sync.Once
	isCreate := func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Conversations")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case isCreate(r) && creates.Add(1) == 1:
			// The first create waits for a second one, which is then
			// carried out first (older), and loses its own answer.
			select {
			case <-secondArrived:
			case <-time.After(window):
			}
			emu.ServeHTTP(httptest.NewRecorder(), r)
			lost.Add(1)
			http.Error(w, `{"code":20500,"message":"Internal Server Error","status":500}`, http.StatusInternalServerError)
		case isCreate(r):
			once1.Do(func() { close(secondArrived) })
			rec := httptest.NewRecorder()
			emu.ServeHTTP(rec, r)
			// Its answer is held until the first has looked for its result.
			select {
			case <-listedAfterLoss:
			case <-time.After(window):
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		case r.Method == http.MethodGet && lost.Load() > 0:
			emu.ServeHTTP(w, r)
			once2.Do(func() { close(listedAfterLoss) })
		default:
			emu.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()

	e := &env{t: t, emu: emu, url: srv.URL, work: t.TempDir()}
	e.dir, e.state = e.work+"/specs", e.work+"/convsync.state.json"
	e.writeSpec("specs.yaml", `kind: Service
name: support
friendly_name: Support
---
kind: Conversation
name: first
service: support
friendly_name: Look-alike
attributes: {team: a}
---
kind: Conversation
name: second
service: support
friendly_name: Look-alike
attributes: {team: a}
`)
	want := desired(t, e)
	client, err := twilioapi.New(twilioapi.Config{AccountSID: accountSID, AuthToken: authToken, BaseURL: srv.URL, ActionsPerSecondPerService: -1})
	if err != nil {
		t.Fatal(err)
	}
	eng := &engine.Engine{API: client}
	sf, err := state.Open(e.state, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for applies := 0; ; applies++ {
		plan, err := eng.Plan(ctx, want, "", sf.State(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !plan.HasChanges() {
			break
		}
		if applies == 2 {
			t.Fatalf("not converged after 2 applies: %v", plan.Changes)
		}
		res := eng.Apply(ctx, sf, plan, apply.Options{Parallelism: 2})
		for _, s := range res.Failed() {
			t.Logf("apply %d: %s: %v", applies+1, s.Address, s.Err)
		}
	}
	if err := sf.Close(); err != nil {
		t.Fatal(err)
	}
	a := e.check(want)
	if lost.Load() == 0 {
		t.Fatal("no answer was lost: the test tested nothing")
	}
	if len(a.problems) > 0 {
		t.Fatalf("%d duplicates, %d orphans:\n  %s", a.duplicates, a.orphans, strings.Join(a.problems, "\n  "))
	}
}
