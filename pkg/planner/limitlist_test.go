package planner

import (
	"context"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

// TestRefreshListsWhereANewResourceCountsAgainstALimit: a size known from
// an earlier read would make fetching convsync's own webhooks (none) look
// cheaper than a list, but a new webhook counts against Twilio's five with
// every webhook the conversation holds, and only a list shows those.
func TestRefreshListsWhereANewResourceCountsAgainstALimit(t *testing.T) {
	st, _, desired := childrenWorld(t, false, nil, nil)
	desired = append(desired, desiredChild(resource.KindConversationWebhook, "bot", webhookValues("https://bot.example.com/")))
	api := &countingLister{items: map[string][]resource.Observed{
		"Service/":               {observedService(svcSID, "Support")},
		"Conversation/" + svcSID: {observedConv(convSID, svcSID, resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP"})},
	}}
	for i := range 5 {
		api.items["ConversationWebhook/"+vipKey] = append(api.items["ConversationWebhook/"+vipKey], resource.Observed{Kind: resource.KindConversationWebhook, SID: "WH0000000000000000000000000000001" + string(rune('0'+i)), ParentSID: vipKey, Values: webhookValues("https://other.example.com/"), DateCreated: t0})
	}
	hints := map[string]int{SizeKey(resource.KindConversationWebhook, vipKey): 5, SizeKey(resource.KindConversation, svcSID): 1}
	snap, err := Refresh(context.Background(), api, desired, st, RefreshOptions{KnownSizes: hints})
	if err != nil {
		t.Fatal(err)
	}
	if m := snap.Method(resource.KindConversationWebhook, vipKey); m != ReadList {
		t.Fatalf("webhooks of %s read by %s, want a list", vipKey, m)
	}
	if _, err := Compute(desired, st, snap); err == nil {
		t.Fatal("a sixth webhook was planned")
	}
}
