package planner

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

func actions(p *Plan) map[string]Action {
	out := map[string]Action{}
	for _, c := range p.Changes {
		out[c.Address.String()] = c.Action
	}
	return out
}

// The planner names no kind: a user renamed with the same identity moves
// just as a conversation with the same unique_name does.
func TestRenamedUserMovesByIdentity(t *testing.T) {
	const userSID = "US00000000000000000000000000000001"
	w := newWorld().service("support", svcSID, "S", true)
	snap := w.build()
	snap.SetListed(resource.KindUser, svcSID, []resource.Observed{{Kind: resource.KindUser, SID: userSID, ParentSID: svcSID, Values: resource.Values{resource.FieldIdentity: "alice", resource.FieldFriendlyName: "Alice"}, DateCreated: t0}})
	old := resource.Address{Kind: resource.KindUser, Name: "alice"}
	w.st.Put(&state.Resource{Address: old, SID: userSID, ParentSID: svcSID})
	renamed := resource.Desired{Address: resource.Address{Kind: resource.KindUser, Name: "alice-smith"}, Parent: resource.Ref{Address: svcAddr("support")},
		Values: resource.Values{resource.FieldIdentity: "alice", resource.FieldFriendlyName: "Alice Smith"}}
	plan, err := Compute([]resource.Desired{desiredService("support", "S"), renamed}, w.st, snap)
	if err != nil {
		t.Fatal(err)
	}
	mv := findChange(t, plan, "user.alice-smith")
	if mv.Action != Move || mv.MovedFrom != old || mv.SID != userSID || len(mv.Fields) != 1 || mv.Fields[0].Name != resource.FieldFriendlyName {
		t.Fatalf("step: %+v", mv)
	}
	if _, ok := actions(plan)["user.alice"]; ok {
		t.Fatalf("the old address has a step of its own: %v", actions(plan))
	}
	if s := plan.Summary(); s.Move != 1 || s.Update != 1 || s.Create+s.Delete != 0 {
		t.Fatalf("summary %+v", s)
	}
}

func TestNoMoveWithoutTheSameParentAndKeyInTwilio(t *testing.T) {
	un := resource.Values{resource.FieldUniqueName: "vip"}
	for _, tc := range []struct {
		name  string
		world func() *world
		spec  resource.Desired
		want  map[string]Action
	}{
		{
			name: "another service",
			world: func() *world {
				return newWorld().service("support", svcSID, "S", true).service("sales", svcSID2, "T", true).
					conversation("vip", convSID, svcSID, un, nil)
			},
			spec: desiredConv("vip-sales", "sales", un),
			want: map[string]Action{"conversation.vip-sales": Create, "conversation.vip": Delete},
		},
		{
			name: "gone from Twilio",
			world: func() *world {
				return newWorld().service("support", svcSID, "S", true).service("sales", svcSID2, "T", true).
					conversation("vip", "", svcSID, nil, un)
			},
			spec: desiredConv("vip-support", "support", un),
			want: map[string]Action{"conversation.vip-support": Create, "conversation.vip": Forget},
		},
		{
			name: "another unique_name",
			world: func() *world {
				return newWorld().service("support", svcSID, "S", true).service("sales", svcSID2, "T", true).
					conversation("vip", convSID, svcSID, un, nil)
			},
			spec: desiredConv("vip-support", "support", resource.Values{resource.FieldUniqueName: "vip2"}),
			want: map[string]Action{"conversation.vip-support": Create, "conversation.vip": Delete},
		},
		{
			name: "old address still wanted",
			world: func() *world {
				return newWorld().service("support", svcSID, "S", true).service("sales", svcSID2, "T", true).
					conversation("vip", convSID, svcSID, un, nil)
			},
			spec: desiredConv("vip", "support", un),
			want: map[string]Action{"conversation.vip": NoOp},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.world()
			plan, err := Compute([]resource.Desired{desiredService("support", "S"), desiredService("sales", "T"), tc.spec}, w.st, w.build())
			if err != nil {
				t.Fatal(err)
			}
			got := actions(plan)
			for addr, want := range tc.want {
				if got[addr] != want {
					t.Errorf("%s: %s, want %s (plan %v)", addr, got[addr], want, got)
				}
			}
		})
	}
}

// A conversation's children and its references find the moved resource by
// its new address: the planner resolves a moved parent to its parent key,
// known now.
func TestMovedParentIsKnownNow(t *testing.T) {
	w := newWorld().service("support", svcSID, "S", true).conversation("vip", convSID, svcSID, resource.Values{resource.FieldUniqueName: "vip"}, nil)
	c := &computer{st: w.st, snap: w.build(), byAddr: map[resource.Address]*Change{convAddr("new"): {Action: Move, SID: convSID, ParentSID: svcSID}}}
	sid, pending := c.parent(&resource.Desired{Parent: resource.Ref{Address: convAddr("new")}})
	if sid != svcSID+"/"+convSID || pending {
		t.Fatalf("parent() = %q, %v", sid, pending)
	}
}

func TestMoveInTheJSONPlan(t *testing.T) {
	w := newWorld().service("support", svcSID, "S", true).
		conversation("vip", convSID, svcSID, resource.Values{resource.FieldUniqueName: "vip"}, nil).
		conversation("desk", convSID2, svcSID, resource.Values{resource.FieldUniqueName: "desk", resource.FieldFriendlyName: "Desk"}, nil)
	plan, err := Compute([]resource.Desired{
		desiredService("support", "S"),
		desiredConv("vip-support", "support", resource.Values{resource.FieldUniqueName: "vip"}),
		desiredConv("help-desk", "support", resource.Values{resource.FieldUniqueName: "desk", resource.FieldFriendlyName: "Help desk"}),
	}, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := RenderJSON(&out, plan); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Changes []struct {
			Address         string   `json:"address"`
			PreviousAddress string   `json:"previous_address"`
			Action          string   `json:"action"`
			Actions         []string `json:"actions"`
		} `json:"changes"`
		Summary map[string]int `json:"summary"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"conversation.vip-support": "conversation.vip move no-op", "conversation.help-desk": "conversation.desk move update"}
	if len(got.Changes) != 2 {
		t.Fatalf("changes: %+v", got.Changes)
	}
	for _, c := range got.Changes {
		if line := c.PreviousAddress + " " + c.Action + " " + c.Actions[0]; line != want[c.Address] || len(c.Actions) != 1 {
			t.Errorf("%s: %s %v, want %s", c.Address, line, c.Actions, want[c.Address])
		}
	}
	if got.Summary["move"] != 2 || got.Summary["update"] != 1 {
		t.Errorf("summary %v", got.Summary)
	}
}

// A saved plan keeps where a move comes from: apply PLANFILE re-keys the
// same entry.
func TestSavedPlanKeepsTheMove(t *testing.T) {
	w := newWorld().service("support", svcSID, "S", true).
		conversation("vip", convSID, svcSID, resource.Values{resource.FieldUniqueName: "vip"}, nil)
	plan, err := Compute([]resource.Desired{desiredService("support", "S"), desiredConv("vip-support", "support", resource.Values{resource.FieldUniqueName: "vip"})}, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.plan")
	if err := Save(path, plan); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if mv := findChange(t, loaded, "conversation.vip-support"); mv.Action != Move || mv.MovedFrom != convAddr("vip") || mv.SID != convSID {
		t.Fatalf("loaded step: %+v", mv)
	}
}
