package twilioapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

var (
	testRole  = sid("RL", 1)
	testRole2 = sid("RL", 2)
	testUser  = sid("US", 1)
)

func roleJSON(roleSID, permissions string) string {
	return fmt.Sprintf(`{"sid": %q, "account_sid": %q, "chat_service_sid": %q, "friendly_name": "agent", "type": "service",
  "permissions": %s, "date_created": "2024-04-01T10:00:00Z", "date_updated": "2024-04-02T11:30:00Z",
  "url": "https://conversations.twilio.com/v1/Services/%s/Roles/%s"}`, roleSID, testAccountSID, testService, permissions, testService, roleSID)
}

func userJSON(identity, friendlyName, roleSID string) string {
	return fmt.Sprintf(`{"sid": %q, "account_sid": %q, "chat_service_sid": %q, "identity": %q, "friendly_name": %s,
  "attributes": "{ \"team\": \"blue\",  \"a\": [1, 2] }", "role_sid": %s, "is_online": null, "is_notifiable": true,
  "date_created": "2024-04-01T10:00:00Z", "date_updated": "2024-04-02T11:30:00Z",
  "url": "https://conversations.twilio.com/v1/Services/%s/Users/%s", "links": {}}`,
		testUser, testAccountSID, testService, identity, friendlyName, roleSID, testService, testUser)
}

const (
	configurationJSON = `{"chat_service_sid": "` + testService + `",
  "default_conversation_role_sid": "RL00000000000000000000000000000001",
  "default_conversation_creator_role_sid": "RL00000000000000000000000000000002",
  "default_chat_service_role_sid": null, "reachability_enabled": false,
  "url": "https://conversations.twilio.com/v1/Services/` + testService + `/Configuration", "links": {}}`
	notificationsJSON = `{"account_sid": "` + testAccountSID + `", "chat_service_sid": "` + testService + `",
  "log_enabled": true,
  "new_message": {"enabled": true, "template": null, "sound": "ding", "badge_count_enabled": false,
    "with_media": {"enabled": true, "template": "media from ${USER}"}, "future_setting": 3},
  "added_to_conversation": null,
  "removed_from_conversation": {"enabled": false, "template": "", "sound": null},
  "url": "https://conversations.twilio.com/v1/Services/` + testService + `/Configuration/Notifications"}`
	webhooksJSON = `{"account_sid": "` + testAccountSID + `", "chat_service_sid": "` + testService + `",
  "pre_webhook_url": null, "post_webhook_url": "https://hooks.example.com/post", "method": "post",
  "filters": ["onMessageAdded", "onConversationAdded", "onMessageAdded"],
  "url": "https://conversations.twilio.com/v1/Services/` + testService + `/Configuration/Webhooks"}`
)

var (
	configurationID = resource.SingletonID(resource.KindServiceConfiguration, testService)
	notificationsID = resource.SingletonID(resource.KindServiceNotifications, testService)
	webhooksID      = resource.SingletonID(resource.KindServiceWebhooks, testService)
)

// TestKindRequests checks the exact request each kind's calls send: method,
// path and query, form (repeated and dotted keys) and the webhook header.
func TestKindRequests(t *testing.T) {
	svc := "/v1/Services/" + testService
	on := CallOptions{WebhookEnabled: true}
	tests := []struct {
		name       string
		answer     string // JSON body; "" answers 204
		call       func(c *Client) error
		wantMethod string
		wantURI    string
		wantForm   url.Values
		wantHook   string // X-Twilio-Webhook-Enabled
	}{
		{
			name: "role list pages by 50", answer: `{"roles": [], "meta": {"next_page_url": null}}`,
			call: func(c *Client) error {
				_, err := c.List(context.Background(), resource.KindRole, testService)
				return err
			},
			wantMethod: "GET", wantURI: svc + "/Roles?PageSize=50", wantForm: url.Values{},
		},
		{
			name: "role fetch", answer: roleJSON(testRole, `[]`),
			call: func(c *Client) error {
				_, err := c.Fetch(context.Background(), resource.KindRole, testService, testRole)
				return err
			},
			wantMethod: "GET", wantURI: svc + "/Roles/" + testRole, wantForm: url.Values{},
		},
		{
			name: "role create repeats Permission", answer: roleJSON(testRole, `["sendMessage"]`),
			call: func(c *Client) error {
				_, err := c.Create(context.Background(), resource.KindRole, testService, resource.Values{
					resource.FieldFriendlyName: "agent", resource.FieldRoleType: "service",
					resource.FieldPermissions: `["editOwnUserInfo","addParticipant","sendMessage"]`,
				}, on)
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Roles",
			wantForm: url.Values{"FriendlyName": {"agent"}, "Type": {"service"}, "Permission": {"editOwnUserInfo", "addParticipant", "sendMessage"}},
		},
		{
			name: "role update sends the whole set", answer: roleJSON(testRole, `["sendMessage"]`),
			call: func(c *Client) error {
				_, err := c.Update(context.Background(), resource.KindRole, testService, testRole,
					resource.Values{resource.FieldPermissions: `["addParticipant","sendMessage"]`}, on)
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Roles/" + testRole,
			wantForm: url.Values{"Permission": {"addParticipant", "sendMessage"}},
		},
		{
			name: "role delete",
			call: func(c *Client) error {
				return c.Delete(context.Background(), resource.KindRole, testService, testRole, on)
			},
			wantMethod: "DELETE", wantURI: svc + "/Roles/" + testRole, wantForm: url.Values{},
		},
		{
			name: "user list pages by 50", answer: `{"users": [], "meta": {"next_page_url": null}}`,
			call: func(c *Client) error {
				_, err := c.List(context.Background(), resource.KindUser, testService)
				return err
			},
			wantMethod: "GET", wantURI: svc + "/Users?PageSize=50", wantForm: url.Values{},
		},
		{
			name: "user fetch by escaped identity", answer: userJSON("a b/c", `null`, `null`),
			call: func(c *Client) error {
				_, err := c.Fetch(context.Background(), resource.KindUser, testService, "a b/c")
				return err
			},
			wantMethod: "GET", wantURI: svc + "/Users/a%20b%2Fc", wantForm: url.Values{},
		},
		{
			name: "user create with webhooks", answer: userJSON("alice", `"Alice"`, `null`),
			call: func(c *Client) error {
				_, err := c.Create(context.Background(), resource.KindUser, testService, resource.Values{
					resource.FieldIdentity: "alice", resource.FieldFriendlyName: "Alice",
					resource.FieldAttributes: `{"team":"blue"}`, resource.FieldRoleSID: testRole,
				}, on)
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Users", wantHook: "true",
			wantForm: url.Values{"Identity": {"alice"}, "FriendlyName": {"Alice"}, "Attributes": {`{"team":"blue"}`}, "RoleSid": {testRole}},
		},
		{
			name: "user create without webhooks", answer: userJSON("alice", `null`, `null`),
			call: func(c *Client) error {
				_, err := c.Create(context.Background(), resource.KindUser, testService, resource.Values{resource.FieldIdentity: "alice"}, CallOptions{})
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Users", wantForm: url.Values{"Identity": {"alice"}},
		},
		{
			name: "user update", answer: userJSON("alice", `"Alice"`, `"`+testRole2+`"`),
			call: func(c *Client) error {
				_, err := c.Update(context.Background(), resource.KindUser, testService, testUser, resource.Values{
					resource.FieldFriendlyName: "Alice", resource.FieldAttributes: `{}`, resource.FieldRoleSID: testRole2,
				}, on)
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Users/" + testUser, wantHook: "true",
			wantForm: url.Values{"FriendlyName": {"Alice"}, "Attributes": {`{}`}, "RoleSid": {testRole2}},
		},
		{
			name: "user delete with webhooks",
			call: func(c *Client) error {
				return c.Delete(context.Background(), resource.KindUser, testService, testUser, on)
			},
			wantMethod: "DELETE", wantURI: svc + "/Users/" + testUser, wantForm: url.Values{}, wantHook: "true",
		},
		{
			name: "user delete without webhooks",
			call: func(c *Client) error {
				return c.Delete(context.Background(), resource.KindUser, testService, testUser, CallOptions{})
			},
			wantMethod: "DELETE", wantURI: svc + "/Users/" + testUser, wantForm: url.Values{},
		},
		{
			name: "configuration list is one fetch", answer: configurationJSON,
			call: func(c *Client) error {
				_, err := c.List(context.Background(), resource.KindServiceConfiguration, testService)
				return err
			},
			wantMethod: "GET", wantURI: svc + "/Configuration", wantForm: url.Values{},
		},
		{
			name: "configuration fetch by path", answer: configurationJSON,
			call: func(c *Client) error {
				_, err := c.Fetch(context.Background(), resource.KindServiceConfiguration, testService, configurationID)
				return err
			},
			wantMethod: "GET", wantURI: svc + "/Configuration", wantForm: url.Values{},
		},
		{
			name: "configuration update", answer: configurationJSON,
			call: func(c *Client) error {
				_, err := c.Update(context.Background(), resource.KindServiceConfiguration, testService, configurationID, resource.Values{
					"default_chat_service_role_sid": testRole, "reachability_enabled": "true",
				}, on)
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Configuration",
			wantForm: url.Values{"DefaultChatServiceRoleSid": {testRole}, "ReachabilityEnabled": {"true"}},
		},
		{
			name: "notifications update sends dotted keys", answer: notificationsJSON,
			call: func(c *Client) error {
				_, err := c.Update(context.Background(), resource.KindServiceNotifications, testService, notificationsID, resource.Values{
					"log_enabled":                        "false",
					"new_message.enabled":                "true",
					"new_message.badge_count_enabled":    "false",
					"new_message.with_media.enabled":     "true",
					"new_message.with_media.template":    "media from ${USER}",
					"added_to_conversation.sound":        "ding",
					"removed_from_conversation.template": "",
				}, on)
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Configuration/Notifications",
			wantForm: url.Values{
				"LogEnabled":                       {"false"},
				"NewMessage.Enabled":               {"true"},
				"NewMessage.BadgeCountEnabled":     {"false"},
				"NewMessage.WithMedia.Enabled":     {"true"},
				"NewMessage.WithMedia.Template":    {"media from ${USER}"},
				"AddedToConversation.Sound":        {"ding"},
				"RemovedFromConversation.Template": {""},
			},
		},
		{
			name: "webhooks update repeats Filters and upper-cases Method", answer: webhooksJSON,
			call: func(c *Client) error {
				_, err := c.Update(context.Background(), resource.KindServiceWebhooks, testService, webhooksID, resource.Values{
					"pre_webhook_url": "https://hooks.example.com/pre", "method": "post",
					"filters": `["onConversationAdded","onMessageAdded"]`,
				}, on)
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Configuration/Webhooks",
			wantForm: url.Values{"PreWebhookUrl": {"https://hooks.example.com/pre"}, "Method": {"POST"}, "Filters": {"onConversationAdded", "onMessageAdded"}},
		},
		{
			name: "webhooks update clears filters with one empty key", answer: webhooksJSON,
			call: func(c *Client) error {
				_, err := c.Update(context.Background(), resource.KindServiceWebhooks, testService, webhooksID, resource.Values{"filters": `[]`}, on)
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Configuration/Webhooks", wantForm: url.Values{"Filters": {""}},
		},
		{
			name: "webhooks update sends only what is given", answer: webhooksJSON,
			call: func(c *Client) error {
				_, err := c.Update(context.Background(), resource.KindServiceWebhooks, testService, webhooksID, resource.Values{"method": "GET"}, on)
				return err
			},
			wantMethod: "POST", wantURI: svc + "/Configuration/Webhooks", wantForm: url.Values{"Method": {"GET"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				if tt.answer == "" {
					w.WriteHeader(204)
					return
				}
				writeJSON(w, 200, tt.answer)
			})
			c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			reqs := srv.seen()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.wantMethod || r.RequestURI != tt.wantURI {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.RequestURI, tt.wantMethod, tt.wantURI)
			}
			if !reflect.DeepEqual(r.Form, tt.wantForm) {
				t.Errorf("form = %v, want %v", r.Form, tt.wantForm)
			}
			if got := r.Header.Get("X-Twilio-Webhook-Enabled"); got != tt.wantHook {
				t.Errorf("X-Twilio-Webhook-Enabled = %q, want %q", got, tt.wantHook)
			}
		})
	}
}

// TestKindAnswers checks the conversion of each kind's answers: sets sorted
// and deduplicated, null fields absent, nested leaves dotted, method in
// upper case, singletons identified by their path.
func TestKindAnswers(t *testing.T) {
	created := time.Date(2024, 4, 1, 10, 0, 0, 0, time.UTC)
	updated := time.Date(2024, 4, 2, 11, 30, 0, 0, time.UTC)
	svcURL := "https://conversations.twilio.com/v1/Services/" + testService
	tests := []struct {
		name   string
		answer string
		call   func(c *Client) (resource.Observed, error)
		want   resource.Observed
	}{
		{
			name:   "role permissions are a sorted set",
			answer: roleJSON(testRole, `["sendMessage", "addParticipant", "sendMessage"]`),
			call: func(c *Client) (resource.Observed, error) {
				return c.Fetch(context.Background(), resource.KindRole, testService, testRole)
			},
			want: resource.Observed{
				Kind: resource.KindRole, SID: testRole, ParentSID: testService,
				Values: resource.Values{
					resource.FieldFriendlyName: "agent", resource.FieldRoleType: "service",
					resource.FieldPermissions: `["addParticipant","sendMessage"]`,
				},
				DateCreated: created, DateUpdated: updated,
				Extra: resource.Values{"url": svcURL + "/Roles/" + testRole},
			},
		},
		{
			name:   "role listed",
			answer: `{"roles": [` + roleJSON(testRole, `[]`) + `], "meta": {"next_page_url": null}}`,
			call: func(c *Client) (resource.Observed, error) {
				got, err := c.List(context.Background(), resource.KindRole, testService)
				if err != nil || len(got) != 1 {
					return resource.Observed{}, fmt.Errorf("List = %v, %v; want one role", got, err)
				}
				return got[0], nil
			},
			want: resource.Observed{
				Kind: resource.KindRole, SID: testRole, ParentSID: testService,
				Values: resource.Values{
					resource.FieldFriendlyName: "agent", resource.FieldRoleType: "service", resource.FieldPermissions: `[]`,
				},
				DateCreated: created, DateUpdated: updated,
				Extra: resource.Values{"url": svcURL + "/Roles/" + testRole},
			},
		},
		{
			name:   "user with null fields and canonical attributes",
			answer: userJSON("alice", `null`, `null`),
			call: func(c *Client) (resource.Observed, error) {
				return c.Fetch(context.Background(), resource.KindUser, testService, "alice")
			},
			want: resource.Observed{
				Kind: resource.KindUser, SID: testUser, ParentSID: testService,
				Values: resource.Values{
					resource.FieldIdentity: "alice", resource.FieldAttributes: `{"a":[1,2],"team":"blue"}`,
				},
				DateCreated: created, DateUpdated: updated,
				Extra: resource.Values{"url": svcURL + "/Users/" + testUser, "is_notifiable": "true"},
			},
		},
		{
			name:   "user listed with a role",
			answer: `{"users": [` + userJSON("alice", `"Alice"`, `"`+testRole+`"`) + `], "meta": {"next_page_url": null}}`,
			call: func(c *Client) (resource.Observed, error) {
				got, err := c.List(context.Background(), resource.KindUser, testService)
				if err != nil || len(got) != 1 {
					return resource.Observed{}, fmt.Errorf("List = %v, %v; want one user", got, err)
				}
				return got[0], nil
			},
			want: resource.Observed{
				Kind: resource.KindUser, SID: testUser, ParentSID: testService,
				Values: resource.Values{
					resource.FieldIdentity: "alice", resource.FieldFriendlyName: "Alice",
					resource.FieldAttributes: `{"a":[1,2],"team":"blue"}`, resource.FieldRoleSID: testRole,
				},
				DateCreated: created, DateUpdated: updated,
				Extra: resource.Values{"url": svcURL + "/Users/" + testUser, "is_notifiable": "true"},
			},
		},
		{
			name:   "configuration",
			answer: configurationJSON,
			call: func(c *Client) (resource.Observed, error) {
				got, err := c.List(context.Background(), resource.KindServiceConfiguration, testService)
				if err != nil || len(got) != 1 {
					return resource.Observed{}, fmt.Errorf("List = %v, %v; want the one configuration", got, err)
				}
				return got[0], nil
			},
			want: resource.Observed{
				Kind: resource.KindServiceConfiguration, SID: configurationID, ParentSID: testService,
				Values: resource.Values{
					"default_conversation_role_sid":         sid("RL", 1),
					"default_conversation_creator_role_sid": sid("RL", 2),
					"reachability_enabled":                  "false",
				},
				Extra: resource.Values{"url": svcURL + "/Configuration"},
			},
		},
		{
			name:   "notifications: nested leaves dotted, nulls absent",
			answer: notificationsJSON,
			call: func(c *Client) (resource.Observed, error) {
				return c.Fetch(context.Background(), resource.KindServiceNotifications, testService, notificationsID)
			},
			want: resource.Observed{
				Kind: resource.KindServiceNotifications, SID: notificationsID, ParentSID: testService,
				Values: resource.Values{
					"log_enabled":                        "true",
					"new_message.enabled":                "true",
					"new_message.sound":                  "ding",
					"new_message.badge_count_enabled":    "false",
					"new_message.with_media.enabled":     "true",
					"new_message.with_media.template":    "media from ${USER}",
					"removed_from_conversation.enabled":  "false",
					"removed_from_conversation.template": "",
				},
				Extra: resource.Values{"url": svcURL + "/Configuration/Notifications", "new_message.future_setting": "3"},
			},
		},
		{
			name:   "webhooks: method upper case, filters a set, null URL absent",
			answer: webhooksJSON,
			call: func(c *Client) (resource.Observed, error) {
				return c.Update(context.Background(), resource.KindServiceWebhooks, testService, webhooksID, resource.Values{"method": "post"}, CallOptions{})
			},
			want: resource.Observed{
				Kind: resource.KindServiceWebhooks, SID: webhooksID, ParentSID: testService,
				Values: resource.Values{
					"post_webhook_url": "https://hooks.example.com/post",
					"method":           "POST",
					"filters":          `["onConversationAdded","onMessageAdded"]`,
				},
				Extra: resource.Values{"url": svcURL + "/Configuration/Webhooks"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, tt.answer) })
			c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
			got, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

// TestKindWritesRefusedBeforeSending: what a kind cannot write, and writes
// a singleton never has, are input errors and nothing reaches Twilio.
func TestKindWritesRefusedBeforeSending(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) { w.WriteHeader(500) })
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	ctx := context.Background()
	update := func(kind resource.Kind, id string, v resource.Values) func() error {
		return func() error { _, err := c.Update(ctx, kind, testService, id, v, CallOptions{}); return err }
	}
	create := func(kind resource.Kind, v resource.Values) func() error {
		return func() error { _, err := c.Create(ctx, kind, testService, v, CallOptions{}); return err }
	}
	tests := []struct {
		name    string
		call    func() error
		wantErr string
	}{
		{"role friendly_name changes by replacement", update(resource.KindRole, testRole, resource.Values{
			resource.FieldFriendlyName: "x", resource.FieldPermissions: `["sendMessage"]`,
		}), "Twilio cannot change friendly_name in place (the role must be replaced)"},
		{"role type changes by replacement", update(resource.KindRole, testRole, resource.Values{resource.FieldRoleType: "service"}),
			"Twilio cannot change type in place"},
		{"role update without permissions", update(resource.KindRole, testRole, resource.Values{}),
			"permissions must hold at least one permission"},
		{"role create with no permission", create(resource.KindRole, resource.Values{
			resource.FieldFriendlyName: "x", resource.FieldRoleType: "service", resource.FieldPermissions: `[]`,
		}), "permissions must hold at least one permission"},
		{"role permissions not a set", update(resource.KindRole, testRole, resource.Values{resource.FieldPermissions: `sendMessage`}),
			"field permissions: not a list of strings"},
		{"role unknown field", create(resource.KindRole, resource.Values{"colour": "red"}), "cannot write field(s) colour"},
		{"user identity changes by replacement", update(resource.KindUser, testUser, resource.Values{resource.FieldIdentity: "bob"}),
			"Twilio cannot change identity in place (the user must be replaced)"},
		{"user unknown field", create(resource.KindUser, resource.Values{resource.FieldIdentity: "a", resource.FieldState: "active"}),
			"cannot write field(s) state"},
		{"configuration create", create(resource.KindServiceConfiguration, resource.Values{}), "a singleton is never created or deleted"},
		{"notifications delete", func() error {
			return c.Delete(ctx, resource.KindServiceNotifications, testService, notificationsID, CallOptions{})
		}, "a singleton is never created or deleted"},
		{"webhooks update by another ID", update(resource.KindServiceWebhooks, testService, resource.Values{"method": "GET"}),
			"a singleton's ID is its path " + webhooksID},
		{"webhooks update under another service's path", update(resource.KindServiceWebhooks,
			resource.SingletonID(resource.KindServiceWebhooks, testService2), resource.Values{"method": "GET"}), "a singleton's ID is its path"},
		{"configuration fetch by another ID", func() error {
			_, err := c.Fetch(ctx, resource.KindServiceConfiguration, testService, notificationsID)
			return err
		}, "a singleton's ID is its path"},
		{"notifications boolean not true or false", update(resource.KindServiceNotifications, notificationsID,
			resource.Values{"new_message.enabled": "yes"}), `field new_message.enabled: "yes" is not true or false`},
		{"notifications unknown leaf", update(resource.KindServiceNotifications, notificationsID,
			resource.Values{"new_message.colour": "red"}), "cannot write field(s) new_message.colour"},
		{"webhooks filters not a set", update(resource.KindServiceWebhooks, webhooksID, resource.Values{"filters": "onMessageAdded"}),
			"field filters: not a list of strings"},
		{"role under a conversation", func() error {
			_, err := c.List(ctx, resource.KindRole, testConv)
			return err
		}, "role: parent must be a service SID"},
		{"user without parent", func() error {
			_, err := c.Fetch(ctx, resource.KindUser, "", "alice")
			return err
		}, "user: parent must be a service SID"},
		{"singleton without parent", func() error {
			_, err := c.List(ctx, resource.KindServiceWebhooks, "")
			return err
		}, "service_webhooks: parent must be a service SID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var in *InputError
			if !errors.As(err, &in) || IsRetryable(err) {
				t.Fatalf("err = %v; want an InputError", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v; want it to say %q", err, tt.wantErr)
			}
		})
	}
	if n := len(srv.seen()); n != 0 {
		t.Errorf("%d requests sent, want 0", n)
	}
}

// TestEveryWritableSchemaFieldIsSent: each field a kind's schema lets a
// create or an update write has a twilio-go parameter, so adding a field to
// the schema without teaching twilioapi to send it fails here.
func TestEveryWritableSchemaFieldIsSent(t *testing.T) {
	t.Setenv("CONVSYNC_TEST_SECRET", "s3cr3t")
	sample := func(f resource.FieldSchema) string {
		if f.Secret {
			return resource.SecretRef{Env: "CONVSYNC_TEST_SECRET"}.String()
		}
		switch f.Type {
		case resource.TypeJSON:
			return `{"k":"v"}`
		case resource.TypeSet:
			if len(f.Enum) == 0 {
				return resource.EncodeSet([]string{"x"})
			}
			return resource.EncodeSet(f.Enum[:1])
		case resource.TypeBool:
			return "true"
		case resource.TypeInt:
			return "1"
		case resource.TypeDuration:
			return "PT10M"
		case resource.TypeRef:
			return sid(resource.Schema(f.Ref).SIDPrefix, 1)
		}
		if len(f.Enum) > 0 {
			return f.Enum[0]
		}
		return "x"
	}
	for _, schema := range resource.Kinds() {
		k, ok := adapters[schema.Kind]
		if !ok {
			t.Errorf("%s: no adapter", schema.Kind)
			continue
		}
		all := resource.Values{}
		for _, f := range schema.Fields {
			all[f.Name] = sample(f)
		}
		parent := parentKeyFor(schema.Kind)
		if k.create != nil {
			if _, err := k.create(parent, all, CallOptions{}); err != nil {
				t.Errorf("%s: create of every field: %v", schema.Kind, err)
			}
		}
		if k.update != nil {
			v := resource.Values{}
			for _, name := range updateFields(schema.Kind) {
				v[name] = all[name]
			}
			if _, err := k.update(parent, "x", v, CallOptions{}); err != nil {
				t.Errorf("%s: update of every field Twilio changes in place: %v", schema.Kind, err)
			}
		}
		if k.singleton != schema.Singleton || (k.create == nil) != schema.Singleton || (k.delete == nil) != schema.Singleton {
			t.Errorf("%s: singleton %v, create %v, delete %v; schema says singleton %v",
				schema.Kind, k.singleton, k.create != nil, k.delete != nil, schema.Singleton)
		}
	}
}

// TestListPageSizeFromSchema: each list asks for its kind's ListPageSize.
func TestListPageSizeFromSchema(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeJSON(w, 200, `{"services": [], "conversations": [], "roles": [], "users": [], "participants": [], "webhooks": [], "meta": {"next_page_url": null}}`)
	})
	c := newTestClient(t, testConfig(srv.URL, &sleeps{}))
	for _, schema := range resource.Kinds() {
		if schema.Singleton {
			continue
		}
		parent := parentKeyFor(schema.Kind)
		before := len(srv.seen())
		if _, err := c.List(context.Background(), schema.Kind, parent); err != nil {
			t.Fatalf("%s: %v", schema.Kind, err)
		}
		r := srv.seen()[before]
		if got, want := r.RequestURI, fmt.Sprintf("PageSize=%d", schema.ListPageSize); !strings.HasSuffix(got, "?"+want) {
			t.Errorf("%s: list asked %s, want %s", schema.Kind, got, want)
		}
	}
}

// TestRateLimitRolesUsersAndSingletons: role and user creates, updates and
// deletes, and singleton updates, share the service's bucket.
func TestRateLimitRolesUsersAndSingletons(t *testing.T) {
	srv := newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case r.Method == http.MethodDelete:
			w.WriteHeader(204)
		case strings.Contains(r.URL.Path, "/Roles"):
			writeJSON(w, 201, roleJSON(testRole, `["sendMessage"]`))
		case strings.Contains(r.URL.Path, "/Users"):
			writeJSON(w, 201, userJSON("alice", `null`, `null`))
		default:
			writeJSON(w, 200, webhooksJSON)
		}
	})
	s := &sleeps{}
	cfg := testConfig(srv.URL, s)
	cfg.ActionsPerSecondPerService = 10 // one action per 100ms per bucket; the test clock never moves
	c := newTestClient(t, cfg)
	ctx := context.Background()
	perms := resource.Values{resource.FieldPermissions: `["sendMessage"]`}
	steps := []struct {
		name     string
		call     func() error
		wantWait time.Duration
	}{
		{"role create in A", func() error {
			_, err := c.Create(ctx, resource.KindRole, testService, perms, CallOptions{})
			return err
		}, 0},
		{"user create in A", func() error { _, err := c.Create(ctx, resource.KindUser, testService, nil, CallOptions{}); return err }, 100 * time.Millisecond},
		{"user fetch in A is not an action", func() error { _, err := c.Fetch(ctx, resource.KindUser, testService, "alice"); return err }, 0},
		{"role update in A", func() error {
			_, err := c.Update(ctx, resource.KindRole, testService, testRole, perms, CallOptions{})
			return err
		}, 200 * time.Millisecond},
		{"user update in B", func() error {
			_, err := c.Update(ctx, resource.KindUser, testService2, testUser, resource.Values{resource.FieldFriendlyName: "A"}, CallOptions{})
			return err
		}, 0},
		{"webhooks update in A", func() error {
			_, err := c.Update(ctx, resource.KindServiceWebhooks, testService, webhooksID, resource.Values{"method": "GET"}, CallOptions{})
			return err
		}, 300 * time.Millisecond},
		{"user delete in A", func() error { return c.Delete(ctx, resource.KindUser, testService, testUser, CallOptions{}) }, 400 * time.Millisecond},
	}
	for _, step := range steps {
		before := len(s.all())
		if err := step.call(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		waits := s.all()[before:]
		var want []time.Duration
		if step.wantWait > 0 {
			want = []time.Duration{step.wantWait}
		}
		if fmt.Sprint(waits) != fmt.Sprint(want) {
			t.Errorf("%s: waits = %v, want %v", step.name, waits, want)
		}
	}
}

// parentKeyFor is a parent key of the test's service (and conversation, for
// the kinds that live in one) for kind.
func parentKeyFor(kind resource.Kind) string {
	switch len(resource.Ancestors(kind)) {
	case 0:
		return ""
	case 1:
		return testService
	}
	return testService + "/" + testConv
}
