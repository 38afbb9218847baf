package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// Scenarios of participants and conversation webhooks found by review.

const reviewSecondConversation = `---
kind: Conversation
name: desk
service: support
unique_name: desk
friendly_name: Desk
`

// reviewEnv applies two conversations, three participants and a webhook.
func reviewEnv(t *testing.T) *env {
	e := newEnv(t)
	e.writeSpec("base.yaml", participantsBase+reviewSecondConversation)
	e.writeSpec("people.yaml", participantsPeople)
	e.writeSpec("hook.yaml", participantsWebhook)
	e.applyOK("Apply complete: 8 created")
	return e
}

// TestDestroyTargetsOneParticipant: destroying one participant deletes
// that participant, not its conversation (a participant's delete goes with
// its conversation's only when the plan deletes that too); destroying the
// conversation takes everything in it out of the state.
func TestDestroyTargetsOneParticipant(t *testing.T) {
	e := reviewEnv(t)
	svc, conv := e.stateSID("service.support"), e.stateSID("conversation.vip")
	e.emu.ResetStats()
	r := e.must(0, "destroy", "--auto-approve", "--target", "participant.vip-bob")
	if !strings.Contains(r.stdout, "0 to replace, 1 to delete") || strings.Contains(r.stdout, "conversation.vip will be deleted") {
		t.Fatalf("destroy --target participant.vip-bob:\n%s", r.stdout)
	}
	if n := e.emu.Stats().ByRoute["DELETE /v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Participants/{Sid}"]; n != 1 || writes(e.emu) != 1 {
		t.Fatalf("want one participant DELETE, got %v\n%s", e.emu.Stats().ByRoute, r.stdout)
	}
	if ps, _ := e.emu.Participants(svc, conv); len(ps) != 2 {
		t.Fatalf("participants left in vip: %+v", ps)
	}
	r = e.must(0, "destroy", "--auto-approve", "--target", "conversation.vip")
	if !strings.Contains(r.stdout, "4 to delete") {
		t.Fatalf("destroy --target conversation.vip:\n%s", r.stdout)
	}
	r = e.must(0, "state", "list")
	if strings.Contains(r.stdout, "participant.") || strings.Contains(r.stdout, "conversation_webhook") {
		t.Fatalf("state after destroying the conversation:\n%s", r.stdout)
	}
}

// TestReplacingOneOfFiveWebhooks: a conversation holds Twilio's limit of
// five webhooks; a new target replaces one. The old one is deleted before
// the new one is created, or Twilio would refuse the create (50361).
func TestReplacingOneOfFiveWebhooks(t *testing.T) {
	e := reviewEnv(t)
	var b strings.Builder
	for i, n := range []string{"a", "b", "c", "d", "e"} {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.WriteString("kind: ConversationWebhook\nname: h" + n + "\nconversation: vip\ntarget: trigger\nurl: https://" + n + ".example.com/hook\ntriggers: [help]\n")
	}
	e.writeSpec("hook.yaml", b.String())
	e.must(0, "apply", "--auto-approve")
	e.noChanges("5 hooks")
	e.writeSpec("hook.yaml", strings.Replace(b.String(), "target: trigger\nurl: https://a.example.com/hook\ntriggers: [help]", "target: webhook\nurl: https://a.example.com/hook\nfilters: [onMessageAdded]", 1))
	r := e.run("apply", "--auto-approve")
	if r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	e.noChanges("after replacing one of five")
}

// TestImportedWebhookKeepsItsReplayAfter: replay_after is create-only and
// never read back; importing a webhook whose spec sets it must not plan its
// replacement at once (the import would delete what it adopts).
func TestImportedWebhookKeepsItsReplayAfter(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("base.yaml", participantsBase)
	e.applyOK("3 created")
	svc, conv := e.stateSID("service.support"), e.stateSID("conversation.vip")
	h, err := e.client().Create(context.Background(), resource.KindConversationWebhook, svc+"/"+conv, resource.Values{
		resource.FieldWebhookTarget: "webhook", resource.FieldWebhookURL: "https://bot.example.com/hook", resource.FieldWebhookMethod: "POST",
		resource.FieldWebhookFilters: `["onMessageAdded","onParticipantAdded"]`, resource.FieldWebhookReplayAfter: "0",
	}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.writeSpec("hook.yaml", participantsWebhook)
	r := e.must(0, "import", "conversation_webhook.vip-bot", "/Services/"+svc+"/Conversations/"+conv+"/Webhooks/"+h.SID)
	if !strings.Contains(r.stdout, "replay_after cannot be read from Twilio or changed after a create: recorded as the spec sets it") {
		t.Fatalf("import: %s", r)
	}
	e.noChanges("after importing a webhook whose spec sets replay_after")
}

// TestSavedPlanMovesAConversationWithItsParticipants: a conversation moved
// to another service is replaced, its participants and webhook re-created
// inside the new one; saved with plan --out, the plan applies from the file
// (the parent shown as a field that forces the replacement loads again).
func TestSavedPlanMovesAConversationWithItsParticipants(t *testing.T) {
	e := reviewEnv(t)
	e.writeSpec("other.yaml", "kind: Service\nname: other\nfriendly_name: Other\n---\nkind: Role\nname: other-agent\nservice: other\nfriendly_name: Agent\ntype: conversation\npermissions: [sendMessage]\n")
	e.writeSpec("base.yaml", strings.Replace(participantsBase, "name: vip\nservice: support", "name: vip\nservice: other", 1)+reviewSecondConversation)
	r := e.must(1, "plan")
	if !strings.Contains(r.stderr, "role: role.agent is in service service.support, but this participant is in service.other") {
		t.Fatalf("plan with a role of the old service: %s", r)
	}
	e.writeSpec("people.yaml", strings.Replace(participantsPeople, "role: agent", "role: other-agent", 1))
	planFile := e.work + "/p.plan"
	e.must(2, "plan", "--detailed-exitcode", "--out", planFile)
	e.must(0, "apply", planFile)
	e.noChanges("after moving the conversation")
	other := e.stateSID("service.other")
	if ps, _ := e.emu.Participants(other, e.stateSID("conversation.vip")); len(ps) != 3 {
		t.Fatalf("vip: %+v", ps)
	}
}

// TestChildrenOfAConversationNamedBySID: a participant and a webhook in a
// conversation convsync does not manage (conversation_sid + service_sid)
// are read back: the next plan has no changes, instead of creating them
// again on every apply.
func TestChildrenOfAConversationNamedBySID(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	ctx := context.Background()
	svc, err := c.Create(ctx, resource.KindService, "", resource.Values{resource.FieldFriendlyName: "Outside"}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conv, err := c.Create(ctx, resource.KindConversation, svc.SID, resource.Values{resource.FieldUniqueName: "outside"}, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := "conversation_sid: " + conv.SID + "\nservice_sid: " + svc.SID + "\n"
	e.writeSpec("p.yaml", "kind: Participant\nname: p\n"+in+"identity: zed\n---\nkind: ConversationWebhook\nname: h\n"+in+"target: trigger\nurl: https://x.example.com/\ntriggers: [a]\n")
	e.applyOK("Apply complete: 2 created")
	e.noChanges("after creating in a conversation named by SID")
	e.must(0, "plan", "--refresh-only", "--detailed-exitcode")
	ps, _ := e.emu.Participants(svc.SID, conv.SID)
	hs, _ := e.emu.ConversationWebhooks(svc.SID, conv.SID)
	if len(ps) != 1 || len(hs) != 1 {
		t.Fatalf("Twilio holds %d participants and %d webhooks, want 1 and 1", len(ps), len(hs))
	}
	// Gone with its conversation: the plan says so, and destroy only
	// forgets them.
	if err := e.emu.DeleteConversationOOB(svc.SID, "outside"); err != nil {
		t.Fatal(err)
	}
	if r := e.must(2, "plan", "--detailed-exitcode"); !strings.Contains(r.stdout, "is no longer in Twilio, so it is created again") {
		t.Fatalf("plan after the conversation went: %s", r)
	}
	if r := e.must(0, "destroy", "--auto-approve"); !strings.Contains(r.stdout, "0 deleted, 2 forgotten") {
		t.Fatalf("destroy: %s", r)
	}
}

// TestDaemonGuardCountsParticipantsAppsAdded: participants an app adds to
// a managed conversation after the daemon's last full read count in the
// deletion guard when the conversation's spec goes.
func TestDaemonGuardCountsParticipantsAppsAdded(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP"))
	d := e.startDaemon("--max-destroy", "5")
	var svc string
	var conv emulator.Conversation
	e.eventually("the conversation exists", func() bool {
		svc = e.serviceSID("Customer support")
		c, ok := e.conversation(svc, "vip")
		conv = c
		return ok
	})
	for i := range 6 {
		if _, err := e.client().Create(context.Background(), resource.KindParticipant, svc+"/"+conv.SID, resource.Values{resource.FieldIdentity: fmt.Sprintf("app-user-%d", i)}, twilioapi.CallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.removeSpec("vip.yaml")
	e.eventually("the refusal in /readyz, or the conversation deleted", func() bool {
		_, body := d.get("/readyz")
		_, ok := e.conversation(svc, "vip")
		return strings.Contains(body, `"outcome": "refused"`) || !ok
	})
	if _, ok := e.conversation(svc, "vip"); !ok {
		t.Fatalf("the daemon deleted a conversation holding 6 participants it does not manage, with --max-destroy 5:\n%s", d.log())
	}
}

// TestParticipantChangesShape: a chat participant becomes an SMS one and
// back; each is a replacement (Twilio refuses an identity on a messaging
// participant), and the plan has no changes after each.
func TestParticipantChangesShape(t *testing.T) {
	e := reviewEnv(t)
	sms := strings.Replace(participantsPeople, "identity: bob@example.com", "messaging_binding: {address: \"+15550000001\", proxy_address: \"+15559870000\"}", 1)
	for _, people := range []string{sms, participantsPeople} {
		e.writeSpec("people.yaml", people)
		e.applyOK("Apply complete: 0 created, 0 updated, 1 replaced, 0 deleted.")
		e.noChanges("after participant.vip-bob changed shape")
	}
}

// TestExportLeavesOutAnIdenticalWebhook: Twilio holds two identical
// webhooks in one conversation. Their specs would be refused as identical,
// so export --import writes one and says why the other is left out; the
// plan over the export then has no changes.
func TestExportLeavesOutAnIdenticalWebhook(t *testing.T) {
	e := reviewEnv(t)
	svc, conv := e.stateSID("service.support"), e.stateSID("conversation.vip")
	if _, err := e.client().Create(context.Background(), resource.KindConversationWebhook, svc+"/"+conv, resource.Values{
		resource.FieldWebhookTarget: "webhook", resource.FieldWebhookURL: "https://bot.example.com/hook", resource.FieldWebhookMethod: "POST",
		resource.FieldWebhookFilters: `["onMessageAdded","onParticipantAdded"]`,
	}, twilioapi.CallOptions{}); err != nil {
		t.Fatal(err)
	}
	out := e.work + "/exported"
	st := e.work + "/exported.state.json"
	r := e.must(0, "export", "--out", out, "--import", "--state", st)
	if !strings.Contains(r.stdout, "Not exported: conversation webhook WH") {
		t.Fatalf("export: %s", r)
	}
	if r := e.must(0, "plan", "--detailed-exitcode", "--dir", out, "--state", st); !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("plan over the export: %s", r)
	}
}
