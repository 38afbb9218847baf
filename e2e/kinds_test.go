package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/emulator"
)

const kindsService = `kind: Service
name: support
friendly_name: Customer support
`

const kindsRoles = `kind: Role
name: agent
service: support
friendly_name: Agent
type: conversation
permissions: [sendMessage, leaveConversation, editOwnMessage]
---
kind: Role
name: agent-admins
service: support
friendly_name: Agent admins
type: service
permissions: [createConversation, joinConversation]
`

const kindsUser = `kind: User
name: alice
service: support
identity: alice@example.com
friendly_name: Alice
attributes: {team: blue}
role: agent-admins
`

const kindsSettings = `kind: ServiceConfiguration
service: support
default_chat_service_role: agent-admins
reachability_enabled: true
---
kind: ServiceNotifications
service: support
log_enabled: true
new_message: {enabled: true, template: "${PARTICIPANT}: ${MESSAGE}", with_media: {enabled: true}}
---
kind: ServiceWebhooks
service: support
post_webhook_url: https://hooks.example.com/post
method: post
filters: [onMessageAdded, onConversationAdd, onParticipantAdded]
`

func (e *env) noChanges(when string) {
	e.t.Helper()
	r := e.must(0, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "No changes.") {
		e.t.Fatalf("%s: plan has changes:\n%s", when, r.stdout)
	}
}

func (e *env) applyOK(wantSummary string) result {
	e.t.Helper()
	r := e.must(0, "apply", "--auto-approve")
	if !strings.Contains(r.stdout, wantSummary) {
		e.t.Fatalf("apply: want %q:\n%s", wantSummary, r)
	}
	return r
}

func (e *env) role(serviceSID, sid string) emulator.Role {
	e.t.Helper()
	roles, err := e.emu.Roles(serviceSID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range roles {
		if r.SID == sid {
			return r
		}
	}
	e.t.Fatalf("role %s is not in Twilio", sid)
	return emulator.Role{}
}

// TestEveryServiceKind walks roles, users and the service's three singletons
// through the lifecycle a user relies on, with the real binary against the
// emulator over HTTP.
func TestEveryServiceKind(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("service.yaml", kindsService)
	e.writeSpec("roles.yaml", kindsRoles)
	e.writeSpec("user.yaml", kindsUser)
	e.writeSpec("settings.yaml", kindsSettings)

	// Singletons are updated, never created: 1 service, 2 roles, 1 user
	// created; 3 singletons written once the service exists.
	r := e.must(2, "plan", "--detailed-exitcode")
	for _, want := range []string{`+ role "agent"`, `+ user "alice"`, `~ service_configuration "support"`, "(the SID of role.agent-admins, known after apply)", "Plan: 4 to create, 3 to update"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("first plan lacks %q:\n%s", want, r.stdout)
		}
	}
	e.applyOK("Apply complete: 4 created, 3 updated, 0 replaced, 0 deleted.")
	svc := e.stateSID("service.support")
	admins := e.stateSID("role.agent-admins")
	users, _ := e.emu.Users(svc)
	if len(users) != 1 || users[0].RoleSID != admins || users[0].Identity != "alice@example.com" {
		t.Fatalf("users in Twilio: %+v, want alice with role %s", users, admins)
	}
	settings, _ := e.emu.Settings(svc)
	if settings.Configuration.DefaultChatServiceRoleSID != admins {
		t.Fatalf("configuration: %+v", settings.Configuration)
	}
	e.noChanges("after the first apply")

	// Twilio's order of a set is not a change.
	agent := e.stateSID("role.agent")
	if err := e.emu.SetRolePermissionOrder(svc, agent, []string{"sendMessage", "editOwnMessage", "leaveConversation"}); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.SetWebhookFilterOrder(svc, []string{"onParticipantAdded", "onMessageAdded", "onConversationAdd"}); err != nil {
		t.Fatal(err)
	}
	e.noChanges("after Twilio reordered permissions and filters")

	// One permission more: one in-place update, shown by member.
	e.writeSpec("roles.yaml", strings.Replace(kindsRoles, "[sendMessage, leaveConversation, editOwnMessage]", "[sendMessage, leaveConversation, editOwnMessage, sendMediaMessage]", 1))
	r = e.must(2, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "~ permissions = [") || !strings.Contains(r.stdout, "+ sendMediaMessage") || !strings.Contains(r.stdout, "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete.") {
		t.Fatalf("plan for an added permission:\n%s", r.stdout)
	}
	e.applyOK("Apply complete: 0 created, 1 updated, 0 replaced, 0 deleted.")
	if got := e.role(svc, agent); got.SID != agent || !slices.Contains(got.Permissions, "sendMediaMessage") {
		t.Fatalf("role after update: %+v", got)
	}
	e.noChanges("after the permission update")

	// A role's type cannot change: it is replaced.
	roles := strings.Replace(kindsRoles, "[sendMessage, leaveConversation, editOwnMessage]", "[sendMessage, leaveConversation, editOwnMessage, sendMediaMessage]", 1)
	e.writeSpec("roles.yaml", strings.Replace(roles, "type: conversation", "type: service", 1))
	r = e.must(2, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "type cannot be changed in place") {
		t.Fatalf("plan for a role type change:\n%s", r.stdout)
	}
	e.applyOK("Apply complete: 0 created, 0 updated, 1 replaced, 0 deleted.")
	if e.stateSID("role.agent") == agent {
		t.Fatal("role.agent kept its SID after a type change")
	}
	e.noChanges("after the role replacement")

	// The user's role is replaced (its friendly_name is immutable): the new
	// role is created, the user and the configuration move to it, and only
	// then is the old one deleted (Twilio refuses to delete a role the
	// configuration still uses), all in one apply.
	e.writeSpec("roles.yaml", strings.Replace(strings.Replace(roles, "type: conversation", "type: service", 1), "friendly_name: Agent admins", "friendly_name: Administrators", 1))
	r = e.must(2, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "Plan: 0 to create, 2 to update, 1 to replace, 0 to delete.") {
		t.Fatalf("plan for the user's role replaced:\n%s", r.stdout)
	}
	e.applyOK("Apply complete: 0 created, 2 updated, 1 replaced, 0 deleted.")
	newAdmins := e.stateSID("role.agent-admins")
	users, _ = e.emu.Users(svc)
	settings, _ = e.emu.Settings(svc)
	if newAdmins == admins || users[0].RoleSID != newAdmins || settings.Configuration.DefaultChatServiceRoleSID != newAdmins {
		t.Fatalf("after the role replacement: role %s (was %s), user's role %s, configuration's %s", newAdmins, admins, users[0].RoleSID, settings.Configuration.DefaultChatServiceRoleSID)
	}
	allRoles, _ := e.emu.Roles(svc)
	for _, role := range allRoles {
		if role.SID == admins {
			t.Fatalf("the old role %s is still in Twilio", admins)
		}
	}
	e.noChanges("after the user's role was replaced")

	// A new identity is a new user.
	alice := e.stateSID("user.alice")
	e.writeSpec("user.yaml", strings.Replace(kindsUser, "alice@example.com", "alice@example.org", 1))
	e.applyOK("Apply complete: 0 created, 0 updated, 1 replaced, 0 deleted.")
	if e.stateSID("user.alice") == alice {
		t.Fatal("user.alice kept its SID after an identity change")
	}
	e.noChanges("after the user replacement")

	// A field removed from a singleton's spec is no longer managed: no change.
	e.emu.ResetStats()
	e.writeSpec("settings.yaml", strings.Replace(kindsSettings, "reachability_enabled: true\n", "", 1))
	e.noChanges("after reachability_enabled left the spec")
	// A singleton removed from the specs is forgotten, with no API call.
	e.writeSpec("settings.yaml", strings.Replace(strings.Replace(kindsSettings, "reachability_enabled: true\n", "", 1), "---\nkind: ServiceNotifications\nservice: support\nlog_enabled: true\nnew_message: {enabled: true, template: \"${PARTICIPANT}: ${MESSAGE}\", with_media: {enabled: true}}\n", "", 1))
	r = e.must(2, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "service_notifications.support will be removed from the state") {
		t.Fatalf("plan for a removed singleton:\n%s", r.stdout)
	}
	e.must(0, "apply", "--auto-approve")
	for route, n := range e.emu.Stats().ByRoute {
		if !strings.HasPrefix(route, "GET ") && n > 0 {
			t.Errorf("forgetting a singleton sent %d %s", n, route)
		}
	}
	settings, _ = e.emu.Settings(svc)
	if !settings.Notifications.LogEnabled {
		t.Error("forgetting the notifications changed them in Twilio")
	}
	e.noChanges("after the notifications were forgotten")

	// Import every kind back after losing it from the state.
	ids := map[string]string{
		"role.agent":                    "/Services/" + svc + "/Roles/" + e.stateSID("role.agent"),
		"user.alice":                    "/Services/" + svc + "/Users/alice@example.org", // by identity
		"service_configuration.support": "/Services/" + svc + "/Configuration",
		"service_webhooks.support":      "/Services/" + svc + "/Configuration/Webhooks",
	}
	for addr, id := range ids {
		e.must(0, "state", "rm", addr)
		r := e.must(0, "import", addr, id)
		if !strings.Contains(r.stdout, "Imported "+addr) {
			t.Fatalf("import %s %s: %s", addr, id, r)
		}
	}
	e.noChanges("after importing every kind")
}
