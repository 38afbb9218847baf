package engine

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// Engine plans and applies against one Twilio account.
type Engine struct {
	API     twilioapi.API
	Logger  *zap.Logger
	Refresh planner.RefreshOptions
	// SeenSizes is how many conversations each service held at the last
	// Plan's refresh; callers can keep it (see SizeHints) and pass it back as
	// Refresh.KnownSizes, so a later refresh can fetch a few owned
	// conversations instead of listing a big service.
	SeenSizes map[string]int
}

// Plan refreshes Twilio and computes the plan for desired against st. With
// targets, the plan is cut down to those addresses and the steps they need.
func (e *Engine) Plan(ctx context.Context, desired []resource.Desired, specHash string, st *state.State, targets []resource.Address) (*planner.Plan, error) {
	snap, err := planner.Refresh(ctx, e.API, desired, st, e.Refresh)
	if err != nil {
		return nil, err
	}
	e.SeenSizes = snap.Sizes()
	plan, err := planner.Compute(desired, st, snap)
	if plan != nil {
		plan.SpecHash = specHash
	}
	if err != nil {
		return plan, err
	}
	if len(targets) > 0 {
		if err := Target(plan, targets); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// Apply carries the plan out, recording every change in store.
func (e *Engine) Apply(ctx context.Context, store apply.Store, plan *planner.Plan, opts apply.Options) *apply.Result {
	if opts.Logger == nil {
		opts.Logger = e.Logger
	}
	return apply.Apply(ctx, e.API, store, plan, opts)
}

// Target keeps only the steps for targets and the steps they depend on.
func Target(plan *planner.Plan, targets []resource.Address) error {
	byAddr := map[resource.Address]*planner.Change{}
	for i := range plan.Changes {
		byAddr[plan.Changes[i].Address] = &plan.Changes[i]
	}
	keep := map[resource.Address]bool{}
	var visit func(resource.Address)
	visit = func(a resource.Address) {
		if keep[a] {
			return
		}
		keep[a] = true
		if c := byAddr[a]; c != nil {
			for _, d := range c.DependsOn {
				visit(d)
			}
			for _, d := range c.AfterFree {
				visit(d)
			}
		}
	}
	for _, t := range targets {
		if byAddr[t] == nil {
			return fmt.Errorf("--target %s: no such resource in the specs or the state", t)
		}
		visit(t)
	}
	var out []planner.Change
	for _, c := range plan.Changes {
		if keep[c.Address] {
			out = append(out, c)
		}
	}
	plan.Changes = out
	return nil
}
