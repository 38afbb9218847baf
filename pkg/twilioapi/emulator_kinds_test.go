package twilioapi_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// emulatorClient is a Client against a fresh in-process emulator holding
// one new service.
func emulatorClient(t *testing.T) (*twilioapi.Client, *emulator.Server, string) {
	t.Helper()
	const account, token = "AC55555555555555555555555555555555", "kindstoken"
	emu, url := testenv.Emulator(t, account, token)
	c, err := twilioapi.New(twilioapi.Config{AccountSID: account, AuthToken: token, BaseURL: url, ActionsPerSecondPerService: -1})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := emu.AddService("Kinds")
	if err != nil {
		t.Fatal(err)
	}
	return c, emu, svc.SID
}

// wantValues fails unless got holds every value in want as its exact
// canonical text (sets sorted, JSON canonical), and nothing else when exact
// is set.
func wantValues(t *testing.T, what string, kind resource.Kind, got, want resource.Values, exact bool) {
	t.Helper()
	for name, w := range want {
		if resource.Schema(kind).Field(name) == nil {
			t.Errorf("%s: %s is not a %s field", what, name, kind)
		}
		g, ok := got[name]
		if !ok || g != w {
			t.Errorf("%s: %s = %q (present %v), want %q", what, name, g, ok, w)
		}
	}
	if exact && len(got) != len(want) {
		t.Errorf("%s: values %v, want exactly %v", what, got, want)
	}
}

func TestRoleRoundTripThroughTheEmulator(t *testing.T) {
	c, emu, svc := emulatorClient(t)
	ctx := context.Background()
	created, err := c.Create(ctx, resource.KindRole, svc, resource.Values{
		resource.FieldFriendlyName: "agent", resource.FieldRoleType: "service",
		resource.FieldPermissions: `["editOwnUserInfo","createConversation","joinConversation"]`,
	}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := resource.Values{
		resource.FieldFriendlyName: "agent", resource.FieldRoleType: "service",
		resource.FieldPermissions: `["createConversation","editOwnUserInfo","joinConversation"]`,
	}
	wantValues(t, "create", resource.KindRole, created.Values, want, true)
	if !resource.IsSID(created.SID, "RL") || created.ParentSID != svc {
		t.Errorf("create: SID %q parent %q", created.SID, created.ParentSID)
	}
	// Twilio promises no order: a reordering is the same set.
	if err := emu.SetRolePermissionOrder(svc, created.SID, []string{"joinConversation", "editOwnUserInfo", "createConversation"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Fetch(ctx, resource.KindRole, svc, created.SID)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, "fetch after reordering", resource.KindRole, got.Values, want, true)

	updated, err := c.Update(ctx, resource.KindRole, svc, created.SID, resource.Values{resource.FieldPermissions: `["sendMessage","createConversation"]`}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want[resource.FieldPermissions] = `["createConversation","sendMessage"]`
	wantValues(t, "update", resource.KindRole, updated.Values, want, true)

	list, err := c.List(ctx, resource.KindRole, svc)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range list {
		if o.SID == created.SID {
			found = true
			wantValues(t, "list", resource.KindRole, o.Values, want, true)
		}
	}
	if !found {
		t.Errorf("list of %d roles misses %s", len(list), created.SID)
	}
	if err := c.Delete(ctx, resource.KindRole, svc, created.SID, twilioapi.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(ctx, resource.KindRole, svc, created.SID); !twilioapi.IsNotFound(err) {
		t.Errorf("fetch after delete: %v, want not found", err)
	}
}

func TestUserRoundTripThroughTheEmulator(t *testing.T) {
	c, emu, svc := emulatorClient(t)
	ctx := context.Background()
	role, err := c.Create(ctx, resource.KindRole, svc, resource.Values{
		resource.FieldFriendlyName: "member", resource.FieldRoleType: "service", resource.FieldPermissions: `["joinConversation"]`,
	}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const identity = "alice smith/ops@example.com" // reached by its escaped identity
	created, err := c.Create(ctx, resource.KindUser, svc, resource.Values{
		resource.FieldIdentity: identity, resource.FieldFriendlyName: "Alice",
		resource.FieldAttributes: `{"team":"blue","level":2}`, resource.FieldRoleSID: role.SID,
	}, twilioapi.CallOptions{WebhookEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	want := resource.Values{
		resource.FieldIdentity: identity, resource.FieldFriendlyName: "Alice",
		resource.FieldAttributes: `{"level":2,"team":"blue"}`, resource.FieldRoleSID: role.SID,
	}
	wantValues(t, "create", resource.KindUser, created.Values, want, true)

	got, err := c.Fetch(ctx, resource.KindUser, svc, identity)
	if err != nil {
		t.Fatal(err)
	}
	if got.SID != created.SID {
		t.Errorf("fetch by identity: SID %q, want %q", got.SID, created.SID)
	}
	wantValues(t, "fetch by identity", resource.KindUser, got.Values, want, true)

	updated, err := c.Update(ctx, resource.KindUser, svc, created.SID, resource.Values{
		resource.FieldFriendlyName: "Alice S.", resource.FieldAttributes: `{}`,
	}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want[resource.FieldFriendlyName], want[resource.FieldAttributes] = "Alice S.", `{}`
	wantValues(t, "update", resource.KindUser, updated.Values, want, true)

	list, err := c.List(ctx, resource.KindUser, svc)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].SID != created.SID {
		t.Fatalf("list = %v, want the one user", list)
	}
	wantValues(t, "list", resource.KindUser, list[0].Values, want, true)
	if users, err := emu.Users(svc); err != nil || len(users) != 1 {
		t.Fatalf("emulator holds %v, %v", users, err)
	}
	if err := c.Delete(ctx, resource.KindUser, svc, created.SID, twilioapi.CallOptions{WebhookEnabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(ctx, resource.KindUser, svc, identity); !twilioapi.IsNotFound(err) {
		t.Errorf("fetch after delete: %v, want not found", err)
	}
}

func TestServiceSingletonsRoundTripThroughTheEmulator(t *testing.T) {
	c, emu, svc := emulatorClient(t)
	ctx := context.Background()
	chatRole, err := c.Create(ctx, resource.KindRole, svc, resource.Values{
		resource.FieldFriendlyName: "members", resource.FieldRoleType: "service", resource.FieldPermissions: `["joinConversation"]`,
	}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind   resource.Kind
		update resource.Values
		want   resource.Values // what the fetch after the update shows of them
	}{
		{resource.KindServiceConfiguration,
			resource.Values{"default_chat_service_role_sid": chatRole.SID, "reachability_enabled": "true"},
			resource.Values{"default_chat_service_role_sid": chatRole.SID, "reachability_enabled": "true"}},
		{resource.KindServiceNotifications,
			resource.Values{
				"log_enabled": "true", "new_message.enabled": "true", "new_message.template": "${USER}: ${MESSAGE}",
				"new_message.badge_count_enabled": "true", "new_message.with_media.enabled": "true",
				"new_message.with_media.template": "${USER} sent a file", "added_to_conversation.sound": "ding",
			},
			resource.Values{
				"log_enabled": "true", "new_message.enabled": "true", "new_message.template": "${USER}: ${MESSAGE}",
				"new_message.badge_count_enabled": "true", "new_message.with_media.enabled": "true",
				"new_message.with_media.template": "${USER} sent a file", "added_to_conversation.sound": "ding",
			}},
		{resource.KindServiceWebhooks,
			resource.Values{
				"post_webhook_url": "https://hooks.example.com/post", "method": "post",
				"filters": `["onMessageAdded","onConversationAdded","onParticipantAdded"]`,
			},
			resource.Values{
				"post_webhook_url": "https://hooks.example.com/post", "method": "POST",
				"filters": `["onConversationAdded","onMessageAdded","onParticipantAdded"]`,
			}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			id := resource.SingletonID(tt.kind, svc)
			list, err := c.List(ctx, tt.kind, svc)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].SID != id || list[0].ParentSID != svc || list[0].Kind != tt.kind {
				t.Fatalf("list = %+v, want the one %s at %s", list, tt.kind, id)
			}
			updated, err := c.Update(ctx, tt.kind, svc, id, tt.update, twilioapi.CallOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantValues(t, "update answer", tt.kind, updated.Values, tt.want, false)
			if tt.kind == resource.KindServiceWebhooks {
				// Twilio promises no order: a reordering is the same set.
				if err := emu.SetWebhookFilterOrder(svc, []string{"onParticipantAdded", "onMessageAdded", "onConversationAdded"}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := c.Fetch(ctx, tt.kind, svc, id)
			if err != nil {
				t.Fatal(err)
			}
			wantValues(t, "fetch", tt.kind, got.Values, tt.want, false)
			if !reflect.DeepEqual(got.Values, updated.Values) {
				t.Errorf("fetch shows %v, the update answered %v", got.Values, updated.Values)
			}
			if _, err := c.Create(ctx, tt.kind, svc, nil, twilioapi.CallOptions{}); !twilioapi.IsTerminal(err) {
				t.Errorf("create: %v, want refused", err)
			}
			if err := c.Delete(ctx, tt.kind, svc, id, twilioapi.CallOptions{}); !twilioapi.IsTerminal(err) {
				t.Errorf("delete: %v, want refused", err)
			}
		})
	}
	// Filters cleared by the empty set.
	id := resource.SingletonID(resource.KindServiceWebhooks, svc)
	cleared, err := c.Update(ctx, resource.KindServiceWebhooks, svc, id, resource.Values{"filters": `[]`}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The emulator shows cleared filters as null, like an unconfigured
	// service: absent from Values.
	if f, ok := cleared.Values["filters"]; ok && f != `[]` {
		t.Errorf("filters after clearing = %q, want [] or absent", f)
	}
}
