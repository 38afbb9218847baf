package planner

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

const (
	credSID = "CR00000000000000000000000000000001"
	addrSID = "IG00000000000000000000000000000001"
	otherIG = "IG0000000000000000000000000000000f"
)

// secretFile writes value to a file and returns the spec's reference to it.
func secretFile(t *testing.T, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret.pem")
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return resource.SecretRef{File: path}.String()
}

// credentialWorld: push_credential.ios (CR…1) in the state and in Twilio;
// applied is what the state recorded as last sent.
func credentialWorld(t *testing.T, applied resource.Values) (*state.State, *Snapshot) {
	t.Helper()
	w := newWorld()
	snap := w.build()
	snap.SetListed(resource.KindPushCredential, "", []resource.Observed{{Kind: resource.KindPushCredential, SID: credSID,
		Values: resource.Values{"type": "fcm", "friendly_name": "Android"}, DateCreated: t0}})
	w.st.Put(&state.Resource{Address: addr(resource.KindPushCredential, "android"), SID: credSID, Applied: applied})
	return w.st, snap
}

func credentialSpec(secretRef string) resource.Desired {
	return resource.Desired{Address: addr(resource.KindPushCredential, "android"), Timeouts: resource.DefaultTimeouts,
		Values: resource.Values{"type": "fcm", "friendly_name": "Android", "secret": secretRef}, Source: resource.Source{File: "push.yaml", Line: 3, Column: 1}}
}

// sealedWith is what the state records after sending value from ref.
func sealedWith(t *testing.T, st *state.State, ref, value string) string {
	t.Helper()
	r, err := resource.ParseSecretRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r.WithFingerprint(resource.SecretKey(st.Lineage), []byte(value)).String()
}

func TestSecretsArePlannedByFingerprint(t *testing.T) {
	const sent, changed = "server-key-one", "server-key-two"
	tests := []struct {
		name       string
		applied    func(st *state.State, ref string) resource.Values
		fileHolds  string
		wantAction Action
		wantLine   string
	}{
		{"unchanged: nothing to send", func(st *state.State, ref string) resource.Values {
			return resource.Values{"secret": sealedWith(t, st, ref, sent)}
		}, sent, NoOp, ""},
		{"the file changed: sent again", func(st *state.State, ref string) resource.Values {
			return resource.Values{"secret": sealedWith(t, st, ref, sent)}
		}, changed, Update, "~ secret = (sensitive, changed)"},
		{"read from elsewhere, same value: nothing to send", func(st *state.State, _ string) resource.Values {
			return resource.Values{"secret": resource.SecretRef{Env: "OLD_PLACE"}.WithFingerprint(resource.SecretKey(st.Lineage), []byte(sent)).String()}
		}, sent, NoOp, ""},
		{"never sent by convsync (imported): sent once", func(*state.State, string) resource.Values {
			return resource.Values{}
		}, sent, Update, "~ secret = (sensitive, not known to convsync: sent once)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := secretFile(t, tt.fileHolds)
			st, snap := credentialWorld(t, nil)
			st.Resources["push_credential.android"].Applied = tt.applied(st, ref)
			plan, err := Compute([]resource.Desired{credentialSpec(ref)}, st, snap)
			if err != nil {
				t.Fatal(err)
			}
			ch := findChange(t, plan, "push_credential.android")
			if ch.Action != tt.wantAction {
				t.Fatalf("action %s, want %s (%s)", ch.Action, tt.wantAction, ch.Reason)
			}
			var human, js bytes.Buffer
			if err := RenderHuman(&human, plan); err != nil {
				t.Fatal(err)
			}
			if err := RenderJSON(&js, plan); err != nil {
				t.Fatal(err)
			}
			if tt.wantLine != "" && !strings.Contains(human.String(), tt.wantLine) {
				t.Errorf("plan lacks %q:\n%s", tt.wantLine, human.String())
			}
			for what, out := range map[string]string{"human plan": human.String(), "JSON plan": js.String()} {
				if strings.Contains(out, "server-key") {
					t.Errorf("the %s shows the secret:\n%s", what, out)
				}
			}
		})
	}
}

func TestUnreadableSecretFailsThePlanNamingTheSpec(t *testing.T) {
	st, snap := credentialWorld(t, nil)
	missing := resource.SecretRef{File: filepath.Join(t.TempDir(), "gone.pem")}.String()
	unset := resource.SecretRef{Env: "CONVSYNC_TEST_UNSET_VARIABLE"}.String()
	for ref, want := range map[string]string{
		missing: "push_credential.android: secret: the secret cannot be read (push.yaml:3:1): cannot read file ",
		unset:   "push_credential.android: secret: the secret cannot be read (push.yaml:3:1): environment variable CONVSYNC_TEST_UNSET_VARIABLE is not set",
	} {
		_, err := Compute([]resource.Desired{credentialSpec(ref)}, st, snap)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want it to say %q", err, want)
		}
	}
}

// An address held by a configuration convsync does not own fails the plan
// with the import command; once owned, a released number (gone) is planned
// as deleted outside convsync.
func TestAddressConfigurationsAreClaimedByAddress(t *testing.T) {
	spec := resource.Desired{Address: addr(resource.KindAddressConfiguration, "line"), Timeouts: resource.DefaultTimeouts,
		Values: resource.Values{"type": "sms", "address": "+15551234567"}}
	w := newWorld()
	snap := w.build()
	snap.SetListed(resource.KindAddressConfiguration, "", []resource.Observed{{Kind: resource.KindAddressConfiguration, SID: otherIG,
		Values: resource.Values{"type": "sms", "address": "+15551234567"}, DateCreated: t0}})
	_, err := Compute([]resource.Desired{spec}, w.st, snap)
	want := `address_configuration.line: address "+15551234567" is already taken in the account by ` + otherIG + ", which convsync does not manage. To adopt it, run:\n    convsync import address_configuration.line /Configuration/Addresses/" + otherIG
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}

	w = newWorld()
	snap = w.build()
	snap.SetListed(resource.KindAddressConfiguration, "", nil)
	w.st.Put(&state.Resource{Address: spec.Address, SID: addrSID, Applied: spec.Values})
	plan, err := Compute([]resource.Desired{spec}, w.st, snap)
	if err != nil {
		t.Fatal(err)
	}
	ch := findChange(t, plan, "address_configuration.line")
	if ch.Action != Create || !strings.Contains(ch.Reason, "deleted outside convsync") || !strings.Contains(ch.Reason, "warning 50610") {
		t.Fatalf("%s: %s", ch.Action, ch.Reason)
	}
}

// The account's singletons: written when they differ, forgotten when their
// spec goes; routing to Flex warns.
func TestAccountSingletons(t *testing.T) {
	hooks := addr(resource.KindAccountWebhooks, "")
	id := resource.SingletonID(resource.KindAccountWebhooks, "")
	if id != "/Configuration/Webhooks" || hooks.String() != "account_webhooks" {
		t.Fatalf("id %q, address %q", id, hooks)
	}
	w := newWorld()
	snap := w.build()
	snap.SetListed(resource.KindAccountWebhooks, "", []resource.Observed{{Kind: resource.KindAccountWebhooks, SID: id,
		Values: resource.Values{"target": "webhook", "method": "POST"}}})
	spec := resource.Desired{Address: hooks, Timeouts: resource.DefaultTimeouts, Values: resource.Values{"target": "flex", "method": "POST"}}
	plan, err := Compute([]resource.Desired{spec}, w.st, snap)
	if err != nil {
		t.Fatal(err)
	}
	ch := findChange(t, plan, "account_webhooks")
	if ch.Action != Update || ch.SID != id || !slices.Contains(ch.Warnings, resource.FlexTargetWarning) {
		t.Fatalf("%s %s %v", ch.Action, ch.SID, ch.Warnings)
	}
	var b bytes.Buffer
	_ = RenderHuman(&b, plan)
	if !strings.Contains(b.String(), "~ account_webhooks (/Configuration/Webhooks) {") {
		t.Errorf("plan:\n%s", b.String())
	}

	w.st.Put(&state.Resource{Address: hooks, SID: id, Applied: spec.Values})
	plan, err = Compute(nil, w.st, snap)
	if err != nil {
		t.Fatal(err)
	}
	if ch := findChange(t, plan, "account_webhooks"); ch.Action != Forget || !strings.Contains(ch.Reason, "as long as the account does") {
		t.Fatalf("%s: %s", ch.Action, ch.Reason)
	}
}

// A service that is replaced (deleted, then created) is pointed at again by
// the configuration and an address in the same plan, after its create; a
// service that goes is released by them before its delete.
func TestReferencesToAServiceFollowItsReplaceAndRelease(t *testing.T) {
	cfgID := resource.SingletonID(resource.KindConfiguration, "")
	build := func() (*state.State, *Snapshot) {
		w := newWorld().service("support", svcSID, "Support", true).service("other", svcSID2, "Other", true)
		snap := w.build()
		snap.SetListed(resource.KindConfiguration, "", []resource.Observed{{Kind: resource.KindConfiguration, SID: cfgID, Values: resource.Values{"default_service_sid": svcSID}}})
		snap.SetListed(resource.KindAddressConfiguration, "", []resource.Observed{{Kind: resource.KindAddressConfiguration, SID: addrSID,
			Values: resource.Values{"type": "sms", "address": "+1555", "auto_creation.conversation_service_sid": svcSID}, DateCreated: t0}})
		w.st.Put(&state.Resource{Address: addr(resource.KindAddressConfiguration, "line"), SID: addrSID})
		return w.st, snap
	}
	specs := func(service, friendly string) []resource.Desired {
		cfg := resource.Desired{Address: addr(resource.KindConfiguration, ""), Timeouts: resource.DefaultTimeouts, Values: resource.Values{},
			Refs: map[string]resource.Ref{"default_service_sid": {Address: svcAddr(service)}}}
		line := resource.Desired{Address: addr(resource.KindAddressConfiguration, "line"), Timeouts: resource.DefaultTimeouts,
			Values: resource.Values{"type": "sms", "address": "+1555"}, Refs: map[string]resource.Ref{"auto_creation.conversation_service_sid": {Address: svcAddr(service)}}}
		out := []resource.Desired{cfg, line, desiredService(service, friendly)}
		if service != "other" {
			out = append(out, desiredService("other", "Other"))
		}
		return out
	}

	// Replaced: the referrers wait for the create, and the delete does not
	// wait for them (that would be a cycle).
	st, snap := build()
	plan, err := Compute(specs("support", "Support desk"), st, snap)
	if err != nil {
		t.Fatal(err)
	}
	svc := findChange(t, plan, "service.support")
	if svc.Action != Replace || len(svc.AfterRelease) != 0 {
		t.Fatalf("service: %s, after release %v", svc.Action, svc.AfterRelease)
	}
	for _, a := range []string{"configuration", "address_configuration.line"} {
		if ch := findChange(t, plan, a); ch.Action != Update || !slices.Contains(ch.DependsOn, svcAddr("support")) {
			t.Errorf("%s: %s, depends on %v", a, ch.Action, ch.DependsOn)
		}
	}

	// Removed: both move to the other service before it is deleted.
	st, snap = build()
	plan, err = Compute(specs("other", "Other"), st, snap)
	if err != nil {
		t.Fatal(err)
	}
	svc = findChange(t, plan, "service.support")
	if svc.Action != Delete || !slices.Contains(svc.AfterRelease, addr(resource.KindConfiguration, "")) ||
		!slices.Contains(svc.AfterRelease, addr(resource.KindAddressConfiguration, "line")) {
		t.Fatalf("service: %s, after release %v", svc.Action, svc.AfterRelease)
	}
	var b bytes.Buffer
	if err := RenderJSON(&b, plan); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b.Bytes()) {
		t.Fatal("the JSON plan is not JSON")
	}
}

// TestAccountPlanGolden: one plan over every account kind, as a person
// reads it: a new service the configuration and a new address point at
// (known after apply), the account's webhooks routed to Flex (warned), a
// credential whose secret file changed, another imported (its secret sent
// once), and an address Twilio deleted when its number was released.
func TestAccountPlanGolden(t *testing.T) {
	w := newWorld()
	snap := w.build()
	cfgID := resource.SingletonID(resource.KindConfiguration, "")
	hooksID := resource.SingletonID(resource.KindAccountWebhooks, "")
	snap.SetListed(resource.KindConfiguration, "", []resource.Observed{{Kind: resource.KindConfiguration, SID: cfgID,
		Values: resource.Values{"default_service_sid": "IS0000000000000000000000000000000d", "default_inactive_timer": "PT60M"}}})
	snap.SetListed(resource.KindAccountWebhooks, "", []resource.Observed{{Kind: resource.KindAccountWebhooks, SID: hooksID,
		Values: resource.Values{"target": "webhook", "method": "POST"}}})
	snap.SetListed(resource.KindAddressConfiguration, "", nil)
	snap.SetListed(resource.KindPushCredential, "", []resource.Observed{
		{Kind: resource.KindPushCredential, SID: credSID, Values: resource.Values{"type": "fcm", "friendly_name": "Android"}, DateCreated: t0},
		{Kind: resource.KindPushCredential, SID: "CR00000000000000000000000000000002", Values: resource.Values{"type": "apn", "friendly_name": "iOS", "sandbox": "false"}, DateCreated: t0},
	})
	newKey := secretFile(t, "new-server-key")
	cert, key := secretFile(t, "cert"), secretFile(t, "key")
	w.st.Put(&state.Resource{Address: addr(resource.KindPushCredential, "android"), SID: credSID,
		Applied: resource.Values{"type": "fcm", "friendly_name": "Android", "secret": sealedWith(t, w.st, newKey, "old-server-key")}})
	w.st.Put(&state.Resource{Address: addr(resource.KindPushCredential, "ios"), SID: "CR00000000000000000000000000000002",
		Applied: resource.Values{"type": "apn", "friendly_name": "iOS", "sandbox": "false"}})
	w.st.Put(&state.Resource{Address: addr(resource.KindAddressConfiguration, "released"), SID: otherIG,
		Applied: resource.Values{"type": "whatsapp", "address": "whatsapp:+15550000002"}})
	desired := []resource.Desired{
		desiredService("support", "Support"),
		{Address: addr(resource.KindConfiguration, ""), Values: resource.Values{"default_inactive_timer": "PT1H"},
			Refs: map[string]resource.Ref{"default_service_sid": {Address: svcAddr("support")}}},
		{Address: addr(resource.KindAccountWebhooks, ""), Values: resource.Values{"target": "flex", "method": "POST"}},
		{Address: addr(resource.KindAddressConfiguration, "line"), Values: resource.Values{"type": "sms", "address": "+15550000001",
			"auto_creation.enabled": "true", "auto_creation.type": "default"},
			Refs: map[string]resource.Ref{"auto_creation.conversation_service_sid": {Address: svcAddr("support")}}},
		{Address: addr(resource.KindAddressConfiguration, "released"), Values: resource.Values{"type": "whatsapp", "address": "whatsapp:+15550000002"}},
		{Address: addr(resource.KindPushCredential, "android"), Values: resource.Values{"type": "fcm", "friendly_name": "Android", "secret": newKey}},
		{Address: addr(resource.KindPushCredential, "ios"), Values: resource.Values{"type": "apn", "friendly_name": "iOS", "sandbox": "false", "certificate": cert, "private_key": key}},
	}
	for i := range desired {
		desired[i].Timeouts = resource.DefaultTimeouts
	}
	plan, err := Compute(desired, w.st, snap)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := RenderHuman(&b, plan); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "server-key") {
		t.Fatal("the plan shows a secret")
	}
	golden(t, "testdata/account.plan.txt", b.Bytes())
}
