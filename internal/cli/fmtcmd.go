package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/spec"
)

// fmtCommand rewrites the spec files of --dir in the canonical layout
// (spec.Format), or with --check only lists the files that would change.
func (c *CLI) fmtCommand() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "fmt",
		Short: "Rewrite the spec files in the canonical layout, keeping comments",
		Long: `Rewrites every *.yaml / *.yml under --dir (the files validate reads) in the
canonical layout: each document's keys in the order of its kind's fields
(apiVersion, kind, name, the service, the fields, timeouts, lifecycle),
2-space indentation, "---" between documents, one space before a comment
at the end of a line. Comments and quoting are kept, and so is flow ([a, b])
or block style, except that a flow list or mapping written over several
lines becomes a block one. Prints the files it rewrote.

--check changes nothing: it lists the files that are not in the canonical
layout and exits 1 if there are any (for CI), 0 otherwise.

A file that is not valid YAML is never rewritten: it is reported as
file:line:col: message and fmt exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.runFmt(check) },
	}
	cmd.Flags().BoolVar(&check, "check", false, "change nothing; list the files that would change and exit 1 if any would")
	return cmd
}

func (c *CLI) runFmt(check bool) error {
	res, err := spec.FormatDir(c.global.dir, check)
	if err != nil {
		return err
	}
	for _, rel := range res.Changed {
		c.printf("%s\n", filepath.Join(c.global.dir, filepath.FromSlash(rel)))
	}
	for _, p := range res.Problems {
		p.File = filepath.Join(c.global.dir, filepath.FromSlash(p.File))
		fmt.Fprintln(c.stderr, p.String())
	}
	switch {
	case len(res.Problems) > 0:
		return fmt.Errorf("%d spec %s in %s could not be formatted and %s left as %s; fix %s and run convsync fmt again",
			len(res.Problems), plural(len(res.Problems), "file", "files"), c.global.dir, plural(len(res.Problems), "was", "were"),
			plural(len(res.Problems), "it was", "they were"), plural(len(res.Problems), "it", "them"))
	case check && len(res.Changed) > 0:
		fmt.Fprintf(c.stderr, "%d of %d spec %s in %s %s not formatted; run %s\n", len(res.Changed), res.Files, plural(res.Files, "file", "files"),
			c.global.dir, plural(len(res.Changed), "is", "are"), fmtHint(c.global.dir))
		return exitError{code: ExitError}
	}
	return nil
}

// fmtHint is the command that formats dir.
func fmtHint(dir string) string {
	if dir == "." || dir == "" {
		return "convsync fmt"
	}
	return "convsync fmt --dir " + shellQuote(dir)
}
