package cli

import (
	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/planner"
)

// showCommand renders a plan saved by plan --out, without Twilio, the specs
// or the state.
func (c *CLI) showCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show PLANFILE",
		Short: "Show a plan saved by plan --out (as plan prints it, or --json)",
		Long: `Renders a saved plan as convsync plan shows it, or with --json as the JSON
plan (format ` + planner.JSONFormatVersion + `, docs/formats.md). Reads only the file: no Twilio,
no specs, no state, so it says nothing of whether the plan is still fresh
(apply PLANFILE checks that).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := planner.Load(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return planner.RenderJSON(c.stdout, plan)
			}
			return c.renderHuman(plan, false)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON (the format of plan --json)")
	return cmd
}
