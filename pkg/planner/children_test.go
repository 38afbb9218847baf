package planner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

const (
	mbSID  = "MB00000000000000000000000000000001"
	mbSID2 = "MB00000000000000000000000000000002"
	whSID  = "WH00000000000000000000000000000001"
)

var vipKey = svcSID + "/" + convSID

func desiredChild(k resource.Kind, name string, v resource.Values) resource.Desired {
	return resource.Desired{Address: addr(k, name), Parent: resource.Ref{Address: convAddr("vip")}, Values: v, Timeouts: resource.DefaultTimeouts}
}

func webhookValues(url string) resource.Values {
	return resource.Values{resource.FieldWebhookTarget: "webhook", resource.FieldWebhookURL: url, resource.FieldWebhookFilters: `["onMessageAdded"]`}
}

// childrenWorld: service.support with conversation.vip, both managed; the
// conversation holds what the test lists in it.
func childrenWorld(t *testing.T, closed bool, participants, webhooks []resource.Observed) (*state.State, *Snapshot, []resource.Desired) {
	t.Helper()
	v := resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP"}
	w := newWorld().service("support", svcSID, "Support", true).conversation("vip", convSID, svcSID, v, nil)
	if closed {
		w.conv[svcSID][0].Values[resource.FieldState] = resource.StateClosed
	}
	w.snap.SetListed(resource.KindParticipant, vipKey, participants)
	w.snap.SetListed(resource.KindConversationWebhook, vipKey, webhooks)
	return w.st, w.build(), []resource.Desired{desiredService("support", "Support"), desiredConv("vip", "support", v)}
}

func TestWebhookLimitCountsWebhooksConvsyncDoesNotManage(t *testing.T) {
	for _, tc := range []struct {
		unmanaged, managed int
		wantErr            bool
	}{
		{unmanaged: 4, managed: 1},
		{unmanaged: 4, managed: 2, wantErr: true},
		{unmanaged: 0, managed: 5},
	} {
		t.Run(fmt.Sprintf("%d+%d", tc.unmanaged, tc.managed), func(t *testing.T) {
			var existing []resource.Observed
			for i := range tc.unmanaged {
				existing = append(existing, resource.Observed{Kind: resource.KindConversationWebhook, SID: fmt.Sprintf("WH%032x", i+100), ParentSID: vipKey, Values: webhookValues(fmt.Sprintf("https://other.example.com/%d", i)), DateCreated: t0})
			}
			st, snap, desired := childrenWorld(t, false, nil, existing)
			for i := range tc.managed {
				desired = append(desired, desiredChild(resource.KindConversationWebhook, fmt.Sprintf("hook-%d", i), webhookValues(fmt.Sprintf("https://bot.example.com/%d", i))))
			}
			_, err := Compute(desired, st, snap)
			var problems Errors
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("plan failed: %v", err)
				}
				return
			}
			if !errors.As(err, &problems) || !strings.Contains(err.Error(), "would hold 6 webhooks, more than Twilio's limit of 5 (error 50361): 2 in these specs and 4 that convsync does not manage") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestMessagingParticipantIsRecognisedByItsBinding(t *testing.T) {
	sms := resource.Values{resource.FieldBindingAddress: "+15551230000", resource.FieldBindingProxyAddress: "+15559870000"}
	unowned := resource.Observed{Kind: resource.KindParticipant, SID: mbSID, ParentSID: vipKey, Values: sms.Clone(), DateCreated: t0}
	st, snap, desired := childrenWorld(t, false, []resource.Observed{unowned}, nil)
	desired = append(desired, desiredChild(resource.KindParticipant, "customer", sms))
	_, err := Compute(desired, st, snap)
	want := "convsync import participant.customer /Services/" + svcSID + "/Conversations/" + convSID + "/Participants/" + mbSID
	if err == nil || !strings.Contains(err.Error(), "messaging_binding.address / messaging_binding.proxy_address") || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want the binding named as taken and %q", err, want)
	}

	// An interrupted create of it is adopted, not repeated.
	st.AddPending(&state.Pending{Address: addr(resource.KindParticipant, "customer"), Kind: resource.KindParticipant, ParentSID: vipKey, Values: sms.Clone(), StartedAt: t0.Add(-1)})
	plan, err := Compute(desired, st, snap)
	if err != nil {
		t.Fatal(err)
	}
	if ch := findChange(t, plan, "participant.customer"); ch.Action != Adopt || ch.SID != mbSID {
		t.Fatalf("participant.customer: %s %s, want adopt of %s", ch.Action, ch.SID, mbSID)
	}
}

func TestChildrenOfAClosedConversationGoWithItsReplacement(t *testing.T) {
	alice := resource.Values{resource.FieldIdentity: "alice"}
	p := resource.Observed{Kind: resource.KindParticipant, SID: mbSID, ParentSID: vipKey, Values: alice.Clone(), DateCreated: t0}
	h := resource.Observed{Kind: resource.KindConversationWebhook, SID: whSID, ParentSID: vipKey, Values: webhookValues("https://bot.example.com/"), DateCreated: t0}
	st, snap, desired := childrenWorld(t, true, []resource.Observed{p}, []resource.Observed{h})
	st.Put(&state.Resource{Address: addr(resource.KindParticipant, "alice"), SID: mbSID, ParentSID: vipKey, Applied: alice.Clone()})
	st.Put(&state.Resource{Address: addr(resource.KindConversationWebhook, "bot"), SID: whSID, ParentSID: vipKey, Applied: webhookValues("https://bot.example.com/")})
	desired[1].Values[resource.FieldFriendlyName] = "VIP desk" // an edit of a closed conversation replaces it
	desired = append(desired, desiredChild(resource.KindParticipant, "alice", alice), desiredChild(resource.KindConversationWebhook, "bot", webhookValues("https://bot.example.com/")))
	plan, err := Compute(desired, st, snap)
	if err != nil {
		t.Fatal(err)
	}
	conv := findChange(t, plan, "conversation.vip")
	if conv.Action != Replace {
		t.Fatalf("conversation.vip: %s, want replace", conv.Action)
	}
	for _, a := range []string{"participant.alice", "conversation_webhook.bot"} {
		ch := findChange(t, plan, a)
		if ch.Action != Replace || !ch.GoesWithParent || !slices.Contains(ch.DependsOn, conv.Address) {
			t.Errorf("%s: %s, goes with parent %v, depends on %v; want a replace that goes with conversation.vip", a, ch.Action, ch.GoesWithParent, ch.DependsOn)
		}
		if slices.Contains(conv.DependsOn, ch.Address) {
			t.Errorf("conversation.vip waits for %s's delete, which it does itself", a)
		}
	}
	if got := plan.Summary(); got.Replace != 3 {
		t.Fatalf("summary %+v, want 3 replaces", got)
	}
}

func TestParticipantWaitsForTheUserOfItsIdentity(t *testing.T) {
	st, snap, desired := childrenWorld(t, false, nil, nil)
	snap.SetListed(resource.KindUser, svcSID, nil)
	desired = append(desired,
		desiredIn(resource.KindUser, "alice", resource.Values{resource.FieldIdentity: "alice@example.com"}),
		desiredChild(resource.KindParticipant, "vip-alice", resource.Values{resource.FieldIdentity: "alice@example.com"}),
		desiredChild(resource.KindParticipant, "vip-bob", resource.Values{resource.FieldIdentity: "bob@example.com"}))
	plan, err := Compute(desired, st, snap)
	if err != nil {
		t.Fatal(err)
	}
	if ch := findChange(t, plan, "participant.vip-alice"); !slices.Contains(ch.DependsOn, addr(resource.KindUser, "alice")) {
		t.Errorf("participant.vip-alice depends on %v; want user.alice first (its identity would make that user)", ch.DependsOn)
	}
	if ch := findChange(t, plan, "participant.vip-bob"); len(ch.DependsOn) != 0 {
		t.Errorf("participant.vip-bob depends on %v; nothing creates its user", ch.DependsOn)
	}
}

// A refresh reads a conversation's children only when the conversation
// exists, level after level, and one list per conversation and kind.
func TestRefreshReadsChildrenOfExistingConversations(t *testing.T) {
	st, _, desired := childrenWorld(t, false, nil, nil)
	desired = append(desired, desiredChild(resource.KindParticipant, "alice", resource.Values{resource.FieldIdentity: "alice"}))
	gone := resource.Desired{Address: addr(resource.KindParticipant, "ghost"), Parent: resource.Ref{SID: svcSID + "/CH00000000000000000000000000000099"}, Values: resource.Values{resource.FieldIdentity: "ghost"}}
	desired = append(desired, gone)
	api := &countingLister{items: map[string][]resource.Observed{
		"Service/":                            {observedService(svcSID, "Support")},
		"Conversation/" + svcSID:              {observedConv(convSID, svcSID, resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP"})},
		"Participant/" + vipKey:               {{Kind: resource.KindParticipant, SID: mbSID2, ParentSID: vipKey, Values: resource.Values{resource.FieldIdentity: "zoe"}}},
		"ConversationWebhook/" + vipKey:       nil,
		"Role/" + svcSID:                      nil,
		"User/" + svcSID:                      nil,
		"ServiceConfiguration/" + svcSID:      nil,
		"Participant/" + svcSID + "/CH000099": nil,
	}}
	got, err := Refresh(context.Background(), api, desired, st, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Listed(resource.KindParticipant, vipKey) || len(got.Under(resource.KindParticipant, vipKey)) != 1 {
		t.Fatalf("participants of %s not listed", vipKey)
	}
	want := []string{"Service/", "Conversation/" + svcSID, "Participant/" + vipKey}
	if !slices.Equal(api.calls, want) {
		t.Fatalf("lists %v, want %v (none under a conversation Twilio does not have)", api.calls, want)
	}
}

type countingLister struct {
	items map[string][]resource.Observed
	mu    sync.Mutex
	calls []string
}

func (l *countingLister) List(_ context.Context, kind resource.Kind, parent string) ([]resource.Observed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, string(kind)+"/"+parent)
	return l.items[string(kind)+"/"+parent], nil
}

func (l *countingLister) Fetch(_ context.Context, kind resource.Kind, parent, id string) (resource.Observed, error) {
	return resource.Observed{}, fmt.Errorf("fetch %s %s %s not expected", kind, parent, id)
}
