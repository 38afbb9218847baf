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
	// MinInactiveTimer and MinClosedTimer are Twilio's minimums (errors 50375, 50376).
	MinInactiveTimer = time.Minute
	MinClosedTimer   = 10 * time.Minute
)

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

const nameRule = "names are 1 to 63 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit"

// Fields each kind accepts, in the order the error messages list them.
var (
	commonFields       = []string{"apiVersion", "kind", "name"}
	sharedOptional     = []string{"timeouts", "lifecycle", "webhook_enabled"}
	serviceFields      = concat(commonFields, []string{resource.FieldFriendlyName}, sharedOptional)
	conversationFields = concat(commonFields, []string{"service", "service_sid",
		resource.FieldUniqueName, resource.FieldFriendlyName, resource.FieldAttributes,
		resource.FieldMessagingServiceSID, resource.FieldState, "timers"}, sharedOptional)
)

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// position is where a value sits in its file.
type position struct{ line, column int }

func at(n *yaml.Node) position { return position{n.Line, n.Column} }

// parsedDoc is a Desired plus the positions the cross-file checks point at.
type parsedDoc struct {
	resource.Desired
	serviceAt    position // the service: or service_sid: value
	uniqueNameAt position
	nameAt       position
}

type parser struct {
	file     string
	src      []byte // the file, to place problems inside block scalars
	problems Errors
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
	p := &parser{file: file, src: data}
	if len(data) > MaxFileSize {
		p.add(position{}, "", "file is %d bytes; a spec file may be at most %d bytes (4 MiB): split it into several files", len(data), MaxFileSize)
		return nil, p.problems
	}
	if pos, msg, ok := checkText(data); !ok {
		p.add(pos, "", "%s; spec files must be UTF-8 text", msg)
		return nil, p.problems
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
	p.problems.sort()
	if len(p.problems) == 0 {
		return docs, nil
	}
	return docs, p.problems
}

var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a syntax error into a problem. The library reports a line but
// no column; errors it reports without a line are placed at the start of the
// document being read.
func (p *parser) yamlError(err error, fallbackLine int) {
	msg := err.Error()
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil && line > 0 {
			p.add(position{line: line}, "", "invalid YAML: %s", m[2])
			return
		}
	}
	p.add(position{line: fallbackLine}, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
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
	name, nameOK := p.name(fields["name"], start)
	if !kindOK {
		return parsedDoc{}, false
	}
	allowed := serviceFields
	if kind == resource.KindConversation {
		allowed = conversationFields
	}
	for _, f := range order {
		if !contains(allowed, f) {
			p.add(at(keys[f]), f, "unknown field for a %s; allowed fields: %s", kind, strings.Join(allowed, ", "))
		}
	}

	d := parsedDoc{}
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
	if v, ok := fields["webhook_enabled"]; ok {
		d.WebhookEnabled, _ = p.boolean(v, "webhook_enabled")
	}

	switch kind {
	case resource.KindService:
		if v, ok := fields[resource.FieldFriendlyName]; ok {
			p.nameText(v, resource.FieldFriendlyName, d.Values)
		} else {
			p.add(start, resource.FieldFriendlyName, "missing; a Service needs a friendly_name (Twilio requires it to create the service, and a new friendly_name later means a new service)")
		}
	case resource.KindConversation:
		p.conversation(fields, start, &d)
	}
	return d, nameOK
}

func (p *parser) conversation(fields map[string]*yaml.Node, start position, d *parsedDoc) {
	service, hasService := fields["service"]
	serviceSID, hasSID := fields["service_sid"]
	switch {
	case hasService && hasSID:
		p.add(at(serviceSID), "service_sid", "service and service_sid are both set; write exactly one: service for a Service in these specs, service_sid for one convsync does not manage")
	case hasService:
		d.serviceAt = at(service)
		if s, ok := p.str(service, "service"); ok {
			if namePattern.MatchString(s) {
				d.Parent = resource.Ref{Address: resource.Address{Kind: resource.KindService, Name: s}}
			} else {
				p.add(at(service), "service", "%q is not a valid Service name; %s", s, nameRule)
			}
		}
	case hasSID:
		d.serviceAt = at(serviceSID)
		if s, ok := p.str(serviceSID, "service_sid"); ok {
			if resource.IsSID(s, "IS") {
				d.Parent = resource.Ref{SID: s}
			} else {
				p.add(at(serviceSID), "service_sid", "%q is not a service SID: expected IS followed by 32 hexadecimal digits", s)
			}
		}
	default:
		p.add(start, "service", "missing; write service: NAME (a Service in these specs) or service_sid: IS... (a service convsync does not manage)")
	}

	if v, ok := fields[resource.FieldUniqueName]; ok {
		d.uniqueNameAt = at(v)
		if s, ok := p.nameText(v, resource.FieldUniqueName, d.Values); ok && resource.LooksLikeSID(s) {
			p.add(at(v), resource.FieldUniqueName, "%q looks like a Twilio SID (two letters and 32 hex digits); Twilio refuses such unique names (error 50390)", s)
		}
	}
	if v, ok := fields[resource.FieldFriendlyName]; ok {
		p.nameText(v, resource.FieldFriendlyName, d.Values)
	}
	if v, ok := fields[resource.FieldAttributes]; ok {
		if s, ok := p.attributes(v); ok {
			d.Values[resource.FieldAttributes] = s
		}
	}
	if v, ok := fields[resource.FieldMessagingServiceSID]; ok {
		if s, ok := p.str(v, resource.FieldMessagingServiceSID); ok {
			if resource.IsSID(s, "MG") {
				d.Values[resource.FieldMessagingServiceSID] = s
			} else {
				p.add(at(v), resource.FieldMessagingServiceSID, "%q is not a messaging service SID: expected MG followed by 32 hexadecimal digits (it cannot be cleared: leave the field out to leave it unmanaged)", s)
			}
		}
	}
	if v, ok := fields[resource.FieldState]; ok {
		if s, ok := p.str(v, resource.FieldState); ok {
			switch s {
			case resource.StateActive, resource.StateInactive, resource.StateClosed:
				d.Values[resource.FieldState] = s
			default:
				p.add(at(v), resource.FieldState, "%q is not a state; allowed: active, inactive, closed", s)
			}
		}
	}
	if v, ok := fields["timers"]; ok {
		p.timers(v, d.Values)
	}
}

func (p *parser) kind(v *yaml.Node, start position) (resource.Kind, bool) {
	allowed := "allowed: Service, Conversation"
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

// nameText reads friendly_name or unique_name into values.
func (p *parser) nameText(v *yaml.Node, field string, values resource.Values) (string, bool) {
	s, ok := p.str(v, field)
	if !ok {
		return "", false
	}
	if s == "" {
		p.add(at(v), field, "empty; Twilio cannot reliably clear it: give a value, or leave the field out so convsync does not manage it")
		return "", false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7F && r < 0xA0) {
			p.add(at(v), field, "contains the control character U+%04X; write printable text", r)
			return "", false
		}
	}
	if n := utf8.RuneCountInString(s); n > MaxNameLength {
		p.add(at(v), field, "%d characters; at most %d are allowed", n, MaxNameLength)
		return "", false
	}
	values[field] = s
	return s, true
}

func (p *parser) attributes(v *yaml.Node) (string, bool) {
	const field = resource.FieldAttributes
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

func (p *parser) timers(v *yaml.Node, values resource.Values) {
	entries, ok := p.mapping(v, "timers", "inactive", "closed")
	if !ok {
		return
	}
	for _, e := range entries {
		field := "timers." + e.key
		s, ok := p.str(e.value, field)
		if !ok {
			continue
		}
		d, err := ParseISODuration(s)
		if err != nil {
			p.add(at(e.value), field, "%v", err)
			continue
		}
		minimum, code, minText := MinInactiveTimer, 50375, "1 minute (PT1M)"
		if e.key == "closed" {
			minimum, code, minText = MinClosedTimer, 50376, "10 minutes (PT10M)"
		}
		if d < minimum {
			p.add(at(e.value), field, "%s is shorter than Twilio's minimum of %s (error %d)", s, minText, code)
			continue
		}
		values[field] = strings.ToUpper(s)
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
