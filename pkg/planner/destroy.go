package planner

import (
	"fmt"
	"slices"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// Options tune Compute.
type Options struct {
	// Destroy plans deleting everything the state holds, as if no spec
	// wanted anything (convsync destroy, plan --destroy): children before
	// parents, referrers before what they refer to, singletons forgotten.
	// The desired resources passed to Compute are not planned.
	// lifecycle.prevent_destroy is checked by CheckPreventDestroy, after
	// any --target has cut the plan down.
	Destroy bool
	// ForceReplace lists resources to replace even though nothing in their
	// specs forces it (plan/apply --replace). CheckReplace validates them.
	ForceReplace []resource.Address
}

// ForcedReason is the reason of a replacement asked for with ForceReplace.
const ForcedReason = "replacement requested with --replace"

func mergeOptions(opts []Options) Options {
	var out Options
	for _, o := range opts {
		out.Destroy = out.Destroy || o.Destroy
		out.ForceReplace = append(out.ForceReplace, o.ForceReplace...)
	}
	return out
}

func (o Options) forces(a resource.Address) bool { return slices.Contains(o.ForceReplace, a) }

// forceReplace turns the step of a resource that exists, convsync owns and
// --replace names into a replace (an update, or no change, becomes one).
func (o Options) forceReplace(ch *Change) {
	if !o.forces(ch.Address) {
		return
	}
	if ch.Action == Replace {
		ch.Reason += "; " + ForcedReason
		return
	}
	ch.Action = Replace
	ch.Reason = ForcedReason
	if len(ch.Fields) > 0 {
		ch.Reason += "; changed too: " + fieldNames(ch.Fields)
	} else if ch.Desired != nil {
		// Nothing differs: show what the new one is created with.
		ch.Fields = createFields(resource.Schema(ch.Address.Kind), ch.Desired.Values, ch.PendingRefs)
	}
}

// removedWhy is the reason of a step that removes a resource the state
// holds: its spec is gone, or everything is being destroyed.
func (c *computer) removedWhy() string {
	if c.opts.Destroy {
		return "destroying everything in the state"
	}
	return "no longer in the specs"
}

// CheckReplace validates the addresses of --replace before anything is
// read: each must be a resource of the specs (a replacement creates it
// again from its spec), not a singleton (it exists with its parent and is
// never created or deleted), and in the state (convsync replaces only what
// it manages; a resource not yet created is created anyway).
func CheckReplace(addrs []resource.Address, desired []resource.Desired, st *state.State) error {
	for _, a := range addrs {
		if resource.Schema(a.Kind).Singleton {
			return fmt.Errorf("--replace %s: a singleton cannot be replaced: it exists as long as its %s does; change its fields in the spec instead", a, lower(resource.Schema(a.Kind).Parent))
		}
		inSpecs := slices.ContainsFunc(desired, func(d resource.Desired) bool { return d.Address == a })
		inState := st.Get(a) != nil
		switch {
		case !inSpecs && inState:
			return fmt.Errorf("--replace %s: no spec declares it, so the plan deletes it; a replacement needs its spec", a)
		case !inSpecs:
			return fmt.Errorf("--replace %s: no such resource in the specs or the state", a)
		case !inState:
			return fmt.Errorf("--replace %s: not in the state, so there is nothing to replace (the plan creates it)", a)
		}
	}
	return nil
}

// RefreshDesired is what Refresh should be given for a plan over desired
// with opts: nothing for a destroy (only the state's resources are read,
// and everything in each service, for the cascade counts), and without the
// forced replacements of kinds that hold others, so that everything inside
// them is read for the cascade counts as for any replaced parent.
func RefreshDesired(desired []resource.Desired, opts Options) []resource.Desired {
	if opts.Destroy {
		return nil
	}
	if len(opts.ForceReplace) == 0 {
		return desired
	}
	out := make([]resource.Desired, 0, len(desired))
	for _, d := range desired {
		if opts.forces(d.Address) && len(resource.Children(d.Address.Kind)) > 0 {
			continue
		}
		out = append(out, d)
	}
	return out
}

// CheckPreventDestroy fails a destroy plan that deletes a resource whose
// spec sets lifecycle.prevent_destroy (specs holds the specs, when they
// load; a destroy plans nothing from them but this check).
func CheckPreventDestroy(plan *Plan, specs []resource.Desired) error {
	protected := map[resource.Address]*resource.Desired{}
	for i := range specs {
		if specs[i].Lifecycle.PreventDestroy {
			protected[specs[i].Address] = &specs[i]
		}
	}
	var errs Errors
	for _, ch := range plan.Changes {
		d := protected[ch.Address]
		if d == nil || !ch.Action.Destroys() {
			continue
		}
		where := ""
		if s := d.Source.String(); s != "" {
			where = " (" + s + ")"
		}
		errs = append(errs, Error{Address: ch.Address, Message: fmt.Sprintf("lifecycle.prevent_destroy is set in its spec%s, so it cannot be destroyed. Remove prevent_destroy from the spec first, or destroy the other resources with --target.", where)})
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// destroyOrder lets a resource of a kind that others refer
// to (a role: users and the service configuration name it) go with its
// parent when the plan deletes the parent too. Something the plan does not
// move off it may still name it — the service configuration, which is only
// forgotten, or a user convsync does not manage — and its own delete could
// then be refused while the parent stands (the emulator refuses to delete
// the configuration's default role; Twilio's rule is UNVERIFIED). So the
// parent's delete comes first (it deletes what is inside), and the
// resource's delete then finds it gone, which counts as deleted, and
// removes its state entry. If the parent's delete fails, the resource's is
// skipped and the state keeps it.
func (c *computer) destroyOrder(plan *Plan) {
	referenced := map[resource.Kind]bool{}
	for _, k := range resource.Kinds() {
		for _, f := range k.References() {
			referenced[f.Ref] = true
		}
	}
	deleted := map[string]*Change{}
	for i := range plan.Changes {
		if ch := &plan.Changes[i]; ch.Action == Delete && ch.SID != "" {
			deleted[ch.SID] = ch
		}
	}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		parent := deleted[ch.ParentSID]
		if ch.Action != Delete || !referenced[ch.Address.Kind] || parent == nil || parent == ch {
			continue
		}
		parent.DependsOn = slices.DeleteFunc(parent.DependsOn, func(a resource.Address) bool { return a == ch.Address })
		ch.AfterRelease = append(ch.AfterRelease, parent.Address)
		ch.Reason += fmt.Sprintf("; it goes with %s and is deleted after it, so that what still names it (the %s's settings) cannot refuse the delete", parent.Address, lower(parent.Address.Kind))
	}
	// A singleton goes with its parent too: Twilio does not keep it.
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if parent := deleted[ch.ParentSID]; ch.Action == Forget && resource.Schema(ch.Address.Kind).Singleton && parent != nil {
			ch.Reason = fmt.Sprintf("%s: its settings go with %s; only the state entry is removed", c.removedWhy(), parent.Address)
		}
	}
}

// KeepInsides adds back to a destroy plan cut down by --target (kept) the
// steps of full that delete or forget what lives in a resource it deletes,
// at any depth: destroying a service destroys everything in it, the roles
// that go with it after it included. The plan order of full is kept.
func KeepInsides(kept, full []Change) []Change {
	in := map[resource.Address]bool{}
	keptAs := map[resource.Address]Change{}
	deleted := map[string]bool{}
	for _, c := range kept {
		in[c.Address] = true
		keptAs[c.Address] = c
		if c.Action == Delete && c.SID != "" {
			deleted[c.SID] = true
		}
	}
	for grew := true; grew; {
		grew = false
		for i := range full {
			c := &full[i]
			// ParentOf, not ParentSID: a participant's parent key is
			// "IS…/CH…", its conversation's SID the last part.
			if !in[c.Address] && c.ParentSID != "" && deleted[ParentOf(c)] {
				in[c.Address], grew = true, true
				if c.Action == Delete && c.SID != "" {
					deleted[c.SID] = true
				}
			}
		}
	}
	var out []Change
	for _, c := range full {
		if k, ok := keptAs[c.Address]; ok {
			// As --target left it (a child deleted without its parent
			// gets a request of its own).
			out = append(out, k)
		} else if in[c.Address] {
			out = append(out, c)
		}
	}
	return out
}
