package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

// accountRepeatedFormKeys are the array parameters of the account's routes
// that twilio-go sends as a repeated key, and the path of their route:
// Prism 5.16 misreports them as "must be array" (see isPrismMisreport).
var accountRepeatedFormKeys = map[string]func(path string) bool{
	"Filters":                     func(p string) bool { return p == "/v1/Configuration/Webhooks" },
	"AutoCreation.WebhookFilters": func(p string) bool { return strings.HasPrefix(p, "/v1/Configuration/Addresses") },
}

func isAccountPrismMisreport(req *http.Request, v prismViolation) bool {
	if len(v.Location) != 3 || v.Location[0] != "request" || v.Location[1] != "body" {
		return false
	}
	key := v.Location[2]
	route, ok := accountRepeatedFormKeys[key]
	return ok && req.Method == http.MethodPost && route(req.URL.Path) && v.Code == "type" &&
		v.Message == "Request body property "+key+" must be array" && len(requestForm(req)[key]) > 0
}

// TestContractAccount drives every route of the account's kinds through
// twilio-go and Prism: 0 violations, as TestContract for the services.
func TestContractAccount(t *testing.T) {
	prism := prismBinary(t)
	shared := sharedDir(t)
	fixed := filepath.Join(t.TempDir(), "conversations.fixed.json")
	fix := exec.Command("node", filepath.Join(shared, "contract", "fix-nullable.js"),
		filepath.Join(shared, "twilio-oai", "twilio_conversations_v1.json"), fixed)
	if out, err := fix.CombinedOutput(); err != nil {
		t.Fatalf("fix-nullable.js: %v\n%s", err, out)
	}
	emu, hs := startEmulator(t, testOptions(newFakeClock()))
	proxy := startPrism(t, prism, fixed, hs.URL)

	var mu sync.Mutex
	var violations []string
	responses, excused := 0, 0
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
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		var rest []prismViolation
		for _, v := range vs {
			switch {
			case isAccountPrismMisreport(req, v):
				excused++
			case resp.StatusCode >= 400 && isUndocumentedStatus(v):
			default:
				rest = append(rest, v)
			}
		}
		if len(rest) > 0 {
			out, _ := json.Marshal(rest)
			violations = append(violations, fmt.Sprintf("%s %s -> %d: %s", req.Method, req.URL, resp.StatusCode, out))
		}
	}
	tw := newTwilio(t, proxy, testAccountSID, testAuthToken, record)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range violations {
			t.Errorf("contract violation: %s", v)
		}
		t.Logf("%d responses checked by Prism, %d violations, %d known Prism misreports excused", responses, len(violations), excused)
	})
	svc := emu.DefaultServiceSID()

	// The account's configuration.
	if _, err := tw.FetchConfiguration(); err != nil {
		t.Fatalf("FetchConfiguration: %v", err)
	}
	cfg := (&conversations.UpdateConfigurationParams{}).SetDefaultChatServiceSid(svc).SetDefaultMessagingServiceSid(testMG).
		SetDefaultInactiveTimer("PT1H").SetDefaultClosedTimer("P30D")
	if _, err := tw.UpdateConfiguration(cfg); err != nil {
		t.Fatalf("UpdateConfiguration: %v", err)
	}

	// The account's webhooks, before and after a write.
	if _, err := tw.FetchConfigurationWebhook(); err != nil {
		t.Fatalf("FetchConfigurationWebhook: %v", err)
	}
	wh := (&conversations.UpdateConfigurationWebhookParams{}).SetTarget("webhook").SetMethod("POST").
		SetPreWebhookUrl("https://hooks.example.com/pre").SetPostWebhookUrl("https://hooks.example.com/post").
		SetFilters([]string{"onMessageAdded", "onUserUpdated"})
	if _, err := tw.UpdateConfigurationWebhook(wh); err != nil {
		t.Fatalf("UpdateConfigurationWebhook: %v", err)
	}

	// Address configurations: each integration type, fetch by SID and by
	// address, list in pages, update (switching type), delete.
	webhook := (&conversations.CreateConfigurationAddressParams{}).SetType("sms").SetAddress("+15551230001").
		SetFriendlyName("Support line").SetAutoCreationEnabled(true).SetAutoCreationType("webhook").
		SetAutoCreationConversationServiceSid(svc).SetAutoCreationWebhookUrl("https://bot.example.com/in").
		SetAutoCreationWebhookMethod("post").SetAutoCreationWebhookFilters([]string{"onMessageAdded", "onParticipantAdded"})
	a, err := tw.CreateConfigurationAddress(webhook)
	if err != nil {
		t.Fatalf("CreateConfigurationAddress (webhook): %v", err)
	}
	studio := (&conversations.CreateConfigurationAddressParams{}).SetType("whatsapp").SetAddress("whatsapp:+15551230002").
		SetAutoCreationEnabled(true).SetAutoCreationType("studio").
		SetAutoCreationStudioFlowSid("FW0123456789abcdef0123456789abcdef").SetAutoCreationStudioRetryCount(2)
	if _, err := tw.CreateConfigurationAddress(studio); err != nil {
		t.Fatalf("CreateConfigurationAddress (studio): %v", err)
	}
	plain := (&conversations.CreateConfigurationAddressParams{}).SetType("sms").SetAddress("12345").SetAddressCountry("US")
	if _, err := tw.CreateConfigurationAddress(plain); err != nil {
		t.Fatalf("CreateConfigurationAddress (default): %v", err)
	}
	if _, err := tw.FetchConfigurationAddress(*a.Sid); err != nil {
		t.Fatalf("FetchConfigurationAddress by SID: %v", err)
	}
	if _, err := tw.FetchConfigurationAddress("+15551230001"); err != nil {
		t.Fatalf("FetchConfigurationAddress by address: %v", err)
	}
	all, err := tw.ListConfigurationAddress((&conversations.ListConfigurationAddressParams{}).SetPageSize(2))
	if err != nil || len(all) != 3 {
		t.Fatalf("ListConfigurationAddress: %d, %v", len(all), err)
	}
	switched := (&conversations.UpdateConfigurationAddressParams{}).SetFriendlyName("Now studio").SetAutoCreationType("studio").
		SetAutoCreationStudioFlowSid("FW0123456789abcdef0123456789abcdef")
	if _, err := tw.UpdateConfigurationAddress(*a.Sid, switched); err != nil {
		t.Fatalf("UpdateConfigurationAddress: %v", err)
	}
	if err := tw.DeleteConfigurationAddress(*a.Sid); err != nil {
		t.Fatalf("DeleteConfigurationAddress: %v", err)
	}

	// Push credentials: APN and FCM, paged list, update, delete.
	apn := (&conversations.CreateCredentialParams{}).SetType("apn").SetFriendlyName("iOS").SetSandbox(true).
		SetCertificate("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----").SetPrivateKey("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----")
	c, err := tw.CreateCredential(apn)
	if err != nil {
		t.Fatalf("CreateCredential (apn): %v", err)
	}
	if _, err := tw.CreateCredential((&conversations.CreateCredentialParams{}).SetType("fcm").SetSecret("server-key")); err != nil {
		t.Fatalf("CreateCredential (fcm): %v", err)
	}
	if _, err := tw.FetchCredential(*c.Sid); err != nil {
		t.Fatalf("FetchCredential: %v", err)
	}
	creds, err := tw.ListCredential((&conversations.ListCredentialParams{}).SetPageSize(1))
	if err != nil || len(creds) != 2 {
		t.Fatalf("ListCredential: %d, %v", len(creds), err)
	}
	if _, err := tw.UpdateCredential(*c.Sid, (&conversations.UpdateCredentialParams{}).SetFriendlyName("iOS app").SetSandbox(false).SetPrivateKey("other")); err != nil {
		t.Fatalf("UpdateCredential: %v", err)
	}
	if err := tw.DeleteCredential(*c.Sid); err != nil {
		t.Fatalf("DeleteCredential: %v", err)
	}

	// Refusals go through Prism too (error answers are not in the contract).
	_, err = tw.CreateConfigurationAddress((&conversations.CreateConfigurationAddressParams{}).SetType("sms").SetAddress("12345"))
	wantRestError(t, err, http.StatusConflict, CodeInvalidParameter)
}
