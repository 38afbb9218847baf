package planner

import (
	"bytes"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/testenv"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

const (
	svcSID   = "IS00000000000000000000000000000001"
	svcSID2  = "IS00000000000000000000000000000002"
	extSvc   = "IS0000000000000000000000000000000e"
	convSID  = "CH00000000000000000000000000000001"
	convSID2 = "CH00000000000000000000000000000002"
	strayCH  = "CH0000000000000000000000000000000f"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func svcAddr(n string) resource.Address { return resource.Address{Kind: resource.KindService, Name: n} }
func convAddr(n string) resource.Address {
	return resource.Address{Kind: resource.KindConversation, Name: n}
}

func desiredService(name, friendly string) resource.Desired {
	return resource.Desired{Address: svcAddr(name), Values: resource.Values{resource.FieldFriendlyName: friendly}, Timeouts: resource.DefaultTimeouts}
}

func desiredConv(name, service string, v resource.Values) resource.Desired {
	d := resource.Desired{Address: convAddr(name), Values: v, Timeouts: resource.DefaultTimeouts}
	if resource.IsSID(service, "IS") {
		d.Parent = resource.Ref{SID: service}
	} else {
		d.Parent = resource.Ref{Address: svcAddr(service)}
	}
	return d
}

func observedService(sid, friendly string) resource.Observed {
	return resource.Observed{Kind: resource.KindService, SID: sid, Values: resource.Values{resource.FieldFriendlyName: friendly}, DateCreated: t0}
}

func observedConv(sid, service string, v resource.Values) resource.Observed {
	vals := resource.Values{resource.FieldAttributes: "{}", resource.FieldState: resource.StateActive}
	for k, x := range v {
		vals[k] = x
	}
	return resource.Observed{Kind: resource.KindConversation, SID: sid, ParentSID: service, Values: vals, DateCreated: t0}
}

// world is a state plus a snapshot, built with the helpers above.
type world struct {
	st   *state.State
	snap *Snapshot
	svcs []resource.Observed
	conv map[string][]resource.Observed
}

func newWorld() *world {
	st := state.New()
	st.Lineage = "test-lineage"
	st.Serial = 7
	return &world{st: st, snap: NewSnapshot(), conv: map[string][]resource.Observed{}}
}

func (w *world) service(name, sid, friendly string, inState bool) *world {
	w.svcs = append(w.svcs, observedService(sid, friendly))
	w.conv[sid] = w.conv[sid]
	if inState {
		w.st.Put(&state.Resource{Address: svcAddr(name), SID: sid, Applied: resource.Values{resource.FieldFriendlyName: friendly}})
	}
	return w
}

func (w *world) conversation(name, sid, service string, v resource.Values, applied resource.Values) *world {
	if sid != "" {
		w.conv[service] = append(w.conv[service], observedConv(sid, service, v))
	}
	if name != "" {
		stateSID := sid
		if stateSID == "" {
			stateSID = convSID2 // in state, but gone from Twilio
		}
		w.st.Put(&state.Resource{Address: convAddr(name), SID: stateSID, ParentSID: service, Applied: applied})
	}
	return w
}

func (w *world) build() *Snapshot {
	w.snap.SetListed(resource.KindService, "", w.svcs)
	for sid, cs := range w.conv {
		w.snap.SetListed(resource.KindConversation, sid, cs)
		// The test world's services hold no roles or users.
		w.snap.SetListed(resource.KindRole, sid, nil)
		w.snap.SetListed(resource.KindUser, sid, nil)
		// Nor do their conversations hold participants or webhooks,
		// unless a test puts some there.
		for _, c := range cs {
			for _, k := range resource.Children(resource.KindConversation) {
				if key := sid + "/" + c.SID; !w.snap.Listed(k.Kind, key) {
					w.snap.SetListed(k.Kind, key, nil)
				}
			}
		}
	}
	return w.snap
}

func TestComputeGolden(t *testing.T) {
	attrs := `{"tier":"gold","level":1}`
	cases := []struct {
		name    string
		desired []resource.Desired
		world   func() *world
		wantErr string
	}{
		{
			name: "create_service_and_conversation",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("vip", "support", resource.Values{resource.FieldUniqueName: "vip-support", resource.FieldFriendlyName: "VIP", resource.FieldAttributes: attrs, resource.FieldState: "closed", resource.FieldTimersInactive: "PT1H"}),
			},
			world: newWorld,
		},
		{
			name: "no_changes_despite_reformatted_attributes",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("vip", "support", resource.Values{resource.FieldAttributes: `{"level":1,"tier":"gold"}`, resource.FieldTimersInactive: "PT1H"}),
			},
			world: func() *world {
				return newWorld().service("support", svcSID, "Customer support", true).
					conversation("vip", convSID, svcSID, resource.Values{resource.FieldAttributes: "{\n  \"tier\": \"gold\",  \"level\": 1}"}, resource.Values{resource.FieldTimersInactive: "PT1H"})
			},
		},
		{
			name: "update_friendly_name_and_timer",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("vip", "support", resource.Values{resource.FieldFriendlyName: "New name", resource.FieldTimersClosed: "P30D"}),
			},
			world: func() *world {
				return newWorld().service("support", svcSID, "Customer support", true).
					conversation("vip", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "Old name"}, resource.Values{resource.FieldFriendlyName: "Old name", resource.FieldTimersClosed: "P7D"})
			},
		},
		{
			name: "deleted_outside_convsync",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("vip", "support", resource.Values{resource.FieldFriendlyName: "VIP"}),
			},
			world: func() *world {
				return newWorld().service("support", svcSID, "Customer support", true).
					conversation("vip", "", svcSID, nil, resource.Values{resource.FieldFriendlyName: "VIP"})
			},
		},
		{
			name:    "spec_removed_deletes",
			desired: []resource.Desired{desiredService("support", "Customer support")},
			world: func() *world {
				return newWorld().service("support", svcSID, "Customer support", true).
					conversation("vip", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "VIP"}, nil).
					conversation("gone", "", svcSID, nil, nil)
			},
		},
		{
			name: "service_rename_replaces_service_and_its_conversations",
			desired: []resource.Desired{
				desiredService("support", "Support v2"),
				desiredConv("vip", "support", resource.Values{resource.FieldFriendlyName: "VIP"}),
			},
			world: func() *world {
				return newWorld().service("support", svcSID, "Customer support", true).
					conversation("vip", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "VIP"}, nil)
			},
		},
		{
			name: "closed_conversation_is_replaced",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("vip", "support", resource.Values{resource.FieldFriendlyName: "VIP", resource.FieldState: "active"}),
			},
			world: func() *world {
				return newWorld().service("support", svcSID, "Customer support", true).
					conversation("vip", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "VIP", resource.FieldState: "closed"}, nil)
			},
		},
		{
			name: "state_moved_by_the_specs_own_timers_is_left_alone",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("closes", "support", resource.Values{resource.FieldState: "active", resource.FieldTimersClosed: "P1D"}),
				desiredConv("sleeps", "support", resource.Values{resource.FieldState: "active", resource.FieldTimersInactive: "PT1H"}),
				desiredConv("woken", "support", resource.Values{resource.FieldState: "inactive", resource.FieldTimersInactive: "PT1H"}),
			},
			world: func() *world {
				timers := resource.Values{resource.FieldTimersClosed: "P1D", resource.FieldTimersInactive: "PT1H"}
				return newWorld().service("support", svcSID, "Customer support", true).
					conversation("closes", convSID, svcSID, resource.Values{resource.FieldState: "closed"}, timers).
					conversation("sleeps", convSID2, svcSID, resource.Values{resource.FieldState: "inactive"}, timers).
					conversation("woken", strayCH, svcSID, resource.Values{resource.FieldState: "active"}, timers)
			},
		},
		{
			name: "move_to_unmanaged_service_replaces",
			desired: []resource.Desired{
				desiredConv("vip", extSvc, resource.Values{resource.FieldFriendlyName: "VIP"}),
			},
			world: func() *world {
				w := newWorld().service("", extSvc, "Theirs", false).service("support", svcSID, "Customer support", false)
				return w.conversation("vip", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "VIP"}, nil)
			},
		},
		{
			name: "adopts_create_whose_answer_was_lost",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("vip", "support", resource.Values{resource.FieldFriendlyName: "VIP", resource.FieldAttributes: attrs}),
			},
			world: func() *world {
				w := newWorld().service("support", svcSID, "Customer support", true).
					conversation("", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "VIP", resource.FieldAttributes: `{"level":1,"tier":"gold"}`}, nil).
					conversation("", strayCH, svcSID, resource.Values{resource.FieldFriendlyName: "VIP"}, nil)
				w.st.AddPending(&state.Pending{Address: convAddr("vip"), Kind: resource.KindConversation, ParentSID: svcSID, Values: resource.Values{resource.FieldFriendlyName: "VIP", resource.FieldAttributes: attrs}, StartedAt: t0.Add(-time.Minute)})
				return w
			},
		},
		{
			name: "renamed_spec_moves",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("vip-support", "support", resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP", resource.FieldTimersClosed: "P30D"}),
			},
			world: func() *world {
				return newWorld().service("support", svcSID, "Customer support", true).
					conversation("vip", convSID, svcSID, resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP"}, resource.Values{resource.FieldTimersClosed: "P30D"})
			},
		},
		{
			name: "renamed_spec_moves_then_updates",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("vip-support", "support", resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP desk", resource.FieldTimersClosed: "P7D"}),
			},
			world: func() *world {
				return newWorld().service("support", svcSID, "Customer support", true).
					conversation("vip", convSID, svcSID, resource.Values{resource.FieldUniqueName: "vip", resource.FieldFriendlyName: "VIP"}, resource.Values{resource.FieldTimersClosed: "P30D"})
			},
		},
		{
			// The state file was lost: the account already holds the
			// service (and its conversation), which convsync no longer knows.
			name: "lost_state_warns_of_existing_service",
			desired: []resource.Desired{
				desiredService("support", "Customer support"),
				desiredConv("vip", "support", resource.Values{resource.FieldUniqueName: "vip"}),
			},
			world: func() *world {
				return newWorld().service("", svcSID, "Customer support", false).service("", svcSID2, "Sales", false).
					conversation("", convSID, svcSID, resource.Values{resource.FieldUniqueName: "vip"}, nil)
			},
		},
		{
			name: "prevent_destroy_fails_the_plan",
			desired: func() []resource.Desired {
				d := desiredService("support", "Renamed")
				d.Lifecycle.PreventDestroy = true
				return []resource.Desired{d}
			}(),
			world: func() *world {
				return newWorld().service("support", svcSID, "Customer support", true)
			},
			wantErr: "service.support: lifecycle.prevent_destroy is set, but this plan must replace it (friendly_name cannot be changed in place). Change the spec so that no replacement is needed, or remove prevent_destroy first.",
		},
		{
			name: "unique_name_taken_by_unmanaged_conversation",
			desired: []resource.Desired{
				desiredConv("vip", extSvc, resource.Values{resource.FieldUniqueName: "vip-support"}),
			},
			world: func() *world {
				return newWorld().service("", extSvc, "Theirs", false).
					conversation("", strayCH, extSvc, resource.Values{resource.FieldUniqueName: "vip-support"}, nil)
			},
			wantErr: "conversation.vip: unique_name \"vip-support\" is already taken in service " + extSvc + " by " + strayCH + ", which convsync does not manage. To adopt it, run:\n    convsync import conversation.vip /Services/" + extSvc + "/Conversations/" + strayCH,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.world()
			plan, err := Compute(tc.desired, w.st, w.build())
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error:\n got: %v\nwant: %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			var human bytes.Buffer
			if err := RenderHuman(&human, plan); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tc.name+".plan.txt"), human.Bytes())
		})
	}
}

func TestComputeDependencies(t *testing.T) {
	w := newWorld().service("support", svcSID, "Customer support", true).
		conversation("vip", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "VIP"}, nil)
	desired := []resource.Desired{
		desiredService("support", "Support v2"),
		desiredConv("vip", "support", resource.Values{resource.FieldFriendlyName: "VIP"}),
	}
	plan, err := Compute(desired, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string]string{}
	for _, c := range plan.Changes {
		var ds []string
		for _, d := range c.DependsOn {
			ds = append(ds, d.String())
		}
		deps[c.Address.String()] = strings.Join(ds, ",")
	}
	// The service's delete waits for the conversation's delete, and the
	// conversation's create waits for the new service.
	if deps["service.support"] != "conversation.vip" || deps["conversation.vip"] != "service.support" {
		t.Fatalf("dependencies = %v", deps)
	}
}

func TestRenderJSONGolden(t *testing.T) {
	w := newWorld().service("support", svcSID, "Customer support", true).
		conversation("vip", convSID, svcSID, resource.Values{resource.FieldFriendlyName: "Old"}, nil).
		conversation("old", convSID2, svcSID, nil, nil)
	desired := []resource.Desired{
		desiredService("support", "Customer support"),
		desiredConv("vip", "support", resource.Values{resource.FieldFriendlyName: "New"}),
		desiredConv("fresh", "support", resource.Values{resource.FieldUniqueName: "fresh"}),
	}
	plan, err := Compute(desired, w.st, w.build())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := RenderJSON(&out, plan); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/mixed.plan.json", out.Bytes())
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	testenv.Golden(t, path, got, *update)
}
