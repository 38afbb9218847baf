package twilioapi_test

import (
	"context"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// conversationKey creates a conversation in svc and returns its parent key
// for participants and webhooks.
func conversationKey(t *testing.T, c *twilioapi.Client, svc string) string {
	t.Helper()
	conv, err := c.Create(context.Background(), resource.KindConversation, svc, resource.Values{resource.FieldUniqueName: "vip"}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc + "/" + conv.SID
}

func TestParticipantRoundTripThroughTheEmulator(t *testing.T) {
	c, emu, svc := emulatorClient(t)
	ctx := context.Background()
	key := conversationKey(t, c, svc)
	chat := resource.Values{resource.FieldIdentity: "alice@example.com", resource.FieldAttributes: `{"seat":1}`}
	alice, err := c.Create(ctx, resource.KindParticipant, key, chat, twilioapi.CallOptions{WebhookEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if alice.ParentSID != key {
		t.Fatalf("parent key %q, want %q", alice.ParentSID, key)
	}
	wantValues(t, "chat participant", resource.KindParticipant, alice.Values, chat, false)
	sms := resource.Values{resource.FieldBindingAddress: "+15551230000", resource.FieldBindingProxyAddress: "+15559870000"}
	customer, err := c.Create(ctx, resource.KindParticipant, key, sms, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, "sms participant", resource.KindParticipant, customer.Values, resource.Values{
		resource.FieldBindingAddress: "+15551230000", resource.FieldBindingProxyAddress: "+15559870000", resource.FieldAttributes: "{}",
	}, true)
	if customer.Extra["messaging_binding.type"] != "sms" {
		t.Errorf("binding type %q, want sms", customer.Extra["messaging_binding.type"])
	}

	listed, err := c.List(ctx, resource.KindParticipant, key)
	if err != nil || len(listed) != 2 {
		t.Fatalf("list: %v, %v", listed, err)
	}
	byIdentity, err := c.Fetch(ctx, resource.KindParticipant, key, "alice@example.com")
	if err != nil || byIdentity.SID != alice.SID {
		t.Fatalf("fetch by identity: %+v, %v", byIdentity, err)
	}
	updated, err := c.Update(ctx, resource.KindParticipant, key, alice.SID, resource.Values{resource.FieldAttributes: `{"seat":2}`}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, "updated", resource.KindParticipant, updated.Values, resource.Values{resource.FieldAttributes: `{"seat":2}`}, false)
	// The binding never travels on an update: the schema makes it a replace.
	if _, err := c.Update(ctx, resource.KindParticipant, key, customer.SID, resource.Values{resource.FieldBindingProxyAddress: "+15559870001"}, twilioapi.CallOptions{}); err == nil {
		t.Fatal("an update of the proxy address was sent")
	}
	if err := c.Delete(ctx, resource.KindParticipant, key, customer.SID, twilioapi.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	svcPart, convPart := resource.ParentOfKey(key)
	left, _ := emu.Participants(svcPart, convPart)
	if len(left) != 1 || left[0].SID != alice.SID {
		t.Fatalf("after the delete: %+v", left)
	}
}

func TestConversationWebhookRoundTripThroughTheEmulator(t *testing.T) {
	c, _, svc := emulatorClient(t)
	ctx := context.Background()
	key := conversationKey(t, c, svc)
	for _, v := range []resource.Values{
		{resource.FieldWebhookTarget: "webhook", resource.FieldWebhookURL: "https://bot.example.com/", resource.FieldWebhookMethod: "POST", resource.FieldWebhookFilters: `["onMessageAdded","onParticipantAdded"]`},
		{resource.FieldWebhookTarget: "trigger", resource.FieldWebhookURL: "https://bot.example.com/k", resource.FieldWebhookMethod: "GET", resource.FieldWebhookTriggers: `["agent","help"]`},
		{resource.FieldWebhookTarget: "studio", resource.FieldWebhookFlowSID: "FW0123456789abcdef0123456789abcdef"},
	} {
		created, err := c.Create(ctx, resource.KindConversationWebhook, key, v, twilioapi.CallOptions{})
		if err != nil {
			t.Fatalf("create %s: %v", v[resource.FieldWebhookTarget], err)
		}
		// Sent in lower case (the contract's enum), read back in upper case.
		wantValues(t, v[resource.FieldWebhookTarget], resource.KindConversationWebhook, created.Values, v, true)
		fetched, err := c.Fetch(ctx, resource.KindConversationWebhook, key, created.SID)
		if err != nil {
			t.Fatal(err)
		}
		wantValues(t, "fetched "+v[resource.FieldWebhookTarget], resource.KindConversationWebhook, fetched.Values, v, true)
	}
	listed, err := c.List(ctx, resource.KindConversationWebhook, key)
	if err != nil || len(listed) != 3 {
		t.Fatalf("list: %v, %v", listed, err)
	}
	updated, err := c.Update(ctx, resource.KindConversationWebhook, key, listed[0].SID, resource.Values{resource.FieldWebhookFilters: `["onMessageAdded"]`}, twilioapi.CallOptions{})
	if err != nil || updated.Values[resource.FieldWebhookFilters] != `["onMessageAdded"]` {
		t.Fatalf("update: %+v, %v", updated.Values, err)
	}
	if err := c.Delete(ctx, resource.KindConversationWebhook, key, listed[0].SID, twilioapi.CallOptions{}); err != nil {
		t.Fatal(err)
	}
}
