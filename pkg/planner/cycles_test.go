package planner

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// unique_names move between managed conversations: a chain can be ordered
// (each waits for the one that frees its name), a cycle cannot and must be
// refused at plan time, naming every conversation in it.
func TestUniqueNameCyclesAreRefusedAtPlanTime(t *testing.T) {
	un := func(n string) resource.Values { return resource.Values{resource.FieldUniqueName: n} }
	tests := []struct {
		name  string
		have  map[string]string // conversation → unique_name held in Twilio
		want  map[string]string // conversation → unique_name in the spec
		cycle []string          // conversations named by the error; nil: no error
		msg   []string
	}{
		{"chain", map[string]string{"a": "ua", "b": "ub"}, map[string]string{"a": "ub", "b": "uc"}, nil, nil},
		{"swap", map[string]string{"a": "ua", "b": "ub"}, map[string]string{"a": "ub", "b": "ua"},
			[]string{"conversation.a", "conversation.b"},
			[]string{`conversation.a takes unique_name "ub" from conversation.b`, `conversation.b takes unique_name "ua" from conversation.a`, "two applies", `"ub-tmp"`}},
		{"rotation of three", map[string]string{"a": "ua", "b": "ub", "c": "uc"}, map[string]string{"a": "ub", "b": "uc", "c": "ua"},
			[]string{"conversation.a", "conversation.b", "conversation.c"},
			[]string{`conversation.c takes unique_name "ua" from conversation.a`, "temporary unique_name"}},
		{"swap beside a chain", map[string]string{"a": "ua", "b": "ub", "c": "uc", "d": "ud"}, map[string]string{"a": "ub", "b": "ua", "c": "ud", "d": "ue"},
			[]string{"conversation.a", "conversation.b"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld().service("support", svcSID, "Support", true)
			var desired []resource.Desired
			names := make([]string, 0, len(tt.want))
			for n := range tt.want {
				names = append(names, n)
			}
			slices.Sort(names)
			for i, n := range names {
				w.conversation(n, fmt.Sprintf("CH%032x", i+1), svcSID, un(tt.have[n]), un(tt.have[n]))
				desired = append(desired, desiredConv(n, "support", un(tt.want[n])))
			}
			plan, err := Compute(desired, w.st, w.build())
			if tt.cycle == nil {
				if err != nil {
					t.Fatalf("Compute: %v", err)
				}
				return
			}
			var pe Errors
			if !errors.As(err, &pe) || len(pe) != 1 {
				t.Fatalf("want one plan error for the cycle, got %v", err)
			}
			got := []string{pe[0].Address.String()}
			for _, o := range pe[0].Others {
				got = append(got, o.String())
			}
			if !slices.Equal(got, tt.cycle) {
				t.Errorf("the error names %v, want %v", got, tt.cycle)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q\ndoes not contain %q", err, m)
				}
			}
			if plan == nil {
				t.Error("no plan returned with the error")
			}
		})
	}
}

// Any cycle in the steps' edges is refused, whatever made it.
func TestAnyCycleOfStepsIsRefused(t *testing.T) {
	plan := &Plan{Changes: []Change{
		{Address: convAddr("a"), Action: Create, DependsOn: []resource.Address{convAddr("b")}},
		{Address: convAddr("b"), Action: Update, AfterFree: []resource.Address{convAddr("c")}},
		{Address: convAddr("c"), Action: Create, DependsOn: []resource.Address{convAddr("a")}},
		{Address: convAddr("d"), Action: Create, DependsOn: []resource.Address{convAddr("a")}},
	}}
	c := &computer{}
	c.checkCycles(plan)
	if len(c.errs) != 1 {
		t.Fatalf("errors: %v", c.errs)
	}
	e := c.errs[0]
	if e.Address != convAddr("a") || len(e.Others) != 2 {
		t.Errorf("error names %s and %v, want conversation.a, .b and .c", e.Address, e.Others)
	}
	if !strings.Contains(e.Message, "wait for each other in a cycle") || !strings.Contains(e.Message, "conversation.a waits for conversation.b") {
		t.Errorf("message: %s", e.Message)
	}
	// A replaced parent and child are not a cycle: the child's delete, the
	// parent's delete, the parent's create, the child's create.
	ok := &Plan{Changes: []Change{
		{Address: svcAddr("s"), Action: Replace, SID: svcSID, DependsOn: []resource.Address{convAddr("a")}},
		{Address: convAddr("a"), Action: Replace, SID: convSID, ParentSID: svcSID, DependsOn: []resource.Address{svcAddr("s")}},
	}}
	c = &computer{}
	c.checkCycles(ok)
	if len(c.errs) != 0 {
		t.Errorf("replace of a parent and child refused: %v", c.errs)
	}
}

// An unowned conversation that looks exactly like what convsync sent to
// create one of its own, created around the same time, is reported by the
// plan (possibly a copy a late create left behind), never acted on.
func TestPlanReportsUnownedCopiesOfARecordedCreate(t *testing.T) {
	room := resource.Values{resource.FieldFriendlyName: "Room", resource.FieldAttributes: `{"n":1}`}
	copyOf := func(sid string, at time.Time, v resource.Values) resource.Observed {
		o := observedConv(sid, svcSID, v)
		o.DateCreated = at
		return o
	}
	tests := []struct {
		name    string
		other   resource.Observed
		pending bool // the create is still a pending intent, not a resource
		want    bool
	}{
		{"copy a few seconds later", copyOf(strayCH, t0.Add(3*time.Second), room), false, true},
		{"copy a few seconds earlier", copyOf(strayCH, t0.Add(-3*time.Second), room), false, true},
		{"copy of a pending create", copyOf(strayCH, t0.Add(3*time.Second), room), true, true},
		{"look-alike two hours later", copyOf(strayCH, t0.Add(2*time.Hour), room), false, false},
		{"other attributes", copyOf(strayCH, t0.Add(time.Second), resource.Values{resource.FieldFriendlyName: "Room", resource.FieldAttributes: `{"n":2}`}), false, false},
		{"a unique_name the create did not send", copyOf(strayCH, t0.Add(time.Second), resource.Values{resource.FieldFriendlyName: "Room", resource.FieldAttributes: `{"n":1}`, resource.FieldUniqueName: "x"}), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld().service("support", svcSID, "Support", true)
			if tt.pending {
				w.st.AddPending(&state.Pending{Address: convAddr("room"), Kind: resource.KindConversation, ParentSID: svcSID, Values: room, StartedAt: t0})
				// The create did land too: the plan adopts one, the other is the copy.
				w.conv[svcSID] = append(w.conv[svcSID], copyOf(convSID, t0.Add(time.Second), room))
			} else {
				w.conversation("room", convSID, svcSID, room, room)
				w.st.Resources["conversation.room"].CreatedAt = t0
				w.conv[svcSID][0].DateCreated = t0
			}
			w.conv[svcSID] = append(w.conv[svcSID], tt.other)
			plan, err := Compute([]resource.Desired{desiredService("support", "Support"), desiredConv("room", "support", room)}, w.st, w.build())
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want {
				if len(plan.Suspects) != 0 {
					t.Errorf("reported %+v", plan.Suspects)
				}
				return
			}
			if len(plan.Suspects) != 1 || plan.Suspects[0].SID != strayCH || plan.Suspects[0].LooksLike != convAddr("room") {
				t.Fatalf("suspects: %+v", plan.Suspects)
			}
			var human, js bytes.Buffer
			if err := RenderHuman(&human, plan); err != nil {
				t.Fatal(err)
			}
			if err := RenderJSON(&js, plan); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"WARNING: conversation " + strayCH + " in service " + svcSID + " is possibly created by convsync", "convsync import conversation.NAME /Services/" + svcSID + "/Conversations/" + strayCH, "or delete"} {
				if !strings.Contains(human.String(), want) && !strings.Contains(strings.ToLower(human.String()), strings.ToLower(want)) {
					t.Errorf("plan output lacks %q:\n%s", want, human.String())
				}
			}
			if !strings.Contains(js.String(), `"suspects"`) || !strings.Contains(js.String(), strayCH) {
				t.Errorf("JSON plan lacks the suspect:\n%s", js.String())
			}
		})
	}
}
