package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

// sharedDir finds the team's shared/ folder: beside the repository (the
// repository's parent holds shared/, in CI as on the dev machines), unless
// CONVSYNC_SHARED_DIR says otherwise.
func sharedDir(t *testing.T) string {
	if d := os.Getenv("CONVSYNC_SHARED_DIR"); d != "" {
		return d
	}
	d, err := filepath.Abs(filepath.Join("..", "..", "..", "shared"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// prismBinary returns Prism's path from CONVSYNC_PRISM. Without it the test
// cannot run: that is a failure in CI and a skip on a developer machine.
func prismBinary(t *testing.T) string {
	p := os.Getenv("CONVSYNC_PRISM")
	if p != "" {
		return p
	}
	const how = "CONVSYNC_PRISM is not set; install Prism with: export CONVSYNC_PRISM=\"$(scripts/install-prism.sh)\" (from the repository root)"
	if os.Getenv("CI") != "" {
		t.Fatal(how)
	}
	t.Skip(how)
	return ""
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPrism runs `prism proxy` in front of upstream and returns its base URL.
func startPrism(t *testing.T, prism, spec, upstream string) string {
	port := freePort(t)
	cmd := exec.Command(prism, "proxy", spec, upstream, "-p", strconv.Itoa(port), "--host", "127.0.0.1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prism: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // the whole group: node may fork
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("prism output:\n%s", out.String())
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return "http://" + addr
		}
		select {
		case err := <-exited:
			t.Fatalf("prism exited before it was ready (%v):\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("prism not ready on %s after 60s:\n%s", addr, out.String())
		case <-tick.C:
		}
	}
}

// onlyUndocumentedStatus reports whether the violations Prism found are only
// that the answer's status is not in the contract. Twilio's contract lists no
// 4xx/5xx answers at all (see docs/emulator.md), so an error answer always
// gets this one warning; any other violation, such as a request that breaks
// the contract, still fails the test.
func onlyUndocumentedStatus(header string) bool {
	var vs []struct {
		Location []string `json:"location"`
		Message  string   `json:"message"`
	}
	if err := json.Unmarshal([]byte(header), &vs); err != nil || len(vs) == 0 {
		return false
	}
	for _, v := range vs {
		if len(v.Location) != 1 || v.Location[0] != "response" ||
			!strings.HasPrefix(v.Message, "Unable to match the returned status code with those defined in the document") {
			return false
		}
	}
	return true
}

// TestContract drives every route through twilio-go and Prism, which checks
// each request and answer against Twilio's own OpenAPI description; any
// sl-violations header fails the test.
func TestContract(t *testing.T) {
	prism := prismBinary(t)
	shared := sharedDir(t)
	fixed := filepath.Join(t.TempDir(), "conversations.fixed.json")
	fix := exec.Command("node", filepath.Join(shared, "contract", "fix-nullable.js"),
		filepath.Join(shared, "twilio-oai", "twilio_conversations_v1.json"), fixed)
	if out, err := fix.CombinedOutput(); err != nil {
		t.Fatalf("fix-nullable.js: %v\n%s", err, out)
	}

	clock := newFakeClock()
	emu, hs := startEmulator(t, testOptions(clock))
	proxy := startPrism(t, prism, fixed, hs.URL)

	var mu sync.Mutex
	var violations []string
	responses, undocumentedErrors := 0, 0
	record := func(req *http.Request, resp *http.Response) {
		mu.Lock()
		defer mu.Unlock()
		responses++
		v := resp.Header.Get("sl-violations")
		if v == "" {
			return
		}
		if resp.StatusCode >= 400 && onlyUndocumentedStatus(v) {
			undocumentedErrors++
			return
		}
		violations = append(violations, fmt.Sprintf("%s %s -> %d: %s", req.Method, req.URL, resp.StatusCode, v))
	}
	tw := newTwilio(t, proxy, testAccountSID, testAuthToken, record)
	// Report violations even when a step below stops the test early.
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range violations {
			t.Errorf("contract violation: %s", v)
		}
		t.Logf("%d responses checked by Prism, %d violations (%d error answers with no status in the contract)",
			responses, len(violations), undocumentedErrors)
	})

	// Services: create, fetch, list (paged), delete.
	svc, err := tw.CreateService(&conversations.CreateServiceParams{FriendlyName: ptr("contract")})
	if err != nil {
		t.Fatalf("CreateService: %v", err)
	}
	svcSID := *svc.Sid
	if _, err := tw.FetchService(svcSID); err != nil {
		t.Fatalf("FetchService: %v", err)
	}
	extra, err := tw.CreateService(&conversations.CreateServiceParams{FriendlyName: ptr("to delete")})
	if err != nil {
		t.Fatalf("CreateService: %v", err)
	}
	svcs, err := tw.ListService(&conversations.ListServiceParams{PageSize: ptr(1)})
	if err != nil || len(svcs) != 3 { // default + 2
		t.Fatalf("ListService: %d services, %v", len(svcs), err)
	}
	if err := tw.DeleteService(*extra.Sid); err != nil {
		t.Fatalf("DeleteService: %v", err)
	}

	// Conversations under a service: create with every field, then the rest.
	full := &conversations.CreateServiceConversationParams{}
	full.SetFriendlyName("Full").SetUniqueName("full/one?x").SetAttributes(`{"topic":"feedback"}`).
		SetMessagingServiceSid(testMG).SetState("active").SetTimersInactive("PT5M").SetTimersClosed("PT1H").
		SetXTwilioWebhookEnabled("false")
	conv, err := tw.CreateServiceConversation(svcSID, full)
	if err != nil {
		t.Fatalf("CreateServiceConversation: %v", err)
	}
	if _, err := tw.CreateServiceConversation(svcSID, &conversations.CreateServiceConversationParams{}); err != nil {
		t.Fatalf("CreateServiceConversation (no fields): %v", err)
	}
	inactive := (&conversations.CreateServiceConversationParams{}).SetUniqueName("sleepy").SetState("inactive")
	if _, err := tw.CreateServiceConversation(svcSID, inactive); err != nil {
		t.Fatalf("CreateServiceConversation (inactive): %v", err)
	}
	if _, err := tw.FetchServiceConversation(svcSID, *conv.Sid); err != nil {
		t.Fatalf("FetchServiceConversation by sid: %v", err)
	}
	if _, err := tw.FetchServiceConversation(svcSID, "sleepy"); err != nil {
		t.Fatalf("FetchServiceConversation by unique_name: %v", err)
	}
	upd := (&conversations.UpdateServiceConversationParams{}).SetFriendlyName("Renamed").SetAttributes(`{"a":1}`).
		SetUniqueName("full-two").SetState("inactive").SetTimersClosed("PT10M").SetMessagingServiceSid(testMG)
	if _, err := tw.UpdateServiceConversation(svcSID, *conv.Sid, upd); err != nil {
		t.Fatalf("UpdateServiceConversation: %v", err)
	}
	listed, err := tw.ListServiceConversation(svcSID, &conversations.ListServiceConversationParams{PageSize: ptr(2)})
	if err != nil || len(listed) != 3 {
		t.Fatalf("ListServiceConversation: %d, %v", len(listed), err)
	}
	filtered, err := tw.ListServiceConversation(svcSID, (&conversations.ListServiceConversationParams{}).
		SetState("inactive").SetStartDate("2024-03-01T00:00:00Z").SetEndDate("2024-03-01T23:59:59Z").SetPageSize(1))
	if err != nil || len(filtered) != 2 {
		t.Fatalf("ListServiceConversation filtered: %d, %v", len(filtered), err)
	}
	closeIt := (&conversations.UpdateServiceConversationParams{}).SetState("closed")
	if _, err := tw.UpdateServiceConversation(svcSID, "sleepy", closeIt); err != nil {
		t.Fatalf("UpdateServiceConversation closed: %v", err)
	}
	if err := tw.DeleteServiceConversation(svcSID, "sleepy", nil); err != nil {
		t.Fatalf("DeleteServiceConversation: %v", err)
	}

	// The same through the default service's routes.
	dc, err := tw.CreateConversation((&conversations.CreateConversationParams{}).SetFriendlyName("Default").
		SetUniqueName("dflt").SetAttributes("{}").SetMessagingServiceSid(testMG).SetState("active").
		SetTimersInactive("PT1M").SetTimersClosed("PT10M").SetXTwilioWebhookEnabled("false"))
	if err != nil {
		t.Fatalf("CreateConversation: %v", err)
	}
	if _, err := tw.CreateConversation(nil); err != nil {
		t.Fatalf("CreateConversation (no fields): %v", err)
	}
	if _, err := tw.FetchConversation(*dc.Sid); err != nil {
		t.Fatalf("FetchConversation: %v", err)
	}
	if _, err := tw.FetchConversation("dflt"); err != nil {
		t.Fatalf("FetchConversation by unique_name: %v", err)
	}
	if _, err := tw.UpdateConversation("dflt", (&conversations.UpdateConversationParams{}).SetFriendlyName("D2").
		SetState("inactive").SetTimersClosed("PT20M")); err != nil {
		t.Fatalf("UpdateConversation: %v", err)
	}
	if got, err := tw.ListConversation(&conversations.ListConversationParams{PageSize: ptr(1)}); err != nil || len(got) != 2 {
		t.Fatalf("ListConversation: %d, %v", len(got), err)
	}
	if got, err := tw.ListConversation((&conversations.ListConversationParams{}).SetState("active").
		SetStartDate("2024-03-01").SetEndDate("2024-03-02")); err != nil || len(got) != 1 {
		t.Fatalf("ListConversation filtered: %d, %v", len(got), err)
	}
	if err := tw.DeleteConversation(*dc.Sid, nil); err != nil {
		t.Fatalf("DeleteConversation: %v", err)
	}

	// Timers fire on Twilio's side: a conversation read after its date_closed
	// shows closed (still a valid answer).
	clock.Advance(2 * time.Hour)
	if got, err := tw.FetchServiceConversation(svcSID, "full-two"); err != nil || *got.State != "closed" {
		t.Fatalf("after timers: %v, %v", got, err)
	}

	// Errors, decoded by twilio-go. The contract describes no error bodies, so
	// Prism only checks that the requests themselves are valid.
	_, err = tw.FetchServiceConversation(svcSID, "nope")
	wantRestError(t, err, 404, CodeNotFound)
	_, err = tw.CreateServiceConversation(svcSID, (&conversations.CreateServiceConversationParams{}).SetUniqueName("full-two"))
	wantRestError(t, err, 409, CodeUniqueNameTaken)
	_, err = tw.UpdateServiceConversation(svcSID, "full-two", (&conversations.UpdateServiceConversationParams{}).SetFriendlyName("x"))
	wantRestError(t, err, 400, CodeConversationClosed)
	_, err = tw.CreateConversation((&conversations.CreateConversationParams{}).SetState("closed"))
	wantRestError(t, err, 400, CodeCreateClosed)
	_, err = tw.PageConversation(nil, "PTmadeup", "1")
	wantRestError(t, err, 400, CodeInvalidPageToken)
	bad := newTwilio(t, proxy, testAccountSID, "wrongtoken", record)
	_, err = bad.FetchService(svcSID)
	wantRestError(t, err, 401, CodeUnauthorized)
	if err := tw.DeleteService(svcSID); err != nil {
		t.Fatalf("DeleteService: %v", err)
	}
	_, err = tw.FetchService(svcSID)
	wantRestError(t, err, 404, CodeNotFound)

	mu.Lock()
	defer mu.Unlock()
	if got := emu.Stats().Total; got != int64(responses) {
		t.Errorf("emulator counted %d requests, Prism answered %d", got, responses)
	}
}
