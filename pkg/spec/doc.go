// Package spec owns the YAML spec format: it finds spec files under a folder,
// decodes them strictly (every error with file, line, column and field), checks
// the rules that span files, and produces the sorted []resource.Desired the
// planner works from. docs/spec-format.md is the user-facing reference; keep the
// two in step.
package spec
