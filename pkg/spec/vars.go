package spec

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"github.com/convsync/convsync/pkg/resource"
)

// Per-environment values (docs/variables.md): a spec value may hold
// ${var.NAME} references, filled before the document is parsed from Vars
// (--var, --var-file, CONVSYNC_VAR_NAME). The var. namespace keeps Twilio's
// own ${PARTICIPANT}-style template placeholders literal, as they always
// were; $${var.NAME} writes a literal ${var.NAME}. Every other $ is text.

// EnvVarPrefix starts the environment variables that set Vars:
// CONVSYNC_VAR_region=eu sets var.region (as Terraform's TF_VAR_region).
const EnvVarPrefix = "CONVSYNC_VAR_"

const (
	refOpen    = "${var."
	refEscaped = "$${var."
)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

const identifierRule = "a variable name is a letter or _ followed by letters, digits or _"

// Vars holds the values of ${var.NAME} references. The zero value and nil
// hold none: every reference is then an undefined-variable problem.
type Vars struct {
	values map[string]varValue
}

type varValue struct {
	value  string
	origin string // where it was set, for messages: "--var", "staging.yaml:3:1"
}

// Set defines name (a later Set of the same name wins: precedence is the
// order of the calls). origin says where the value came from.
func (v *Vars) Set(name, value, origin string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("%q is not a valid variable name; %s", name, identifierRule)
	}
	if v.values == nil {
		v.values = map[string]varValue{}
	}
	v.values[name] = varValue{value, origin}
	return nil
}

// Lookup returns the value of name.
func (v *Vars) Lookup(name string) (string, bool) {
	if v == nil {
		return "", false
	}
	x, ok := v.values[name]
	return x.value, ok
}

// Names returns the defined names, sorted.
func (v *Vars) Names() []string {
	if v == nil {
		return nil
	}
	out := make([]string, 0, len(v.values))
	for name := range v.values {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// SetFromEnviron defines every CONVSYNC_VAR_NAME of environ (os.Environ's
// form); a variable whose name is not an identifier is an error.
func (v *Vars) SetFromEnviron(environ []string) error {
	for _, kv := range environ {
		key, value, _ := strings.Cut(kv, "=")
		name, ok := strings.CutPrefix(key, EnvVarPrefix)
		if !ok {
			continue
		}
		if err := v.Set(name, value, "environment variable "+key); err != nil {
			return fmt.Errorf("environment variable %s: %w", key, err)
		}
	}
	return nil
}

// SetFlag reads one --var NAME=VALUE.
func (v *Vars) SetFlag(arg string) error {
	name, value, ok := strings.Cut(arg, "=")
	if !ok {
		return fmt.Errorf("--var %q: write --var NAME=VALUE", arg)
	}
	if err := v.Set(name, value, "--var "+name); err != nil {
		return fmt.Errorf("--var %q: %w", arg, err)
	}
	return nil
}

// ReadVarFile defines the variables of a var file: a YAML mapping of names
// to scalar values (strings, numbers, booleans, taken as written). Its
// problems are Errors naming the file, line and column.
func (v *Vars) ReadVarFile(path string) error {
	data, err := readLimited(path)
	if err != nil {
		return fmt.Errorf("var file %s: cannot read: %w", path, unwrapPath(err))
	}
	var problems Errors
	add := func(n *yaml.Node, field, format string, args ...any) {
		line, col := 1, 1
		if n != nil {
			line, col = n.Line, n.Column
		}
		problems = append(problems, Problem{File: path, Line: line, Column: col, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if len(data) > MaxFileSize {
		add(nil, "", "file is larger than %d bytes; a var file holds a few values", MaxFileSize)
		return problems
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlErrorLine.FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &line) //nolint:errcheck // the pattern holds digits
			msg = m[2]
		}
		problems = append(problems, Problem{File: path, Line: line, Message: "invalid YAML: " + msg})
		return problems
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		add(&more, "", "a var file holds one YAML document (a mapping of NAME: value); found another")
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		return problems.orNil() // an empty file defines nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		add(root, "", "a var file must be a mapping of NAME: value, not %s", describe(root))
		return problems
	}
	seen := map[string]*yaml.Node{}
	type def struct{ name, value, origin string }
	var defs []def
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || !identifier.MatchString(k.Value) {
			add(k, k.Value, "%q is not a valid variable name; %s", k.Value, identifierRule)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			add(k, k.Value, "duplicate key; it is already set at line %d, column %d", first.Line, first.Column)
			continue
		}
		seen[k.Value] = k
		if val.Kind != yaml.ScalarNode {
			add(val, k.Value, "must be a string, number or boolean; found %s (variables hold one value)", describe(val))
			continue
		}
		switch val.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		case "!!null":
			add(val, k.Value, "empty (null); give a value, or leave the name out")
			continue
		default:
			add(val, k.Value, "the YAML tag %s is not supported; write a plain value", val.Tag)
			continue
		}
		defs = append(defs, def{k.Value, val.Value, fmt.Sprintf("%s:%d:%d", path, val.Line, val.Column)})
	}
	if len(problems) > 0 {
		return problems // nothing of a broken file is used
	}
	for _, d := range defs {
		if err := v.Set(d.name, d.value, d.origin); err != nil {
			return err
		}
	}
	return nil
}

func (e Errors) orNil() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// digest identifies the values of the names given, for the cache and the
// set's hash: the same specs with other values are other specs.
func (v *Vars) digest(names []string) []byte {
	h := sha256.New()
	for _, name := range names {
		value, _ := v.Lookup(name)
		fmt.Fprintf(h, "%d:%s=%d:%s\x00", len(name), name, len(value), value)
	}
	return h.Sum(nil)
}

// expand fills the references of one document before it is parsed: every
// scalar value, at any depth, except kind, apiVersion and name (an address
// is the same in every environment) and the kind's secret fields (secrets
// have file: and env: references of their own and never pass through
// here). A plain scalar whose text changed is typed again from its new text,
// as if the value had been written in its place: reachability_enabled:
// ${var.reach} with reach=true is a boolean. Quoted scalars stay strings.
func (p *parser) expand(root *yaml.Node) {
	var schema *resource.KindSchema
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Value == "kind" {
			schema = resource.Schema(resource.Kind(root.Content[i+1].Value))
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "kind", "apiVersion", "name":
			if v.Kind == yaml.ScalarNode && strings.Contains(v.Value, refOpen) {
				p.refProblem(v, p.inScalar(v, strings.Index(v.Value, refOpen)), k.Value, "${var.…} references are not allowed in %s: a resource's kind and address are the same in every environment", k.Value)
			}
			continue
		}
		p.expandNode(v, k.Value, schema)
	}
}

func (p *parser) expandNode(n *yaml.Node, path string, schema *resource.KindSchema) {
	if schema != nil {
		if f := schema.Field(path); f != nil && f.Secret {
			p.refuseRefs(n, path) // at any depth: a secret's own file:/env: forms included
			return
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p.expandNode(n.Content[i+1], join(path, n.Content[i].Value), schema)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p.expandNode(c, fmt.Sprintf("%s[%d]", path, i), schema)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, refOpen) {
			return
		}
		text, ok := p.substitute(n, path)
		if !ok || text == n.Value {
			return
		}
		n.Value = text
		if n.Style == 0 && text != "" {
			n.Tag = "" // typed again from the new text; "" stays an empty string
		}
	}
}

// refuseRefs reports every reference inside a secret's value, which is
// left exactly as written.
func (p *parser) refuseRefs(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p.refuseRefs(n.Content[i+1], path)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			p.refuseRefs(c, path)
		}
	case yaml.ScalarNode:
		if strings.Contains(n.Value, refOpen) {
			p.refProblem(n, p.inScalar(n, strings.Index(n.Value, refOpen)), path, "%s is a secret: it takes no ${var.…} reference (secrets are never expanded, shown or logged); use its file: or env: form", path)
		}
	}
}

// substitute replaces the references and escapes of one scalar's text.
func (p *parser) substitute(n *yaml.Node, path string) (string, bool) {
	s := n.Value
	var b strings.Builder
	ok := true
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], refEscaped):
			b.WriteString(refOpen)
			i += len(refEscaped)
		case strings.HasPrefix(s[i:], refOpen):
			rest := s[i+len(refOpen):]
			end := strings.IndexByte(rest, '}')
			name := ""
			if end >= 0 {
				name = rest[:end]
			}
			switch {
			case end < 0 || !identifier.MatchString(name):
				p.refProblem(n, p.inScalar(n, i), path, "malformed reference %q: write ${var.NAME} (%s), or $${var. for a literal ${var.", truncateRef(s[i:]), identifierRule)
				ok = false
				i += len(refOpen)
				continue
			}
			value, defined := p.vars.Lookup(name)
			if !defined {
				p.refProblem(n, p.inScalar(n, i), path, "undefined variable %q; set it with --var %s=VALUE, in a --var-file, or as the environment variable %s%s%s", name, name, EnvVarPrefix, name, p.knownVars())
				ok = false
			} else if p.used != nil {
				p.used[name] = true
			}
			b.WriteString(value)
			i += len(refOpen) + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), ok
}

// refProblem reports a reference that cannot be filled in the value n.
func (p *parser) refProblem(n *yaml.Node, pos position, field, format string, args ...any) {
	if p.unfilled == nil {
		p.unfilled, p.refProblems = map[position]bool{}, map[int]bool{}
	}
	p.unfilled[at(n)] = true
	p.refProblems[len(p.problems)] = true
	p.add(pos, field, format, args...)
}

// dropShadowed drops the problems found in a value whose references could
// not be filled: they are about the unfilled text ("${var.x}" is not a
// valid name), not about anything the user wrote.
func (p *parser) dropShadowed() {
	if len(p.unfilled) == 0 {
		return
	}
	kept := p.problems[:0]
	for i, pr := range p.problems {
		if p.refProblems[i] || !p.unfilled[position{pr.Line, pr.Column}] {
			kept = append(kept, pr)
		}
	}
	p.problems = kept
}

func (p *parser) knownVars() string {
	names := p.vars.Names()
	if len(names) == 0 {
		return " (no variable is set)"
	}
	return " (set: " + strings.Join(names, ", ") + ")"
}

func truncateRef(s string) string {
	if end := strings.IndexAny(s, "} \n"); end >= 0 && end < 40 {
		return s[:end+1]
	}
	if utf8.RuneCountInString(s) > 20 {
		return string([]rune(s)[:20]) + "…"
	}
	return s
}

// inScalar is where byte offset of a scalar's text sits in the file:
// exact for plain and single-quoted one-line scalars and literal blocks,
// the scalar's start otherwise.
func (p *parser) inScalar(v *yaml.Node, offset int) position {
	text := v.Value
	if indent, literal := p.literalIndent(v); literal {
		line := strings.Count(text[:offset], "\n")
		col := utf8.RuneCountInString(text[strings.LastIndexByte(text[:offset], '\n')+1 : offset])
		return position{v.Line + 1 + line, indent + 1 + col}
	}
	if strings.ContainsAny(text, "\n\r") {
		return at(v)
	}
	switch v.Style {
	case 0:
		return position{v.Line, v.Column + utf8.RuneCountInString(text[:offset])}
	case yaml.SingleQuotedStyle:
		return position{v.Line, v.Column + 1 + utf8.RuneCountInString(text[:offset]) + strings.Count(text[:offset], "'")}
	case yaml.DoubleQuotedStyle:
		if !strings.ContainsRune(p.lineOf(v), '\\') {
			return position{v.Line, v.Column + 1 + utf8.RuneCountInString(text[:offset])}
		}
	}
	return at(v)
}

func (p *parser) lineOf(v *yaml.Node) string {
	lines := strings.SplitN(string(p.src), "\n", v.Line+1)
	if v.Line-1 < len(lines) {
		return lines[v.Line-1]
	}
	return ""
}

// LoadOptions are what a load needs besides the folder.
type LoadOptions struct {
	// Vars fill the ${var.NAME} references (nil: none is set).
	Vars *Vars
}

// LoadDirWith is LoadDir with options.
func LoadDirWith(dir string, o LoadOptions) (*Set, error) { return loadDir(dir, nil, o) }

// LoadDirWith is Cache's LoadDir with options.
func (c *Cache) LoadDirWith(dir string, o LoadOptions) (*Set, error) { return loadDir(dir, c, o) }
