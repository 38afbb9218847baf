package planner

import (
	"fmt"
	"slices"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// TestCreatesWaitForRoomUnderTheLimit: a conversation holding Twilio's five
// webhooks, all managed. Replacing one (a new target), or swapping one spec
// for another, must not create before deleting: for a moment the
// conversation would hold six, and Twilio refuses the create (50361).
func TestCreatesWaitForRoomUnderTheLimit(t *testing.T) {
	hooks := make([]resource.Observed, 5)
	for i := range hooks {
		hooks[i] = resource.Observed{Kind: resource.KindConversationWebhook, SID: fmt.Sprintf("WH0000000000000000000000000000000%d", i), ParentSID: vipKey, Values: webhookValues(fmt.Sprintf("https://%d.example.com/", i)), DateCreated: t0}
	}
	world := func(n int) (*state.State, *Snapshot, []resource.Desired) {
		st, snap, desired := childrenWorld(t, false, nil, hooks[:n])
		for i, h := range hooks[:n] {
			name := fmt.Sprintf("h%d", i)
			st.Put(&state.Resource{Address: addr(resource.KindConversationWebhook, name), SID: h.SID, ParentSID: vipKey, Applied: h.Values.Clone()})
			desired = append(desired, desiredChild(resource.KindConversationWebhook, name, h.Values.Clone()))
		}
		return st, snap, desired
	}

	t.Run("replace", func(t *testing.T) {
		st, snap, desired := world(5)
		desired[2].Values = resource.Values{resource.FieldWebhookTarget: "trigger", resource.FieldWebhookURL: "https://0.example.com/", resource.FieldWebhookTriggers: `["help"]`}
		plan, err := Compute(desired, st, snap)
		if err != nil {
			t.Fatal(err)
		}
		if ch := findChange(t, plan, "conversation_webhook.h0"); ch.Action != Replace || ch.CreateFirst {
			t.Fatalf("h0: %s, create first %v; want a replace that deletes first", ch.Action, ch.CreateFirst)
		}
	})
	t.Run("swap", func(t *testing.T) {
		st, snap, desired := world(5)
		desired[2] = desiredChild(resource.KindConversationWebhook, "new", webhookValues("https://new.example.com/"))
		plan, err := Compute(desired, st, snap)
		if err != nil {
			t.Fatal(err)
		}
		if ch := findChange(t, plan, "conversation_webhook.h0"); ch.Action != Delete {
			t.Fatalf("h0: %s, want delete", ch.Action)
		}
		if ch := findChange(t, plan, "conversation_webhook.new"); ch.Action != Create || !slices.Contains(ch.AfterFree, addr(resource.KindConversationWebhook, "h0")) {
			t.Fatalf("new: %s after %v; want a create after h0's delete", ch.Action, ch.AfterFree)
		}
	})
	t.Run("room to spare", func(t *testing.T) {
		st, snap, desired := world(4)
		desired[2].Values = resource.Values{resource.FieldWebhookTarget: "trigger", resource.FieldWebhookURL: "https://0.example.com/", resource.FieldWebhookTriggers: `["help"]`}
		plan, err := Compute(desired, st, snap)
		if err != nil {
			t.Fatal(err)
		}
		// Four held: the new one is created before the old one goes, as
		// for any kind without a natural key.
		if ch := findChange(t, plan, "conversation_webhook.h0"); ch.Action != Replace || !ch.CreateFirst {
			t.Fatalf("h0: %s, create first %v; want a replace that creates first", ch.Action, ch.CreateFirst)
		}
	})
}
