package emulator

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

func TestAccountRulesRefuseWhatTwilioRefuses(t *testing.T) {
	emu, hs := startEmulator(t, testOptions(newFakeClock()))
	tw := twilioFor(t, hs)
	if _, err := tw.CreateConfigurationAddress((&conversations.CreateConfigurationAddressParams{}).SetType("sms").SetAddress("+15550000001")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		call         func() error
		status, code int
	}{
		{"default service that does not exist", func() error {
			_, err := tw.UpdateConfiguration((&conversations.UpdateConfigurationParams{}).SetDefaultChatServiceSid("IS00000000000000000000000000000000"))
			return err
		}, 400, CodeInvalidParameter},
		{"inactive timer under a minute", func() error {
			_, err := tw.UpdateConfiguration((&conversations.UpdateConfigurationParams{}).SetDefaultInactiveTimer("PT30S"))
			return err
		}, 400, CodeTimerInactiveTooLow},
		{"closed timer under ten minutes", func() error {
			_, err := tw.UpdateConfiguration((&conversations.UpdateConfigurationParams{}).SetDefaultClosedTimer("PT5M"))
			return err
		}, 400, CodeTimerClosedTooLow},
		{"webhook target neither webhook nor flex", func() error {
			_, err := tw.UpdateConfigurationWebhook((&conversations.UpdateConfigurationWebhookParams{}).SetTarget("studio"))
			return err
		}, 400, CodeInvalidParameter},
		{"account webhook filter that does not exist", func() error {
			_, err := tw.UpdateConfigurationWebhook((&conversations.UpdateConfigurationWebhookParams{}).SetFilters([]string{"onNothing"}))
			return err
		}, 400, CodeInvalidParameter},
		{"an address configured twice", func() error {
			_, err := tw.CreateConfigurationAddress((&conversations.CreateConfigurationAddressParams{}).SetType("SMS").SetAddress("+15550000001"))
			return err
		}, 409, CodeInvalidParameter},
		{"an address without a type", func() error {
			_, err := tw.CreateConfigurationAddress((&conversations.CreateConfigurationAddressParams{}).SetAddress("+15550000002"))
			return err
		}, 400, CodeInvalidParameter},
		{"studio without a flow", func() error {
			_, err := tw.CreateConfigurationAddress((&conversations.CreateConfigurationAddressParams{}).SetType("sms").SetAddress("+15550000003").SetAutoCreationType("studio"))
			return err
		}, 400, CodeAutoCreationStudioFlow},
		{"an unknown integration type", func() error {
			_, err := tw.CreateConfigurationAddress((&conversations.CreateConfigurationAddressParams{}).SetType("sms").SetAddress("+15550000004").SetAutoCreationType("bot"))
			return err
		}, 400, CodeAutoCreationType},
		{"a webhook key on a studio address", func() error {
			_, err := tw.CreateConfigurationAddress((&conversations.CreateConfigurationAddressParams{}).SetType("sms").SetAddress("+15550000005").
				SetAutoCreationType("studio").SetAutoCreationStudioFlowSid("FW0123456789abcdef0123456789abcdef").SetAutoCreationWebhookUrl("https://x.example.com"))
			return err
		}, 400, CodeInvalidParameter},
		{"auto-creation into a service that does not exist", func() error {
			_, err := tw.CreateConfigurationAddress((&conversations.CreateConfigurationAddressParams{}).SetType("sms").SetAddress("+15550000006").
				SetAutoCreationConversationServiceSid("IS00000000000000000000000000000000"))
			return err
		}, 400, CodeInvalidParameter},
		{"a credential without a type", func() error {
			_, err := tw.CreateCredential(&conversations.CreateCredentialParams{})
			return err
		}, 400, CodeInvalidParameter},
		{"a credential friendly name over 64 characters", func() error {
			_, err := tw.CreateCredential((&conversations.CreateCredentialParams{}).SetType("fcm").SetFriendlyName(strings.Repeat("x", 65)))
			return err
		}, 400, CodeFriendlyNameTooLong},
		{"a credential that does not exist", func() error {
			_, err := tw.FetchCredential("CR00000000000000000000000000000000")
			return err
		}, 404, CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRestError(t, tt.call(), tt.status, tt.code)
		})
	}
	if n := len(emu.AddressConfigurations()); n != 1 {
		t.Errorf("%d address configurations after the refusals, want 1", n)
	}
}

// Twilio shows only the keys of an address's integration type, takes the
// address where a SID goes, lower-case methods in and upper case out.
func TestAddressConfigurationAnswers(t *testing.T) {
	emu, hs := startEmulator(t, testOptions(newFakeClock()))
	tw := twilioFor(t, hs)
	created, err := tw.CreateConfigurationAddress((&conversations.CreateConfigurationAddressParams{}).SetType("WhatsApp").SetAddress("whatsapp:+15550000001").
		SetAutoCreationEnabled(true).SetAutoCreationType("webhook").SetAutoCreationConversationServiceSid(emu.DefaultServiceSID()).
		SetAutoCreationWebhookUrl("https://bot.example.com/in").SetAutoCreationWebhookMethod("get").SetAutoCreationWebhookFilters([]string{"onMessageAdded"}))
	if err != nil {
		t.Fatal(err)
	}
	if *created.Type != "whatsapp" || !strings.HasPrefix(*created.Sid, "IG") {
		t.Errorf("created: type %q sid %q", *created.Type, *created.Sid)
	}
	got, err := tw.FetchConfigurationAddress("whatsapp:+15550000001")
	if err != nil {
		t.Fatal(err)
	}
	auto := (*got.AutoCreation).(map[string]any)
	if auto["webhook_method"] != "GET" || auto["type"] != "webhook" || auto["conversation_service_sid"] != emu.DefaultServiceSID() {
		t.Errorf("auto_creation: %v", auto)
	}
	switched, err := tw.UpdateConfigurationAddress(*created.Sid, (&conversations.UpdateConfigurationAddressParams{}).
		SetAutoCreationType("studio").SetAutoCreationStudioFlowSid("FW0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	auto = (*switched.AutoCreation).(map[string]any)
	if _, stale := auto["webhook_url"]; stale || auto["studio_flow_sid"] != "FW0123456789abcdef0123456789abcdef" || auto["conversation_service_sid"] != emu.DefaultServiceSID() {
		t.Errorf("auto_creation after switching to studio: %v", auto)
	}
	if err := emu.ReleaseAddress("whatsapp:+15550000001"); err != nil {
		t.Fatal(err)
	}
	_, err = tw.FetchConfigurationAddress(*created.Sid)
	wantRestError(t, err, http.StatusNotFound, CodeNotFound)
}

// Secrets are accepted, never returned, and never kept: the data file holds
// only their digests.
func TestCredentialSecretsAreNeverReturnedNorKept(t *testing.T) {
	const key = "-----BEGIN RSA PRIVATE KEY-----recognisable-emulator-secret"
	opts := testOptions(newFakeClock())
	opts.DataFile = filepath.Join(t.TempDir(), "emu.json")
	emu, hs := startEmulator(t, opts)
	tw := twilioFor(t, hs)
	c, err := tw.CreateCredential((&conversations.CreateCredentialParams{}).SetType("APN").SetSandbox(true).SetCertificate("cert").SetPrivateKey(key))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sandbox == nil || *c.Sandbox != "True" || *c.Type != "apn" {
		t.Errorf("answer: sandbox %v type %v", c.Sandbox, c.Type)
	}
	creds := emu.Credentials()
	if len(creds) != 1 || creds[0].SecretDigests["PrivateKey"] != SecretDigest(key) || creds[0].SecretDigests["Certificate"] != SecretDigest("cert") {
		t.Fatalf("digests: %+v", creds)
	}
	raw, err := os.ReadFile(opts.DataFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "recognisable-emulator-secret") {
		t.Error("the emulator's data file holds the secret")
	}
	// A restart keeps the credential and its digests.
	again, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Credentials(); len(got) != 1 || got[0].SecretDigests["PrivateKey"] != SecretDigest(key) {
		t.Errorf("after a restart: %+v", got)
	}
}
