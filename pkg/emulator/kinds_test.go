package emulator

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

// formDo sends one raw form request (repeated keys as given) and decodes the
// JSON answer, for what twilio-go hides or cannot send.
func formDo(t *testing.T, hs *httptest.Server, method, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testAccountSID, testAuthToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// kindsFixture is a service with one extra role of each type and a user.
type kindsFixture struct {
	emu                *Server
	hs                 *httptest.Server
	tw                 *conversations.ApiService
	is                 string
	svcRole, convRole  string // created roles
	cfg                ServiceConfiguration
	userSID, userIdent string
	clock              *fakeClock
}

func newKindsFixture(t *testing.T) *kindsFixture {
	t.Helper()
	clock := newFakeClock()
	emu, hs := startEmulator(t, testOptions(clock))
	tw := twilioFor(t, hs)
	svc, err := tw.CreateService(&conversations.CreateServiceParams{FriendlyName: ptr("kinds")})
	if err != nil {
		t.Fatal(err)
	}
	f := &kindsFixture{emu: emu, hs: hs, tw: tw, is: *svc.Sid, clock: clock}
	sr, err := tw.CreateServiceRole(f.is, (&conversations.CreateServiceRoleParams{}).SetFriendlyName("agent").
		SetType("service").SetPermission([]string{"joinConversation", "createConversation"}))
	if err != nil {
		t.Fatal(err)
	}
	cr, err := tw.CreateServiceRole(f.is, (&conversations.CreateServiceRoleParams{}).SetFriendlyName("member").
		SetType("conversation").SetPermission([]string{"sendMessage"}))
	if err != nil {
		t.Fatal(err)
	}
	f.svcRole, f.convRole = *sr.Sid, *cr.Sid
	u, err := tw.CreateServiceUser(f.is, (&conversations.CreateServiceUserParams{}).SetIdentity("alice"))
	if err != nil {
		t.Fatal(err)
	}
	f.userSID, f.userIdent = *u.Sid, "alice"
	st, _ := emu.Settings(f.is)
	f.cfg = st.Configuration
	return f
}

// TestKindRules checks every rule of roles, users and the service singletons
// (status and Twilio error code), through twilio-go where it can send the
// request and raw otherwise.
func TestKindRules(t *testing.T) {
	f := newKindsFixture(t)
	tw, is := f.tw, f.is
	const unknownIS = "IS00000000000000000000000000000000"
	const unknownRL = "RL00000000000000000000000000000000"
	newRole := func() *conversations.CreateServiceRoleParams {
		return (&conversations.CreateServiceRoleParams{}).SetFriendlyName("r").SetType("service").SetPermission([]string{"joinConversation"})
	}
	createRole := func(p *conversations.CreateServiceRoleParams) func() error {
		return func() error { _, err := tw.CreateServiceRole(is, p); return err }
	}
	updateRole := func(sid string, p *conversations.UpdateServiceRoleParams) func() error {
		return func() error { _, err := tw.UpdateServiceRole(is, sid, p); return err }
	}
	createUser := func(p *conversations.CreateServiceUserParams) func() error {
		return func() error { _, err := tw.CreateServiceUser(is, p); return err }
	}
	updateUser := func(sid string, p *conversations.UpdateServiceUserParams) func() error {
		return func() error { _, err := tw.UpdateServiceUser(is, sid, p); return err }
	}
	updateConfig := func(p *conversations.UpdateServiceConfigurationParams) func() error {
		return func() error { _, err := tw.UpdateServiceConfiguration(is, p); return err }
	}
	updateHooks := func(p *conversations.UpdateServiceWebhookConfigurationParams) func() error {
		return func() error { _, err := tw.UpdateServiceWebhookConfiguration(is, p); return err }
	}
	raw := func(method, path string, form url.Values) func() (int, int) {
		return func() (int, int) {
			st, body := formDo(t, f.hs, method, path, form)
			code, _ := body["code"].(float64)
			return st, int(code)
		}
	}
	hooks := func() *conversations.UpdateServiceWebhookConfigurationParams {
		return &conversations.UpdateServiceWebhookConfigurationParams{}
	}
	tests := []struct {
		name         string
		call         func() error
		raw          func() (int, int)
		status, code int
	}{
		// Roles.
		{name: "role in unknown service", call: func() error { _, err := tw.CreateServiceRole(unknownIS, newRole()); return err }, status: 404, code: CodeNotFound},
		{name: "list roles of unknown service", call: func() error { _, err := tw.ListServiceRole(unknownIS, nil); return err }, status: 404, code: CodeNotFound},
		{name: "role without FriendlyName", call: createRole((&conversations.CreateServiceRoleParams{}).SetType("service").SetPermission([]string{"joinConversation"})), status: 400, code: CodeFriendlyNameMissing},
		{name: "role with empty FriendlyName", call: createRole(newRole().SetFriendlyName("")), status: 400, code: CodeFriendlyNameMissing},
		{name: "role FriendlyName over 256", call: createRole(newRole().SetFriendlyName(strings.Repeat("é", 257))), status: 400, code: CodeFriendlyNameTooLong},
		{name: "role without Type", call: createRole((&conversations.CreateServiceRoleParams{}).SetFriendlyName("r").SetPermission([]string{"joinConversation"})), status: 400, code: CodeInvalidRoleType},
		{name: "role with bad Type", call: createRole(newRole().SetType("channel")), status: 400, code: CodeInvalidRoleType},
		{name: "role without Permission", call: createRole((&conversations.CreateServiceRoleParams{}).SetFriendlyName("r").SetType("service")), status: 400, code: CodeInvalidParameter},
		{name: "role with unknown permission", call: createRole(newRole().SetPermission([]string{"joinConversation", "fly"})), status: 400, code: CodePermissionNotFound},
		{name: "permission names are case-sensitive", call: createRole(newRole().SetPermission([]string{"SendMessage"})), status: 400, code: CodePermissionNotFound},
		{name: "fetch unknown role", call: func() error { _, err := tw.FetchServiceRole(is, unknownRL); return err }, status: 404, code: CodeRoleNotFound},
		{name: "fetch role by name", call: func() error { _, err := tw.FetchServiceRole(is, "agent"); return err }, status: 404, code: CodeRoleNotFound},
		{name: "update unknown role", call: updateRole(unknownRL, (&conversations.UpdateServiceRoleParams{}).SetPermission([]string{"sendMessage"})), status: 404, code: CodeRoleNotFound},
		{name: "delete unknown role", call: func() error { return tw.DeleteServiceRole(is, unknownRL) }, status: 404, code: CodeRoleNotFound},
		{name: "update role without Permission", call: updateRole(f.svcRole, &conversations.UpdateServiceRoleParams{}), status: 400, code: CodeInvalidParameter},
		{name: "update role with unknown permission", call: updateRole(f.svcRole, (&conversations.UpdateServiceRoleParams{}).SetPermission([]string{"x"})), status: 400, code: CodePermissionNotFound},
		{name: "delete a default role in use", call: func() error { return tw.DeleteServiceRole(is, f.cfg.DefaultChatServiceRoleSID) }, status: 400, code: CodeInvalidParameter},
		{name: "role PageSize 0", call: func() error {
			_, err := tw.PageServiceRole(is, (&conversations.ListServiceRoleParams{}).SetPageSize(0), "", "")
			return err
		}, status: 400, code: CodeInvalidParameter},
		{name: "role made-up page token", call: func() error { _, err := tw.PageServiceRole(is, nil, "PTnope", "1"); return err }, status: 400, code: CodeInvalidPageToken},

		// Users.
		{name: "user without Identity", call: createUser(&conversations.CreateServiceUserParams{}), status: 400, code: CodeInvalidParameter},
		{name: "user Identity over 256", call: createUser((&conversations.CreateServiceUserParams{}).SetIdentity(strings.Repeat("a", 257))), status: 400, code: CodeInvalidParameter},
		{name: "duplicate identity", call: createUser((&conversations.CreateServiceUserParams{}).SetIdentity("alice")), status: 409, code: CodeUserExists},
		{name: "user with unknown role", call: createUser((&conversations.CreateServiceUserParams{}).SetIdentity("u1").SetRoleSid(unknownRL)), status: 400, code: CodeRoleNotFound},
		{name: "user with a conversation role", call: createUser((&conversations.CreateServiceUserParams{}).SetIdentity("u2").SetRoleSid(f.convRole)), status: 400, code: CodeRoleNotFound},
		{name: "update user to a conversation role", call: updateUser("alice", (&conversations.UpdateServiceUserParams{}).SetRoleSid(f.convRole)), status: 400, code: CodeRoleNotFound},
		{name: "user attributes not JSON", call: createUser((&conversations.CreateServiceUserParams{}).SetIdentity("u3").SetAttributes("{nope")), status: 400, code: CodeInvalidParameter},
		{name: "user attributes not an object", call: updateUser("alice", (&conversations.UpdateServiceUserParams{}).SetAttributes(`[1]`)), status: 400, code: CodeInvalidParameter},
		{name: "user FriendlyName over 256", call: updateUser("alice", (&conversations.UpdateServiceUserParams{}).SetFriendlyName(strings.Repeat("a", 257))), status: 400, code: CodeInvalidParameter},
		{name: "fetch unknown user", call: func() error { _, err := tw.FetchServiceUser(is, "bob"); return err }, status: 404, code: CodeNotFound},
		{name: "identity is case-sensitive", call: func() error { _, err := tw.FetchServiceUser(is, "Alice"); return err }, status: 404, code: CodeNotFound},
		{name: "update unknown user", call: updateUser("bob", (&conversations.UpdateServiceUserParams{}).SetFriendlyName("b")), status: 404, code: CodeNotFound},
		{name: "delete unknown user", call: func() error { return tw.DeleteServiceUser(is, "bob", nil) }, status: 404, code: CodeNotFound},
		{name: "user in unknown service", call: func() error {
			_, err := tw.CreateServiceUser(unknownIS, (&conversations.CreateServiceUserParams{}).SetIdentity("x"))
			return err
		}, status: 404, code: CodeNotFound},

		// Service configuration.
		{name: "configuration of unknown service", call: func() error { _, err := tw.FetchServiceConfiguration(unknownIS); return err }, status: 404, code: CodeNotFound},
		{name: "chat service role unknown", call: updateConfig((&conversations.UpdateServiceConfigurationParams{}).SetDefaultChatServiceRoleSid(unknownRL)), status: 400, code: CodeRoleNotFound},
		{name: "chat service role of type conversation", call: updateConfig((&conversations.UpdateServiceConfigurationParams{}).SetDefaultChatServiceRoleSid(f.convRole)), status: 400, code: CodeRoleNotFound},
		{name: "conversation role of type service", call: updateConfig((&conversations.UpdateServiceConfigurationParams{}).SetDefaultConversationRoleSid(f.svcRole)), status: 400, code: CodeConversationRoleNotFound},
		{name: "conversation creator role unknown", call: updateConfig((&conversations.UpdateServiceConfigurationParams{}).SetDefaultConversationCreatorRoleSid(unknownRL)), status: 400, code: CodeConversationRoleNotFound},
		{name: "role of another service", raw: raw(http.MethodPost, "/v1/Services/"+is+"/Configuration",
			url.Values{"DefaultChatServiceRoleSid": {f.emu.mustConfig(t, "").DefaultChatServiceRoleSID}}), status: 400, code: CodeRoleNotFound},
		{name: "ReachabilityEnabled not a bool", raw: raw(http.MethodPost, "/v1/Services/"+is+"/Configuration",
			url.Values{"ReachabilityEnabled": {"yes"}}), status: 400, code: CodeInvalidParameter},

		// Notifications.
		{name: "notifications of unknown service", call: func() error { _, err := tw.FetchServiceNotification(unknownIS); return err }, status: 404, code: CodeNotFound},
		{name: "notification flag not a bool", raw: raw(http.MethodPost, "/v1/Services/"+is+"/Configuration/Notifications",
			url.Values{"NewMessage.WithMedia.Enabled": {"sometimes"}}), status: 400, code: CodeInvalidParameter},

		// Webhooks.
		{name: "webhooks of unknown service", call: func() error { _, err := tw.FetchServiceWebhookConfiguration(unknownIS); return err }, status: 404, code: CodeNotFound},
		{name: "relative pre-webhook URL", call: updateHooks(hooks().SetPreWebhookUrl("/hook")), status: 400, code: CodeInvalidParameter},
		{name: "ftp post-webhook URL", call: updateHooks(hooks().SetPostWebhookUrl("ftp://example.com/hook")), status: 400, code: CodeInvalidParameter},
		{name: "URL without host", call: updateHooks(hooks().SetPostWebhookUrl("https://")), status: 400, code: CodeInvalidParameter},
		{name: "bad method", call: updateHooks(hooks().SetMethod("PUT")), status: 400, code: CodeInvalidParameter},
		{name: "unknown filter", call: updateHooks(hooks().SetFilters([]string{"onMessageAdded", "onUserAdded"})), status: 400, code: CodeInvalidParameter},
		{name: "filter names are case-sensitive", call: updateHooks(hooks().SetFilters([]string{"onmessageadded"})), status: 400, code: CodeInvalidParameter},
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
	// Refused requests changed nothing.
	roles, _ := f.emu.Roles(is)
	users, _ := f.emu.Users(is)
	st, _ := f.emu.Settings(is)
	if len(roles) != len(defaultRoles)+2 || len(users) != 1 || st.Configuration != f.cfg ||
		!reflect.DeepEqual(st.Webhooks, ServiceWebhooks{}) || !reflect.DeepEqual(st.Notifications, ServiceNotifications{}) {
		t.Errorf("refused requests changed data: %d roles, %d users, settings %+v", len(roles), len(users), st)
	}
	if r, _ := tw.FetchServiceRole(is, f.svcRole); !reflect.DeepEqual(*r.Permissions, []string{"joinConversation", "createConversation"}) {
		t.Errorf("refused updates changed permissions: %v", *r.Permissions)
	}
}

// mustConfig is the configuration of a service ("" = default), for tests.
func (s *Server) mustConfig(t *testing.T, serviceSID string) ServiceConfiguration {
	t.Helper()
	st, err := s.Settings(serviceSID)
	if err != nil {
		t.Fatal(err)
	}
	return st.Configuration
}

func TestDefaultRolesAndConfiguration(t *testing.T) {
	f := newKindsFixture(t)
	for _, is := range []string{f.is, f.emu.DefaultServiceSID()} {
		roles, err := f.tw.ListServiceRole(is, nil)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]conversations.ConversationsV1ServiceRole{}
		for _, r := range roles {
			byName[*r.FriendlyName] = r
		}
		for _, dr := range defaultRoles {
			r, ok := byName[dr.name]
			if !ok || *r.Type != dr.typ || !reflect.DeepEqual(*r.Permissions, dr.perms) || *r.ChatServiceSid != is {
				t.Errorf("service %s: default role %q = %+v", is, dr.name, r)
			}
		}
		cfg, err := f.tw.FetchServiceConfiguration(is)
		if err != nil {
			t.Fatal(err)
		}
		if *cfg.DefaultChatServiceRoleSid != *byName["service user"].Sid ||
			*cfg.DefaultConversationRoleSid != *byName["channel user"].Sid ||
			*cfg.DefaultConversationCreatorRoleSid != *byName["channel admin"].Sid ||
			*cfg.ReachabilityEnabled || *cfg.ChatServiceSid != is {
			t.Errorf("service %s: configuration %+v", is, cfg)
		}
		u := twilioBase + "/v1/Services/" + is + "/Configuration"
		if *cfg.Url != u || (*cfg.Links)["notifications"] != u+"/Notifications" || (*cfg.Links)["webhooks"] != u+"/Webhooks" {
			t.Errorf("configuration url %s links %v", *cfg.Url, *cfg.Links)
		}
	}
	// The default service's default roles keep their SIDs across restarts.
	again, err := New(testOptions(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := f.emu.mustConfig(t, ""), again.mustConfig(t, ""); a != b {
		t.Errorf("default service configuration changed across a restart: %+v vs %+v", a, b)
	}
	// An out-of-band service gets them too.
	other, _ := f.emu.AddService("oob")
	if roles, _ := f.emu.Roles(other.SID); len(roles) != len(defaultRoles) {
		t.Errorf("AddService: %d roles", len(roles))
	}
}

func TestRoleShapeAndUpdate(t *testing.T) {
	f := newKindsFixture(t)
	tw := f.tw
	// Type is case-insensitive and stored lowercase; repeats are dropped; order is kept.
	r, err := tw.CreateServiceRole(f.is, (&conversations.CreateServiceRoleParams{}).SetFriendlyName(strings.Repeat("n", 256)).
		SetType("CONVERSATION").SetPermission([]string{"sendMessage", "leaveConversation", "sendMessage"}))
	if err != nil {
		t.Fatal(err)
	}
	if *r.Type != "conversation" || !reflect.DeepEqual(*r.Permissions, []string{"sendMessage", "leaveConversation"}) {
		t.Errorf("created role: type %q permissions %v", *r.Type, *r.Permissions)
	}
	if *r.AccountSid != testAccountSID || *r.ChatServiceSid != f.is || *r.Url != twilioBase+"/v1/Services/"+f.is+"/Roles/"+*r.Sid ||
		!strings.HasPrefix(*r.Sid, "RL") || !r.DateCreated.Equal(f.clock.Now()) {
		t.Errorf("created role: %+v", r)
	}
	// Update replaces the whole set; FriendlyName and Type are not update parameters.
	f.clock.Advance(time.Minute)
	st, body := formDo(t, f.hs, http.MethodPost, "/v1/Services/"+f.is+"/Roles/"+*r.Sid,
		url.Values{"Permission": {"deleteOwnMessage", "editOwnMessage"}, "FriendlyName": {"renamed"}, "Type": {"service"}})
	if st != 200 || body["friendly_name"] != strings.Repeat("n", 256) || body["type"] != "conversation" {
		t.Fatalf("update: %d %v", st, body)
	}
	if got := body["permissions"].([]any); len(got) != 2 || got[0] != "deleteOwnMessage" || got[1] != "editOwnMessage" {
		t.Errorf("updated permissions %v", got)
	}
	if body["date_updated"] != formatDate(f.clock.Now()) || body["date_created"] == body["date_updated"] {
		t.Errorf("dates after update: %v %v", body["date_created"], body["date_updated"])
	}
	// A role nobody points at can be deleted.
	if err := tw.DeleteServiceRole(f.is, *r.Sid); err != nil {
		t.Fatal(err)
	}
	_, err = tw.FetchServiceRole(f.is, *r.Sid)
	wantRestError(t, err, 404, CodeRoleNotFound)
	// Once the configuration points elsewhere, a former default role can go.
	if _, err := tw.UpdateServiceConfiguration(f.is, (&conversations.UpdateServiceConfigurationParams{}).SetDefaultChatServiceRoleSid(f.svcRole)); err != nil {
		t.Fatal(err)
	}
	if err := tw.DeleteServiceRole(f.is, f.cfg.DefaultChatServiceRoleSID); err != nil {
		t.Errorf("delete a role no longer in use: %v", err)
	}
}

func TestRoleAndUserListsPageAtFifty(t *testing.T) {
	f := newKindsFixture(t)
	for i := 0; i < 60; i++ {
		if _, err := f.tw.CreateServiceUser(f.is, (&conversations.CreateServiceUserParams{}).SetIdentity("u"+itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Over the maximum is clamped to it (UNVERIFIED in Twilio).
	var page struct {
		Users []map[string]any `json:"users"`
		Meta  metaJSON         `json:"meta"`
	}
	if st := getJSON(t, f.hs.URL+"/v1/Services/"+f.is+"/Users?PageSize=100", &page); st != 200 {
		t.Fatal(st)
	}
	if len(page.Users) != 50 || page.Meta.PageSize != 50 || page.Meta.Key != "users" || page.Meta.NextPageURL == nil ||
		!strings.Contains(page.Meta.URL, "PageSize=50") {
		t.Errorf("clamped page: %d users, meta %+v", len(page.Users), page.Meta)
	}
	for _, u := range page.Users {
		if v, ok := u["is_online"]; !ok || v != nil {
			t.Errorf("is_online in a list = %v (present %v), want null", v, ok)
		}
		if v, ok := u["is_notifiable"]; !ok || v != nil {
			t.Errorf("is_notifiable in a list = %v, want null", v)
		}
	}
	all, err := f.tw.ListServiceUser(f.is, &conversations.ListServiceUserParams{PageSize: ptr(7)})
	if err != nil || len(all) != 61 || *all[0].Identity != "alice" || *all[60].Identity != "u59" {
		t.Fatalf("list all users: %d, %v", len(all), err)
	}
	// Roles default to 50 a page; the default page size is the maximum.
	var roles struct {
		Roles []map[string]any `json:"roles"`
		Meta  metaJSON         `json:"meta"`
	}
	if st := getJSON(t, f.hs.URL+"/v1/Services/"+f.is+"/Roles?PageSize=51", &roles); st != 200 || roles.Meta.PageSize != 50 ||
		len(roles.Roles) != len(defaultRoles)+2 || roles.Meta.Key != "roles" || roles.Meta.NextPageURL != nil {
		t.Errorf("roles page: %d, %+v", st, roles.Meta)
	}
	got, err := f.tw.ListServiceRole(f.is, &conversations.ListServiceRoleParams{PageSize: ptr(1)})
	if err != nil || len(got) != len(defaultRoles)+2 {
		t.Errorf("list roles one a page: %d, %v", len(got), err)
	}
}

func TestUserShapeAndUpdate(t *testing.T) {
	f := newKindsFixture(t)
	tw := f.tw
	bare, err := tw.FetchServiceUser(f.is, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if *bare.Sid != f.userSID || *bare.Attributes != "{}" || bare.FriendlyName != nil || *bare.RoleSid != f.cfg.DefaultChatServiceRoleSID ||
		bare.IsOnline != nil || bare.IsNotifiable != nil || *bare.AccountSid != testAccountSID || *bare.ChatServiceSid != f.is {
		t.Errorf("bare user: %+v", bare)
	}
	u := twilioBase + "/v1/Services/" + f.is + "/Users/" + f.userSID
	if *bare.Url != u || (*bare.Links)["user_conversations"] != u+"/Conversations" {
		t.Errorf("url %s links %v", *bare.Url, *bare.Links)
	}
	// Identities are case-sensitive: "Alice" is another user.
	full, err := tw.CreateServiceUser(f.is, (&conversations.CreateServiceUserParams{}).SetIdentity("Alice").
		SetFriendlyName("Alice A").SetAttributes(`{"a": 1}`).SetRoleSid(f.svcRole).SetXTwilioWebhookEnabled("true"))
	if err != nil {
		t.Fatal(err)
	}
	if *full.FriendlyName != "Alice A" || *full.Attributes != `{"a": 1}` || *full.RoleSid != f.svcRole {
		t.Errorf("full user: %+v", full)
	}
	// Update by identity; Identity itself is not an update parameter; empty values change nothing.
	f.clock.Advance(time.Minute)
	st, body := formDo(t, f.hs, http.MethodPost, "/v1/Services/"+f.is+"/Users/Alice",
		url.Values{"Identity": {"carol"}, "FriendlyName": {""}, "Attributes": {`{"b":2}`}, "RoleSid": {f.cfg.DefaultChatServiceRoleSID}})
	if st != 200 || body["identity"] != "Alice" || body["friendly_name"] != "Alice A" || body["attributes"] != `{"b":2}` ||
		body["role_sid"] != f.cfg.DefaultChatServiceRoleSID || body["date_updated"] != formatDate(f.clock.Now()) {
		t.Errorf("update: %d %v", st, body)
	}
	// Delete by SID and by identity.
	if err := tw.DeleteServiceUser(f.is, *full.Sid, (&conversations.DeleteServiceUserParams{}).SetXTwilioWebhookEnabled("false")); err != nil {
		t.Fatal(err)
	}
	if err := tw.DeleteServiceUser(f.is, "alice", nil); err != nil {
		t.Fatal(err)
	}
	if users, _ := f.emu.Users(f.is); len(users) != 0 {
		t.Errorf("%d users left", len(users))
	}
	// An identity with reserved characters is reached URL-escaped.
	odd, err := tw.CreateServiceUser(f.is, (&conversations.CreateServiceUserParams{}).SetIdentity("team/a b?c"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tw.FetchServiceUser(f.is, url.PathEscape("team/a b?c")); err != nil || *got.Sid != *odd.Sid {
		t.Errorf("fetch by escaped identity: %v", err)
	}
	// The identity is free again.
	if _, err := tw.CreateServiceUser(f.is, (&conversations.CreateServiceUserParams{}).SetIdentity("alice")); err != nil {
		t.Errorf("recreate: %v", err)
	}
}

func TestServiceSingletons(t *testing.T) {
	f := newKindsFixture(t)
	tw, is := f.tw, f.is
	base := "/v1/Services/" + is + "/Configuration"

	cfg, err := tw.UpdateServiceConfiguration(is, (&conversations.UpdateServiceConfigurationParams{}).
		SetDefaultConversationRoleSid(f.convRole).SetReachabilityEnabled(true))
	if err != nil {
		t.Fatal(err)
	}
	if *cfg.DefaultConversationRoleSid != f.convRole || !*cfg.ReachabilityEnabled ||
		*cfg.DefaultConversationCreatorRoleSid != f.cfg.DefaultConversationCreatorRoleSID || *cfg.DefaultChatServiceRoleSid != f.cfg.DefaultChatServiceRoleSID {
		t.Errorf("configuration after update: %+v", cfg)
	}
	// Users stay null on reachability: no SDK client is ever online here.
	if u, _ := tw.FetchServiceUser(is, "alice"); u.IsOnline != nil || u.IsNotifiable != nil {
		t.Errorf("is_online %v is_notifiable %v", u.IsOnline, u.IsNotifiable)
	}

	// Notifications: booleans false and texts null until set.
	_, body := formDo(t, f.hs, http.MethodGet, base+"/Notifications", nil)
	want := map[string]any{
		"account_sid": testAccountSID, "chat_service_sid": is, "log_enabled": false, "url": twilioBase + base + "/Notifications",
		"new_message": map[string]any{"enabled": false, "template": nil, "sound": nil, "badge_count_enabled": false,
			"with_media": map[string]any{"enabled": false, "template": nil}},
		"added_to_conversation":     map[string]any{"enabled": false, "template": nil, "sound": nil},
		"removed_from_conversation": map[string]any{"enabled": false, "template": nil, "sound": nil},
	}
	// formDo reaches the server directly, so URLs carry its own host.
	want["url"] = f.hs.URL + base + "/Notifications"
	if !reflect.DeepEqual(body, want) {
		t.Errorf("unset notifications:\n%v\nwant\n%v", body, want)
	}
	st, body := formDo(t, f.hs, http.MethodPost, base+"/Notifications", url.Values{
		"LogEnabled": {"true"}, "NewMessage.Enabled": {"true"}, "NewMessage.Template": {"${MESSAGE}"},
		"NewMessage.WithMedia.Enabled": {"TRUE"}, "NewMessage.WithMedia.Template": {"${MEDIA_COUNT}"},
		"AddedToConversation.Sound": {"ring"}, "RemovedFromConversation.Template": {""},
	})
	nm := body["new_message"].(map[string]any)
	wm := nm["with_media"].(map[string]any)
	added := body["added_to_conversation"].(map[string]any)
	removed := body["removed_from_conversation"].(map[string]any)
	if st != 200 || body["log_enabled"] != true || nm["enabled"] != true || nm["template"] != "${MESSAGE}" || nm["sound"] != nil ||
		nm["badge_count_enabled"] != false || wm["enabled"] != true || wm["template"] != "${MEDIA_COUNT}" ||
		added["sound"] != "ring" || added["enabled"] != false || removed["template"] != "" {
		t.Errorf("notifications after update: %d %v", st, body)
	}
	// A later update changes only what it sends.
	n, err := tw.UpdateServiceNotification(is, (&conversations.UpdateServiceNotificationParams{}).SetNewMessageBadgeCountEnabled(true))
	if err != nil {
		t.Fatal(err)
	}
	if m := (*n.NewMessage).(map[string]interface{}); m["badge_count_enabled"] != true || m["template"] != "${MESSAGE}" || !*n.LogEnabled {
		t.Errorf("second update: %v", m)
	}

	// Webhooks: all null until configured.
	_, body = formDo(t, f.hs, http.MethodGet, base+"/Webhooks", nil)
	for _, k := range []string{"pre_webhook_url", "post_webhook_url", "filters", "method"} {
		if v, ok := body[k]; !ok || v != nil {
			t.Errorf("unconfigured %s = %v (present %v), want null", k, v, ok)
		}
	}
	h, err := tw.UpdateServiceWebhookConfiguration(is, (&conversations.UpdateServiceWebhookConfigurationParams{}).
		SetPostWebhookUrl("http://hooks.example.com/post?x=1").SetMethod("get").
		SetFilters([]string{"onMessageAdded", "onConversationAdd", "onMessageAdded"}))
	if err != nil {
		t.Fatal(err)
	}
	if *h.Method != "GET" || *h.PostWebhookUrl != "http://hooks.example.com/post?x=1" || h.PreWebhookUrl != nil ||
		!reflect.DeepEqual(*h.Filters, []string{"onMessageAdded", "onConversationAdd"}) {
		t.Errorf("webhooks: %+v", h)
	}
	// An empty URL clears it; a lone empty Filters= clears the filters (both UNVERIFIED).
	st, body = formDo(t, f.hs, http.MethodPost, base+"/Webhooks", url.Values{"PostWebhookUrl": {""}, "Filters": {""}})
	if st != 200 || body["post_webhook_url"] != nil || body["filters"] != nil || body["method"] != "GET" {
		t.Errorf("clear: %d %v", st, body)
	}
}

// TestSetOrdersAreShuffledOutOfBand proves the reorder helpers: answers show
// the stored order, and only a true reordering is accepted.
func TestSetOrdersAreShuffledOutOfBand(t *testing.T) {
	f := newKindsFixture(t)
	if err := f.emu.SetRolePermissionOrder(f.is, f.svcRole, []string{"createConversation", "joinConversation"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.tw.FetchServiceRole(f.is, f.svcRole); !reflect.DeepEqual(*r.Permissions, []string{"createConversation", "joinConversation"}) {
		t.Errorf("reordered permissions %v", *r.Permissions)
	}
	for _, bad := range [][]string{{"createConversation"}, {"createConversation", "sendMessage"}, {"createConversation", "createConversation"}} {
		if err := f.emu.SetRolePermissionOrder(f.is, f.svcRole, bad); err == nil {
			t.Errorf("SetRolePermissionOrder(%v) accepted", bad)
		}
	}
	if err := f.emu.SetRolePermissionOrder(f.is, "RL00000000000000000000000000000000", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown role: %v", err)
	}
	if _, err := f.tw.UpdateServiceWebhookConfiguration(f.is, (&conversations.UpdateServiceWebhookConfigurationParams{}).
		SetFilters([]string{"onMessageAdded", "onMessageRemoved", "onConversationAdded"})); err != nil {
		t.Fatal(err)
	}
	// Through the admin route, as an end-to-end test of the binary would.
	resp := rawDo(t, http.MethodPut, f.hs.URL+"/__emulator/webhook-filter-order?service="+f.is,
		[]byte(`{"order": ["onConversationAdded", "onMessageRemoved", "onMessageAdded"]}`))
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("admin webhook-filter-order: %d", resp.StatusCode)
	}
	h, _ := f.tw.FetchServiceWebhookConfiguration(f.is)
	if !reflect.DeepEqual(*h.Filters, []string{"onConversationAdded", "onMessageRemoved", "onMessageAdded"}) {
		t.Errorf("reordered filters %v", *h.Filters)
	}
	resp = rawDo(t, http.MethodPut, f.hs.URL+"/__emulator/role-permission-order?service="+f.is+"&role="+f.svcRole,
		[]byte(`{"order": ["joinConversation", "sendMessage"]}`))
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("admin role-permission-order with another set: %d", resp.StatusCode)
	}
	resp = rawDo(t, http.MethodPut, f.hs.URL+"/__emulator/role-permission-order?service="+f.is+"&role="+f.svcRole,
		[]byte(`{"order": ["joinConversation", "createConversation"]}`))
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("admin role-permission-order: %d", resp.StatusCode)
	}
	var roles []Role
	resp = rawDo(t, http.MethodGet, f.hs.URL+"/__emulator/roles?service="+f.is, nil)
	_ = json.NewDecoder(resp.Body).Decode(&roles)
	resp.Body.Close()
	if len(roles) != len(defaultRoles)+2 || !reflect.DeepEqual(roles[len(roles)-2].Permissions, []string{"joinConversation", "createConversation"}) {
		t.Errorf("admin roles: %+v", roles)
	}
	if st := rawStatus(t, http.MethodGet, f.hs.URL+"/__emulator/users?service="+f.is); st != 200 {
		t.Errorf("admin users: %d", st)
	}
	if st := rawStatus(t, http.MethodGet, f.hs.URL+"/__emulator/settings?service=IS00000000000000000000000000000000"); st != 404 {
		t.Errorf("admin settings of unknown service: %d", st)
	}
	if f.emu.Stats().ByRoute["GET /v1/Services/{ServiceSid}/Configuration/Webhooks"] != 1 {
		t.Errorf("stats: %v", f.emu.Stats().ByRoute)
	}
}

func TestDeleteServiceCascades(t *testing.T) {
	f := newKindsFixture(t)
	if _, err := f.tw.CreateServiceConversation(f.is, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.tw.DeleteService(f.is); err != nil {
		t.Fatal(err)
	}
	if _, err := f.emu.Roles(f.is); !errors.Is(err, ErrNotFound) {
		t.Errorf("roles after service delete: %v", err)
	}
	_, err := f.tw.FetchServiceUser(f.is, "alice")
	wantRestError(t, err, 404, CodeNotFound)
	_, err = f.tw.FetchServiceRole(f.is, f.svcRole)
	wantRestError(t, err, 404, CodeNotFound)
	_, err = f.tw.FetchServiceConfiguration(f.is)
	wantRestError(t, err, 404, CodeNotFound)
}

// TestRoleAndUserActionsShareTheServiceBucket: role and user create, update
// and delete spend the service's budget, with conversation creates and deletes.
func TestRoleAndUserActionsShareTheServiceBucket(t *testing.T) {
	f := newKindsFixture(t)
	if err := f.emu.SetFaults(Faults{ActionsPerSecondPerService: 3}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.tw.CreateServiceConversation(f.is, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tw.UpdateServiceRole(f.is, f.svcRole, (&conversations.UpdateServiceRoleParams{}).SetPermission([]string{"joinConversation"})); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tw.UpdateServiceUser(f.is, "alice", (&conversations.UpdateServiceUserParams{}).SetFriendlyName("A")); err != nil {
		t.Fatal(err)
	}
	_, err := f.tw.CreateServiceUser(f.is, (&conversations.CreateServiceUserParams{}).SetIdentity("bob"))
	wantRestError(t, err, 429, CodeTooManyRequests)
	err = f.tw.DeleteServiceRole(f.is, f.convRole)
	wantRestError(t, err, 429, CodeTooManyRequests)
	// Reads and the singletons are not counted.
	if _, err := f.tw.UpdateServiceWebhookConfiguration(f.is, (&conversations.UpdateServiceWebhookConfigurationParams{}).SetMethod("POST")); err != nil {
		t.Errorf("singleton update rate limited: %v", err)
	}
	if _, err := f.tw.ListServiceUser(f.is, nil); err != nil {
		t.Errorf("read rate limited: %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.tw.CreateServiceUser(f.is, (&conversations.CreateServiceUserParams{}).SetIdentity("bob")); err != nil {
		t.Errorf("after a second: %v", err)
	}
	s := f.emu.Stats()
	for _, k := range []string{
		"POST /v1/Services/{ServiceSid}/Users 429", "POST /v1/Services/{ServiceSid}/Users 201",
		"DELETE /v1/Services/{ServiceSid}/Roles/{Sid} 429", "POST /v1/Services/{ServiceSid}/Roles/{Sid} 200",
		"POST /v1/Services/{ServiceSid}/Users/{Sid} 200", "POST /v1/Services/{ServiceSid}/Configuration/Webhooks 200",
		"GET /v1/Services/{ServiceSid}/Users 200", "POST /v1/Services/{ServiceSid}/Roles 201",
	} {
		if s.ByRouteStatus[k] < 1 {
			t.Errorf("stats: no %q in %v", k, s.ByRouteStatus)
		}
	}
}

func TestRestartKeepsRolesUsersAndSettings(t *testing.T) {
	clock := newFakeClock()
	opts := testOptions(clock)
	opts.DataFile = filepath.Join(t.TempDir(), "emulator.json")
	emu, hs := startEmulator(t, opts)
	tw := twilioFor(t, hs)
	svc, err := tw.CreateService(&conversations.CreateServiceParams{FriendlyName: ptr("kept")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tw.CreateServiceRole(*svc.Sid, (&conversations.CreateServiceRoleParams{}).SetFriendlyName("agent").
		SetType("service").SetPermission([]string{"joinConversation", "createConversation"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tw.CreateServiceUser(*svc.Sid, (&conversations.CreateServiceUserParams{}).SetIdentity("alice").
		SetFriendlyName("A").SetRoleSid(*r.Sid)); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.UpdateServiceConfiguration(*svc.Sid, (&conversations.UpdateServiceConfigurationParams{}).
		SetDefaultChatServiceRoleSid(*r.Sid).SetReachabilityEnabled(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.UpdateServiceNotification(*svc.Sid, (&conversations.UpdateServiceNotificationParams{}).
		SetNewMessageTemplate("t").SetAddedToConversationEnabled(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.UpdateServiceWebhookConfiguration(*svc.Sid, (&conversations.UpdateServiceWebhookConfigurationParams{}).
		SetPreWebhookUrl("https://example.com/pre").SetFilters([]string{"onMessageAdd"})); err != nil {
		t.Fatal(err)
	}
	wantRoles, _ := emu.Roles(*svc.Sid)
	wantUsers, _ := emu.Users(*svc.Sid)
	wantSettings, _ := emu.Settings(*svc.Sid)
	wantDefault, _ := emu.Roles("")

	again, err := New(opts)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	gotRoles, _ := again.Roles(*svc.Sid)
	gotUsers, _ := again.Users(*svc.Sid)
	gotSettings, _ := again.Settings(*svc.Sid)
	gotDefault, _ := again.Roles("")
	if !reflect.DeepEqual(gotRoles, wantRoles) || !reflect.DeepEqual(gotUsers, wantUsers) ||
		!reflect.DeepEqual(gotSettings, wantSettings) || !reflect.DeepEqual(gotDefault, wantDefault) {
		t.Errorf("after restart:\nroles %+v\nwant  %+v\nusers %+v\nwant  %+v\nsettings %+v\nwant     %+v",
			gotRoles, wantRoles, gotUsers, wantUsers, gotSettings, wantSettings)
	}
	// The identity still binds after the restart.
	_, err = twilioFor(t, startServer(t, again)).CreateServiceUser(*svc.Sid, (&conversations.CreateServiceUserParams{}).SetIdentity("alice"))
	wantRestError(t, err, 409, CodeUserExists)
}

// TestFormatOneDataFileGetsDefaultRoles: a data file written before roles
// existed loads, and its services get the default roles and configuration.
func TestFormatOneDataFileGetsDefaultRoles(t *testing.T) {
	opts := testOptions(newFakeClock())
	opts.DataFile = filepath.Join(t.TempDir(), "v1.json")
	content := `{"format": "convsync-emulator/1", "account_sid": "` + testAccountSID + `", "next_seq": 5, "services": [
		{"sid": "IS00000000000000000000000000000001", "friendly_name": "old", "seq": 1, "conversations": [
			{"sid": "CH00000000000000000000000000000001", "service_sid": "IS00000000000000000000000000000001", "unique_name": "u", "attributes": "{}", "state": "active", "seq": 2}]}]}`
	if err := os.WriteFile(opts.DataFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	emu, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	roles, err := emu.Roles("IS00000000000000000000000000000001")
	if err != nil || len(roles) != len(defaultRoles) {
		t.Fatalf("roles after migration: %d, %v", len(roles), err)
	}
	if cfg := emu.mustConfig(t, "IS00000000000000000000000000000001"); cfg.DefaultChatServiceRoleSID != roles[1].SID {
		t.Errorf("configuration after migration: %+v", cfg)
	}
	if roles[0].Seq < 5 {
		t.Errorf("migrated roles reuse sequence numbers: %d", roles[0].Seq)
	}
}
