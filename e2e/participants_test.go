package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

const participantsBase = `kind: Service
name: support
friendly_name: Customer support
---
kind: Role
name: agent
service: support
friendly_name: Agent
type: conversation
permissions: [sendMessage, leaveConversation]
---
kind: Conversation
name: vip
service: support
unique_name: vip
friendly_name: VIP
`

const participantsPeople = `kind: Participant
name: vip-alice
conversation: vip
identity: alice@example.com
attributes: {seat: 1}
role: agent
---
kind: Participant
name: vip-bob
conversation: vip
identity: bob@example.com
---
kind: Participant
name: vip-customer-sms
conversation: vip
messaging_binding:
  address: "+15551230000"
  proxy_address: "+15559870000"
`

const participantsWebhook = `kind: ConversationWebhook
name: vip-bot
conversation: vip
target: webhook
url: https://bot.example.com/hook
method: POST
filters: [onMessageAdded, onParticipantAdded]
replay_after: 0
`

// TestParticipantsAndConversationWebhooks walks the lifecycle of issue 11
// with the real binary against the emulator over HTTP.
func TestParticipantsAndConversationWebhooks(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("base.yaml", participantsBase)
	e.writeSpec("people.yaml", participantsPeople)
	e.writeSpec("hook.yaml", participantsWebhook)

	// Everything in one apply: each create sends all its fields, and none
	// is followed by an update (the official provider's 50441 bug).
	e.emu.ResetStats()
	e.applyOK("Apply complete: 7 created, 0 updated, 0 replaced, 0 deleted.")
	stats := e.emu.Stats().ByRoute
	if n := stats["POST /v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Participants/{Sid}"]; n != 0 {
		t.Fatalf("%d participant updates after the creates, want 0", n)
	}
	svc, conv := e.stateSID("service.support"), e.stateSID("conversation.vip")
	people, err := e.emu.Participants(svc, conv)
	if err != nil || len(people) != 3 {
		t.Fatalf("participants in Twilio: %+v, %v", people, err)
	}
	byName := map[string]string{}
	for _, p := range people {
		byName[p.Identity+p.Address] = p.SID
		if p.Identity == "alice@example.com" && (p.RoleSID != e.stateSID("role.agent") || p.Attributes != `{"seat":1}`) {
			t.Fatalf("alice: %+v", p)
		}
		if p.Address == "+15551230000" && p.ProxyAddress != "+15559870000" {
			t.Fatalf("sms participant: %+v", p)
		}
	}
	hooks, _ := e.emu.ConversationWebhooks(svc, conv)
	if len(hooks) != 1 || hooks[0].Target != "webhook" || len(hooks[0].Filters) != 2 {
		t.Fatalf("webhooks in Twilio: %+v", hooks)
	}
	e.noChanges("after the first apply")

	// Attributes edited: one update, in place.
	e.writeSpec("people.yaml", strings.Replace(participantsPeople, "{seat: 1}", "{seat: 2}", 1))
	r := e.must(2, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete.") {
		t.Fatalf("plan for edited attributes:\n%s", r.stdout)
	}
	e.applyOK("Apply complete: 0 created, 1 updated, 0 replaced, 0 deleted.")
	e.noChanges("after the attributes update")

	// The binding's address is immutable: the participant is replaced.
	people2 := strings.Replace(strings.Replace(participantsPeople, "{seat: 1}", "{seat: 2}", 1), "+15551230000", "+15551230001", 1)
	e.writeSpec("people.yaml", people2)
	r = e.must(2, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "messaging_binding.address cannot be changed in place") || !strings.Contains(r.stdout, "1 to replace") {
		t.Fatalf("plan for a new binding address:\n%s", r.stdout)
	}
	e.applyOK("Apply complete: 0 created, 0 updated, 1 replaced, 0 deleted.")
	if sid := e.stateSID("participant.vip-customer-sms"); sid == byName["+15551230000"] {
		t.Fatal("the SMS participant kept its SID after a new address")
	}
	e.noChanges("after the participant replacement")

	// Four webhooks made outside convsync, and a second one in the specs:
	// six would exceed Twilio's five (50361). The plan fails before any
	// request that changes something.
	c := e.client()
	ctx := context.Background()
	for i := range 4 {
		if _, err := c.Create(ctx, resource.KindConversationWebhook, svc+"/"+conv, resource.Values{
			resource.FieldWebhookTarget: "webhook", resource.FieldWebhookURL: fmt.Sprintf("https://other.example.com/%d", i),
			resource.FieldWebhookFilters: `["onMessageAdded"]`,
		}, twilioapi.CallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	second := strings.Replace(strings.Replace(participantsWebhook, "vip-bot", "vip-audit", 1), "bot.example.com", "audit.example.com", 1)
	e.writeSpec("hook2.yaml", second)
	e.emu.ResetStats()
	r = e.must(1, "plan")
	if !strings.Contains(r.stderr+r.stdout, "would hold 6 webhooks, more than Twilio's limit of 5 (error 50361): 2 in these specs and 4 that convsync does not manage") {
		t.Fatalf("plan with a sixth webhook:\n%s", r)
	}
	e.must(1, "apply", "--auto-approve")
	if n := writes(e.emu); n != 0 {
		t.Fatalf("%d writes for a plan over the limit, want 0", n)
	}
	e.removeSpec("hook2.yaml")

	// The conversation closed in Twilio: closed is final, so a later edit
	// replaces it, and its participants and webhook are created again inside
	// the new one, in the same apply. The old ones go with the old
	// conversation: no request deletes them (a closed conversation refuses).
	if _, err := c.Update(ctx, resource.KindConversation, svc, conv, resource.Values{resource.FieldState: "closed"}, twilioapi.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	e.writeSpec("base.yaml", strings.Replace(participantsBase, "friendly_name: VIP", "friendly_name: VIP desk", 1))
	r = e.must(2, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "Plan: 0 to create, 0 to update, 5 to replace, 0 to delete.") {
		t.Fatalf("plan for a closed conversation's edit:\n%s", r.stdout)
	}
	e.emu.ResetStats()
	e.applyOK("Apply complete: 0 created, 0 updated, 5 replaced, 0 deleted.")
	stats = e.emu.Stats().ByRoute
	for _, route := range []string{"DELETE /v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Participants/{Sid}", "DELETE /v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Webhooks/{Sid}"} {
		if stats[route] != 0 {
			t.Fatalf("%s sent %d times; the conversation's delete takes them along", route, stats[route])
		}
	}
	newConv := e.stateSID("conversation.vip")
	if newConv == conv {
		t.Fatal("the closed conversation was not replaced")
	}
	if people, _ := e.emu.Participants(svc, newConv); len(people) != 3 {
		t.Fatalf("participants in the new conversation: %+v", people)
	}
	if hooks, _ := e.emu.ConversationWebhooks(svc, newConv); len(hooks) != 1 {
		t.Fatalf("webhooks in the new conversation: %+v", hooks)
	}
	e.noChanges("after the conversation replacement")

	// A participant and a webhook made outside convsync are imported by
	// Twilio's path, then the plan has nothing to do.
	key := svc + "/" + newConv
	carol, err := c.Create(ctx, resource.KindParticipant, key, resource.Values{resource.FieldIdentity: "carol@example.com"}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	studio, err := c.Create(ctx, resource.KindConversationWebhook, key, resource.Values{resource.FieldWebhookTarget: "studio", resource.FieldWebhookFlowSID: "FW0123456789abcdef0123456789abcdef"}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.writeSpec("imported.yaml", `kind: Participant
name: vip-carol
conversation: vip
identity: carol@example.com
---
kind: ConversationWebhook
name: vip-flow
conversation: vip
target: studio
flow_sid: FW0123456789abcdef0123456789abcdef
`)
	r = e.must(1, "plan")
	if !strings.Contains(r.stderr+r.stdout, " participant.vip-carol /Services/"+svc+"/Conversations/"+newConv+"/Participants/"+carol.SID) {
		t.Fatalf("plan for an unowned identity:\n%s", r)
	}
	e.must(0, "import", "participant.vip-carol", "/Services/"+svc+"/Conversations/"+newConv+"/Participants/"+carol.SID)
	e.must(0, "import", "conversation_webhook.vip-flow", "/Services/"+svc+"/Conversations/"+newConv+"/Webhooks/"+studio.SID)
	if e.stateSID("participant.vip-carol") != carol.SID || e.stateSID("conversation_webhook.vip-flow") != studio.SID {
		t.Fatal("import did not record the SIDs")
	}
	e.noChanges("after the imports")

	// The conversation and everything in it leave the specs: one request
	// deletes them all (the conversation's), and the plan says so.
	for _, f := range []string{"people.yaml", "hook.yaml", "imported.yaml"} {
		e.removeSpec(f)
	}
	e.writeSpec("base.yaml", participantsBase[:strings.Index(participantsBase, "---\nkind: Conversation")])
	r = e.must(2, "plan", "--detailed-exitcode")
	if !strings.Contains(r.stdout, "goes with conversation.vip, whose delete deletes it (no request of its own)") || !strings.Contains(r.stdout, "7 to delete") {
		t.Fatalf("plan for the conversation's removal:\n%s", r.stdout)
	}
	e.emu.ResetStats()
	e.applyOK("Apply complete: 0 created, 0 updated, 0 replaced, 7 deleted.")
	if n := writes(e.emu); n != 1 {
		t.Fatalf("%d writes to delete a conversation with 6 children, want 1: %v", n, e.emu.Stats().ByRoute)
	}
	e.noChanges("after the conversation's removal")
}
