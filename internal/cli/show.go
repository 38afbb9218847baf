package cli

import "github.com/spf13/cobra"

// showCommand is being built (issue 13); it is registered so that its owner edits
// only this file.
func (c *CLI) showCommand() *cobra.Command {
	return &cobra.Command{Use: "show PLANFILE", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
