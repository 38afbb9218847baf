package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// TestIncrementalPassThatDeletesAConversationReadsItInFull: an app adds
// participants to a managed conversation after the last full read; the
// pass that deletes the conversation (its spec gone) counts them, so the
// deletion guard refuses it instead of deleting six participants convsync
// does not manage.
func TestIncrementalPassThatDeletesAConversationReadsItInFull(t *testing.T) {
	f := newFixture(t, 5)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.rec.Now = func() time.Time { return now }
	ctx := context.Background()
	both := []resource.Desired{svc("s", "S"), conv("vip", "s")}
	if _, err := f.rec.Pass(ctx, both, "h1", true, -1); err != nil {
		t.Fatal(err)
	}
	key := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID + "/" + f.store.Get(resource.Address{Kind: resource.KindConversation, Name: "vip"}).SID
	api := f.rec.Engine.API.(*twilioapi.Client)
	for i := range 6 {
		if _, err := api.Create(ctx, resource.KindParticipant, key, resource.Values{resource.FieldIdentity: fmt.Sprintf("app-user-%d", i)}, twilioapi.CallOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The spec goes; a second load confirms it.
	if _, err := f.rec.Pass(ctx, both[:1], "h2", false, -1); err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Second)
	res, err := f.rec.Pass(ctx, both[:1], "h2", false, -1)
	var refused *engine.TooManyDestroysError
	if !errors.As(err, &refused) || refused.Count != 7 || !res.Full {
		t.Fatalf("want a full pass refused for 7 destroys (the conversation and its 6 participants), got full=%v, %v", res != nil && res.Full, err)
	}
}

// TestConfirmedParticipantRemovalInAConversationStillWaiting: the
// participant's spec went first, the conversation's a moment later. When
// the participant's removal is confirmed but the conversation's delete
// still waits for its own confirmation, the participant is deleted by a
// request of its own, not just dropped from the state while it stays in
// Twilio.
func TestConfirmedParticipantRemovalInAConversationStillWaiting(t *testing.T) {
	f := newFixture(t, 5)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.rec.Now = func() time.Time { return now }
	ctx := context.Background()
	alice := resource.Desired{Address: resource.Address{Kind: resource.KindParticipant, Name: "alice"}, Parent: resource.Ref{Address: resource.Address{Kind: resource.KindConversation, Name: "vip"}}, Values: resource.Values{resource.FieldIdentity: "alice"}}
	all := []resource.Desired{svc("s", "S"), conv("vip", "s"), alice}
	if _, err := f.rec.Pass(ctx, all, "h1", true, -1); err != nil {
		t.Fatal(err)
	}
	svcSID := f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}).SID
	convSID := f.store.Get(resource.Address{Kind: resource.KindConversation, Name: "vip"}).SID
	if _, err := f.rec.Pass(ctx, all[:2], "h2", false, -1); err != nil { // alice's spec goes
		t.Fatal(err)
	}
	now = now.Add(1500 * time.Millisecond)
	if _, err := f.rec.Pass(ctx, all[:1], "h3", false, -1); err != nil { // then the conversation's
		t.Fatal(err)
	}
	now = now.Add(time.Second) // alice's removal confirmed, the conversation's not yet
	if _, err := f.rec.Pass(ctx, all[:1], "h3", false, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.emu.Conversation(svcSID, convSID); err != nil {
		t.Fatalf("the conversation went before its removal was confirmed: %v", err)
	}
	if ps, _ := f.emu.Participants(svcSID, convSID); len(ps) != 0 {
		t.Fatalf("alice's removal is confirmed, but Twilio still holds %+v", ps)
	}
}
