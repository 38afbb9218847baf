package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with the specs, located as precisely as possible.
// Line and Column are 1-based; 0 means the problem concerns the whole file.
type Problem struct {
	File    string
	Line    int
	Column  int
	Field   string
	Message string
}

// String renders "file:line:col: field: message", leaving out the parts that are empty.
func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		if loc != "" {
			loc += ":"
		}
		loc += fmt.Sprintf("%d", p.Line)
		if p.Column > 0 {
			loc += fmt.Sprintf(":%d", p.Column)
		}
	}
	parts := make([]string, 0, 3)
	if loc != "" {
		parts = append(parts, loc)
	}
	if p.Field != "" {
		parts = append(parts, p.Field)
	}
	parts = append(parts, p.Message)
	return strings.Join(parts, ": ")
}

// Errors is every problem found in one load, so a user fixes them all in one go.
type Errors []Problem

// Error lists the problems one per line, in file, line, column order.
func (e Errors) Error() string {
	sorted := append(Errors(nil), e...)
	sorted.sort()
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (e Errors) sort() {
	sort.SliceStable(e, func(i, j int) bool {
		a, b := e[i], e[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Message < b.Message
	})
}
