package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"github.com/convsync/convsync/pkg/resource"
)

// Format returns a spec file in the canonical layout (`convsync fmt`),
// keeping its comments:
//
//   - the keys of each document in the order the kind's schema lists them
//     (apiVersion, kind, name, the parent, the fields in schema order,
//     timeouts, lifecycle, webhook_enabled), keys the kind does not have
//     after them in their order; nested groups (timers, new_message, …),
//     timeouts and lifecycle likewise; attributes are the user's data and
//     keep their order;
//   - 2-space indentation, "\n" line ends, the end-of-line comments of
//     consecutive lines in one column, and "---" between documents (none before the first); the
//     comments of a document that holds nothing else head the next one;
//   - scalars keep their quoting, and mappings and sequences their block or
//     flow style, except that a flow collection written over several lines
//     becomes block style (it would otherwise be written on one line).
//
// A file that does not parse as YAML (or is not UTF-8 text, or is too
// large) is returned with its problems and no output: it must not be
// rewritten. Format is idempotent: Format of its own output returns it
// unchanged. file names the file in problems.
func Format(file string, data []byte) (out []byte, problems Errors) {
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
		if r := recover(); r != nil {
			p.problems = nil
			p.add(position{1, 1}, "", "the YAML library failed on this file (%v); please report it", r)
			out, problems = nil, p.problems
		}
	}()
	var docs []*yaml.Node
	// Line ends become \n: the YAML library places comments differently
	// after \r\n (a comment above a key becomes the foot of the key before).
	dec := yaml.NewDecoder(bytes.NewReader(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))))
	lastLine := 1
	pending := "" // the comments of documents that hold nothing else
	for {
		doc := &yaml.Node{}
		err := dec.Decode(doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.yamlError(err, lastLine)
			return nil, p.problems
		}
		lastLine = max(lastLine, doc.Line)
		if empty, text := emptyDocument(doc); empty {
			// Only comments: they head the next document instead.
			pending = joinComments(pending, text)
			continue
		}
		doc.HeadComment = joinComments(pending, doc.HeadComment)
		pending = ""
		unfoldFlows(doc)
		spellFlowNulls(doc, false)
		orderDocument(doc)
		docs = append(docs, doc)
	}
	if pending != "" && len(docs) > 0 {
		last := docs[len(docs)-1]
		last.FootComment = joinComments(last.FootComment, pending)
	}
	if len(docs) == 0 {
		if len(bytes.TrimSpace(data)) == 0 {
			return []byte{}, nil
		}
		return data, nil // only comments the library does not hand out: leave it
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			p.add(position{d.Line, d.Column}, "", "cannot write this document back: %v", err)
			return nil, p.problems
		}
	}
	if err := enc.Close(); err != nil {
		p.add(position{1, 1}, "", "cannot write this file back: %v", err)
		return nil, p.problems
	}
	return alignComments(buf.Bytes()), nil
}

// alignComments lines up the end-of-line comments of consecutive lines in
// one column, one space after the longest of those lines, as gofmt does
// (the YAML library writes each one space after its value). It finds the
// comments by decoding what was written, so a "#" inside a value is never
// taken for one.
func alignComments(out []byte) []byte {
	comments := map[int]string{} // line → its end-of-line comment
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.LineComment != "" {
			comments[n.Line] = n.LineComment
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return out
		}
		walk(&doc)
	}
	lines := strings.Split(string(out), "\n")
	prefix := func(i int) (string, bool) {
		c, ok := comments[i+1]
		if !ok || strings.Contains(c, "\n") {
			return "", false
		}
		before, found := strings.CutSuffix(lines[i], " "+c)
		if !found || strings.TrimSpace(before) == "" {
			return "", false
		}
		return before, true
	}
	for i := 0; i < len(lines); {
		if _, ok := prefix(i); !ok {
			i++
			continue
		}
		end, width := i, 0
		for ; end < len(lines); end++ {
			before, ok := prefix(end)
			if !ok {
				break
			}
			width = max(width, utf8.RuneCountInString(before))
		}
		for j := i; j < end; j++ {
			before, _ := prefix(j)
			lines[j] = before + strings.Repeat(" ", width-utf8.RuneCountInString(before)+1) + comments[j+1]
		}
		i = end
	}
	return []byte(strings.Join(lines, "\n"))
}

// emptyDocument reports a document with no content (a trailing "---", or
// only comments), and the text of its comments.
func emptyDocument(doc *yaml.Node) (bool, string) {
	text := joinComments(doc.HeadComment, doc.LineComment)
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		if root.Kind != yaml.ScalarNode || root.ShortTag() != "!!null" || root.Value != "" {
			return false, ""
		}
		text = joinComments(text, joinComments(root.HeadComment, joinComments(root.LineComment, root.FootComment)))
	}
	return true, joinComments(text, doc.FootComment)
}

// joinComments puts two comment blocks one after the other, a blank line
// between them.
func joinComments(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n\n" + b
}

// unfoldFlows turns a flow sequence or mapping written over several lines
// ([a, b,\n c]) into block style: the YAML library writes flow collections
// on one line, however long. One-line flow collections stay as they are.
func unfoldFlows(n *yaml.Node) {
	for i, c := range n.Content {
		if (c.Kind == yaml.SequenceNode || c.Kind == yaml.MappingNode) && c.Style&yaml.FlowStyle != 0 && lastLine(c) > c.Line {
			switch {
			case n.Kind == yaml.MappingNode && i%2 == 1:
				// The comment after the collection goes after its key
				// ("permissions: # …"), where block style leaves room.
				key := n.Content[i-1]
				key.LineComment = joinLine(key.LineComment, c.LineComment)
				c.LineComment = ""
				c.Style &^= yaml.FlowStyle
			case n.Kind != yaml.MappingNode && c.LineComment == "":
				c.Style &^= yaml.FlowStyle
			}
		}
		unfoldFlows(c)
	}
}

func joinLine(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + " " + b
}

// spellFlowNulls writes an empty null inside a flow collection ({x: } or
// {x}) as null: the YAML library would write it as an empty quoted string.
func spellFlowNulls(n *yaml.Node, inFlow bool) {
	if inFlow && n.Kind == yaml.ScalarNode && n.Value == "" && n.ShortTag() == "!!null" && n.Style == 0 {
		n.Value = "null"
	}
	inFlow = inFlow || (n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode) && n.Style&yaml.FlowStyle != 0
	for _, c := range n.Content {
		spellFlowNulls(c, inFlow)
	}
}

// lastLine is the line of the last node under n.
func lastLine(n *yaml.Node) int {
	if len(n.Content) == 0 {
		return n.Line
	}
	return max(n.Line, lastLine(n.Content[len(n.Content)-1]))
}

// orderDocument sorts the keys of a spec document whose kind is known; other
// documents are left as they are (and only re-indented).
func orderDocument(doc *yaml.Node) {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return
	}
	root := doc.Content[0]
	var schema *resource.KindSchema
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "kind" && root.Content[i+1].Kind == yaml.ScalarNode {
			schema = resource.Schema(resource.Kind(root.Content[i+1].Value))
			break
		}
	}
	if schema == nil {
		return
	}
	sortMapping(root, allowedFields(schema), true)
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, value := root.Content[i].Value, root.Content[i+1]
		switch {
		case key == "timeouts":
			sortMapping(value, []string{"create", "update", "read", "delete"}, false)
		case key == "lifecycle":
			sortMapping(value, []string{"prevent_destroy"}, false)
		case schema.HasGroup(key):
			sortGroup(schema, key, value)
		}
	}
}

// sortGroup orders a nested group of fields (timers, new_message) by the
// schema, and its own groups likewise (new_message.with_media).
func sortGroup(schema *resource.KindSchema, prefix string, m *yaml.Node) {
	var order []string
	for _, f := range schema.Fields {
		names := []string{f.Name}
		if f.Type == resource.TypeRef {
			names = []string{f.RefName, f.Name} // auto_creation.service, by address, first
		}
		for _, name := range names {
			if rest, ok := strings.CutPrefix(name, prefix+"."); ok {
				if top := topKey(rest); !slices.Contains(order, top) {
					order = append(order, top)
				}
			}
		}
	}
	sortMapping(m, order, false)
	if m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if name := prefix + "." + m.Content[i].Value; schema.HasGroup(name) {
			sortGroup(schema, name, m.Content[i+1])
		}
	}
}

// sortMapping orders a mapping's key/value pairs by order; keys not in it
// follow, in the order they were. Comments travel with their key or value,
// except, with keepHead, the comment above the first key, which heads the
// document and stays on top.
func sortMapping(m *yaml.Node, order []string, keepHead bool) {
	if m.Kind != yaml.MappingNode || len(m.Content) < 4 {
		return
	}
	type pair struct {
		key, value *yaml.Node
		rank, at   int
	}
	pairs := make([]pair, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		rank := len(order)
		if k := m.Content[i]; k.Kind == yaml.ScalarNode {
			if r := slices.Index(order, k.Value); r >= 0 {
				rank = r
			}
		}
		pairs = append(pairs, pair{m.Content[i], m.Content[i+1], rank, i})
	}
	head := ""
	if keepHead {
		head, pairs[0].key.HeadComment = pairs[0].key.HeadComment, ""
	}
	// A comment below the last pair ends the mapping: it stays at the end.
	last := pairs[len(pairs)-1]
	foot := joinComments(last.key.FootComment, last.value.FootComment)
	last.key.FootComment, last.value.FootComment = "", ""
	slices.SortStableFunc(pairs, func(a, b pair) int { return a.rank - b.rank })
	if foot != "" {
		end := pairs[len(pairs)-1].key
		end.FootComment = joinComments(end.FootComment, foot)
	}
	if head != "" {
		if pairs[0].key.HeadComment != "" {
			head += "\n" + pairs[0].key.HeadComment
		}
		pairs[0].key.HeadComment = head
	}
	m.Content = m.Content[:0]
	for _, p := range pairs {
		m.Content = append(m.Content, p.key, p.value)
	}
}

// FormatResult is what FormatDir did, or (check) would do.
type FormatResult struct {
	// Files counts the spec files looked at.
	Files int
	// Changed lists the files not in the canonical layout (rewritten unless
	// check), relative to the folder with '/' separators, sorted.
	Changed []string
	// Problems holds the files that do not parse, or could not be
	// rewritten; they are left as they are.
	Problems Errors
}

// FormatDir formats every spec file under dir (the files LoadDir reads).
// With check it only reports what would change. A file is rewritten in
// place through a temporary file and a rename beside it (a symlinked
// file's target is rewritten, the link kept), with its mode.
func FormatDir(dir string, check bool) (*FormatResult, error) {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("spec folder %s does not exist: %w", dir, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("spec folder %s: cannot read: %w", dir, unwrapPath(err))
	case !info.IsDir():
		return nil, fmt.Errorf("spec folder %s is not a folder", dir)
	}
	w := &walker{}
	w.walk(dir, "", []ancestor{{".", info}})
	if len(w.ioErrors) > 0 {
		return nil, errors.Join(w.ioErrors...)
	}
	slices.SortFunc(w.files, func(a, b specFile) int { return strings.Compare(a.rel, b.rel) })
	res := &FormatResult{Files: len(w.files), Problems: w.problems}
	for _, f := range w.files {
		data, err := readLimited(f.abs)
		if err != nil {
			return nil, fmt.Errorf("spec file %s: cannot read: %w", f.rel, unwrapPath(err))
		}
		out, problems := Format(f.rel, data)
		if len(problems) > 0 {
			res.Problems = append(res.Problems, problems...)
			continue
		}
		if bytes.Equal(out, data) {
			continue
		}
		res.Changed = append(res.Changed, f.rel)
		if check {
			continue
		}
		if err := rewrite(f.abs, out); err != nil {
			res.Problems = append(res.Problems, Problem{File: f.rel, Message: fmt.Sprintf("cannot rewrite: %v", unwrapPath(err))})
		}
	}
	res.Problems.sort()
	return res, nil
}

// rewrite replaces the file at path (a symlink's target) with data, keeping
// its mode: written beside it, then renamed over it.
func rewrite(path string, data []byte) error {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	info, err := os.Stat(target)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".fmt-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // once renamed, there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), target)
}
