package planner

import (
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

func findChange(t *testing.T, p *Plan, addr string) Change {
	t.Helper()
	for _, c := range p.Changes {
		if c.Address.String() == addr {
			return c
		}
	}
	t.Fatalf("no step for %s in %+v", addr, p.Changes)
	return Change{}
}

func TestServiceReplacementCountsTheConversationsItTakesAlong(t *testing.T) {
	w := newWorld().service("support", svcSID, "Customer support", true).
		conversation("vip", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "VIP"}, nil).
		conversation("", convSID2, svcSID, nil, nil). // the app's
		conversation("", strayCH, svcSID, nil, nil)   // the app's
	plan, err := Compute([]resource.Desired{desiredService("support", "Renamed"), desiredConv("vip", "support", resource.Values{resource.FieldFriendlyName: "VIP"})}, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	svc := findChange(t, plan, "service.support")
	if svc.Cascade != 2 || !strings.Contains(strings.Join(svc.Warnings, "\n"), "it holds 2 conversations that convsync does not manage") {
		t.Fatalf("service step: cascade %d, warnings %q", svc.Cascade, svc.Warnings)
	}
	// service (1) + the 2 unmanaged conversations + the managed one's replace (1).
	if got := plan.Destroys(); got != 4 {
		t.Fatalf("Destroys() = %d, want 4", got)
	}
}

func TestRenamedAddressWaitsForTheOldOneToFreeItsUniqueName(t *testing.T) {
	// A renamed spec whose resource cannot be moved (closed: any change
	// replaces it) is created anew once the old one gives up its unique_name.
	w := newWorld().service("support", svcSID, "S", true).
		conversation("old-name", convSID, svcSID, resource.Values{resource.FieldUniqueName: "u", resource.FieldState: resource.StateClosed}, nil)
	plan, err := Compute([]resource.Desired{desiredService("support", "S"), desiredConv("new-name", "support", resource.Values{resource.FieldUniqueName: "u", resource.FieldFriendlyName: "New"})}, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	create := findChange(t, plan, "conversation.new-name")
	if create.Action != Create || len(create.AfterFree) != 1 || create.AfterFree[0].String() != "conversation.old-name" {
		t.Fatalf("create step: %s after %v", create.Action, create.AfterFree)
	}
	if !strings.Contains(create.Reason, `conversation.old-name holds the same unique_name "u", but it must be replaced`) {
		t.Fatalf("create reason: %s", create.Reason)
	}
	if del := findChange(t, plan, "conversation.old-name"); del.Action != Delete {
		t.Fatalf("old step: %s", del.Action)
	}
}

func TestUniqueNameKeptByAnotherManagedConversationFailsThePlan(t *testing.T) {
	// conversation.a holds "u" in Twilio, but its spec no longer manages
	// unique_name, so nothing in the plan frees it.
	w := newWorld().service("support", svcSID, "S", true).
		conversation("a", convSID, svcSID, resource.Values{resource.FieldUniqueName: "u"}, nil)
	_, err := Compute([]resource.Desired{
		desiredService("support", "S"),
		desiredConv("a", "support", resource.Values{}),
		desiredConv("b", "support", resource.Values{resource.FieldUniqueName: "u"}),
	}, w.st, w.build())
	if err == nil || !strings.Contains(err.Error(), `unique_name "u" is held in service `+svcSID+` by conversation.a (`+convSID+`), which keeps it`) {
		t.Fatalf("err = %v", err)
	}
}

func TestConversationsOfAnAdoptedServiceGoInIt(t *testing.T) {
	w := newWorld().service("", svcSID2, "S", false)
	w.st.AddPending(&state.Pending{Address: svcAddr("support"), Kind: resource.KindService, Values: resource.Values{resource.FieldFriendlyName: "S"}, StartedAt: t0})
	plan, err := Compute([]resource.Desired{desiredService("support", "S"), desiredConv("vip", "support", resource.Values{})}, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	if svc := findChange(t, plan, "service.support"); svc.Action != Adopt || svc.SID != svcSID2 {
		t.Fatalf("service: %s %s", svc.Action, svc.SID)
	}
	if conv := findChange(t, plan, "conversation.vip"); conv.NewParent.SID != svcSID2 {
		t.Fatalf("conversation goes to %v, want the adopted %s", conv.NewParent, svcSID2)
	}
}

func TestRemovedSpecDeletesTheResultOfAnInterruptedReCreate(t *testing.T) {
	// conversation.c was deleted outside convsync, its re-create was
	// interrupted (it happened), and then its spec was removed.
	w := newWorld().service("support", svcSID, "S", true).
		conversation("c", "", svcSID, nil, nil).
		conversation("", strayCH, svcSID, resource.Values{resource.FieldFriendlyName: "C"}, nil)
	w.st.AddPending(&state.Pending{Address: convAddr("c"), Kind: resource.KindConversation, ParentSID: svcSID, Values: resource.Values{resource.FieldFriendlyName: "C"}, StartedAt: t0})
	plan, err := Compute([]resource.Desired{desiredService("support", "S")}, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	if c := findChange(t, plan, "conversation.c"); c.Action != Delete || c.SID != strayCH {
		t.Fatalf("conversation.c: %s %s, want delete of %s", c.Action, c.SID, strayCH)
	}
}

func TestConversationClosedByItsOwnTimerIsLeftAlone(t *testing.T) {
	w := newWorld().service("support", svcSID, "S", true).
		conversation("c", convSID, svcSID, resource.Values{resource.FieldState: "closed", resource.FieldFriendlyName: "Old"}, resource.Values{resource.FieldTimersClosed: "P30D"})
	plan, err := Compute([]resource.Desired{desiredService("support", "S"), desiredConv("c", "support", resource.Values{resource.FieldTimersClosed: "P7D", resource.FieldFriendlyName: "New"})}, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	if c := findChange(t, plan, "conversation.c"); c.Action != NoOp {
		t.Fatalf("a conversation its timer closed was planned as %s (%s)", c.Action, c.Reason)
	}
}

func TestMatchPendingTakesTheClosestCandidateWithinTheWindow(t *testing.T) {
	p := &state.Pending{Address: convAddr("c"), Kind: resource.KindConversation, ParentSID: svcSID, Values: resource.Values{}, StartedAt: t0}
	at := func(sid string, d time.Duration) *resource.Observed {
		o := observedConv(sid, svcSID, nil)
		o.DateCreated = t0.Add(d)
		return &o
	}
	none := func(string) bool { return false }
	cases := []struct {
		name       string
		candidates []*resource.Observed
		want       string
	}{
		{"closest wins over oldest", []*resource.Observed{at(convSID, -4*time.Minute), at(convSID2, time.Second)}, convSID2},
		{"too early", []*resource.Observed{at(convSID, -10*time.Minute)}, ""},
		{"too late: someone else's", []*resource.Observed{at(convSID, 2*time.Hour)}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := MatchPending(p, tc.candidates, none)
			if (got == nil && tc.want != "") || (got != nil && got.SID != tc.want) {
				t.Fatalf("got %v, want %q", got, tc.want)
			}
		})
	}
}

func TestSavedPlanForAStateNotYetWrittenIsFresh(t *testing.T) {
	p := &Plan{StateLineage: "made-up-at-plan-time", StateSerial: 0}
	if err := p.CheckFresh("made-up-at-apply-time", 0); err != nil {
		t.Fatalf("a plan of a missing state, applied before anything was written: %v", err)
	}
	if err := p.CheckFresh("made-up-at-apply-time", 1); err == nil {
		t.Fatal("the state was written since: the plan must be refused")
	}
}
