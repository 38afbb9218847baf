package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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

// prismViolation is one entry of Prism's sl-violations header.
type prismViolation struct {
	Location []string `json:"location"`
	Severity string   `json:"severity"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
}

// isUndocumentedStatus reports whether v only says that the answer's status
// is not in the contract. Twilio's contract lists no 4xx/5xx answers at all
// (see docs/emulator.md), so an error answer always gets this one warning.
func isUndocumentedStatus(v prismViolation) bool {
	return len(v.Location) == 1 && v.Location[0] == "response" &&
		strings.HasPrefix(v.Message, "Unable to match the returned status code with those defined in the document")
}

// repeatedFormKeys are the array parameters twilio-go sends as a repeated form
// key (Permission=a&Permission=b), each with the routes it belongs to (path
// segments after /v1/Services/{IS}).
var repeatedFormKeys = map[string]func(rest []string) bool{
	"Permission": func(rest []string) bool { return rest[0] == "Roles" && len(rest) <= 2 },
	"Filters":    func(rest []string) bool { return len(rest) == 2 && rest[0] == "Configuration" && rest[1] == "Webhooks" },
	// Conversation-scoped webhooks: .../Conversations/{CH}/Webhooks[/{WH}].
	"Configuration.Filters":  scopedWebhookRoute,
	"Configuration.Triggers": scopedWebhookRoute,
}

func scopedWebhookRoute(rest []string) bool {
	return (len(rest) == 3 || len(rest) == 4) && rest[0] == "Conversations" && rest[2] == "Webhooks"
}

// isPrismMisreport reports whether v is one of the two known cases where
// Prism 5.16 is wrong, and nothing else:
//
//  1. A repeated form key. OpenAPI 3's default for an array in a
//     form-urlencoded body is style=form, explode=true, which is exactly
//     Permission=a&Permission=b, what twilio-go sends; Prism nevertheless
//     reports "Request body property Permission must be array" (also with two
//     or more values). Excused only for Permission on POST .../Roles[/{RL}],
//     Filters on POST .../Configuration/Webhooks, and Configuration.Filters
//     and Configuration.Triggers on POST .../Conversations/{CH}/Webhooks[/{WH}],
//     with that exact message, and only when the request really carried the key.
//  2. method: null in a service webhook configuration. The contract's own
//     example fetchEmpty answers "method": null for an unconfigured service,
//     but its schema makes method a $ref to a non-nullable enum (OpenAPI 3.0
//     cannot mark a $ref nullable). Excused only on .../Configuration/Webhooks
//     for location response.body.method with codes type or enum, and only when
//     the answer's method really is null.
func isPrismMisreport(req *http.Request, body map[string]any, v prismViolation) bool {
	path := req.URL.Path
	if len(v.Location) == 3 && v.Location[0] == "request" && v.Location[1] == "body" {
		key := v.Location[2]
		route, ok := repeatedFormKeys[key]
		if !ok || req.Method != http.MethodPost || v.Code != "type" || v.Message != "Request body property "+key+" must be array" {
			return false
		}
		parts := strings.Split(strings.TrimPrefix(path, "/v1/Services/"), "/")
		if !strings.HasPrefix(path, "/v1/Services/") || len(parts) < 2 || !route(parts[1:]) {
			return false
		}
		return len(requestForm(req)[key]) > 0
	}
	if len(v.Location) == 3 && v.Location[0] == "response" && v.Location[1] == "body" && v.Location[2] == "method" {
		m, present := body["method"]
		return strings.HasSuffix(path, "/Configuration/Webhooks") && (v.Code == "type" || v.Code == "enum") && present && m == nil
	}
	return false
}

// requestForm re-reads the form body a request sent.
func requestForm(req *http.Request) url.Values {
	if req.GetBody == nil {
		return nil
	}
	rc, err := req.GetBody()
	if err != nil {
		return nil
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return nil
	}
	form, _ := url.ParseQuery(string(raw))
	return form
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
	responses, undocumentedErrors, misreports := 0, 0, 0
	record := func(req *http.Request, resp *http.Response) {
		mu.Lock()
		defer mu.Unlock()
		responses++
		header := resp.Header.Get("sl-violations")
		if header == "" {
			return
		}
		var vs []prismViolation
		if err := json.Unmarshal([]byte(header), &vs); err != nil || len(vs) == 0 {
			violations = append(violations, fmt.Sprintf("%s %s -> %d: unreadable sl-violations %q", req.Method, req.URL, resp.StatusCode, header))
			return
		}
		// Peek at the answer (and put it back for twilio-go).
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		var rest []prismViolation
		excused, undocumented := 0, 0
		for _, v := range vs {
			switch {
			case isPrismMisreport(req, body, v):
				excused++
			case resp.StatusCode >= 400 && isUndocumentedStatus(v):
				undocumented++
			default:
				rest = append(rest, v)
			}
		}
		if excused > 0 {
			misreports++
		}
		if undocumented > 0 {
			undocumentedErrors++
		}
		if len(rest) > 0 {
			out, _ := json.Marshal(rest)
			violations = append(violations, fmt.Sprintf("%s %s -> %d: %s", req.Method, req.URL, resp.StatusCode, out))
		}
	}
	tw := newTwilio(t, proxy, testAccountSID, testAuthToken, record)
	// Report violations even when a step below stops the test early.
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range violations {
			t.Errorf("contract violation: %s", v)
		}
		t.Logf("%d responses checked by Prism, %d violations (%d error answers with no status in the contract, "+
			"%d answers with a known Prism misreport excused)", responses, len(violations), undocumentedErrors, misreports)
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

	// Roles: the default ones, create (repeated Permission), fetch, update, list, delete.
	roles, err := tw.ListServiceRole(svcSID, &conversations.ListServiceRoleParams{PageSize: ptr(2)})
	if err != nil || len(roles) != len(defaultRoles) {
		t.Fatalf("ListServiceRole: %d, %v", len(roles), err)
	}
	role, err := tw.CreateServiceRole(svcSID, (&conversations.CreateServiceRoleParams{}).SetFriendlyName("agent").
		SetType("service").SetPermission([]string{"createConversation", "joinConversation"}))
	if err != nil {
		t.Fatalf("CreateServiceRole: %v", err)
	}
	if got := *role.Permissions; len(got) != 2 || got[0] != "createConversation" || got[1] != "joinConversation" {
		t.Fatalf("the repeated Permission key arrived as %v", got)
	}
	convRole, err := tw.CreateServiceRole(svcSID, (&conversations.CreateServiceRoleParams{}).SetFriendlyName("member").
		SetType("conversation").SetPermission([]string{"sendMessage"}))
	if err != nil {
		t.Fatalf("CreateServiceRole (conversation): %v", err)
	}
	if _, err := tw.FetchServiceRole(svcSID, *role.Sid); err != nil {
		t.Fatalf("FetchServiceRole: %v", err)
	}
	if _, err := tw.UpdateServiceRole(svcSID, *role.Sid, (&conversations.UpdateServiceRoleParams{}).
		SetPermission([]string{"editOwnUserInfo", "createConversation", "joinConversation"})); err != nil {
		t.Fatalf("UpdateServiceRole: %v", err)
	}
	doomed, err := tw.CreateServiceRole(svcSID, (&conversations.CreateServiceRoleParams{}).SetFriendlyName("doomed").
		SetType("conversation").SetPermission([]string{"leaveConversation"}))
	if err != nil {
		t.Fatalf("CreateServiceRole: %v", err)
	}
	if err := tw.DeleteServiceRole(svcSID, *doomed.Sid); err != nil {
		t.Fatalf("DeleteServiceRole: %v", err)
	}

	// Users: create (bare and full), fetch by SID and identity, update, list, delete.
	if _, err := tw.CreateServiceUser(svcSID, (&conversations.CreateServiceUserParams{}).SetIdentity("bare")); err != nil {
		t.Fatalf("CreateServiceUser (bare): %v", err)
	}
	user, err := tw.CreateServiceUser(svcSID, (&conversations.CreateServiceUserParams{}).SetIdentity("alice@example.com").
		SetFriendlyName("Alice").SetAttributes(`{"team":"a"}`).SetRoleSid(*role.Sid).SetXTwilioWebhookEnabled("false"))
	if err != nil {
		t.Fatalf("CreateServiceUser: %v", err)
	}
	if _, err := tw.FetchServiceUser(svcSID, *user.Sid); err != nil {
		t.Fatalf("FetchServiceUser: %v", err)
	}
	if _, err := tw.FetchServiceUser(svcSID, "alice@example.com"); err != nil {
		t.Fatalf("FetchServiceUser by identity: %v", err)
	}
	cfg0, err := tw.FetchServiceConfiguration(svcSID)
	if err != nil {
		t.Fatalf("FetchServiceConfiguration: %v", err)
	}
	if _, err := tw.UpdateServiceUser(svcSID, "alice@example.com", (&conversations.UpdateServiceUserParams{}).
		SetFriendlyName("Alice B").SetAttributes(`{"team":"b"}`).SetRoleSid(*cfg0.DefaultChatServiceRoleSid).
		SetXTwilioWebhookEnabled("true")); err != nil {
		t.Fatalf("UpdateServiceUser: %v", err)
	}
	if got, err := tw.ListServiceUser(svcSID, &conversations.ListServiceUserParams{PageSize: ptr(1)}); err != nil || len(got) != 2 {
		t.Fatalf("ListServiceUser: %d, %v", len(got), err)
	}
	if err := tw.DeleteServiceUser(svcSID, "bare", (&conversations.DeleteServiceUserParams{}).SetXTwilioWebhookEnabled("false")); err != nil {
		t.Fatalf("DeleteServiceUser: %v", err)
	}

	// Service configuration singletons.
	if _, err := tw.UpdateServiceConfiguration(svcSID, (&conversations.UpdateServiceConfigurationParams{}).
		SetDefaultChatServiceRoleSid(*role.Sid).SetDefaultConversationRoleSid(*convRole.Sid).
		SetDefaultConversationCreatorRoleSid(*convRole.Sid).SetReachabilityEnabled(true)); err != nil {
		t.Fatalf("UpdateServiceConfiguration: %v", err)
	}
	if _, err := tw.FetchServiceNotification(svcSID); err != nil {
		t.Fatalf("FetchServiceNotification: %v", err)
	}
	if _, err := tw.UpdateServiceNotification(svcSID, (&conversations.UpdateServiceNotificationParams{}).
		SetLogEnabled(true).SetNewMessageEnabled(true).SetNewMessageTemplate("New: ${MESSAGE}").SetNewMessageSound("ring").
		SetNewMessageBadgeCountEnabled(true).SetNewMessageWithMediaEnabled(true).SetNewMessageWithMediaTemplate("${MEDIA_COUNT} files").
		SetAddedToConversationEnabled(true).SetAddedToConversationTemplate("Added to ${CONVERSATION}").SetAddedToConversationSound("ding").
		SetRemovedFromConversationEnabled(false).SetRemovedFromConversationTemplate("Removed").SetRemovedFromConversationSound("dong")); err != nil {
		t.Fatalf("UpdateServiceNotification: %v", err)
	}
	if _, err := tw.FetchServiceWebhookConfiguration(svcSID); err != nil {
		t.Fatalf("FetchServiceWebhookConfiguration (unconfigured): %v", err)
	}
	if _, err := tw.UpdateServiceWebhookConfiguration(svcSID, (&conversations.UpdateServiceWebhookConfigurationParams{}).
		SetPreWebhookUrl("https://example.com/pre").SetPostWebhookUrl("https://example.com/post").SetMethod("post").
		SetFilters([]string{"onMessageAdded", "onConversationRemoved"})); err != nil {
		t.Fatalf("UpdateServiceWebhookConfiguration: %v", err)
	}
	if _, err := tw.FetchServiceWebhookConfiguration(svcSID); err != nil {
		t.Fatalf("FetchServiceWebhookConfiguration: %v", err)
	}

	// Participants: chat (every create field), SMS, WhatsApp, Group MMS; fetch
	// by SID and identity, update with every field, list paged, delete.
	host, err := tw.CreateServiceConversation(svcSID, (&conversations.CreateServiceConversationParams{}).SetUniqueName("hosts"))
	if err != nil {
		t.Fatalf("CreateServiceConversation (hosts): %v", err)
	}
	chat, err := tw.CreateServiceConversationParticipant(svcSID, "hosts", (&conversations.CreateServiceConversationParticipantParams{}).
		SetIdentity("alice@example.com").SetAttributes(`{"seat":1}`).SetRoleSid(*convRole.Sid).
		SetDateCreated(time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)).SetDateUpdated(time.Date(2024, 2, 2, 0, 0, 0, 0, time.UTC)).
		SetXTwilioWebhookEnabled("false"))
	if err != nil {
		t.Fatalf("CreateServiceConversationParticipant (chat): %v", err)
	}
	sms, err := tw.CreateServiceConversationParticipant(svcSID, *host.Sid, (&conversations.CreateServiceConversationParticipantParams{}).
		SetMessagingBindingAddress("+15558675310").SetMessagingBindingProxyAddress("+15017122661"))
	if err != nil {
		t.Fatalf("CreateServiceConversationParticipant (sms): %v", err)
	}
	if _, err := tw.CreateServiceConversationParticipant(svcSID, *host.Sid, (&conversations.CreateServiceConversationParticipantParams{}).
		SetMessagingBindingAddress("whatsapp:+15558675311").SetMessagingBindingProxyAddress("whatsapp:+15017122661")); err != nil {
		t.Fatalf("CreateServiceConversationParticipant (whatsapp): %v", err)
	}
	if _, err := tw.CreateServiceConversationParticipant(svcSID, *host.Sid, (&conversations.CreateServiceConversationParticipantParams{}).
		SetIdentity("gmms").SetMessagingBindingProjectedAddress("+15017122662")); err != nil {
		t.Fatalf("CreateServiceConversationParticipant (group MMS): %v", err)
	}
	if _, err := tw.FetchServiceConversationParticipant(svcSID, *host.Sid, *chat.Sid); err != nil {
		t.Fatalf("FetchServiceConversationParticipant: %v", err)
	}
	if _, err := tw.FetchServiceConversationParticipant(svcSID, "hosts", "alice@example.com"); err != nil {
		t.Fatalf("FetchServiceConversationParticipant by identity: %v", err)
	}
	if _, err := tw.UpdateServiceConversationParticipant(svcSID, *host.Sid, *chat.Sid, (&conversations.UpdateServiceConversationParticipantParams{}).
		SetIdentity("alice2@example.com").SetAttributes(`{"seat":2}`).SetRoleSid(*cfg0.DefaultConversationRoleSid).
		SetMessagingBindingProjectedAddress("+15017122663").SetLastReadMessageIndex(0).SetLastReadTimestamp("2024-03-01T12:00:00Z").
		SetDateCreated(time.Date(2024, 2, 3, 0, 0, 0, 0, time.UTC)).SetDateUpdated(time.Date(2024, 2, 4, 0, 0, 0, 0, time.UTC)).
		SetXTwilioWebhookEnabled("true")); err != nil {
		t.Fatalf("UpdateServiceConversationParticipant: %v", err)
	}
	if _, err := tw.UpdateServiceConversationParticipant(svcSID, *host.Sid, *sms.Sid, (&conversations.UpdateServiceConversationParticipantParams{}).
		SetMessagingBindingProxyAddress("+15017122661").SetAttributes(`{"vip":true}`)); err != nil {
		t.Fatalf("UpdateServiceConversationParticipant (sms): %v", err)
	}
	if got, err := tw.ListServiceConversationParticipant(svcSID, *host.Sid, &conversations.ListServiceConversationParticipantParams{PageSize: ptr(3)}); err != nil || len(got) != 4 {
		t.Fatalf("ListServiceConversationParticipant: %d, %v", len(got), err)
	}
	if err := tw.DeleteServiceConversationParticipant(svcSID, *host.Sid, *sms.Sid, (&conversations.DeleteServiceConversationParticipantParams{}).
		SetXTwilioWebhookEnabled("false")); err != nil {
		t.Fatalf("DeleteServiceConversationParticipant: %v", err)
	}

	// Conversation-scoped webhooks: each target with every field, fetch,
	// update, list paged, delete.
	hook, err := tw.CreateServiceConversationScopedWebhook(svcSID, *host.Sid, (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("webhook").SetConfigurationUrl("https://example.com/hook").SetConfigurationMethod("post").
		SetConfigurationFilters([]string{"onMessageAdded", "onParticipantAdded"}).SetConfigurationReplayAfter(0))
	if err != nil {
		t.Fatalf("CreateServiceConversationScopedWebhook (webhook): %v", err)
	}
	if got := (*hook.Configuration).(map[string]any)["filters"]; fmt.Sprint(got) != "[onMessageAdded onParticipantAdded]" {
		t.Fatalf("the repeated Configuration.Filters key arrived as %v", got)
	}
	trigger, err := tw.CreateServiceConversationScopedWebhook(svcSID, "hosts", (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("trigger").SetConfigurationUrl("https://example.com/trigger").SetConfigurationMethod("get").
		SetConfigurationTriggers([]string{"help", "stop"}))
	if err != nil {
		t.Fatalf("CreateServiceConversationScopedWebhook (trigger): %v", err)
	}
	if got := (*trigger.Configuration).(map[string]any)["triggers"]; fmt.Sprint(got) != "[help stop]" {
		t.Fatalf("the repeated Configuration.Triggers key arrived as %v", got)
	}
	studio, err := tw.CreateServiceConversationScopedWebhook(svcSID, *host.Sid, (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("studio").SetConfigurationFlowSid("FW0123456789abcdef0123456789abcdef").SetConfigurationReplayAfter(3))
	if err != nil {
		t.Fatalf("CreateServiceConversationScopedWebhook (studio): %v", err)
	}
	if _, err := tw.FetchServiceConversationScopedWebhook(svcSID, *host.Sid, *hook.Sid); err != nil {
		t.Fatalf("FetchServiceConversationScopedWebhook: %v", err)
	}
	if _, err := tw.UpdateServiceConversationScopedWebhook(svcSID, *host.Sid, *hook.Sid, (&conversations.UpdateServiceConversationScopedWebhookParams{}).
		SetConfigurationUrl("https://example.com/hook2").SetConfigurationMethod("get").SetConfigurationFilters([]string{"onConversationUpdated"})); err != nil {
		t.Fatalf("UpdateServiceConversationScopedWebhook (webhook): %v", err)
	}
	if _, err := tw.UpdateServiceConversationScopedWebhook(svcSID, *host.Sid, *trigger.Sid, (&conversations.UpdateServiceConversationScopedWebhookParams{}).
		SetConfigurationTriggers([]string{"info"})); err != nil {
		t.Fatalf("UpdateServiceConversationScopedWebhook (trigger): %v", err)
	}
	if _, err := tw.UpdateServiceConversationScopedWebhook(svcSID, *host.Sid, *studio.Sid, (&conversations.UpdateServiceConversationScopedWebhookParams{}).
		SetConfigurationFlowSid("FW0123456789abcdef0123456789abcdee")); err != nil {
		t.Fatalf("UpdateServiceConversationScopedWebhook (studio): %v", err)
	}
	if got, err := tw.ListServiceConversationScopedWebhook(svcSID, *host.Sid, &conversations.ListServiceConversationScopedWebhookParams{PageSize: ptr(2)}); err != nil || len(got) != 3 {
		t.Fatalf("ListServiceConversationScopedWebhook: %d, %v", len(got), err)
	}
	if err := tw.DeleteServiceConversationScopedWebhook(svcSID, *host.Sid, *studio.Sid); err != nil {
		t.Fatalf("DeleteServiceConversationScopedWebhook: %v", err)
	}
	_, err = tw.CreateServiceConversationParticipant(svcSID, *host.Sid, (&conversations.CreateServiceConversationParticipantParams{}).SetIdentity("gmms"))
	wantRestError(t, err, 409, CodeIdentityInConversation)
	_, err = tw.CreateServiceConversationParticipant(svcSID, *host.Sid, (&conversations.CreateServiceConversationParticipantParams{}).
		SetMessagingBindingAddress("+15017122661").SetMessagingBindingProxyAddress("+15017122661"))
	wantRestError(t, err, 400, CodeAddressEqualsProxy)
	_, err = tw.FetchServiceConversationScopedWebhook(svcSID, *host.Sid, "WH00000000000000000000000000000000")
	wantRestError(t, err, 404, CodeWebhookNotFound)
	_, err = tw.CreateServiceConversationScopedWebhook(svcSID, *host.Sid, (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("trigger").SetConfigurationUrl("https://example.com/t").SetConfigurationTriggers([]string{"a", "b", "c", "d", "e", "f"}))
	wantRestError(t, err, 400, CodeTooManyTriggers)

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
	_, err = tw.FetchServiceRole(svcSID, "RL00000000000000000000000000000000")
	wantRestError(t, err, 404, CodeRoleNotFound)
	_, err = tw.CreateServiceRole(svcSID, (&conversations.CreateServiceRoleParams{}).SetFriendlyName("x").
		SetType("service").SetPermission([]string{"flyAway"}))
	wantRestError(t, err, 400, CodePermissionNotFound)
	_, err = tw.CreateServiceUser(svcSID, (&conversations.CreateServiceUserParams{}).SetIdentity("alice@example.com"))
	wantRestError(t, err, 409, CodeUserExists)
	_, err = tw.UpdateServiceConfiguration(svcSID, (&conversations.UpdateServiceConfigurationParams{}).
		SetDefaultConversationRoleSid(*role.Sid))
	wantRestError(t, err, 400, CodeConversationRoleNotFound)
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
