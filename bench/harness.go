package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

const (
	accountSID = "AC0123456789abcdef0123456789abcdef"
	authToken  = "benchToken0123456789"
)

// twilio is one emulator served over HTTP on a loopback port.
type twilio struct {
	emu  *emulator.Server
	url  string
	stop func()
}

func startEmulator(faults emulator.Faults) (*twilio, error) {
	emu, err := emulator.New(emulator.Options{AccountSID: accountSID, AuthToken: authToken, Faults: faults})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &twilio{emu: emu, url: "http://" + ln.Addr().String(), stop: func() { _ = srv.Close() }}, nil
}

// client is convsync's Twilio client for this emulator. rate is the
// client-side limit of creates+deletes per second per service (0 = default).
func (t *twilio) client(rate float64) (*twilioapi.Client, error) {
	return twilioapi.New(twilioapi.Config{AccountSID: accountSID, AuthToken: authToken, BaseURL: t.url, ActionsPerSecondPerService: rate})
}

// seeded is one service and the conversations put into it.
type seeded struct {
	serviceSID string
	convs      []emulator.Conversation
}

// seed makes a service holding owned conversations named prefix+i (which
// the specs and the state will manage) and others without unique_name.
// With days > 1 the owned ones' date_created are spread evenly over that
// many days before 2026-11-25, as if created over time.
func (t *twilio) seed(name string, owned, others, days int, prefix string) (seeded, error) {
	svc, err := t.emu.AddService(name)
	if err != nil {
		return seeded{}, err
	}
	if others > 0 {
		if _, err := t.emu.SeedConversations(svc.SID, others, ""); err != nil {
			return seeded{}, err
		}
	}
	sids, err := t.emu.SeedConversations(svc.SID, owned, prefix)
	if err != nil {
		return seeded{}, err
	}
	if days > 1 {
		start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -days)
		span := time.Duration(days) * 24 * time.Hour
		for i, sid := range sids {
			created := start.Add(span / time.Duration(owned) * time.Duration(i)).Truncate(time.Second)
			if err := t.emu.EditConversation(svc.SID, sid, func(c *emulator.Conversation) { c.DateCreated = created }); err != nil {
				return seeded{}, err
			}
		}
	}
	all, err := t.emu.Conversations(svc.SID)
	if err != nil {
		return seeded{}, err
	}
	s := seeded{serviceSID: svc.SID}
	for _, c := range all {
		if c.UniqueName != nil {
			s.convs = append(s.convs, c)
		}
	}
	return s, nil
}

// seededService starts an emulator with one seeded service (see seed) and
// returns it with the specs and state that manage the service and a client
// without a client-side rate limit.
func seededService(name string, owned, others, days int, prefix string) (*twilio, seeded, []resource.Desired, *state.State, *twilioapi.Client, error) {
	t, err := startEmulator(emulator.Faults{})
	if err != nil {
		return nil, seeded{}, nil, nil, nil, err
	}
	s, err := t.seed(name, owned, others, days, prefix)
	if err != nil {
		t.stop()
		return nil, seeded{}, nil, nil, nil, err
	}
	desired, st := manage(s)
	api, err := t.client(0)
	if err != nil {
		t.stop()
		return nil, seeded{}, nil, nil, nil, err
	}
	return t, s, desired, st, api, nil
}

// manage returns specs for every seeded conversation and a state that owns
// them, so that a plan over them has no changes.
func manage(services ...seeded) ([]resource.Desired, *state.State) {
	st := state.New()
	var desired []resource.Desired
	for _, s := range services {
		for _, c := range s.convs {
			name := *c.UniqueName
			addr := resource.Address{Kind: resource.KindConversation, Name: name}
			v := resource.Values{resource.FieldUniqueName: name}
			desired = append(desired, resource.Desired{Address: addr, Parent: resource.Ref{SID: s.serviceSID}, Values: v, Timeouts: resource.DefaultTimeouts})
			st.Put(&state.Resource{Address: addr, SID: c.SID, ParentSID: s.serviceSID, Applied: v.Clone(), CreatedAt: c.DateCreated})
		}
	}
	return desired, st
}

// result is one measured run.
type result struct {
	requests int64
	wall     time.Duration
	// heap is the live heap the run's result holds (snapshot and plan),
	// measured after GC; the emulator's data is there before and after.
	heap    int64
	changes int
	method  string
}

// plan runs a no-change plan (refresh + compute) and measures it.
func plan(ctx context.Context, t *twilio, api planner.Lister, desired []resource.Desired, st *state.State, opts planner.RefreshOptions, serviceSID string) (result, error) {
	var r result
	err := measure(t, &r, func() (any, error) {
		snap, err := planner.Refresh(ctx, api, desired, st, opts)
		if err != nil {
			return nil, err
		}
		p, err := planner.Compute(desired, st, snap)
		if err != nil {
			return nil, err
		}
		if p.HasChanges() {
			return nil, fmt.Errorf("the plan has changes (%+v): the scenario is not a no-change plan", p.Summary())
		}
		r.method = string(snap.Method(resource.KindConversation, serviceSID))
		return []any{snap, p}, nil
	})
	return r, err
}

// perResourceRefresh is the comparison: what the Terraform providers do,
// one GET per owned conversation (parallelism 10, like terraform's
// default), plus the services list. Not a product feature.
func perResourceRefresh(ctx context.Context, t *twilio, api *twilioapi.Client, st *state.State) (result, error) {
	var r result
	err := measure(t, &r, func() (any, error) {
		if _, err := api.List(ctx, resource.KindService, ""); err != nil {
			return nil, err
		}
		res := make([]*state.Resource, 0, len(st.Resources))
		for _, x := range st.Resources {
			res = append(res, x)
		}
		out := make([]resource.Observed, len(res))
		errs := make([]error, len(res))
		sem := make(chan struct{}, 10)
		var wg sync.WaitGroup
		for i, x := range res {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int, x *state.Resource) {
				defer wg.Done()
				defer func() { <-sem }()
				out[i], errs[i] = api.Fetch(ctx, x.Address.Kind, x.ParentSID, x.SID)
			}(i, x)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	return r, err
}

func measure(t *twilio, r *result, run func() (any, error)) error {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t.emu.ResetStats()
	start := time.Now()
	kept, err := run()
	r.wall = time.Since(start)
	r.requests = t.emu.Stats().Total
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	r.heap = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	return err
}

// listOnly hides the client's ListCreatedBetween from the planner, to
// measure plain paged listing beside day-range listing.
type listOnly struct{ planner.Lister }

// median of the durations.
func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
