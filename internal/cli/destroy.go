package cli

import "github.com/spf13/cobra"

// destroyCommand is being built (issue 13); it is registered so that its owner edits
// only this file.
func (c *CLI) destroyCommand() *cobra.Command {
	return &cobra.Command{Use: "destroy", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
