package cli

import (
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

func TestParseImportIDForEveryKind(t *testing.T) {
	const is = "IS0123456789abcdef0123456789abcdef"
	tests := []struct {
		id        string
		kind      resource.Kind
		parent    string
		sid       string
		wantError bool
	}{
		{id: "/Services/" + is, kind: resource.KindService, sid: is},
		{id: "/Services/" + is + "/Conversations/CH0123456789abcdef0123456789abcdef", kind: resource.KindConversation, parent: is, sid: "CH0123456789abcdef0123456789abcdef"},
		{id: "/Services/" + is + "/Roles/RL0123456789abcdef0123456789abcdef", kind: resource.KindRole, parent: is, sid: "RL0123456789abcdef0123456789abcdef"},
		{id: "/Services/" + is + "/Users/US0123456789abcdef0123456789abcdef", kind: resource.KindUser, parent: is, sid: "US0123456789abcdef0123456789abcdef"},
		{id: "/Services/" + is + "/Users/alice@example.com", kind: resource.KindUser, parent: is, sid: "alice@example.com"},
		{id: "/Services/" + is + "/Configuration", kind: resource.KindServiceConfiguration, parent: is, sid: "/Services/" + is + "/Configuration"},
		{id: "/Services/" + is + "/Configuration/Notifications", kind: resource.KindServiceNotifications, parent: is, sid: "/Services/" + is + "/Configuration/Notifications"},
		{id: "/Services/" + is + "/Configuration/Webhooks", kind: resource.KindServiceWebhooks, parent: is, sid: "/Services/" + is + "/Configuration/Webhooks"},
		{id: "/Services/" + is + "/Roles/agent", wantError: true}, // roles have no natural key
		{id: "/Services/" + is + "/Configuration/Other", wantError: true},
		{id: "/Services/nope", wantError: true},
		{id: "/Services/" + is + "/Conversations", wantError: true},
		{id: "IS0123", wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			kind, parent, sid, err := parseImportID(tt.id)
			if tt.wantError {
				if err == nil {
					t.Fatalf("want an error, got %s %s %s", kind, parent, sid)
				}
				return
			}
			if err != nil || kind != tt.kind || parent != tt.parent || sid != tt.sid {
				t.Fatalf("got %s %q %q %v, want %s %q %q", kind, parent, sid, err, tt.kind, tt.parent, tt.sid)
			}
		})
	}
}
