package cli

import "github.com/spf13/cobra"

// exportCommand is being built (issue 13); it is registered so that its owner edits
// only this file.
func (c *CLI) exportCommand() *cobra.Command {
	return &cobra.Command{Use: "export", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
