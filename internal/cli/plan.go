package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

type planOptions struct {
	out              string
	json             bool
	detailedExitCode bool
	targets          []string
	replace          []string
	destroy          bool
	refreshOnly      bool
}

func (c *CLI) planCommand() *cobra.Command {
	var o planOptions
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what apply would change in Twilio",
		Long: `Reads the specs and the state, lists what Twilio holds (one paged list per
service), and prints every step apply would take: + create, ~ update,
-/+ replace, - delete. Changes nothing, in Twilio or in the state.

--out saves the plan for "convsync apply PLANFILE"; such a plan is refused if
the state moves on before it is applied.

--destroy plans deleting everything the state holds (as convsync destroy does);
--replace ADDR forces a replacement of that resource; --refresh-only plans
nothing and reports drift: the fields whose Twilio value differs from what
convsync last applied, and the resources gone from Twilio.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.runPlan(o) },
	}
	f := cmd.Flags()
	c.addVarFlags(f)
	f.StringVar(&o.out, "out", "", "save the plan to this file for a later apply")
	f.BoolVar(&o.json, "json", false, "print the plan as JSON (format_version, changes, summary)")
	f.BoolVar(&o.detailedExitCode, "detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
	f.StringArrayVar(&o.targets, "target", nil, "plan only this address (and what it depends on); repeatable")
	f.BoolVar(&o.destroy, "destroy", false, "plan deleting everything the state holds (convsync destroy)")
	f.StringArrayVar(&o.replace, "replace", nil, "replace this resource even though nothing forces it; repeatable")
	f.BoolVar(&o.refreshOnly, "refresh-only", false, "plan nothing: report what changed in Twilio since convsync last applied (--detailed-exitcode: 2 when something did)")
	return cmd
}

func parseTargets(raw []string) ([]resource.Address, error) {
	var out []resource.Address
	for _, t := range raw {
		a, err := resource.ParseAddress(t)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// parseReplace reads --replace addresses.
func parseReplace(raw []string) ([]resource.Address, error) {
	out, err := parseTargets(raw)
	if err != nil {
		return nil, fmt.Errorf("--replace: %w", err)
	}
	return out, nil
}

// checkPlanFlags refuses flag combinations that mean nothing.
func checkPlanFlags(o planOptions) error {
	if o.refreshOnly {
		for _, f := range []struct {
			name string
			set  bool
		}{{"--destroy", o.destroy}, {"--replace", len(o.replace) > 0}, {"--target", len(o.targets) > 0}, {"--out", o.out != ""}} {
			if f.set {
				return fmt.Errorf("--refresh-only cannot be used with %s: it reports drift and plans no change", f.name)
			}
		}
	}
	if o.destroy && len(o.replace) > 0 {
		return fmt.Errorf("--replace cannot be used with --destroy: a destroy deletes everything")
	}
	return nil
}

func (c *CLI) runPlan(o planOptions) error {
	if err := checkPlanFlags(o); err != nil {
		return err
	}
	targets, err := parseTargets(o.targets)
	if err != nil {
		return err
	}
	replace, err := parseReplace(o.replace)
	if err != nil {
		return err
	}
	if o.refreshOnly {
		return c.runDrift(o)
	}
	// A destroy plans nothing from the specs: they need not load (then
	// lifecycle.prevent_destroy cannot be checked, and it says so).
	s, err := c.newSession(!o.destroy)
	if err != nil {
		return err
	}
	defer s.log.Sync() //nolint:errcheck // stderr
	sf, err := c.openState("convsync plan", true)
	if err != nil {
		return err
	}
	defer sf.Close()
	c.useSizes(s.engine, sf)
	desired, specHash := []resource.Desired(nil), ""
	if o.destroy {
		desired, specHash = c.destroySpecs(s)
	} else {
		desired, specHash = s.specs.Resources, s.specs.Hash
		if err := checkNotEmptied(c.global.dir, len(desired), stateSize(sf), sf.Path()); err != nil {
			return err
		}
	}
	var plan *planner.Plan
	// The live state, not a copy (a 100,000-resource copy costs 0.2 s): this
	// read-only open has no writer, and the plan keeps nothing of it.
	sf.View(func(st *state.State) {
		plan, err = s.engine.PlanWith(c.ctx, desired, specHash, st, engine.PlanOptions{Targets: targets, Destroy: o.destroy, Replace: replace})
	})
	if err != nil {
		return c.planError(err)
	}
	switch {
	case o.json:
		err = planner.RenderJSON(c.stdout, plan)
	case o.destroy:
		err = c.renderDestroy(plan, len(targets) > 0)
	default:
		err = c.renderHuman(plan, len(targets) > 0)
	}
	if err != nil {
		return err
	}
	if o.out != "" {
		if err := planner.SaveWith(o.out, plan, planner.SaveOptions{ConvsyncVersion: Version}); err != nil {
			return err
		}
		if !o.json {
			c.printf("\nSaved the plan to %s. Apply exactly these steps with: %s\n", o.out, c.withFlags("convsync apply "+shellQuote(o.out)))
		}
	}
	if o.detailedExitCode && plan.HasChanges() {
		c.exitCode = ExitChanges
	}
	return nil
}

// partialPlanWarning follows a plan made with --target.
const partialPlanWarning = "WARNING: this plan is partial (--target): it leaves out every resource the targets do not need, so other changes the specs call for are not shown or applied. Plan without --target to see everything."

// renderHuman prints the plan for a person, with the hints in it carrying
// this invocation's flags, and warns when --target made it partial.
func (c *CLI) renderHuman(plan *planner.Plan, targeted bool) error {
	var b strings.Builder
	if err := planner.RenderHuman(&b, plan); err != nil {
		return err
	}
	out := c.withFlags(b.String())
	if targeted {
		out += "\n" + partialPlanWarning + "\n"
	}
	_, err := io.WriteString(c.stdout, out)
	return err
}

// runDrift is plan --refresh-only: it reads what the state holds from
// Twilio and reports what differs from what convsync last applied. The
// specs are not loaded: drift is measured against the state.
func (c *CLI) runDrift(o planOptions) error {
	s, err := c.newSession(false)
	if err != nil {
		return err
	}
	defer s.log.Sync() //nolint:errcheck // stderr
	sf, err := c.openState("convsync plan", true)
	if err != nil {
		return err
	}
	defer sf.Close()
	var rep *planner.DriftReport
	sf.View(func(st *state.State) { rep, err = s.engine.Drift(c.ctx, st) })
	if err != nil {
		return err
	}
	if o.json {
		err = planner.RenderDriftJSON(c.stdout, rep)
	} else {
		err = planner.RenderDriftHuman(c.stdout, rep)
	}
	if err != nil {
		return err
	}
	if o.detailedExitCode && rep.HasDrift() {
		c.exitCode = ExitChanges
	}
	return nil
}
