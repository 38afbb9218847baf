package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convsync/convsync/pkg/resource"
	yaml "go.yaml.in/yaml/v3"
)

// Limits of the format. The Twilio ones are Twilio's; the others keep a
// malformed or hostile spec from costing more than a moment to reject.
const (
	// APIVersion is the only accepted value of a document's optional apiVersion.
	APIVersion = "convsync/v1"
	// MaxFileSize bounds one spec file, in bytes.
	MaxFileSize = 4 << 20
	// MaxNameLength bounds friendly_name and unique_name, in characters.
	MaxNameLength = 256
	// MaxAttributesSize bounds attributes as sent to Twilio (compact JSON), in bytes.
	MaxAttributesSize = 16 * 1024
)

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

const nameRule = "names are 1 to 63 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit"

// commonFields every document may have; sharedOptional are the per-resource
// settings that are not Twilio fields.
var (
	commonFields   = []string{"apiVersion", "kind", "name"}
	sharedOptional = []string{"timeouts", "lifecycle"}
)

// parentKeys are the spec keys that name a kind's parent: by address
// (service: support) or by SID (service_sid: IS…).
func parentKeys(k *resource.KindSchema) (byName, bySID string) {
	if k.Parent == "" {
		return "", ""
	}
	prefix := resource.AddressPrefix(k.Parent)
	return prefix, prefix + "_sid"
}

// ancestorSIDKeys are the keys that name, by SID, the parents of a parent
// given by SID: a participant in conversation_sid: CH… names its service
// with service_sid: IS… (a conversation of the specs knows its own).
func ancestorSIDKeys(k *resource.KindSchema) []string {
	var out []string
	for _, a := range resource.Ancestors(k.Kind)[1:] {
		out = append(out, resource.AddressPrefix(a)+"_sid")
	}
	return out
}

// topKey is the spec key under which a field is written: the first segment
// of a nested field (timers for timers.inactive).
func topKey(name string) string {
	top, _, _ := strings.Cut(name, ".")
	return top
}

// allowedFields lists the keys a document of kind k may have, in the order
// error messages list them, from the schema.
func allowedFields(k *resource.KindSchema) []string {
	out := append([]string(nil), commonFields...)
	if byName, bySID := parentKeys(k); byName != "" {
		out = append(out, byName, bySID)
		out = append(out, ancestorSIDKeys(k)...)
	}
	seen := map[string]bool{}
	for _, f := range k.Fields {
		keys := []string{topKey(f.Name)}
		if f.Type == resource.TypeRef {
			keys = []string{topKey(f.RefName), topKey(f.Name)}
		}
		for _, key := range keys {
			if !seen[key] {
				seen[key] = true
				out = append(out, key)
			}
		}
	}
	out = append(out, sharedOptional...)
	if k.WebhookHeader {
		out = append(out, "webhook_enabled")
	}
	return out
}

// position is where a value sits in its file.
type position struct{ line, column int }

func at(n *yaml.Node) position { return position{n.Line, n.Column} }

// parsedDoc is a Desired plus the positions the cross-file checks point at.
type parsedDoc struct {
	resource.Desired
	parentAt position // the service: or service_sid: value
	keyAt    position // the natural key's value
	nameAt   position
	// refAt holds where each TypeRef field that names a resource of the
	// specs was written.
	refAt map[string]position
}

type parser struct {
	file     string
	src      []byte // the file, to place problems inside block scalars
	problems Errors
	vars     *Vars           // fill ${var.NAME} references (vars.go)
	used     map[string]bool // the variables the file's references named
	// unfilled are the values whose references could not be filled, and
	// refProblems the problems saying why (indexes into problems): the
	// checks of what is left of such a value are dropped (dropShadowed).
	unfilled    map[position]bool
	refProblems map[int]bool
}

func (p *parser) add(pos position, field, format string, args ...any) {
	p.problems = append(p.problems, Problem{File: p.file, Line: pos.line, Column: pos.column, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Parse decodes one spec file. file names it in problems and in each resource's
// Source. Rules that span files (duplicate addresses, service references,
// unique_name clashes) are checked by LoadDir, not here.
//
// The resources returned include every document whose kind and name could be
// read, even when other problems were found, so that cross-file checks can still
// run; the result is only usable when the returned Errors is empty.
func Parse(file string, data []byte) ([]resource.Desired, Errors) {
	docs, problems := parseFile(file, data)
	out := make([]resource.Desired, len(docs))
	for i, d := range docs {
		out[i] = d.Desired
	}
	return out, problems
}

func parseFile(file string, data []byte) (docs []parsedDoc, problems Errors) {
	docs, problems, _ = parseFileWith(file, data, nil)
	return docs, problems
}

// parseFileWith is parseFile with the values of ${var.NAME} references; used
// lists the variables the file named, sorted.
func parseFileWith(file string, data []byte, vars *Vars) (docs []parsedDoc, problems Errors, used []string) {
	p := &parser{file: file, src: data, vars: vars, used: map[string]bool{}}
	defer func() { used = sortedSet(p.used) }()
	if len(data) > MaxFileSize {
		p.add(position{}, "", "file is %d bytes; a spec file may be at most %d bytes (4 MiB): split it into several files", len(data), MaxFileSize)
		return nil, p.problems, nil
	}
	if pos, msg, ok := checkText(data); !ok {
		p.add(pos, "", "%s; spec files must be UTF-8 text", msg)
		return nil, p.problems, nil
	}
	defer func() {
		// The YAML library has panicked on hostile input in the past; a spec
		// must never crash the tool.
		if r := recover(); r != nil {
			p.add(position{1, 1}, "", "the YAML parser failed on this file (%v); please report it", r)
			docs, problems = nil, p.problems
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	lastLine := 1
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.yamlError(err, lastLine)
			break
		}
		if doc.Line > lastLine {
			lastLine = doc.Line
		}
		if d, ok := p.document(&doc); ok {
			docs = append(docs, d)
		}
	}
	p.dropShadowed()
	p.problems.sort()
	if len(p.problems) == 0 {
		return docs, nil, nil
	}
	return docs, p.problems, nil
}

var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a syntax error into a problem. The library reports a line
// (not always the right one) but no column; errors it reports without a line
// are placed at the start of the document being read. A tab in a line's
// indentation, the usual cause of "found character that cannot start any
// token", is found in the source and placed exactly, with a hint, as are a
// plain value starting with @ or ` and one holding ": "; a file that looks
// like Markdown says so.
func (p *parser) yamlError(err error, fallbackLine int) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := fallbackLine
	if m := yamlErrorLine.FindStringSubmatch(err.Error()); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			line, msg = n, m[2]
		}
	}
	lines := strings.Split(string(p.src), "\n")
	if strings.Contains(msg, "tab character") || strings.Contains(msg, "cannot start any token") {
		// The tab in the indentation of the line named or of a neighbour
		// (the library is often one line off), nearest first.
		for _, n := range []int{line, line + 1, line - 1} {
			if n < 1 || n > len(lines) {
				continue
			}
			for i, r := range lines[n-1] {
				if r == '\t' {
					p.add(position{line: n, column: i + 1}, "", "invalid YAML: a tab indents this line; YAML indentation must use spaces (%s)", msg)
					return
				}
				if r != ' ' {
					break
				}
			}
		}
	}
	if line >= 1 && line <= len(lines) {
		text := lines[line-1]
		switch {
		case strings.Contains(msg, "cannot start any token"):
			// A plain value that starts with a reserved indicator (@ or `).
			for i, r := range text {
				if (r == '@' || r == '`') && (strings.HasSuffix(strings.TrimRight(text[:i], " "), ":") || strings.HasSuffix(strings.TrimRight(text[:i], " "), "-")) {
					p.add(position{line: line, column: i + 1}, "", "invalid YAML: a value cannot start with %c unless it is quoted (%s)", r, msg)
					return
				}
			}
		case strings.Contains(msg, "mapping values are not allowed"):
			// A plain value holding ": " (or ending in ":").
			if first := strings.Index(text, ": "); first >= 0 {
				rest := text[first+2:]
				if i := strings.Index(rest+" ", ": "); i >= 0 && !strings.HasPrefix(strings.TrimSpace(rest), "\"") && !strings.HasPrefix(strings.TrimSpace(rest), "'") {
					p.add(position{line: line, column: first + 2 + i + 1}, "", "invalid YAML: a value holding \": \" must be quoted (%s)", msg)
					return
				}
			}
		}
	}
	// Markdown: a code fence, or headings in a file with no kind: line.
	fence, heading, kind := false, false, false
	for _, l := range lines {
		fence = fence || strings.HasPrefix(l, "```")
		heading = heading || strings.HasPrefix(l, "# ") || strings.HasPrefix(l, "## ")
		kind = kind || strings.HasPrefix(l, "kind:")
	}
	if fence || heading && !kind {
		msg += " (this file looks like Markdown, not a YAML spec: rename it or move it out of the spec folder)"
	}
	p.add(position{line: line}, "", "invalid YAML: %s", msg)
}

// checkText refuses content that is not UTF-8 text: invalid UTF-8, and the
// control characters YAML does not allow (which is how binary files show up).
func checkText(data []byte) (position, string, bool) {
	line, column := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return position{line, column}, fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", data[i]), false
		case r == '\n':
			line, column = line+1, 0
		case r == '\t' || r == '\r' || r == 0x85:
		case r == 0xFEFF && i == 0: // byte order mark
		case r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) || r == 0xFEFF || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF):
			return position{line, column}, fmt.Sprintf("binary content: control character U+%04X", r), false
		}
		i += size
		column++
	}
	return position{}, "", true
}

// document decodes one YAML document. ok is false when the document is empty
// or its kind or name could not be read.
func (p *parser) document(doc *yaml.Node) (parsedDoc, bool) {
	if len(doc.Content) == 0 {
		return parsedDoc{}, false
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return parsedDoc{}, false // an empty document, such as a trailing ---
	}
	var aliases []aliasUse
	p.checkTree(root, "", &aliases)
	if len(aliases) > 0 {
		first := aliases[0]
		more := ""
		if len(aliases) > 1 {
			more = fmt.Sprintf(" (this document uses %d aliases; all are refused)", len(aliases))
		}
		p.add(at(first.node), first.path, "YAML aliases (*%s) are not supported: write the value out in full%s; refusing aliases rules out alias-expansion bombs", first.node.Value, more)
	}
	if root.Kind != yaml.MappingNode {
		p.add(at(root), "", "a spec document must be a mapping of fields (kind, name, ...), not %s", describe(root))
		return parsedDoc{}, false
	}
	p.expand(root) // vars.go: before any field is read
	fields := map[string]*yaml.Node{}
	keys := map[string]*yaml.Node{}
	var order []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			continue // reported by checkTree
		}
		if _, dup := fields[k.Value]; dup {
			continue // reported by checkTree
		}
		fields[k.Value], keys[k.Value] = v, k
		order = append(order, k.Value)
	}
	start := at(root)

	if v, ok := fields["apiVersion"]; ok {
		if s, ok := p.str(v, "apiVersion"); ok && s != APIVersion {
			p.add(at(v), "apiVersion", "%q is not supported; the only version is %s (or leave the field out)", s, APIVersion)
		}
	}
	kind, kindOK := p.kind(fields["kind"], start)
	if !kindOK {
		return parsedDoc{}, false
	}
	schema := resource.Schema(kind)
	name, nameOK := "", true
	if _, given := fields["name"]; given && resource.AccountSingleton(kind) {
		p.add(at(fields["name"]), "name", "a %s is one per account: its address is %s, with no name; remove name", kind, resource.AddressPrefix(kind))
	} else if given || !schema.Singleton {
		name, nameOK = p.name(fields["name"], start)
	}
	allowed := allowedFields(schema)
	for _, f := range order {
		if !contains(allowed, f) {
			p.add(at(keys[f]), f, "unknown field for a %s; allowed fields: %s", kind, strings.Join(allowed, ", "))
		}
	}

	d := parsedDoc{refAt: map[string]position{}}
	d.Address = resource.Address{Kind: kind, Name: name}
	d.Values = resource.Values{}
	d.Timeouts = resource.DefaultTimeouts
	d.Source = resource.Source{File: p.file, Line: root.Line, Column: root.Column}
	if n := fields["name"]; n != nil {
		d.nameAt = at(n)
	}
	if v, ok := fields["timeouts"]; ok {
		d.Timeouts = p.timeouts(v)
	}
	if v, ok := fields["lifecycle"]; ok {
		d.Lifecycle.PreventDestroy = p.boolInMapping(v, "lifecycle", "prevent_destroy")
	}
	if v, ok := fields["webhook_enabled"]; ok && schema.WebhookHeader {
		d.WebhookEnabled, _ = p.boolean(v, "webhook_enabled")
	}
	p.parent(schema, fields, start, &d)
	if schema.Singleton && name == "" && nameOK {
		// One per parent: its address is the parent's name.
		switch {
		case schema.Parent == "":
			// One per account: its address is the kind alone.
		case !d.Parent.Address.IsZero():
			d.Address.Name = d.Parent.Address.Name
		case d.Parent.SID != "":
			p.add(start, "name", "missing; a %s of a service convsync does not manage (service_sid) needs a name for its address", kind)
			nameOK = false
		default:
			nameOK = false
		}
	}
	p.fields(schema, fields, keys, start, &d)
	return d, nameOK
}

// parent reads service: NAME or service_sid: SID (for a kind whose parent is
// a service; other parents likewise).
func (p *parser) parent(k *resource.KindSchema, fields map[string]*yaml.Node, start position, d *parsedDoc) {
	byName, bySID := parentKeys(k)
	if byName == "" {
		return
	}
	parent := resource.Schema(k.Parent)
	named, hasName := fields[byName]
	sid, hasSID := fields[bySID]
	switch {
	case hasName && hasSID:
		p.add(at(sid), bySID, "%s and %s are both set; write exactly one: %s for a %s in these specs, %s for one convsync does not manage", byName, bySID, byName, parent.Kind, bySID)
	case hasName:
		d.parentAt = at(named)
		for _, key := range ancestorSIDKeys(k) {
			if v, given := fields[key]; given {
				p.add(at(v), key, "is set with %s: NAME; a %s of these specs knows its own %s (write %s only with %s)", byName, parent.Kind, strings.TrimSuffix(key, "_sid"), key, bySID)
			}
		}
		if s, ok := p.str(named, byName); ok {
			if namePattern.MatchString(s) {
				d.Parent = resource.Ref{Address: resource.Address{Kind: parent.Kind, Name: s}}
			} else {
				p.add(at(named), byName, "%q is not a valid %s name; %s", s, parent.Kind, nameRule)
			}
		}
	case hasSID:
		d.parentAt = at(sid)
		// A parent two levels up is named by its SID too: the key joins
		// them, outermost first (resource.ChildKey).
		key, ok := "", true
		ancestors := resource.Ancestors(k.Kind)
		for i := len(ancestors) - 1; i >= 1; i-- {
			a := resource.Schema(ancestors[i])
			name := resource.AddressPrefix(a.Kind) + "_sid"
			v, given := fields[name]
			if !given {
				p.add(start, name, "missing; a %s given by %s also needs %s: %s... (the %s it is in)", k.Kind, bySID, name, a.SIDPrefix, strings.ToLower(string(a.Kind)))
				ok = false
				continue
			}
			if s, isStr := p.str(v, name); isStr {
				if !resource.IsSID(s, a.SIDPrefix) {
					p.add(at(v), name, "%q is not a %s SID: expected %s followed by 32 hexadecimal digits", s, strings.ToLower(string(a.Kind)), a.SIDPrefix)
					ok = false
				}
				key += s + "/"
			} else {
				ok = false
			}
		}
		if s, isStr := p.str(sid, bySID); isStr {
			if resource.IsSID(s, parent.SIDPrefix) {
				if ok {
					d.Parent = resource.Ref{SID: key + s}
				}
			} else {
				p.add(at(sid), bySID, "%q is not a %s SID: expected %s followed by 32 hexadecimal digits", s, strings.ToLower(string(parent.Kind)), parent.SIDPrefix)
			}
		}
	default:
		p.add(start, byName, "missing; write %s: NAME (a %s in these specs) or %s: %s... (a %s convsync does not manage)", byName, parent.Kind, bySID, parent.SIDPrefix, strings.ToLower(string(parent.Kind)))
	}
}

// fields reads every Twilio field of the document through the kind's schema.
func (p *parser) fields(k *resource.KindSchema, fields map[string]*yaml.Node, keys map[string]*yaml.Node, start position, d *parsedDoc) {
	problemsBefore := len(p.problems)
	done := map[string]bool{}
	for i := range k.Fields {
		f := &k.Fields[i]
		top := topKey(f.Name)
		if f.Type == resource.TypeRef && !f.Nested() {
			p.reference(f, fields, d)
			continue
		}
		if f.Nested() {
			if done[top] {
				continue
			}
			done[top] = true
			if v, ok := fields[top]; ok {
				if len(k.NaturalKeyAlt) > 0 && topKey(k.NaturalKeyAlt[0]) == top && d.keyAt.line == 0 {
					d.keyAt = at(v)
				}
				p.group(k, top, v, d)
			}
			continue
		}
		v, ok := fields[f.Name]
		if !ok {
			continue
		}
		if f.Name == k.NaturalKey {
			d.keyAt = at(v)
		}
		p.value(f, f.Name, v, d.Values)
	}
	// The kind's own rules see complete values only: a field that did not
	// parse is reported once, not again as missing.
	if k.Rules != nil && k.Rules.Validate != nil && len(p.problems) == problemsBefore {
		for _, bad := range k.Rules.Validate(d.Values) {
			pos := start
			if n, ok := keys[topKey(bad.Field)]; ok {
				pos = at(n)
			}
			p.add(pos, bad.Field, "%s", bad.Message)
		}
	}
	for i := range k.Fields {
		f := &k.Fields[i]
		if !f.Required {
			continue
		}
		if _, ok := fields[topKey(f.Name)]; ok {
			continue
		}
		if f.Type == resource.TypeRef {
			if _, ok := fields[f.RefName]; ok {
				continue
			}
		}
		p.add(start, f.Name, "missing; a %s needs %s%s", k.Kind, f.Name, requiredWhy(k, f))
	}
}

func requiredWhy(k *resource.KindSchema, f *resource.FieldSchema) string {
	switch {
	case f.ForcesReplace:
		return " (Twilio requires it to create the " + strings.ToLower(string(k.Kind)) + ", and a new value later means a new " + strings.ToLower(string(k.Kind)) + ")"
	default:
		return " (Twilio requires it to create the " + strings.ToLower(string(k.Kind)) + ")"
	}
}

// reference reads a TypeRef field: by address (role: agent) or by SID
// (role_sid: RL…).
func (p *parser) reference(f *resource.FieldSchema, fields map[string]*yaml.Node, d *parsedDoc) {
	named, hasName := fields[f.RefName]
	sid, hasSID := fields[f.Name]
	target := resource.Schema(f.Ref)
	switch {
	case hasName && hasSID:
		p.add(at(sid), f.Name, "%s and %s are both set; write exactly one: %s for a %s in these specs, %s for one convsync does not manage", f.RefName, f.Name, f.RefName, target.Kind, f.Name)
	case hasName:
		if s, ok := p.str(named, f.RefName); ok {
			if namePattern.MatchString(s) {
				if d.Refs == nil {
					d.Refs = map[string]resource.Ref{}
				}
				d.Refs[f.Name] = resource.Ref{Address: resource.Address{Kind: target.Kind, Name: s}}
				d.refAt[f.Name] = at(named)
			} else {
				p.add(at(named), f.RefName, "%q is not a valid %s name; %s", s, target.Kind, nameRule)
			}
		}
	case hasSID:
		p.value(f, f.Name, sid, d.Values)
	}
}

// group reads a nested object (timers, new_message) into dotted fields.
func (p *parser) group(k *resource.KindSchema, prefix string, v *yaml.Node, d *parsedDoc) {
	var allowed []string
	seen := map[string]bool{}
	// A reference inside the group is written by address under its
	// RefName's last key (auto_creation.service) or by SID under its own.
	refs := map[string]*resource.FieldSchema{}
	for i := range k.Fields {
		f := &k.Fields[i]
		names := []string{f.Name}
		if f.Type == resource.TypeRef {
			names = append(names, f.RefName)
		}
		for _, n := range names {
			if rest, ok := strings.CutPrefix(n, prefix+"."); ok {
				key := topKey(rest)
				if !seen[key] {
					seen[key] = true
					allowed = append(allowed, key)
				}
				if f.Type == resource.TypeRef && !strings.Contains(rest, ".") {
					refs[key] = f
				}
			}
		}
	}
	entries, ok := p.mapping(v, prefix, allowed...)
	if !ok {
		return
	}
	nodes := map[string]*yaml.Node{}
	for _, e := range entries {
		name := prefix + "." + e.key
		if f := refs[e.key]; f != nil {
			nodes[name] = e.value
			continue
		}
		if f := k.Field(name); f != nil {
			p.value(f, name, e.value, d.Values)
			continue
		}
		p.group(k, name, e.value, d)
	}
	for _, f := range refs {
		_, byName := nodes[f.RefName]
		_, bySID := nodes[f.Name]
		if byName || bySID {
			p.reference(f, nodes, d)
		}
	}
}

// value reads one field's value by its type, checks the field's rules and
// stores its canonical text.
func (p *parser) value(f *resource.FieldSchema, field string, v *yaml.Node, values resource.Values) {
	if f.Secret {
		if s, ok := p.secret(field, v); ok {
			values[field] = s
		}
		return
	}
	var text string
	switch f.Type {
	case resource.TypeJSON, resource.TypeSet:
		var s string
		var ok bool
		if f.Type == resource.TypeJSON {
			s, ok = p.attributes(v, field)
		} else {
			s, ok = p.set(f, field, v)
		}
		if !ok {
			return
		}
		if f.Check != nil {
			if err := f.Check(s); err != nil {
				p.add(at(v), field, "%v", err)
				return
			}
		}
		values[field] = s
		return
	case resource.TypeBool:
		b, ok := p.boolean(v, field)
		if !ok {
			return
		}
		values[field] = strconv.FormatBool(b)
		return
	case resource.TypeInt:
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
			if v.Kind != yaml.AliasNode {
				p.add(at(v), field, "must be a whole number; found %s", describe(v))
			}
			return
		}
		text = v.Value
	default:
		s, ok := p.str(v, field)
		if !ok {
			return
		}
		text = s
	}
	if f.Type == resource.TypeString || f.Type == resource.TypeRef {
		if text == "" {
			if f.NotEmpty {
				p.add(at(v), field, "empty; Twilio cannot reliably clear it: give a value, or leave the field out so convsync does not manage it")
				return
			}
		}
		for _, r := range text {
			if r < 0x20 || (r >= 0x7F && r < 0xA0) {
				p.add(at(v), field, "contains the control character U+%04X; write printable text", r)
				return
			}
		}
		limit := MaxNameLength
		if f.MaxLength > 0 {
			limit = f.MaxLength
		}
		if n := utf8.RuneCountInString(text); n > limit {
			p.add(at(v), field, "%d characters; at most %d are allowed", n, limit)
			return
		}
	}
	canonical, err := f.Canonical(text)
	if err != nil {
		p.add(at(v), field, "%v", err)
		return
	}
	if f.Check != nil {
		if err := f.Check(canonical); err != nil {
			p.add(at(v), field, "%v", err)
			return
		}
	}
	values[field] = canonical
}

// set reads a list of strings; order and repetition do not matter, but a
// member written twice is most likely a mistake, so it is refused.
func (p *parser) set(f *resource.FieldSchema, field string, v *yaml.Node) (string, bool) {
	if v.Kind == yaml.AliasNode {
		return "", false
	}
	if v.Kind != yaml.SequenceNode {
		p.add(at(v), field, "must be a list such as [a, b]; found %s", describe(v))
		return "", false
	}
	var members []string
	first := map[string]position{}
	ok := true
	for i, item := range v.Content {
		s, good := p.str(item, fmt.Sprintf("%s[%d]", field, i))
		if !good {
			ok = false
			continue
		}
		one, err := f.Canonical(resource.EncodeSet([]string{s}))
		if err != nil {
			p.add(at(item), fmt.Sprintf("%s[%d]", field, i), "%v", err)
			ok = false
			continue
		}
		m, _ := resource.ParseSet(one)
		if pos, dup := first[m[0]]; dup {
			p.add(at(item), fmt.Sprintf("%s[%d]", field, i), "%q is listed twice (first at line %d, column %d); a set holds each value once", s, pos.line, pos.column)
			ok = false
			continue
		}
		first[m[0]] = at(item)
		members = append(members, m[0])
	}
	if !ok {
		return "", false
	}
	if f.NotEmpty && len(members) == 0 {
		p.add(at(v), field, "empty; Twilio requires at least one value")
		return "", false
	}
	return resource.EncodeSet(members), true
}

func (p *parser) kind(v *yaml.Node, start position) (resource.Kind, bool) {
	var names []string
	for _, k := range resource.Kinds() {
		names = append(names, string(k.Kind))
	}
	allowed := "allowed: " + strings.Join(names, ", ")
	if v == nil {
		p.add(start, "kind", "missing; %s", allowed)
		return "", false
	}
	s, ok := p.str(v, "kind")
	if !ok {
		return "", false
	}
	for _, k := range resource.Kinds() {
		if s == string(k.Kind) {
			return k.Kind, true
		}
		if strings.EqualFold(s, string(k.Kind)) {
			p.add(at(v), "kind", "%q: kinds are case-sensitive, write %s", s, k.Kind)
			return "", false
		}
	}
	p.add(at(v), "kind", "%q is not a kind; %s", s, allowed)
	return "", false
}

func (p *parser) name(v *yaml.Node, start position) (string, bool) {
	if v == nil {
		p.add(start, "name", "missing; every resource needs a name (its address is KIND.NAME, for example conversation.vip)")
		return "", false
	}
	s, ok := p.str(v, "name")
	if !ok {
		return "", false
	}
	if !namePattern.MatchString(s) {
		p.add(at(v), "name", "%q is not a valid name; %s", s, nameRule)
		return "", false
	}
	return s, true
}

func (p *parser) attributes(v *yaml.Node, field string) (string, bool) {
	var text string
	switch {
	case v.Kind == yaml.MappingNode:
		obj, ok := p.toJSON(v, field)
		if !ok {
			return "", false
		}
		raw, err := jsonMarshal(obj)
		if err != nil {
			p.add(at(v), field, "cannot be written as JSON: %v", err)
			return "", false
		}
		text = raw
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str":
		if strings.TrimSpace(v.Value) == "" {
			p.add(at(v), field, "empty; write {} for no attributes, or leave the field out so convsync does not manage them")
			return "", false
		}
		text = v.Value
	case v.Kind == yaml.AliasNode:
		return "", false // reported by checkTree
	default:
		p.add(at(v), field, "must be a mapping, or a string holding a JSON object; found %s", describe(v))
		return "", false
	}
	canonical, err := resource.CanonicalJSON(text)
	if err != nil {
		p.add(at(v), field, "%v; attributes must be a JSON object", err)
		return "", false
	}
	if prob := strictJSON(text); prob != nil {
		p.addJSONProblem(v, text, prob)
		return "", false
	}
	if !strings.HasPrefix(canonical, "{") {
		p.add(at(v), field, "the JSON is not an object (found %s); attributes must be a JSON object such as {\"tier\": \"gold\"}", jsonType(canonical))
		return "", false
	}
	if len(canonical) > MaxAttributesSize {
		p.add(at(v), field, "%d bytes as compact JSON; Twilio allows at most %d bytes (16 KB)", len(canonical), MaxAttributesSize)
		return "", false
	}
	return canonical, true
}

func jsonType(canonical string) string {
	switch {
	case strings.HasPrefix(canonical, "["):
		return "an array"
	case strings.HasPrefix(canonical, `"`):
		return "a string"
	case canonical == "null":
		return "null"
	case canonical == "true" || canonical == "false":
		return "a boolean"
	default:
		return "a number"
	}
}

func (p *parser) timeouts(v *yaml.Node) resource.Timeouts {
	t := resource.DefaultTimeouts
	entries, ok := p.mapping(v, "timeouts", "create", "update", "read", "delete")
	if !ok {
		return t
	}
	for _, e := range entries {
		field := "timeouts." + e.key
		s, ok := p.str(e.value, field)
		if !ok {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			p.add(at(e.value), field, "%q is not a positive Go duration; write for example 30s, 10m or 1h30m", s)
			continue
		}
		switch e.key {
		case "create":
			t.Create = d
		case "update":
			t.Update = d
		case "read":
			t.Read = d
		case "delete":
			t.Delete = d
		}
	}
	return t
}

func (p *parser) boolInMapping(v *yaml.Node, field, key string) bool {
	entries, ok := p.mapping(v, field, key)
	if !ok {
		return false
	}
	for _, e := range entries {
		if b, ok := p.boolean(e.value, field+"."+e.key); ok {
			return b
		}
	}
	return false
}

type entry struct {
	key   string
	value *yaml.Node
}

// mapping reads a nested mapping whose keys must be among allowed.
func (p *parser) mapping(v *yaml.Node, field string, allowed ...string) ([]entry, bool) {
	if v.Kind == yaml.AliasNode {
		return nil, false
	}
	if v.Kind != yaml.MappingNode {
		example := make([]string, len(allowed))
		for i, a := range allowed {
			example[i] = a + ": ..."
		}
		p.add(at(v), field, "must be a mapping like {%s}; found %s", strings.Join(example, ", "), describe(v))
		return nil, false
	}
	var out []entry
	seen := map[string]bool{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k := v.Content[i]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" || seen[k.Value] {
			continue // reported by checkTree
		}
		seen[k.Value] = true
		if !contains(allowed, k.Value) {
			p.add(at(k), field+"."+k.Value, "unknown field; allowed in %s: %s", field, strings.Join(allowed, ", "))
			continue
		}
		out = append(out, entry{k.Value, v.Content[i+1]})
	}
	return out, true
}

// str reads a scalar as text, exactly as written. Numbers, booleans and dates
// are accepted (friendly_name: 2024 is the text "2024"); null is not.
func (p *parser) str(v *yaml.Node, field string) (string, bool) {
	switch v.Kind {
	case yaml.AliasNode:
		return "", false // reported by checkTree
	case yaml.ScalarNode:
	default:
		p.add(at(v), field, "must be a string; found %s", describe(v))
		return "", false
	}
	switch v.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		return v.Value, true
	case "!!null":
		p.add(at(v), field, "empty (null); give a value, or leave the field out so convsync does not manage it")
	default:
		p.add(at(v), field, "the YAML tag %s is not supported; write a plain string", v.Tag)
	}
	return "", false
}

func (p *parser) boolean(v *yaml.Node, field string) (bool, bool) {
	if v.Kind == yaml.AliasNode {
		return false, false
	}
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
		p.add(at(v), field, "must be true or false; found %s", describe(v))
		return false, false
	}
	return strings.EqualFold(v.Value, "true"), true
}

type aliasUse struct {
	node *yaml.Node
	path string
}

// checkTree reports what the format refuses wherever it appears: merge keys,
// complex keys and duplicate keys. Aliases are collected, not reported, so
// that a document made of thousands of them yields one problem.
func (p *parser) checkTree(n *yaml.Node, path string, aliases *[]aliasUse) {
	switch n.Kind {
	case yaml.AliasNode:
		*aliases = append(*aliases, aliasUse{n, path})
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p.checkTree(c, fmt.Sprintf("%s[%d]", path, i), aliases)
		}
	case yaml.MappingNode:
		seen := map[string]position{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				p.add(at(k), path, "mapping keys must be plain strings; found %s", describe(k))
				continue
			}
			child := join(path, k.Value)
			if k.ShortTag() == "!!merge" {
				p.add(at(k), path, "merge keys (<<) are not supported: write the fields out in full")
				continue
			}
			if first, dup := seen[k.Value]; dup {
				p.add(at(k), child, "duplicate key; it is already set at line %d, column %d", first.line, first.column)
				continue
			}
			seen[k.Value] = at(k)
			p.checkTree(v, child, aliases)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		default:
			return fmt.Sprintf("%s %s", n.Tag, n.Value)
		}
	}
	return "an unexpected YAML node"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ParseISODuration reads an ISO 8601 duration as conversation timers take it
// (see resource.ParseISODuration).
func ParseISODuration(s string) (time.Duration, error) { return resource.ParseISODuration(s) }
