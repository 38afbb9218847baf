package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
	"go.uber.org/zap"
)

// childrenRefresh: what a no-change plan costs when every managed
// conversation has participants and a webhook. Twilio has no list of a
// service's participants, so the cheapest complete read is one list per
// conversation and kind (one page: up to 100 participants, 5 webhooks); a
// per-resource refresh GETs every participant and webhook. Then the
// daemon: one edited participant among them, after the first full pass.
func (b *bench) childrenRefresh() error {
	const conversations, participants, webhooks = 1000, 3, 1
	fmt.Println("\n### Refresh cost: conversations with participants and webhooks")
	fmt.Println()
	fmt.Printf("%d managed conversations, each with %d managed participants (2 chat, 1 SMS) and %d managed webhook.\n\n", conversations, participants, webhooks)
	fmt.Println("| added latency | approach | API requests | expected | wall time (median) |")
	fmt.Println("|---:|---|---:|---:|---:|")
	t, s, desired, st, api, err := seededService("children", conversations, 0, 1, "conv-")
	if err != nil {
		return err
	}
	defer t.stop()
	more, err := seedChildren(b, api, s, participants, st)
	if err != nil {
		return err
	}
	desired = append(desired, more...)
	// services list + conversation pages + one participant list and one
	// webhook list per conversation.
	expected := 1 + pages(conversations) + 2*conversations
	for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
		if err := t.emu.SetFaults(emulator.Faults{Latency: latency}); err != nil {
			return err
		}
		r, err := b.repeat(latency > 0, func() (result, error) {
			return plan(b.ctx, t, api, desired, st, planner.RefreshOptions{}, s.serviceSID)
		})
		if err != nil {
			return err
		}
		fmt.Printf("| %d ms | convsync (a list per conversation and kind, 8 at once) | %d | %d | %s |\n", latency.Milliseconds(), r.requests, expected, ms(r.wall))
		r, err = b.repeat(true, func() (result, error) { return perResourceRefresh(b.ctx, t, api, st) })
		if err != nil {
			return err
		}
		fmt.Printf("| %d ms | per-resource GET, parallelism 10 | %d | %d | %s |\n", latency.Milliseconds(), r.requests, 1+len(st.Resources), ms(r.wall))
	}

	// The daemon: a full pass, then one participant's attributes edited.
	if err := t.emu.SetFaults(emulator.Faults{Latency: 50 * time.Millisecond}); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "convsync-bench-children")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := state.Open(filepath.Join(dir, "state.json"), state.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Update(func(x *state.State) error {
		for _, r := range st.Resources {
			x.Put(r)
		}
		return nil
	}); err != nil {
		return err
	}
	rec := &engine.Reconciler{Engine: &engine.Engine{API: api, Logger: zap.NewNop()}, Store: store}
	t.emu.ResetStats()
	start := time.Now()
	if _, err := rec.Pass(b.ctx, desired, "1", true, 0); err != nil {
		return err
	}
	full, fullWall := t.emu.Stats().Total, time.Since(start)
	edited := append([]resource.Desired(nil), desired...)
	for i := range edited {
		if edited[i].Address.Kind == resource.KindParticipant {
			edited[i].Values = edited[i].Values.Clone()
			edited[i].Values[resource.FieldAttributes] = `{"seat":2}`
			break
		}
	}
	t.emu.ResetStats()
	start = time.Now()
	res, err := rec.Pass(b.ctx, edited, "2", false, 0)
	if err != nil {
		return err
	}
	if res.Applied == nil || len(res.Applied.Steps) != 1 {
		return fmt.Errorf("the edit pass applied %+v, want one update", res.Applied)
	}
	fmt.Printf("\nDaemon at 50 ms: the first (full) pass sent %d requests in %s; one edited participant then cost %d requests (%s): a GET of that participant and its update.\n", full, ms(fullWall), t.emu.Stats().Total, ms(time.Since(start)))
	return nil
}

// seedChildren gives every seeded conversation n participants (chat ones,
// then one SMS) and one webhook through the API, and returns specs that
// match them, recorded in st.
func seedChildren(b *bench, api *twilioapi.Client, s seeded, n int, st *state.State) ([]resource.Desired, error) {
	var desired []resource.Desired
	for ci, c := range s.convs {
		key := s.serviceSID + "/" + c.SID
		convAddr := resource.Address{Kind: resource.KindConversation, Name: *c.UniqueName}
		add := func(kind resource.Kind, name string, v resource.Values) error {
			obs, err := api.Create(b.ctx, kind, key, v, twilioapi.CallOptions{})
			if err != nil {
				return err
			}
			addr := resource.Address{Kind: kind, Name: name}
			desired = append(desired, resource.Desired{Address: addr, Parent: resource.Ref{Address: convAddr}, Values: v, Timeouts: resource.DefaultTimeouts})
			st.Put(&state.Resource{Address: addr, SID: obs.SID, ParentSID: key, Applied: v.Clone(), CreatedAt: obs.DateCreated})
			return nil
		}
		for p := 0; p < n-1; p++ {
			if err := add(resource.KindParticipant, fmt.Sprintf("c%d-p%d", ci, p), resource.Values{resource.FieldIdentity: fmt.Sprintf("agent%d@example.com", p), resource.FieldAttributes: `{"seat":1}`}); err != nil {
				return nil, err
			}
		}
		if err := add(resource.KindParticipant, fmt.Sprintf("c%d-sms", ci), resource.Values{
			resource.FieldBindingAddress: fmt.Sprintf("+1555%07d", ci), resource.FieldBindingProxyAddress: "+15559870000",
		}); err != nil {
			return nil, err
		}
		if err := add(resource.KindConversationWebhook, fmt.Sprintf("c%d-hook", ci), resource.Values{
			resource.FieldWebhookTarget: "webhook", resource.FieldWebhookURL: "https://bot.example.com/hook",
			resource.FieldWebhookMethod: "POST", resource.FieldWebhookFilters: `["onMessageAdded"]`,
		}); err != nil {
			return nil, err
		}
	}
	return desired, nil
}
