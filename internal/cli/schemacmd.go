package cli

import (
	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/spec"
)

// schemaCommand prints the JSON Schema of spec documents, for editors.
func (c *CLI) schemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of spec files, for editors",
		Long: `Prints the JSON Schema (draft 2020-12) of one spec document, generated from
convsync's kind schemas: every kind, its fields with their types, enums and
required fields, SID, name and duration patterns, and each field's
description. Editors that use yaml-language-server (VS Code, JetBrains,
Neovim) then complete and check spec files as you type; docs/editors.md
says how to set them up. The repository ships the same text as
schema/convsync.schema.json.

The schema checks what one document can show; validate also checks the
rules that span files (a service of these specs, unique names) and Twilio's
finer rules (timer minimums, webhook URLs).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := spec.JSONSchema()
			if err != nil {
				return err
			}
			_, err = c.stdout.Write(data)
			return err
		},
	}
}
