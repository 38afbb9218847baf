package cli

import (
	"encoding/json"
	"errors"
	"io"
	"path/filepath"

	"github.com/convsync/convsync/pkg/spec"
)

// ValidateJSONFormatVersion is the version of validate --json's output
// (docs/formats.md). Consumers should check the major number.
const ValidateJSONFormatVersion = "1.0"

type validateProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

type validateResult struct {
	FormatVersion string            `json:"format_version"`
	Valid         bool              `json:"valid"`
	Resources     int               `json:"resources"`
	Files         int               `json:"files"`
	Problems      []validateProblem `json:"problems"`
}

// validateJSON prints validate's result as JSON on stdout: exit 0 when the
// specs are valid (problems is []), 1 when they are not. A folder that
// cannot be read prints nothing on stdout and the error on stderr.
func (c *CLI) validateJSON() error {
	out := validateResult{FormatVersion: ValidateJSONFormatVersion, Problems: []validateProblem{}}
	set, varErr, err := c.loadSpecSet() // with --var and --var-file
	var problems spec.Errors
	switch {
	case errors.As(err, &problems):
		for _, p := range problems {
			// Named as the user would open it, as the text output does (a
			// var file as given).
			if !varErr {
				p.File = filepath.Join(c.global.dir, p.File)
			}
			out.Problems = append(out.Problems, validateProblem{File: p.File, Line: p.Line, Column: p.Column, Field: p.Field, Message: p.Message})
		}
	case err != nil:
		return err
	default:
		out.Valid, out.Resources, out.Files = true, len(set.Resources), len(set.Files)
	}
	if err := writeJSON(c.stdout, out); err != nil {
		return err
	}
	if !out.Valid {
		return exitError{code: ExitError}
	}
	return nil
}

// writeJSON writes v indented by two spaces, with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
