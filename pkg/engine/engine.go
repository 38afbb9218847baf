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

// PlanOptions ask for more than the plan of the specs.
type PlanOptions struct {
	// Targets cut the plan down to those addresses and the steps they need.
	Targets []resource.Address
	// Destroy plans deleting everything the state holds; the desired
	// resources only supply lifecycle.prevent_destroy (checked after
	// Targets). Pass the specs when they load, nil when they do not.
	Destroy bool
	// Replace forces a replacement of these resources (--replace).
	Replace []resource.Address
}

// Plan refreshes Twilio and computes the plan for desired against st. With
// targets, the plan is cut down to those addresses and the steps they need.
func (e *Engine) Plan(ctx context.Context, desired []resource.Desired, specHash string, st *state.State, targets []resource.Address) (*planner.Plan, error) {
	return e.PlanWith(ctx, desired, specHash, st, PlanOptions{Targets: targets})
}

// PlanWith is Plan with options: a destroy, forced replacements.
func (e *Engine) PlanWith(ctx context.Context, desired []resource.Desired, specHash string, st *state.State, o PlanOptions) (*planner.Plan, error) {
	if o.Destroy && len(o.Replace) > 0 {
		return nil, fmt.Errorf("--replace cannot be used with a destroy: it deletes everything")
	}
	if err := planner.CheckReplace(o.Replace, desired, st); err != nil {
		return nil, err
	}
	opts := planner.Options{Destroy: o.Destroy, ForceReplace: o.Replace}
	if !o.Destroy {
		// A secret that cannot be read stops the plan before any request.
		if err := planner.CheckSecrets(desired); err != nil {
			return nil, err
		}
	}
	snap, err := planner.Refresh(ctx, e.API, planner.RefreshDesired(desired, opts), st, e.Refresh)
	if err != nil {
		return nil, err
	}
	e.SeenSizes = snap.Sizes()
	plan, err := planner.Compute(desired, st, snap, opts)
	if plan != nil {
		plan.SpecHash = specHash
	}
	if err != nil {
		return plan, err
	}
	if len(o.Targets) > 0 {
		full := plan.Changes
		if err := Target(plan, o.Targets); err != nil {
			return nil, err
		}
		if o.Destroy {
			plan.Changes = planner.KeepInsides(plan.Changes, full)
		}
	}
	if o.Destroy {
		if err := planner.CheckPreventDestroy(plan, desired); err != nil {
			return plan, err
		}
	}
	return plan, nil
}

// Drift refreshes what the state holds and reports, per resource, the
// fields whose Twilio value differs from what convsync last applied, and
// the resources gone from Twilio (plan --refresh-only). It plans nothing.
func (e *Engine) Drift(ctx context.Context, st *state.State) (*planner.DriftReport, error) {
	snap, err := planner.RefreshState(ctx, e.API, st, e.Refresh)
	if err != nil {
		return nil, err
	}
	return planner.ComputeDrift(st, snap), nil
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
				if goesWith(c, byAddr[d]) {
					// Deleting a participant does not need its
					// conversation deleted: without it, the participant
					// gets a request of its own (below).
					continue
				}
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
	// A child kept without its parent's delete gets a request of its own.
	planner.DetachOrphans(plan)
	return nil
}

// goesWith reports whether dep is the parent delete that deletes c along
// with it (planner.Change.GoesWithParent).
func goesWith(c, dep *planner.Change) bool {
	return c.GoesWithParent && c.Action == planner.Delete && dep != nil && dep.Action.Destroys() && dep.SID != "" && dep.SID == planner.ParentOf(c)
}
