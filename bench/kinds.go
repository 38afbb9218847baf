package main

import (
	"fmt"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// kindsRefresh: a no-change plan over one service holding every
// service-scoped kind, as a real setup has them: 1,000 conversations, 50
// users, 10 roles and the three configuration singletons, all managed.
// convsync lists each kind once per service (pages of 100 conversations, 50
// users, 50 roles) and fetches each singleton; a per-resource refresh GETs
// every resource.
func (b *bench) kindsRefresh() error {
	const conversations, users, roles = 1000, 50, 10
	fmt.Println("\n### Refresh cost: no-change plan over one service with every kind")
	fmt.Println()
	fmt.Printf("%d conversations, %d users, %d roles, service configuration, notifications and webhooks, all managed.\n\n", conversations, users, roles)
	fmt.Println("| added latency | approach | API requests | expected | wall time (median) |")
	fmt.Println("|---:|---|---:|---:|---:|")
	t, s, desired, st, api, err := seededService("kinds", conversations, 0, 1, "conv-")
	if err != nil {
		return err
	}
	defer t.stop()
	more, err := seedKinds(b, api, s.serviceSID, users, roles, st)
	if err != nil {
		return err
	}
	desired = append(desired, more...)
	// services list + conversation pages + user pages + role pages (the 4
	// default roles Twilio gives a service share them) + 3 singletons.
	expected := 1 + pages(conversations) + (users+49)/50 + (roles+4+49)/50 + 3
	for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
		if err := t.emu.SetFaults(emulator.Faults{Latency: latency}); err != nil {
			return err
		}
		r, err := b.repeat(false, func() (result, error) {
			return plan(b.ctx, t, api, desired, st, planner.RefreshOptions{}, s.serviceSID)
		})
		if err != nil {
			return err
		}
		fmt.Printf("| %d ms | convsync (a list per kind, a GET per singleton) | %d | %d | %s |\n", latency.Milliseconds(), r.requests, expected, ms(r.wall))
		r, err = b.repeat(latency > 0, func() (result, error) { return perResourceRefresh(b.ctx, t, api, st) })
		if err != nil {
			return err
		}
		fmt.Printf("| %d ms | per-resource GET, parallelism 10 | %d | %d | %s |\n", latency.Milliseconds(), r.requests, 1+len(st.Resources), ms(r.wall))
	}
	return nil
}

// seedKinds creates roles, users and reads the singletons of serviceSID
// through the API, and returns specs that match them, recorded in st.
func seedKinds(b *bench, api *twilioapi.Client, serviceSID string, users, roles int, st *state.State) ([]resource.Desired, error) {
	var desired []resource.Desired
	manageOne := func(kind resource.Kind, name string, obs resource.Observed, v resource.Values) {
		addr := resource.Address{Kind: kind, Name: name}
		desired = append(desired, resource.Desired{Address: addr, Parent: resource.Ref{SID: serviceSID}, Values: v, Timeouts: resource.DefaultTimeouts})
		st.Put(&state.Resource{Address: addr, SID: obs.SID, ParentSID: serviceSID, Applied: v.Clone(), CreatedAt: obs.DateCreated})
	}
	for i := 0; i < roles; i++ {
		v := resource.Values{resource.FieldFriendlyName: fmt.Sprintf("Role %d", i), resource.FieldRoleType: "conversation", resource.FieldPermissions: `["leaveConversation","sendMessage"]`}
		obs, err := api.Create(b.ctx, resource.KindRole, serviceSID, v, twilioapi.CallOptions{})
		if err != nil {
			return nil, err
		}
		manageOne(resource.KindRole, fmt.Sprintf("role-%d", i), obs, v)
	}
	for i := 0; i < users; i++ {
		v := resource.Values{resource.FieldIdentity: fmt.Sprintf("user%d@example.com", i), resource.FieldFriendlyName: fmt.Sprintf("User %d", i)}
		obs, err := api.Create(b.ctx, resource.KindUser, serviceSID, v, twilioapi.CallOptions{})
		if err != nil {
			return nil, err
		}
		manageOne(resource.KindUser, fmt.Sprintf("user-%d", i), obs, v)
	}
	for _, k := range []resource.Kind{resource.KindServiceConfiguration, resource.KindServiceNotifications, resource.KindServiceWebhooks} {
		obs, err := api.Fetch(b.ctx, k, serviceSID, resource.SingletonID(k, serviceSID))
		if err != nil {
			return nil, err
		}
		manageOne(k, "kinds", obs, resource.Values{}) // manages no field: read, never written
	}
	return desired, nil
}
