package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

// convFixture is a kinds fixture with conversations to hold participants and
// webhooks: "conv" (one chat and one SMS participant), "other" (active),
// "closed" (a participant, then closed).
type convFixture struct {
	*kindsFixture
	conv, other, closed     string // SIDs
	chatMB, smsMB, closedMB string
}

const (
	testAddress = "+15558675310"
	testProxy   = "+15017122661"
)

func newConvFixture(t *testing.T) *convFixture {
	t.Helper()
	f := &convFixture{kindsFixture: newKindsFixture(t)}
	tw, is := f.tw, f.is
	mk := func(name string) string {
		c, err := tw.CreateServiceConversation(is, (&conversations.CreateServiceConversationParams{}).SetUniqueName(name))
		if err != nil {
			t.Fatal(err)
		}
		return *c.Sid
	}
	f.conv, f.other, f.closed = mk("conv"), mk("other"), mk("closed")
	chat, err := tw.CreateServiceConversationParticipant(is, f.conv, (&conversations.CreateServiceConversationParticipantParams{}).SetIdentity("alice"))
	if err != nil {
		t.Fatal(err)
	}
	sms, err := tw.CreateServiceConversationParticipant(is, f.conv, (&conversations.CreateServiceConversationParticipantParams{}).
		SetMessagingBindingAddress(testAddress).SetMessagingBindingProxyAddress(testProxy))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := tw.CreateServiceConversationParticipant(is, f.closed, (&conversations.CreateServiceConversationParticipantParams{}).SetIdentity("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tw.UpdateServiceConversation(is, f.closed, (&conversations.UpdateServiceConversationParams{}).SetState("closed")); err != nil {
		t.Fatal(err)
	}
	f.chatMB, f.smsMB, f.closedMB = *chat.Sid, *sms.Sid, *cl.Sid
	return f
}

// TestParticipantAndWebhookRules checks every participant and
// conversation-webhook rule (status and Twilio error code).
func TestParticipantAndWebhookRules(t *testing.T) {
	f := newConvFixture(t)
	tw, is := f.tw, f.is
	const unknownIS = "IS00000000000000000000000000000000"
	newP := func() *conversations.CreateServiceConversationParticipantParams {
		return &conversations.CreateServiceConversationParticipantParams{}
	}
	create := func(conv string, p *conversations.CreateServiceConversationParticipantParams) func() error {
		return func() error { _, err := tw.CreateServiceConversationParticipant(is, conv, p); return err }
	}
	update := func(conv, sid string, p *conversations.UpdateServiceConversationParticipantParams) func() error {
		return func() error { _, err := tw.UpdateServiceConversationParticipant(is, conv, sid, p); return err }
	}
	newU := func() *conversations.UpdateServiceConversationParticipantParams {
		return &conversations.UpdateServiceConversationParticipantParams{}
	}
	newW := func(target string) *conversations.CreateServiceConversationScopedWebhookParams {
		return (&conversations.CreateServiceConversationScopedWebhookParams{}).SetTarget(target)
	}
	createW := func(p *conversations.CreateServiceConversationScopedWebhookParams) func() error {
		return func() error { _, err := tw.CreateServiceConversationScopedWebhook(is, f.other, p); return err }
	}
	raw := func(method, path string, form url.Values) func() (int, int) {
		return func() (int, int) {
			st, body := formDo(t, f.hs, method, path, form)
			code, _ := body["code"].(float64)
			return st, int(code)
		}
	}
	pPath := "/v1/Services/" + is + "/Conversations/" + f.conv + "/Participants"
	wPath := "/v1/Services/" + is + "/Conversations/" + f.other + "/Webhooks"
	long := strings.Repeat("x", 257)
	hook, err := tw.CreateServiceConversationScopedWebhook(is, f.conv, newW("webhook").SetConfigurationUrl("https://example.com/h").SetConfigurationFilters([]string{"onMessageAdded"}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		call         func() error
		raw          func() (int, int)
		status, code int
	}{
		// Participants: where.
		{name: "participant in unknown service", call: func() error {
			_, err := tw.CreateServiceConversationParticipant(unknownIS, f.conv, newP().SetIdentity("x"))
			return err
		}, status: 404, code: CodeNotFound},
		{name: "participant in unknown conversation", call: create("nope", newP().SetIdentity("x")), status: 404, code: CodeNotFound},
		{name: "list participants of unknown conversation", call: func() error {
			_, err := tw.ListServiceConversationParticipant(is, "nope", nil)
			return err
		}, status: 404, code: CodeNotFound},
		{name: "unknown participant", call: func() error {
			_, err := tw.FetchServiceConversationParticipant(is, f.conv, "MB00000000000000000000000000000000")
			return err
		}, status: 404, code: CodeNotFound},
		{name: "delete unknown participant", call: func() error {
			return tw.DeleteServiceConversationParticipant(is, f.conv, "nobody", nil)
		}, status: 404, code: CodeNotFound},
		// Participants: shape of a create.
		{name: "neither identity nor address", call: create(f.conv, newP().SetAttributes("{}")), status: 400, code: CodeInvalidParameter},
		{name: "identity and address", call: create(f.conv, newP().SetIdentity("x").SetMessagingBindingAddress("+15550000001")), status: 400, code: CodeInvalidParameter},
		{name: "proxy without address", call: create(f.conv, newP().SetIdentity("x").SetMessagingBindingProxyAddress(testProxy)), status: 400, code: CodeInvalidParameter},
		{name: "projected address with address", call: create(f.conv, newP().SetMessagingBindingAddress("+15550000001").SetMessagingBindingProjectedAddress(testProxy)), status: 400, code: CodeInvalidParameter},
		{name: "address equals proxy", call: create(f.conv, newP().SetMessagingBindingAddress(testProxy).SetMessagingBindingProxyAddress(testProxy)), status: 400, code: CodeAddressEqualsProxy},
		{name: "whatsapp address, sms proxy", call: create(f.conv, newP().SetMessagingBindingAddress("whatsapp:+15550000001").SetMessagingBindingProxyAddress(testProxy)), status: 400, code: CodeChannelTypeMismatch},
		{name: "empty proxy", raw: raw("POST", pPath, url.Values{"MessagingBinding.Address": {"+15550000001"}, "MessagingBinding.ProxyAddress": {""}}), status: 400, code: CodeProxyAddressMissing},
		{name: "proxy too long", call: create(f.conv, newP().SetMessagingBindingAddress("+15550000001").SetMessagingBindingProxyAddress(long)), status: 400, code: CodeInvalidProxyAddress},
		{name: "address too long", call: create(f.conv, newP().SetMessagingBindingAddress(long)), status: 400, code: CodeInvalidParameter},
		{name: "identity too long", call: create(f.conv, newP().SetIdentity(long)), status: 400, code: CodeInvalidParameter},
		{name: "attributes not an object", call: create(f.conv, newP().SetIdentity("x").SetAttributes("[1]")), status: 400, code: CodeInvalidParameter},
		{name: "attributes over 4 KB", call: create(f.conv, newP().SetIdentity("x").SetAttributes(`{"a":"`+strings.Repeat("y", 4096)+`"}`)), status: 400, code: CodeInvalidParameter},
		{name: "bad DateCreated", raw: raw("POST", pPath, url.Values{"Identity": {"x"}, "DateCreated": {"yesterday"}}), status: 400, code: CodeInvalidParameter},
		{name: "role of type service", call: create(f.conv, newP().SetIdentity("x").SetRoleSid(f.svcRole)), status: 400, code: CodeConversationRoleNotFound},
		{name: "unknown role", call: create(f.conv, newP().SetIdentity("x").SetRoleSid("RL00000000000000000000000000000000")), status: 400, code: CodeConversationRoleNotFound},
		// Participants: uniqueness.
		{name: "identity already in the conversation", call: create(f.conv, newP().SetIdentity("alice")), status: 409, code: CodeIdentityInConversation},
		{name: "binding already in the conversation", call: create(f.conv, newP().SetMessagingBindingAddress(testAddress).SetMessagingBindingProxyAddress(testProxy)), status: 409, code: CodeBindingInConversation},
		{name: "binding in another active conversation", call: create(f.other, newP().SetMessagingBindingAddress(testAddress).SetMessagingBindingProxyAddress(testProxy)), status: 409, code: CodeBindingInActiveConv},
		{name: "binding in a conversation of another service", call: func() error {
			dc, err := tw.CreateConversation(nil)
			if err != nil {
				return err
			}
			_, err = tw.CreateServiceConversationParticipant(f.emu.DefaultServiceSID(), *dc.Sid, newP().SetMessagingBindingAddress(testAddress).SetMessagingBindingProxyAddress(testProxy))
			return err
		}, status: 409, code: CodeBindingInActiveConv},
		{name: "projected address alone", call: create(f.conv, newP().SetMessagingBindingProjectedAddress(testProxy)), status: 400, code: CodeInvalidParameter},
		// Participants: closed conversations.
		{name: "add to a closed conversation", call: create(f.closed, newP().SetIdentity("carol")), status: 400, code: CodeConversationClosed},
		{name: "update in a closed conversation", call: update(f.closed, f.closedMB, newU().SetAttributes(`{"a":1}`)), status: 400, code: CodeConversationClosed},
		{name: "delete from a closed conversation", call: func() error {
			return tw.DeleteServiceConversationParticipant(is, f.closed, f.closedMB, nil)
		}, status: 400, code: CodeConversationClosed},
		// Participants: updates.
		{name: "change the proxy address", call: update(f.conv, f.smsMB, newU().SetMessagingBindingProxyAddress("+15017122662")), status: 400, code: CodeProxyAddressNotChangeable},
		{name: "identity for a messaging participant", call: update(f.conv, f.smsMB, newU().SetIdentity("zed")), status: 400, code: CodeInvalidParameter},
		{name: "projected address for a messaging participant", call: update(f.conv, f.smsMB, newU().SetMessagingBindingProjectedAddress(testProxy)), status: 400, code: CodeInvalidParameter},
		{name: "update to a taken identity", call: func() error {
			if _, err := tw.CreateServiceConversationParticipant(is, f.conv, newP().SetIdentity("dave")); err != nil {
				return err
			}
			_, err := tw.UpdateServiceConversationParticipant(is, f.conv, "dave", newU().SetIdentity("alice"))
			return err
		}, status: 409, code: CodeIdentityInConversation},
		{name: "update role of type service", call: update(f.conv, "alice", newU().SetRoleSid(f.svcRole)), status: 400, code: CodeConversationRoleNotFound},
		{name: "bad LastReadMessageIndex", raw: raw("POST", pPath+"/"+f.chatMB, url.Values{"LastReadMessageIndex": {"-1"}}), status: 400, code: CodeInvalidParameter},
		{name: "participants PageSize over 100", call: func() error {
			_, err := tw.PageServiceConversationParticipant(is, f.conv, &conversations.ListServiceConversationParticipantParams{PageSize: ptr(101)}, "", "")
			return err
		}, status: 400, code: CodeInvalidParameter},
		// Conversation-scoped webhooks.
		{name: "webhook in unknown conversation", call: func() error {
			_, err := tw.CreateServiceConversationScopedWebhook(is, "nope", newW("studio").SetConfigurationFlowSid("FW00000000000000000000000000000000"))
			return err
		}, status: 404, code: CodeNotFound},
		{name: "webhook without Target", raw: raw("POST", wPath, url.Values{"Configuration.Url": {"https://example.com"}}), status: 400, code: CodeWebhookTargetMissing},
		{name: "webhook with unknown Target", raw: raw("POST", wPath, url.Values{"Target": {"flex"}}), status: 400, code: CodeInvalidWebhookTarget},
		{name: "webhook without Url", call: createW(newW("webhook").SetConfigurationFilters([]string{"onMessageAdded"})), status: 400, code: CodeWebhookURLMissing},
		{name: "webhook without Filters", call: createW(newW("webhook").SetConfigurationUrl("https://example.com")), status: 400, code: CodeWebhookFiltersMissing},
		{name: "webhook with a relative Url", call: createW(newW("webhook").SetConfigurationUrl("/hook").SetConfigurationFilters([]string{"onMessageAdded"})), status: 400, code: CodeInvalidParameter},
		{name: "webhook with method put", raw: raw("POST", wPath, url.Values{"Target": {"webhook"}, "Configuration.Url": {"https://example.com"}, "Configuration.Filters": {"onMessageAdded"}, "Configuration.Method": {"put"}}), status: 400, code: CodeInvalidParameter},
		{name: "trigger without Url", call: createW(newW("trigger").SetConfigurationTriggers([]string{"help"})), status: 400, code: CodeWebhookURLMissing},
		{name: "trigger without Triggers", call: createW(newW("trigger").SetConfigurationUrl("https://example.com")), status: 400, code: CodeInvalidParameter},
		{name: "six trigger words", call: createW(newW("trigger").SetConfigurationUrl("https://example.com").SetConfigurationTriggers([]string{"a", "b", "c", "d", "e", "f"})), status: 400, code: CodeTooManyTriggers},
		{name: "studio without FlowSid", call: createW(newW("studio")), status: 400, code: CodeInvalidFlowSID},
		{name: "studio with a bad FlowSid", raw: raw("POST", wPath, url.Values{"Target": {"studio"}, "Configuration.FlowSid": {"FWnope"}}), status: 400, code: CodeInvalidFlowSID},
		{name: "bad ReplayAfter", raw: raw("POST", wPath, url.Values{"Target": {"studio"}, "Configuration.FlowSid": {"FW00000000000000000000000000000000"}, "Configuration.ReplayAfter": {"soon"}}), status: 400, code: CodeInvalidParameter},
		{name: "webhook SID not WH", raw: raw("GET", wPath+"/MB00000000000000000000000000000000", nil), status: 400, code: CodeInvalidWebhookSID},
		{name: "unknown webhook", call: func() error {
			_, err := tw.FetchServiceConversationScopedWebhook(is, f.other, "WH00000000000000000000000000000000")
			return err
		}, status: 404, code: CodeWebhookNotFound},
		{name: "webhook of another conversation", call: func() error {
			_, err := tw.FetchServiceConversationScopedWebhook(is, f.other, *hook.Sid)
			return err
		}, status: 404, code: CodeWebhookNotFound},
		{name: "update webhook with method put", raw: raw("POST", "/v1/Services/"+is+"/Conversations/"+f.conv+"/Webhooks/"+*hook.Sid, url.Values{"Configuration.Method": {"put"}}), status: 400, code: CodeInvalidParameter},
		{name: "update trigger to six words", call: func() error {
			w, err := tw.CreateServiceConversationScopedWebhook(is, f.conv, newW("trigger").SetConfigurationUrl("https://example.com").SetConfigurationTriggers([]string{"a"}))
			if err != nil {
				return err
			}
			_, err = tw.UpdateServiceConversationScopedWebhook(is, f.conv, *w.Sid, (&conversations.UpdateServiceConversationScopedWebhookParams{}).
				SetConfigurationTriggers([]string{"a", "b", "c", "d", "e", "f"}))
			return err
		}, status: 400, code: CodeTooManyTriggers},
		{name: "sixth webhook", call: func() error {
			for i := 0; i < 5; i++ {
				if err := createW(newW("studio").SetConfigurationFlowSid("FW00000000000000000000000000000000"))(); err != nil {
					return err
				}
			}
			return createW(newW("studio").SetConfigurationFlowSid("FW00000000000000000000000000000000"))()
		}, status: 400, code: CodeTooManyWebhooks},
		{name: "webhooks PageSize 0", call: func() error {
			_, err := tw.PageServiceConversationScopedWebhook(is, f.conv, &conversations.ListServiceConversationScopedWebhookParams{PageSize: ptr(0)}, "", "")
			return err
		}, status: 400, code: CodeInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.raw != nil {
				st, code := tc.raw()
				if st != tc.status || code != tc.code {
					t.Fatalf("got %d/%d, want %d/%d", st, code, tc.status, tc.code)
				}
				return
			}
			wantRestError(t, tc.call(), tc.status, tc.code)
		})
	}
}

// TestParticipantCounts: at most 50 non-chat participants and 1,000 in all.
func TestParticipantCounts(t *testing.T) {
	f := newKindsFixture(t)
	c, err := f.tw.CreateServiceConversation(f.is, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/Services/" + f.is + "/Conversations/" + *c.Sid + "/Participants"
	for i := 0; i < maxNonChatParticipantsPerConv; i++ {
		if st, body := formDo(t, f.hs, "POST", path, url.Values{"MessagingBinding.Address": {fmt.Sprintf("+1555000%04d", i)}, "MessagingBinding.ProxyAddress": {testProxy}}); st != 201 {
			t.Fatalf("SMS participant %d: %d %v", i, st, body)
		}
	}
	st, body := formDo(t, f.hs, "POST", path, url.Values{"MessagingBinding.Address": {"+15559999999"}, "MessagingBinding.ProxyAddress": {testProxy}})
	if st != 400 || body["code"] != float64(CodeInvalidParameter) {
		t.Fatalf("51st non-chat participant: %d %v", st, body)
	}
	for i := maxNonChatParticipantsPerConv; i < maxParticipantsPerConv; i++ {
		if st, body := formDo(t, f.hs, "POST", path, url.Values{"Identity": {fmt.Sprintf("chat-%d", i)}}); st != 201 {
			t.Fatalf("chat participant %d: %d %v", i, st, body)
		}
	}
	st, body = formDo(t, f.hs, "POST", path, url.Values{"Identity": {"one-too-many"}})
	if st != 400 || body["code"] != float64(CodeInvalidParameter) {
		t.Fatalf("participant 1,001: %d %v", st, body)
	}
	ps, err := f.emu.Participants(f.is, *c.Sid)
	if err != nil || len(ps) != maxParticipantsPerConv {
		t.Fatalf("Participants: %d, %v", len(ps), err)
	}
}

// TestParticipantShapes: what a chat, SMS, WhatsApp and Group MMS participant
// look like, the default role, the implicit user, and updates.
func TestParticipantShapes(t *testing.T) {
	f := newKindsFixture(t)
	tw, is := f.tw, f.is
	c, err := tw.CreateServiceConversation(is, (&conversations.CreateServiceConversationParams{}).SetUniqueName("shapes"))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	chat, err := tw.CreateServiceConversationParticipant(is, "shapes", (&conversations.CreateServiceConversationParticipantParams{}).
		SetIdentity("newcomer").SetAttributes(`{"seat":1}`).SetXTwilioWebhookEnabled("false"))
	if err != nil {
		t.Fatal(err)
	}
	if chat.MessagingBinding != nil || *chat.RoleSid != f.cfg.DefaultConversationRoleSID || *chat.Attributes != `{"seat":1}` ||
		*chat.Url != twilioBase+"/v1/Services/"+is+"/Conversations/"+*c.Sid+"/Participants/"+*chat.Sid ||
		*chat.ConversationSid != *c.Sid || chat.LastReadMessageIndex != nil {
		t.Fatalf("chat participant: %+v", chat)
	}
	users, _ := f.emu.Users(is)
	found := false
	for _, u := range users {
		found = found || u.Identity == "newcomer"
	}
	if !found {
		t.Fatal("adding an unknown identity did not create its user")
	}
	got, _ := f.emu.Conversation(is, "shapes")
	if !got.DateUpdated.Equal(got.DateCreated) {
		t.Fatalf("adding a participant moved the conversation's date_updated to %s", got.DateUpdated)
	}
	wa, err := tw.CreateServiceConversationParticipant(is, *c.Sid, (&conversations.CreateServiceConversationParticipantParams{}).
		SetMessagingBindingAddress("whatsapp:+15558675310").SetMessagingBindingProxyAddress("whatsapp:+15017122661").
		SetDateCreated(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	mb := (*wa.MessagingBinding).(map[string]any)
	if mb["type"] != "whatsapp" || mb["address"] != "whatsapp:+15558675310" || mb["proxy_address"] != "whatsapp:+15017122661" ||
		wa.Identity != nil || wa.RoleSid != nil || !wa.DateCreated.Equal(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("whatsapp participant: %+v %v", wa, mb)
	}
	gmms, err := tw.CreateServiceConversationParticipant(is, *c.Sid, (&conversations.CreateServiceConversationParticipantParams{}).
		SetIdentity("alice").SetMessagingBindingProjectedAddress("+15017122661").SetRoleSid(f.cfg.DefaultConversationCreatorRoleSID))
	if err != nil {
		t.Fatal(err)
	}
	mb = (*gmms.MessagingBinding).(map[string]any)
	if mb["type"] != "sms" || mb["projected_address"] != "+15017122661" || *gmms.RoleSid != f.cfg.DefaultConversationCreatorRoleSID {
		t.Fatalf("Group MMS participant: %+v %v", gmms, mb)
	}
	// The same binding may join again once its other conversation is closed.
	if _, err := tw.UpdateServiceConversation(is, *c.Sid, (&conversations.UpdateServiceConversationParams{}).SetState("closed")); err != nil {
		t.Fatal(err)
	}
	c2, _ := tw.CreateServiceConversation(is, nil)
	if _, err := tw.CreateServiceConversationParticipant(is, *c2.Sid, (&conversations.CreateServiceConversationParticipantParams{}).
		SetMessagingBindingAddress("whatsapp:+15558675310").SetMessagingBindingProxyAddress("whatsapp:+15017122661")); err != nil {
		t.Fatalf("binding of a closed conversation: %v", err)
	}
	// Updates: fetch by identity, same proxy is fine, identity renames.
	p2, err := tw.CreateServiceConversationParticipant(is, *c2.Sid, (&conversations.CreateServiceConversationParticipantParams{}).SetIdentity("erin"))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	up, err := tw.UpdateServiceConversationParticipant(is, *c2.Sid, "erin", (&conversations.UpdateServiceConversationParticipantParams{}).
		SetIdentity("erin2").SetLastReadMessageIndex(3).SetLastReadTimestamp("2024-03-01T12:00:00Z").SetAttributes(`{"x":2}`).SetRoleSid(f.convRole))
	if err != nil {
		t.Fatal(err)
	}
	if *up.Sid != *p2.Sid || *up.Identity != "erin2" || *up.LastReadMessageIndex != 3 || *up.LastReadTimestamp != "2024-03-01T12:00:00Z" ||
		*up.RoleSid != f.convRole || !up.DateUpdated.After(*up.DateCreated) {
		t.Fatalf("updated participant: %+v", up)
	}
	if _, err := tw.FetchServiceConversationParticipant(is, *c2.Sid, "erin2"); err != nil {
		t.Fatalf("fetch by new identity: %v", err)
	}
	if _, err := tw.FetchServiceConversationParticipant(is, *c2.Sid, "erin"); err == nil {
		t.Fatal("old identity still finds the participant")
	}
	ps, _ := f.emu.Participants(is, *c2.Sid)
	sms := ps[0]
	form := url.Values{"MessagingBinding.ProxyAddress": {sms.ProxyAddress}, "MessagingBinding.Address": {"whatsapp:+10000000000"}}
	st, body := formDo(t, f.hs, "POST", "/v1/Services/"+is+"/Conversations/"+*c2.Sid+"/Participants/"+sms.SID, form)
	if st != 200 || body["messaging_binding"].(map[string]any)["address"] != "whatsapp:+15558675310" {
		t.Fatalf("update with the same proxy and another address (ignored): %d %v", st, body)
	}
	if err := tw.DeleteServiceConversationParticipant(is, *c2.Sid, sms.SID, (&conversations.DeleteServiceConversationParticipantParams{}).SetXTwilioWebhookEnabled("true")); err != nil {
		t.Fatal(err)
	}
	if ps, _ := f.emu.Participants(is, *c2.Sid); len(ps) != 1 {
		t.Fatalf("after delete: %d participants", len(ps))
	}
}

// TestConversationWebhookShapes: configuration per target, method case,
// immutable target and replay_after, paging at 5.
func TestConversationWebhookShapes(t *testing.T) {
	f := newKindsFixture(t)
	tw, is := f.tw, f.is
	c, err := tw.CreateServiceConversation(is, nil)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := tw.CreateServiceConversationScopedWebhook(is, *c.Sid, (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("WebHook").SetConfigurationUrl("https://example.com/a").SetConfigurationMethod("POST").
		SetConfigurationFilters([]string{"onMessageAdded", "onParticipantAdded", "onMessageAdded"}).SetConfigurationReplayAfter(2))
	if err != nil {
		t.Fatal(err)
	}
	cfg := (*wh.Configuration).(map[string]any)
	if *wh.Target != "webhook" || cfg["url"] != "https://example.com/a" || cfg["method"] != "post" || cfg["replay_after"] != float64(2) ||
		fmt.Sprint(cfg["filters"]) != "[onMessageAdded onParticipantAdded]" ||
		*wh.Url != twilioBase+"/v1/Services/"+is+"/Conversations/"+*c.Sid+"/Webhooks/"+*wh.Sid {
		t.Fatalf("webhook: %+v %v", wh, cfg)
	}
	// Target and ReplayAfter do not change on update.
	st, body := formDo(t, f.hs, "POST", "/v1/Services/"+is+"/Conversations/"+*c.Sid+"/Webhooks/"+*wh.Sid,
		url.Values{"Target": {"studio"}, "Configuration.ReplayAfter": {"9"}, "Configuration.Method": {"get"}, "Configuration.Filters": {"onConversationUpdated"}})
	cfg = body["configuration"].(map[string]any)
	if st != 200 || body["target"] != "webhook" || cfg["replay_after"] != float64(2) || cfg["method"] != "get" || fmt.Sprint(cfg["filters"]) != "[onConversationUpdated]" {
		t.Fatalf("update: %d %v", st, body)
	}
	tr, err := tw.CreateServiceConversationScopedWebhook(is, *c.Sid, (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("trigger").SetConfigurationUrl("https://example.com/t").SetConfigurationTriggers([]string{"help", "stop"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := (*tr.Configuration).(map[string]any); fmt.Sprint(cfg["triggers"]) != "[help stop]" || cfg["method"] != nil {
		t.Fatalf("trigger: %v", cfg)
	}
	flow := "FW0123456789abcdef0123456789abcdef"
	sw, err := tw.CreateServiceConversationScopedWebhook(is, *c.Sid, (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("studio").SetConfigurationFlowSid(flow))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := (*sw.Configuration).(map[string]any); len(cfg) != 1 || cfg["flow_sid"] != flow {
		t.Fatalf("studio: %v", cfg)
	}
	for i := 0; i < 2; i++ {
		if _, err := tw.CreateServiceConversationScopedWebhook(is, *c.Sid, (&conversations.CreateServiceConversationScopedWebhookParams{}).
			SetTarget("studio").SetConfigurationFlowSid(flow)); err != nil {
			t.Fatal(err)
		}
	}
	// PageSize over 5 is clamped to 5.
	st, body = formDo(t, f.hs, "GET", "/v1/Services/"+is+"/Conversations/"+*c.Sid+"/Webhooks?PageSize=50", nil)
	meta := body["meta"].(map[string]any)
	if st != 200 || len(body["webhooks"].([]any)) != 5 || meta["page_size"] != float64(5) || meta["key"] != "webhooks" {
		t.Fatalf("list: %d %v", st, body)
	}
	all, err := tw.ListServiceConversationScopedWebhook(is, *c.Sid, &conversations.ListServiceConversationScopedWebhookParams{PageSize: ptr(2)})
	if err != nil || len(all) != 5 {
		t.Fatalf("paged list: %d, %v", len(all), err)
	}
	if err := tw.DeleteServiceConversationScopedWebhook(is, *c.Sid, *sw.Sid); err != nil {
		t.Fatal(err)
	}
	if ws, _ := f.emu.ConversationWebhooks(is, *c.Sid); len(ws) != 4 || ws[0].SID != *wh.Sid {
		t.Fatalf("after delete: %+v", ws)
	}
}

// TestParticipantPagesAreScopedToTheirConversation: a page token of one
// conversation's participants is refused on another's.
func TestParticipantPagesAreScopedToTheirConversation(t *testing.T) {
	f := newConvFixture(t)
	page, err := f.tw.PageServiceConversationParticipant(f.is, f.conv, &conversations.ListServiceConversationParticipantParams{PageSize: ptr(1)}, "", "")
	if err != nil || page.Meta.NextPageUrl == nil {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	next, _ := url.Parse(*page.Meta.NextPageUrl)
	tok := next.Query().Get("PageToken")
	if _, err := f.tw.PageServiceConversationParticipant(f.is, f.conv, &conversations.ListServiceConversationParticipantParams{PageSize: ptr(1)}, tok, "1"); err != nil {
		t.Fatalf("second page: %v", err)
	}
	_, err = f.tw.PageServiceConversationParticipant(f.is, f.other, &conversations.ListServiceConversationParticipantParams{PageSize: ptr(1)}, tok, "1")
	wantRestError(t, err, 400, CodeInvalidPageToken)
}

// TestConversationAndServiceDeleteCascade: participants and webhooks go with
// their conversation, and everything with its service.
func TestConversationAndServiceDeleteCascade(t *testing.T) {
	f := newConvFixture(t)
	if _, err := f.tw.CreateServiceConversationScopedWebhook(f.is, f.conv, (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("studio").SetConfigurationFlowSid("FW0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	if err := f.tw.DeleteServiceConversation(f.is, f.conv, nil); err != nil {
		t.Fatal(err)
	}
	// A new conversation under the same unique_name starts empty, and the
	// deleted one's SMS binding is free again.
	c, err := f.tw.CreateServiceConversation(f.is, (&conversations.CreateServiceConversationParams{}).SetUniqueName("conv"))
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := f.emu.Participants(f.is, *c.Sid); len(ps) != 0 {
		t.Fatalf("participants survived: %+v", ps)
	}
	if ws, _ := f.emu.ConversationWebhooks(f.is, *c.Sid); len(ws) != 0 {
		t.Fatalf("webhooks survived: %+v", ws)
	}
	if _, err := f.tw.CreateServiceConversationParticipant(f.is, f.other, (&conversations.CreateServiceConversationParticipantParams{}).
		SetMessagingBindingAddress(testAddress).SetMessagingBindingProxyAddress(testProxy)); err != nil {
		t.Fatalf("binding of a deleted conversation: %v", err)
	}
	if err := f.tw.DeleteService(f.is); err != nil {
		t.Fatal(err)
	}
	if _, err := f.emu.Participants(f.is, f.other); err == nil {
		t.Fatal("participants of a deleted service are still there")
	}
	// The short /v1/Conversations/{CH}/Participants route is not served.
	c2, _ := f.tw.CreateConversation(nil)
	_, err = f.tw.CreateConversationParticipant(*c2.Sid, (&conversations.CreateConversationParticipantParams{}).SetIdentity("x"))
	wantRestError(t, err, 404, CodeNotFound)
}

// TestParticipantActionsShareTheConversationBucket: participant
// create/update/delete and conversation updates spend the conversation's
// bucket, not the service's.
func TestParticipantActionsShareTheConversationBucket(t *testing.T) {
	f := newConvFixture(t)
	if err := f.emu.SetFaults(Faults{ActionsPerSecondPerService: 2}); err != nil {
		t.Fatal(err)
	}
	tw, is := f.tw, f.is
	if _, err := tw.UpdateServiceConversation(is, f.conv, (&conversations.UpdateServiceConversationParams{}).SetFriendlyName("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.CreateServiceConversationParticipant(is, f.conv, (&conversations.CreateServiceConversationParticipantParams{}).SetIdentity("p1")); err != nil {
		t.Fatal(err)
	}
	_, err := tw.UpdateServiceConversationParticipant(is, f.conv, "p1", (&conversations.UpdateServiceConversationParticipantParams{}).SetAttributes(`{"a":1}`))
	wantRestError(t, err, 429, CodeTooManyRequests)
	// Another conversation and the service bucket are untouched.
	if _, err := tw.CreateServiceConversationParticipant(is, f.other, (&conversations.CreateServiceConversationParticipantParams{}).SetIdentity("p1")); err != nil {
		t.Fatalf("other conversation: %v", err)
	}
	if _, err := tw.CreateServiceRole(is, (&conversations.CreateServiceRoleParams{}).SetFriendlyName("r").SetType("service").SetPermission([]string{"joinConversation"})); err != nil {
		t.Fatalf("service bucket: %v", err)
	}
	f.clock.Advance(time.Second)
	if err := tw.DeleteServiceConversationParticipant(is, f.conv, "p1", nil); err != nil {
		t.Fatalf("after a second: %v", err)
	}
}

// TestRestartKeepsParticipantsAndWebhooks: both survive a restart from the
// data file, in order, with their natural keys.
func TestRestartKeepsParticipantsAndWebhooks(t *testing.T) {
	clock := newFakeClock()
	opts := testOptions(clock)
	opts.DataFile = filepath.Join(t.TempDir(), "emu.json")
	emu, hs := startEmulator(t, opts)
	tw := twilioFor(t, hs)
	is := emu.DefaultServiceSID()
	c, err := tw.CreateServiceConversation(is, (&conversations.CreateServiceConversationParams{}).SetUniqueName("kept"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := tw.CreateServiceConversationParticipant(is, "kept", (&conversations.CreateServiceConversationParticipantParams{}).SetIdentity(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.CreateServiceConversationParticipant(is, "kept", (&conversations.CreateServiceConversationParticipantParams{}).
		SetMessagingBindingAddress(testAddress).SetMessagingBindingProxyAddress(testProxy)); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.CreateServiceConversationScopedWebhook(is, "kept", (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("trigger").SetConfigurationUrl("https://example.com").SetConfigurationTriggers([]string{"hi"}).SetConfigurationMethod("get")); err != nil {
		t.Fatal(err)
	}
	wantP, _ := emu.Participants(is, "kept")
	wantW, _ := emu.ConversationWebhooks(is, "kept")
	emu2, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	gotP, _ := emu2.Participants(is, *c.Sid)
	gotW, _ := emu2.ConversationWebhooks(is, *c.Sid)
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	if js(gotP) != js(wantP) || js(gotW) != js(wantW) || len(gotP) != 3 || len(gotW) != 1 {
		t.Fatalf("after restart:\n%s\n%s\nwant\n%s\n%s", js(gotP), js(gotW), js(wantP), js(wantW))
	}
	tw2 := twilioFor(t, startServer(t, emu2))
	_, err = tw2.CreateServiceConversationParticipant(is, "kept", (&conversations.CreateServiceConversationParticipantParams{}).SetIdentity("b"))
	wantRestError(t, err, 409, CodeIdentityInConversation)
}

// TestAdminParticipantsAndWebhooks: the admin routes show both kinds, and an
// unknown conversation is 404.
func TestAdminParticipantsAndWebhooks(t *testing.T) {
	f := newConvFixture(t)
	if _, err := f.tw.CreateServiceConversationScopedWebhook(f.is, f.conv, (&conversations.CreateServiceConversationScopedWebhookParams{}).
		SetTarget("studio").SetConfigurationFlowSid("FW0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, []map[string]any) {
		req, _ := http.NewRequest("GET", f.hs.URL+path, nil)
		req.SetBasicAuth(testAccountSID, testAuthToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, ps := get("/__emulator/participants?service=" + f.is + "&conversation=conv"); st != 200 || len(ps) != 2 || ps[0]["identity"] != "alice" || ps[1]["address"] != testAddress {
		t.Fatalf("admin participants: %d %v", st, ps)
	}
	if st, ws := get("/__emulator/conversation-webhooks?service=" + f.is + "&conversation=" + f.conv); st != 200 || len(ws) != 1 || ws[0]["target"] != "studio" {
		t.Fatalf("admin conversation-webhooks: %d %v", st, ws)
	}
	if st, _ := get("/__emulator/participants?service=" + f.is + "&conversation=nope"); st != 404 {
		t.Fatalf("admin participants of unknown conversation: %d", st)
	}
	st := f.emu.Stats()
	for route, want := range map[string]int64{
		"POST /v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Participants": 3,
		"POST /v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Webhooks":     1,
	} {
		if st.ByRoute[route] != want {
			t.Errorf("stats %s = %d, want %d", route, st.ByRoute[route], want)
		}
	}
}
