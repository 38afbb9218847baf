package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// Recognisable secret values: none may appear in any output or file.
const (
	accountCert     = "-----BEGIN CERTIFICATE-----\nE2E-CERT-VALUE-7c1f\n-----END CERTIFICATE-----\n"
	accountKeyOne   = "-----BEGIN PRIVATE KEY-----\nE2E-KEY-ONE-91ab\n-----END PRIVATE KEY-----\n"
	accountKeyTwo   = "-----BEGIN PRIVATE KEY-----\nE2E-KEY-TWO-5d2e\n-----END PRIVATE KEY-----\n"
	accountFCMValue = "E2E-FCM-SERVER-KEY-44aa"
)

const accountSettings = `kind: Service
name: support
friendly_name: Support
---
kind: Configuration
default_service: support
default_messaging_service_sid: MG0123456789abcdef0123456789abcdef
default_inactive_timer: PT60M
default_closed_timer: P30D
---
kind: AccountWebhooks
target: webhook
pre_webhook_url: https://hooks.example.com/pre
post_webhook_url: https://hooks.example.com/post
method: post
filters: [onMessageAdded, onUserUpdated]
`

const accountAddress = `kind: AddressConfiguration
name: support-line
type: sms
address: "+15551234567"
friendly_name: Support line
auto_creation:
  enabled: true
  type: webhook
  service: support
  webhook_url: https://bot.example.com/inbound
  webhook_method: post
  webhook_filters: [onMessageAdded]
`

const accountPush = `kind: PushCredential
name: ios
type: apn
friendly_name: iOS app
sandbox: false
certificate: {file: secrets/apn-cert.pem}
private_key: {file: secrets/apn-key.pem}
---
kind: PushCredential
name: android
type: fcm
secret: {file: secrets/fcm.key}
`

func (e *env) writeSecret(name, value string) {
	e.t.Helper()
	path := filepath.Join(e.dir, "secrets", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) credential(sid string) emulator.Credential {
	e.t.Helper()
	for _, c := range e.emu.Credentials() {
		if c.SID == sid {
			return c
		}
	}
	e.t.Fatalf("credential %s is not in Twilio", sid)
	return emulator.Credential{}
}

func (e *env) address(address string) (emulator.AddressConfiguration, bool) {
	for _, a := range e.emu.AddressConfigurations() {
		if a.Address == address {
			return a, true
		}
	}
	return emulator.AddressConfiguration{}, false
}

// noSecretIn fails when any output or file of the run holds a secret.
func (e *env) noSecretIn(what, text string) {
	e.t.Helper()
	for _, v := range []string{"E2E-CERT-VALUE", "E2E-KEY-ONE", "E2E-KEY-TWO", "E2E-FCM-SERVER-KEY"} {
		if strings.Contains(text, v) {
			e.t.Fatalf("%s holds the secret %s", what, v)
		}
	}
}

func (e *env) want(r result, wants ...string) {
	e.t.Helper()
	for _, w := range wants {
		if !strings.Contains(r.stdout+r.stderr, w) {
			e.t.Fatalf("output lacks %q:\n%s", w, r)
		}
	}
	e.noSecretIn("the output", r.stdout+r.stderr)
}

// TestEveryAccountKind walks the account's configuration, webhooks, an
// address configuration and push credentials through the lifecycle a user
// relies on, with the real binary against the emulator over HTTP.
func TestEveryAccountKind(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("account.yaml", accountSettings)
	e.writeSpec("address.yaml", accountAddress)
	e.writeSpec("push.yaml", accountPush)
	e.writeSecret("apn-cert.pem", accountCert)
	e.writeSecret("apn-key.pem", accountKeyOne)
	e.writeSecret("fcm.key", accountFCMValue)

	// The service first; the account's settings and the address point at
	// it once it exists.
	r := e.must(2, "plan", "--detailed-exitcode")
	e.want(r, "~ configuration (/Configuration) {", "~ account_webhooks (/Configuration/Webhooks) {", `+ address_configuration "support-line"`, `+ push_credential "ios"`,
		"+ private_key = (sensitive)", "(the SID of service.support, known after apply)", "Plan: 4 to create, 2 to update")
	r = e.applyOK("Apply complete: 4 created, 2 updated, 0 replaced, 0 deleted.")
	e.noSecretIn("apply", r.stdout+r.stderr)
	svc := e.stateSID("service.support")
	settings := e.emu.AccountSettings()
	if settings.Configuration.DefaultChatServiceSID != svc || settings.Configuration.DefaultInactiveTimer != "PT60M" || settings.Webhooks.Method != "POST" {
		t.Fatalf("account settings: %+v", settings)
	}
	line, ok := e.address("+15551234567")
	if !ok || line.AutoCreation.ConversationServiceSID == nil || *line.AutoCreation.ConversationServiceSID != svc || *line.AutoCreation.WebhookMethod != "POST" {
		t.Fatalf("address configuration: %+v", line)
	}
	ios := e.stateSID("push_credential.ios")
	if got := e.credential(ios).SecretDigests["PrivateKey"]; got != emulator.SecretDigest(accountKeyOne) {
		t.Fatalf("private key sent: digest %s", got)
	}
	if got := e.credential(e.stateSID("push_credential.android")).SecretDigests["Secret"]; got != emulator.SecretDigest(accountFCMValue) {
		t.Fatalf("FCM secret sent: digest %s", got)
	}
	// PT60M is PT1H, POST is post: no change.
	e.noChanges("after the first apply")

	// An edit: one update in place.
	e.writeSpec("address.yaml", strings.Replace(accountAddress, "friendly_name: Support line", "friendly_name: Support hotline", 1))
	r = e.must(2, "plan", "--detailed-exitcode")
	e.want(r, `~ friendly_name = "Support line" -> "Support hotline"`, "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete.")
	e.applyOK("Apply complete: 0 created, 1 updated, 0 replaced, 0 deleted.")
	e.noChanges("after the update")

	// An immutable field: the address configuration is replaced.
	moved := strings.Replace(strings.Replace(accountAddress, "friendly_name: Support line", "friendly_name: Support hotline", 1), `"+15551234567"`, `"+15557654321"`, 1)
	e.writeSpec("address.yaml", moved)
	r = e.must(2, "plan", "--detailed-exitcode")
	e.want(r, "# forces replacement", "Plan: 0 to create, 0 to update, 1 to replace, 0 to delete.")
	e.applyOK("Apply complete: 0 created, 0 updated, 1 replaced, 0 deleted.")
	if _, old := e.address("+15551234567"); old {
		t.Fatal("the replaced address configuration is still in Twilio")
	}
	e.noChanges("after the replace")

	// A changed secret file: one update, the value in no output.
	e.writeSecret("apn-key.pem", accountKeyTwo)
	r = e.must(2, "plan", "--detailed-exitcode")
	e.want(r, "~ private_key = (sensitive, changed)", "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete.")
	if strings.Contains(r.stdout, "certificate") {
		t.Fatalf("the unchanged certificate is in the plan:\n%s", r.stdout)
	}
	r = e.applyOK("Apply complete: 0 created, 1 updated, 0 replaced, 0 deleted.")
	e.noSecretIn("apply", r.stdout+r.stderr)
	if got := e.credential(ios).SecretDigests["PrivateKey"]; got != emulator.SecretDigest(accountKeyTwo) {
		t.Fatalf("private key after the change: digest %s", got)
	}
	// Unchanged: nothing to send.
	e.noChanges("after the secret was sent")
	raw, err := os.ReadFile(e.state)
	if err != nil {
		t.Fatal(err)
	}
	e.noSecretIn("the state file", string(raw))

	// A secret that cannot be read fails the plan, naming the spec, before
	// any API call.
	if err := os.Remove(filepath.Join(e.dir, "secrets", "fcm.key")); err != nil {
		t.Fatal(err)
	}
	e.emu.ResetStats()
	r = e.must(1, "apply", "--auto-approve")
	e.want(r, "push_credential.android: secret: the secret cannot be read (push.yaml:9:1)", "fcm.key: no such file or directory")
	if n := e.emu.Stats().Total; n != 0 {
		t.Fatalf("an apply whose secret cannot be read sent %d requests", n)
	}
	e.writeSecret("fcm.key", accountFCMValue)
	e.noChanges("with the secret file back")

	// Routing to Flex is warned about.
	flex := strings.Replace(accountSettings, "target: webhook", "target: flex", 1)
	e.writeSpec("account.yaml", flex)
	r = e.must(2, "plan", "--detailed-exitcode")
	e.want(r, "WARNING: target flex routes every conversation of the account to Flex")
	e.writeSpec("account.yaml", accountSettings)

	// A removed singleton is forgotten, not deleted.
	e.writeSpec("account.yaml", strings.SplitN(accountSettings, "---\nkind: AccountWebhooks", 2)[0])
	r = e.must(2, "plan", "--detailed-exitcode")
	e.want(r, "# account_webhooks will be removed from the state", "convsync stops managing it", "as long as the account does")
	e.applyOK("Apply complete")
	if got := e.emu.AccountSettings().Webhooks; got.PostWebhookURL == nil || *got.PostWebhookURL != "https://hooks.example.com/post" {
		t.Fatalf("forgetting changed the account's webhooks: %+v", got)
	}
	e.noChanges("after forgetting the account webhooks")

	// Imports: the singletons by their path, an address by the address
	// itself, a credential by its SID (its secrets are sent once).
	e.writeSpec("account.yaml", accountSettings)
	e.must(0, "import", "account_webhooks", "/Configuration/Webhooks")
	e.must(0, "state", "rm", "configuration")
	e.must(0, "import", "configuration", "/Configuration")
	e.must(0, "state", "rm", "address_configuration.support-line")
	e.must(0, "import", "address_configuration.support-line", "/Configuration/Addresses/+15557654321")
	e.noChanges("after importing the singletons and the address")
	e.must(0, "state", "rm", "push_credential.ios")
	r = e.must(0, "import", "push_credential.ios", "/Credentials/"+ios)
	e.want(r, "cannot be imported")
	r = e.must(2, "plan", "--detailed-exitcode")
	e.want(r, "~ certificate = (sensitive, not known to convsync: sent once)", "~ private_key = (sensitive, not known to convsync: sent once)")
	e.applyOK("Apply complete: 0 created, 1 updated, 0 replaced, 0 deleted.")
	e.noChanges("after the import sent the secrets once")

	// Twilio deletes an address configuration when its number is released
	// (warning 50610): deleted outside convsync, created again.
	if err := e.emu.ReleaseAddress("+15557654321"); err != nil {
		t.Fatal(err)
	}
	r = e.must(2, "plan", "--detailed-exitcode")
	e.want(r, "deleted outside convsync", "warning 50610", "Plan: 1 to create")

	// An address configured outside convsync is not taken over silently.
	other, err := e.emu.AddAddressConfiguration("sms", "+15557654321")
	if err != nil {
		t.Fatal(err)
	}
	r = e.must(1, "plan")
	e.want(r, `address "+15557654321" is already taken in the account by `+other, "convsync import", "address_configuration.support-line /Configuration/Addresses/"+other)
	e.must(0, "state", "rm", "address_configuration.support-line")
	e.must(0, "import", "address_configuration.support-line", "/Configuration/Addresses/"+other)
	e.applyOK("Apply complete: 0 created, 1 updated")
	e.noChanges("after adopting the address configured outside convsync")

	// Replacing the service re-points the configuration and the address in
	// the same apply.
	e.writeSpec("account.yaml", strings.Replace(accountSettings, "friendly_name: Support", "friendly_name: Support desk", 1))
	r = e.must(2, "plan", "--detailed-exitcode")
	e.want(r, `-/+ service "support"`, "Plan: 0 to create, 2 to update, 1 to replace, 0 to delete.")
	e.applyOK("Apply complete: 0 created, 2 updated, 1 replaced, 0 deleted.")
	newSvc := e.stateSID("service.support")
	if newSvc == svc {
		t.Fatal("the service was not replaced")
	}
	line, _ = e.address("+15557654321")
	if got := e.emu.AccountSettings().Configuration.DefaultChatServiceSID; got != newSvc || *line.AutoCreation.ConversationServiceSID != newSvc {
		t.Fatalf("after the service replace: configuration %s, address %s; want %s", got, *line.AutoCreation.ConversationServiceSID, newSvc)
	}
	e.noChanges("after the service replace")

	// Drift: a change made in the console is reported, and the next apply
	// puts it back.
	if _, err := e.client().Update(context.Background(), resource.KindAccountWebhooks, "", "/Configuration/Webhooks",
		resource.Values{"method": "GET"}, twilioapi.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	r = e.must(2, "plan", "--refresh-only", "--detailed-exitcode")
	e.want(r, "~ account_webhooks (/Configuration/Webhooks) {", `~ method = "POST" -> "GET"`, "cannot be checked for drift: push_credential.android (secret)")
	e.applyOK("Apply complete: 0 created, 1 updated")

	// Destroy: the address and the credentials are deleted, the account's
	// settings only forgotten.
	r = e.must(0, "destroy", "--auto-approve")
	e.noSecretIn("destroy", r.stdout+r.stderr)
	if n, m := len(e.emu.AddressConfigurations()), len(e.emu.Credentials()); n != 0 || m != 0 {
		t.Fatalf("after destroy: %d address configurations, %d credentials", n, m)
	}
	if got := e.emu.AccountSettings().Webhooks; got.PostWebhookURL == nil {
		t.Fatalf("destroy changed the account's webhooks: %+v", got)
	}
}

// TestAccountExample: examples/account applies against the emulator and
// then plans no changes; exported with --import, the account's settings and
// addresses plan no changes either (push credentials are not exported).
func TestAccountExample(t *testing.T) {
	e := newEnv(t)
	e.copyExample("account")
	e.applyOK("Apply complete: 5 created, 2 updated, 0 replaced, 0 deleted.")
	e.noChanges("after applying examples/account")
	if n := len(e.emu.AddressConfigurations()); n != 2 {
		t.Fatalf("%d address configurations, want 2", n)
	}

	out := filepath.Join(e.work, "exported")
	newState := filepath.Join(e.work, "exported.state.json")
	r := e.must(0, "export", "--import", "--out", out, "--state", newState)
	e.want(r, "2 push credentials were not exported", "Imported")
	account, err := os.ReadFile(filepath.Join(out, "account.settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Configuration\ndefault_service: customer-support", "kind: AccountWebhooks", "name: support-line-sms", "service: customer-support", "type: whatsapp"} {
		if !strings.Contains(string(account), want) {
			t.Errorf("account.settings.yaml lacks %q:\n%s", want, account)
		}
	}
	if strings.Contains(string(account), "PushCredential") {
		t.Errorf("a push credential was exported:\n%s", account)
	}
	r = e.must(0, "plan", "--detailed-exitcode", "--dir", out, "--state", newState)
	if !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("plan over the export: %s", r)
	}
}

// copyExample copies examples/NAME into the spec folder, keeping its layout.
func (e *env) copyExample(name string) {
	e.t.Helper()
	src := filepath.Join("..", "examples", name)
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		e.writeSpec(rel, string(data))
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestAccountNoChangePlanRequestCount: a no-change plan over 120 address
// configurations, 3 push credentials and the account's two singletons is one
// list of services, ceil(120/50) = 3 pages of addresses, one page of
// credentials and one GET per singleton: 7 requests.
func TestAccountNoChangePlanRequestCount(t *testing.T) {
	e := newEnv(t)
	var b strings.Builder
	b.WriteString("kind: Configuration\ndefault_inactive_timer: PT1H\n---\nkind: AccountWebhooks\nmethod: GET\n")
	for i := 0; i < 120; i++ {
		b.WriteString("---\nkind: AddressConfiguration\nname: a" + itoa(i) + "\ntype: sms\naddress: \"+1555" + itoa(1000000+i) + "\"\n")
	}
	for i := 0; i < 3; i++ {
		b.WriteString("---\nkind: PushCredential\nname: p" + itoa(i) + "\ntype: fcm\nfriendly_name: App " + itoa(i) + "\nsecret: {file: secrets/fcm.key}\n")
	}
	e.writeSpec("bulk.yaml", b.String())
	e.writeSecret("fcm.key", accountFCMValue)
	if r := e.must(0, "apply", "--auto-approve", "--rate-limit", "0"); !strings.Contains(r.stdout, "Apply complete: 123 created, 2 updated") {
		t.Fatalf("apply: %s", r)
	}
	e.emu.ResetStats()
	e.noChanges("over 120 addresses")
	stats := e.emu.Stats()
	t.Logf("no-change plan over 120 address configurations, 3 credentials and 2 account singletons: %d API requests (%v)", stats.Total, stats.ByRoute)
	if stats.Total != 7 {
		t.Fatalf("no-change plan made %d requests, want 7: %v", stats.Total, stats.ByRoute)
	}
}
