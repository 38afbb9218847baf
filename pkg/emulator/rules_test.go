package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

// TestErrorAnswers checks every rule of twilio-notes.md the emulator enforces,
// through twilio-go, as convsync will see them.
func TestErrorAnswers(t *testing.T) {
	clock := newFakeClock()
	emu, hs := startEmulator(t, testOptions(clock))
	tw := twilioFor(t, hs)
	svc, err := emu.AddService("rules")
	if err != nil {
		t.Fatal(err)
	}
	is := svc.SID
	if _, err := tw.CreateServiceConversation(is, (&conversations.CreateServiceConversationParams{}).SetUniqueName("taken")); err != nil {
		t.Fatal(err)
	}
	other, err := tw.CreateServiceConversation(is, (&conversations.CreateServiceConversationParams{}).SetUniqueName("other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tw.CreateServiceConversation(is, (&conversations.CreateServiceConversationParams{}).SetUniqueName("closed")); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.UpdateServiceConversation(is, "closed", (&conversations.UpdateServiceConversationParams{}).SetState("closed")); err != nil {
		t.Fatal(err)
	}
	create := func(p *conversations.CreateServiceConversationParams) func() error {
		return func() error { _, err := tw.CreateServiceConversation(is, p); return err }
	}
	update := func(sid string, p *conversations.UpdateServiceConversationParams) func() error {
		return func() error { _, err := tw.UpdateServiceConversation(is, sid, p); return err }
	}
	newCreate := func() *conversations.CreateServiceConversationParams {
		return &conversations.CreateServiceConversationParams{}
	}
	newUpdate := func() *conversations.UpdateServiceConversationParams {
		return &conversations.UpdateServiceConversationParams{}
	}
	tests := []struct {
		name         string
		call         func() error
		status, code int
	}{
		{"wrong auth token", func() error {
			_, err := newTwilio(t, hs.URL, testAccountSID, "wrong", nil).FetchService(is)
			return err
		}, 401, CodeUnauthorized},
		{"no credentials", func() error {
			_, err := newTwilio(t, hs.URL, "", "", nil).FetchService(is)
			return err
		}, 401, CodeUnauthorized},
		{"API key with the auth token", func() error {
			_, err := newTwilio(t, hs.URL, testAPIKey, testAuthToken, nil).FetchService(is)
			return err
		}, 401, CodeUnauthorized},
		{"unknown service", func() error { _, err := tw.FetchService("IS00000000000000000000000000000000"); return err }, 404, CodeNotFound},
		{"conversation in unknown service", func() error {
			_, err := tw.FetchServiceConversation("IS00000000000000000000000000000000", "taken")
			return err
		}, 404, CodeNotFound},
		{"unknown conversation", func() error { _, err := tw.FetchServiceConversation(is, "missing"); return err }, 404, CodeNotFound},
		{"delete unknown conversation", func() error { return tw.DeleteServiceConversation(is, "missing", nil) }, 404, CodeNotFound},
		{"service without FriendlyName", func() error { _, err := tw.CreateService(nil); return err }, 400, CodeInvalidParameter},
		{"unique name taken on create", create(newCreate().SetUniqueName("taken")), 409, CodeUniqueNameTaken},
		{"unique name taken on update", update(*other.Sid, newUpdate().SetUniqueName("taken")), 409, CodeUniqueNameTaken},
		{"unique name shaped like a SID", create(newCreate().SetUniqueName("CH0123456789abcdef0123456789abcdef")), 400, CodeUniqueNameIsSID},
		{"unique name shaped like any SID", update("taken", newUpdate().SetUniqueName("ZZ0123456789ABCDEF0123456789abcdef")), 400, CodeUniqueNameIsSID},
		{"create closed", create(newCreate().SetState("closed")), 400, CodeCreateClosed},
		{"update closed", update("closed", newUpdate().SetFriendlyName("again")), 400, CodeConversationClosed},
		{"reopen closed", update("closed", newUpdate().SetState("active")), 400, CodeConversationClosed},
		{"inactive timer under a minute", create(newCreate().SetState("active").SetTimersInactive("PT59S")), 400, CodeTimerInactiveTooLow},
		{"closed timer under ten minutes", update("taken", newUpdate().SetState("active").SetTimersClosed("PT9M")), 400, CodeTimerClosedTooLow},
		{"inactive timer not ISO 8601", create(newCreate().SetState("active").SetTimersInactive("5 minutes")), 400, CodeTimerInactiveFormat},
		{"closed timer not ISO 8601", create(newCreate().SetState("active").SetTimersClosed("PT")), 400, CodeTimerClosedFormat},
		{"timers without State", create(newCreate().SetTimersClosed("PT1H")), 400, CodeTimersWithoutState},
		{"attributes not JSON", create(newCreate().SetAttributes("{nope")), 400, CodeInvalidParameter},
		{"attributes over 16 KB", create(newCreate().SetAttributes(`"` + strings.Repeat("a", 16*1024-1) + `"`)), 400, CodeInvalidParameter},
		{"friendly name over 256", update("taken", newUpdate().SetFriendlyName(strings.Repeat("é", 257))), 400, CodeInvalidParameter},
		{"messaging service not MG", create(newCreate().SetMessagingServiceSid("IS0123456789abcdef0123456789abcdef")), 400, CodeInvalidParameter},
		{"unknown state", update("taken", newUpdate().SetState("initializing")), 400, CodeInvalidParameter},
		{"page size over 100", func() error {
			_, err := tw.PageServiceConversation(is, (&conversations.ListServiceConversationParams{}).SetPageSize(101), "", "")
			return err
		}, 400, CodeInvalidParameter},
		{"made-up page token", func() error {
			_, err := tw.PageServiceConversation(is, nil, "PTCH0123456789abcdef0123456789abcdef", "1")
			return err
		}, 400, CodeInvalidPageToken},
		{"bad StartDate", func() error {
			_, err := tw.PageServiceConversation(is, (&conversations.ListServiceConversationParams{}).SetStartDate("yesterday"), "", "")
			return err
		}, 400, CodeInvalidParameter},
		{"delete default service", func() error { return tw.DeleteService(emu.DefaultServiceSID()) }, 400, CodeInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantRestError(t, tc.call(), tc.status, tc.code)
		})
	}
	// Refused requests changed nothing.
	convs, _ := emu.Conversations(is)
	if len(convs) != 3 {
		t.Errorf("refused requests left %d conversations, want 3", len(convs))
	}
}

func TestAttributesLimitIsInclusive(t *testing.T) {
	_, hs := startEmulator(t, testOptions(newFakeClock()))
	tw := twilioFor(t, hs)
	attrs := `"` + strings.Repeat("a", 16*1024-2) + `"`
	c, err := tw.CreateConversation((&conversations.CreateConversationParams{}).SetAttributes(attrs))
	if err != nil {
		t.Fatalf("16 KB of attributes refused: %v", err)
	}
	if *c.Attributes != attrs {
		t.Errorf("attributes changed")
	}
}

func TestAPIKeyCredentials(t *testing.T) {
	_, hs := startEmulator(t, testOptions(newFakeClock()))
	if _, err := newTwilio(t, hs.URL, testAPIKey, testAPISecret, nil).ListService(nil); err != nil {
		t.Fatalf("API key and secret refused: %v", err)
	}
}

// TestConversationShape checks what a created, fetched and updated conversation
// looks like: the fields convsync reads.
func TestConversationShape(t *testing.T) {
	clock := newFakeClock()
	emu, hs := startEmulator(t, testOptions(clock))
	tw := twilioFor(t, hs)

	bare, err := tw.CreateConversation(nil)
	if err != nil {
		t.Fatal(err)
	}
	if *bare.Attributes != "{}" || bare.FriendlyName != nil || bare.UniqueName != nil || *bare.State != "active" {
		t.Errorf("defaults: attributes %q friendly %v unique %v state %q", *bare.Attributes, bare.FriendlyName, bare.UniqueName, *bare.State)
	}
	if bare.MessagingServiceSid == nil || !strings.HasPrefix(*bare.MessagingServiceSid, "MG") {
		t.Errorf("messaging_service_sid = %v, want the default MG", bare.MessagingServiceSid)
	}
	if *bare.ChatServiceSid != emu.DefaultServiceSID() || *bare.AccountSid != testAccountSID {
		t.Errorf("chat_service_sid %s account_sid %s", *bare.ChatServiceSid, *bare.AccountSid)
	}
	if bare.Bindings != nil {
		t.Errorf("bindings = %v, want null", *bare.Bindings)
	}
	if got := (*bare.Timers).(map[string]interface{}); len(got) != 0 {
		t.Errorf("timers = %v, want {}", got)
	}
	wantURL := twilioBase + "/v1/Conversations/" + *bare.Sid
	if *bare.Url != wantURL || (*bare.Links)["participants"] != wantURL+"/Participants" {
		t.Errorf("url %s links %v", *bare.Url, *bare.Links)
	}
	if !bare.DateCreated.Equal(clock.Now()) {
		t.Errorf("date_created %v, want %v", bare.DateCreated, clock.Now())
	}

	attrs := "{ \"b\": 1,\n \"a\": [2] }"
	c, err := tw.CreateConversation((&conversations.CreateConversationParams{}).SetAttributes(attrs).
		SetFriendlyName("Full").SetUniqueName("full").SetMessagingServiceSid(testMG).
		SetState("active").SetTimersInactive("PT5M").SetTimersClosed("P1DT1H"))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Attributes != attrs {
		t.Errorf("attributes %q, want the text as sent %q", *c.Attributes, attrs)
	}
	timers := (*c.Timers).(map[string]interface{})
	if timers["date_inactive"] != "2024-03-01T12:05:00Z" || timers["date_closed"] != "2024-03-02T13:00:00Z" {
		t.Errorf("timers = %v", timers)
	}
	if _, ok := timers["inactive"]; ok {
		t.Errorf("timer durations must never be echoed: %v", timers)
	}

	// Re-sending a timer re-arms it from now; the other one stays.
	clock.Advance(3 * time.Minute)
	c, err = tw.UpdateConversation("full", (&conversations.UpdateConversationParams{}).SetState("active").SetTimersInactive("PT5M"))
	if err != nil {
		t.Fatal(err)
	}
	timers = (*c.Timers).(map[string]interface{})
	if timers["date_inactive"] != "2024-03-01T12:08:00Z" || timers["date_closed"] != "2024-03-02T13:00:00Z" {
		t.Errorf("re-armed timers = %v", timers)
	}
	if !c.DateUpdated.Equal(clock.Now()) {
		t.Errorf("date_updated %v, want %v", c.DateUpdated, clock.Now())
	}

	// The inactive timer fires on its own; the closed one later.
	clock.Advance(5 * time.Minute)
	c, _ = tw.FetchConversation("full")
	if *c.State != "inactive" {
		t.Errorf("after date_inactive: state %q", *c.State)
	}
	clock.Advance(25 * time.Hour)
	c, _ = tw.FetchConversation(*c.Sid)
	if *c.State != "closed" || len((*c.Timers).(map[string]interface{})) != 0 {
		t.Errorf("after date_closed: state %q timers %v", *c.State, *c.Timers)
	}

	// Empty values on update leave fields as they are.
	d, err := tw.UpdateConversation(*bare.Sid, (&conversations.UpdateConversationParams{}).SetFriendlyName("named"))
	if err != nil {
		t.Fatal(err)
	}
	d, err = tw.UpdateConversation(*bare.Sid, (&conversations.UpdateConversationParams{}).SetFriendlyName(""))
	if err != nil || *d.FriendlyName != "named" {
		t.Errorf("FriendlyName \"\" cleared the name: %v, %v", d.FriendlyName, err)
	}
}

func TestUniqueNameIsEscapedInPath(t *testing.T) {
	emu, hs := startEmulator(t, testOptions(newFakeClock()))
	tw := twilioFor(t, hs)
	name := "team/a?b c"
	c, err := tw.CreateConversation((&conversations.CreateConversationParams{}).SetUniqueName(name))
	if err != nil {
		t.Fatal(err)
	}
	// twilio-go does not escape path parameters; a careful client does.
	if _, err := tw.FetchConversation(url.PathEscape(name)); err != nil {
		t.Fatalf("fetch by escaped unique_name: %v", err)
	}
	if err := tw.DeleteServiceConversation(emu.DefaultServiceSID(), url.PathEscape(name), nil); err != nil {
		t.Fatalf("delete by escaped unique_name: %v", err)
	}
	if _, err := emu.Conversation("", *c.Sid); err == nil {
		t.Error("conversation still there after delete")
	}
}

func TestServices(t *testing.T) {
	emu, hs := startEmulator(t, testOptions(newFakeClock()))
	tw := twilioFor(t, hs)
	list, err := tw.ListService(nil)
	if err != nil || len(list) != 1 || *list[0].Sid != emu.DefaultServiceSID() || *list[0].FriendlyName != DefaultServiceName {
		t.Fatalf("a new account lists only its default service: %v %v", list, err)
	}
	svc, err := tw.CreateService(&conversations.CreateServiceParams{FriendlyName: ptr("support")})
	if err != nil {
		t.Fatal(err)
	}
	if (*svc.Links)["conversations"] != twilioBase+"/v1/Services/"+*svc.Sid+"/Conversations" || len(*svc.Links) != 7 {
		t.Errorf("links = %v", *svc.Links)
	}
	if _, err := tw.CreateServiceConversation(*svc.Sid, (&conversations.CreateServiceConversationParams{}).SetUniqueName("x")); err != nil {
		t.Fatal(err)
	}
	// Unique names are per service.
	if _, err := tw.CreateConversation((&conversations.CreateConversationParams{}).SetUniqueName("x")); err != nil {
		t.Fatalf("same unique_name in another service: %v", err)
	}
	if err := tw.DeleteService(*svc.Sid); err != nil {
		t.Fatal(err)
	}
	_, err = tw.FetchServiceConversation(*svc.Sid, "x")
	wantRestError(t, err, 404, CodeNotFound)
	if got, _ := emu.Conversations(""); len(got) != 1 {
		t.Errorf("deleting a service touched the default service: %d left", len(got))
	}
}

func TestDeleteAnswers204WithoutBody(t *testing.T) {
	emu, hs := startEmulator(t, testOptions(newFakeClock()))
	sids, err := emu.SeedConversations("", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodDelete, hs.URL+"/v1/Conversations/"+sids[0], nil)
	req.SetBasicAuth(testAccountSID, testAuthToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.ContentLength > 0 {
		t.Errorf("status %d length %d", resp.StatusCode, resp.ContentLength)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, opts := range []Options{
		{AccountSID: "ACnothex", AuthToken: "x"},
		{AccountSID: testAccountSID},
		{AccountSID: testAccountSID, AuthToken: "x", APIKey: testAPIKey},
		{AccountSID: testAccountSID, AuthToken: "x", Faults: Faults{Error500AfterWrite: 2}},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("New(%+v) accepted", opts)
		}
	}
}
