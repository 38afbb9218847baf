package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

func TestError500AfterWriteReallyWrote(t *testing.T) {
	opts := testOptions(newFakeClock())
	opts.Faults = Faults{Error500AfterWrite: 1}
	emu, hs := startEmulator(t, opts)
	_, err := twilioFor(t, hs).CreateConversation((&conversations.CreateConversationParams{}).SetUniqueName("lost"))
	wantRestError(t, err, 500, CodeInternal)
	if _, err := emu.Conversation("", "lost"); err != nil {
		t.Fatalf("the write whose answer was lost did not happen: %v", err)
	}
}

func TestError500BeforeWriteDidNothing(t *testing.T) {
	opts := testOptions(newFakeClock())
	opts.Faults = Faults{Error500BeforeWrite: 1}
	emu, hs := startEmulator(t, opts)
	tw := twilioFor(t, hs)
	_, err := tw.CreateConversation((&conversations.CreateConversationParams{}).SetUniqueName("never"))
	wantRestError(t, err, 500, CodeInternal)
	if got, _ := emu.Conversations(""); len(got) != 0 {
		t.Fatalf("%d conversations after a refused write", len(got))
	}
	if _, err := tw.ListConversation(nil); err != nil {
		t.Errorf("reads are not writes: %v", err)
	}
}

func TestFaultDiceAreReproducible(t *testing.T) {
	outcomes := func() []int64 {
		opts := testOptions(newFakeClock())
		opts.Faults = Faults{Error500BeforeWrite: 0.5, Seed: 42}
		emu, hs := startEmulator(t, opts)
		tw := twilioFor(t, hs)
		var out []int64
		for i := 0; i < 20; i++ {
			_, err := tw.CreateConversation(nil)
			out = append(out, map[bool]int64{true: 1, false: 0}[err == nil])
		}
		if n := emu.Stats().ByStatus["500"]; n == 0 || n == 20 {
			t.Errorf("probability 0.5 gave %d failures out of 20", n)
		}
		return out
	}
	a, b := outcomes(), outcomes()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different outcomes:\n%v\n%v", a, b)
		}
	}
}

func TestMaxInFlight(t *testing.T) {
	opts := testOptions(newFakeClock())
	opts.Faults = Faults{MaxInFlight: 1}
	emu, hs := startEmulator(t, opts)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	emu.testHookInFlight = func() {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	}
	first := make(chan int)
	go func() { first <- rawStatus(t, http.MethodGet, hs.URL+"/v1/Services") }()
	<-entered
	resp := rawDo(t, http.MethodGet, hs.URL+"/v1/Services", nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second concurrent request: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	var body apiError
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body.Code != CodeTooManyRequests || body.Status != 429 {
		t.Errorf("body = %+v", body)
	}
	close(release)
	if st := <-first; st != 200 {
		t.Errorf("first request: %d", st)
	}
	if st := rawStatus(t, http.MethodGet, hs.URL+"/v1/Services"); st != 200 {
		t.Errorf("after the first finished: %d", st)
	}
}

func TestRateLimitPerService(t *testing.T) {
	clock := newFakeClock()
	opts := testOptions(clock)
	opts.Faults = Faults{ActionsPerSecondPerService: 2}
	emu, hs := startEmulator(t, opts)
	tw := twilioFor(t, hs)
	other, _ := emu.AddService("other")
	a, err := tw.CreateConversation(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.DeleteConversation(*a.Sid, nil); err != nil { // deletes count too
		t.Fatal(err)
	}
	_, err = tw.CreateConversation(nil)
	wantRestError(t, err, 429, CodeTooManyRequests)
	if got, _ := emu.Conversations(""); len(got) != 0 {
		t.Errorf("a 429 must not have written anything")
	}
	if _, err := tw.CreateServiceConversation(other.SID, nil); err != nil {
		t.Errorf("another service has its own budget: %v", err)
	}
	if _, err := tw.ListConversation(nil); err != nil {
		t.Errorf("reads are not actions: %v", err)
	}
	resp := rawDo(t, http.MethodPost, hs.URL+"/v1/Conversations", nil)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("raw: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clock.Advance(time.Second)
	b, err := tw.CreateConversation(nil)
	if err != nil {
		t.Fatalf("after a second: %v", err)
	}
	// Updates have a budget per conversation.
	for i := 0; i < 2; i++ {
		if _, err := tw.UpdateConversation(*b.Sid, (&conversations.UpdateConversationParams{}).SetFriendlyName("n")); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	_, err = tw.UpdateConversation(*b.Sid, (&conversations.UpdateConversationParams{}).SetFriendlyName("n"))
	wantRestError(t, err, 429, CodeTooManyRequests)
}

func TestAdminRoutes(t *testing.T) {
	emu, hs := startEmulator(t, testOptions(newFakeClock()))
	if st := rawStatus(t, http.MethodGet, hs.URL+"/v1/Services"); st != 200 {
		t.Fatal(st)
	}
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/__emulator/stats", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("admin without auth: %v %v", resp, err)
	}
	var stats Stats
	resp := rawDo(t, http.MethodGet, hs.URL+"/__emulator/stats", nil)
	_ = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if stats.Total != 1 || stats.ByRoute["GET /v1/Services"] != 1 || stats.ByRouteStatus["GET /v1/Services 200"] != 1 {
		t.Errorf("stats = %+v", stats)
	}
	resp = rawDo(t, http.MethodPut, hs.URL+"/__emulator/faults", []byte(`{"latency": "5ms", "max_in_flight": 3, "error_500_after_write": 0.25, "seed": 7}`))
	resp.Body.Close()
	if want := (Faults{Latency: 5 * time.Millisecond, MaxInFlight: 3, Error500AfterWrite: 0.25, Seed: 7}); resp.StatusCode != 200 || emu.Faults() != want {
		t.Errorf("PUT faults: %d, faults now %+v", resp.StatusCode, emu.Faults())
	}
	resp = rawDo(t, http.MethodPut, hs.URL+"/__emulator/faults", []byte(`{"error_500_after_write": 3}`))
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("invalid faults accepted: %d", resp.StatusCode)
	}
	resp = rawDo(t, http.MethodPost, hs.URL+"/__emulator/reset-stats", nil)
	resp.Body.Close()
	if s := emu.Stats(); resp.StatusCode != 204 || s.Total != 0 {
		t.Errorf("reset-stats: %d, total %d", resp.StatusCode, s.Total)
	}
}

func TestListenAndServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, "127.0.0.1:0", testOptions(newFakeClock()), func(u string) { urls <- u })
	}()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	}
	if st := rawStatus(t, http.MethodGet, base+"/v1/Services"); st != 200 {
		t.Errorf("status %d", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func rawDo(t *testing.T, method, url string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return nil
	}
	req.SetBasicAuth(testAccountSID, testAuthToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	return resp
}

func rawStatus(t *testing.T, method, url string) int {
	resp := rawDo(t, method, url, nil)
	if resp == nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
