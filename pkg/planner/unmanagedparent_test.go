package planner

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// notFoundLister answers 404 for the lists it is told are of a parent
// Twilio does not have.
type notFoundLister struct {
	countingLister
	gone map[string]bool
}

func (l *notFoundLister) List(ctx context.Context, kind resource.Kind, parent string) ([]resource.Observed, error) {
	items, _ := l.countingLister.List(ctx, kind, parent)
	if l.gone[string(kind)+"/"+parent] {
		return nil, &twilioapi.APIError{Status: http.StatusNotFound, Code: 20404}
	}
	return items, nil
}

// TestRefreshReadsChildrenOfAConversationNamedBySID: a participant and a
// webhook in a conversation convsync does not manage (conversation_sid,
// service_sid) are read, though nothing reads that conversation itself;
// without the read, every plan would create them again. A conversation
// that is gone answers the list with 404: nothing is in it.
func TestRefreshReadsChildrenOfAConversationNamedBySID(t *testing.T) {
	const otherSvc, otherConv = "IS00000000000000000000000000000077", "CH00000000000000000000000000000077"
	key := otherSvc + "/" + otherConv
	alice := resource.Values{resource.FieldIdentity: "alice"}
	desired := []resource.Desired{
		{Address: addr(resource.KindParticipant, "alice"), Parent: resource.Ref{SID: key}, Values: alice},
		{Address: addr(resource.KindConversationWebhook, "bot"), Parent: resource.Ref{SID: key}, Values: webhookValues("https://bot.example.com/")},
	}
	st := state.New()
	st.Put(&state.Resource{Address: addr(resource.KindParticipant, "alice"), SID: mbSID, ParentSID: key, Applied: alice.Clone()})
	st.Put(&state.Resource{Address: addr(resource.KindConversationWebhook, "bot"), SID: whSID, ParentSID: key, Applied: webhookValues("https://bot.example.com/")})
	api := &notFoundLister{countingLister: countingLister{items: map[string][]resource.Observed{
		"Service/":                   {observedService(otherSvc, "Outside")},
		"Participant/" + key:         {{Kind: resource.KindParticipant, SID: mbSID, ParentSID: key, Values: alice.Clone(), DateCreated: t0}},
		"ConversationWebhook/" + key: {{Kind: resource.KindConversationWebhook, SID: whSID, ParentSID: key, Values: webhookValues("https://bot.example.com/"), DateCreated: t0}},
	}}}
	snap, err := Refresh(context.Background(), api, desired, st, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(api.calls, "Participant/"+key) || !slices.Contains(api.calls, "ConversationWebhook/"+key) {
		t.Fatalf("lists %v, want the children of %s", api.calls, key)
	}
	plan, err := Compute(desired, st, snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range plan.Changes {
		if ch.Action != NoOp {
			t.Errorf("%s: %s (%s), want no change", ch.Address, ch.Action, ch.Reason)
		}
	}

	api.gone = map[string]bool{"Participant/" + key: true, "ConversationWebhook/" + key: true}
	if snap, err = Refresh(context.Background(), api, desired, st, RefreshOptions{}); err != nil {
		t.Fatalf("a conversation that is gone: %v", err)
	}
	if !snap.Listed(resource.KindParticipant, key) || len(snap.Under(resource.KindParticipant, key)) != 0 {
		t.Fatalf("a gone conversation's participants: listed %v, %d", snap.Listed(resource.KindParticipant, key), len(snap.Under(resource.KindParticipant, key)))
	}
}
