package cli

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

type planOptions struct {
	out              string
	json             bool
	detailedExitCode bool
	targets          []string
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
the state moves on before it is applied.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.runPlan(o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "save the plan to this file for a later apply")
	f.BoolVar(&o.json, "json", false, "print the plan as JSON (format_version, changes, summary)")
	f.BoolVar(&o.detailedExitCode, "detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
	f.StringArrayVar(&o.targets, "target", nil, "plan only this address (and what it depends on); repeatable")
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

func (c *CLI) runPlan(o planOptions) error {
	targets, err := parseTargets(o.targets)
	if err != nil {
		return err
	}
	s, err := c.newSession(true)
	if err != nil {
		return err
	}
	defer s.log.Sync() //nolint:errcheck // stderr
	sf, err := c.openState("convsync plan", true)
	if err != nil {
		return err
	}
	defer sf.Close()
	if err := checkNotEmptied(c.global.dir, len(s.specs.Resources), stateSize(sf), sf.Path()); err != nil {
		return err
	}
	var plan *planner.Plan
	// The live state, not a copy (a 100,000-resource copy costs 0.2 s): this
	// read-only open has no writer, and the plan keeps nothing of it.
	sf.View(func(st *state.State) {
		plan, err = s.engine.Plan(c.ctx, s.specs.Resources, s.specs.Hash, st, targets)
	})
	if err != nil {
		return c.planError(err)
	}
	if o.json {
		err = planner.RenderJSON(c.stdout, plan)
	} else {
		err = c.renderHuman(plan, len(targets) > 0)
	}
	if err != nil {
		return err
	}
	if o.out != "" {
		if err := planner.Save(o.out, plan); err != nil {
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
