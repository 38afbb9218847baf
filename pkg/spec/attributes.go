package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/convsync/convsync/pkg/resource"

	yaml "go.yaml.in/yaml/v3"
)

// jsonNumber matches JSON's number grammar; such YAML numbers are copied as
// written, so no digit is lost (YAML reads integers beyond 64 bits as floats).
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// yamlFloat matches the plain scalars YAML reads as floats (when they fit in a
// float64: those it cannot hold it reads as strings).
var yamlFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$`)

// toJSON converts a YAML value (attributes written as a mapping) to the Go value
// encoding/json writes as the same JSON.
func (p *parser) toJSON(n *yaml.Node, path string) (any, bool) {
	switch n.Kind {
	case yaml.AliasNode:
		return nil, false // reported by checkTree
	case yaml.MappingNode:
		if n.ShortTag() != "!!map" {
			p.add(at(n), path, "the YAML tag %s is not supported", n.Tag)
			return nil, false
		}
		obj := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				ok = false // reported by checkTree
				continue
			}
			if _, dup := obj[k.Value]; dup {
				ok = false // reported by checkTree
				continue
			}
			v, vok := p.toJSON(n.Content[i+1], join(path, k.Value))
			ok = ok && vok
			obj[k.Value] = v
		}
		return obj, ok
	case yaml.SequenceNode:
		if n.ShortTag() != "!!seq" {
			p.add(at(n), path, "the YAML tag %s is not supported", n.Tag)
			return nil, false
		}
		arr := make([]any, 0, len(n.Content))
		ok := true
		for i, c := range n.Content {
			v, vok := p.toJSON(c, path+"["+strconv.Itoa(i)+"]")
			ok = ok && vok
			arr = append(arr, v)
		}
		return arr, ok
	case yaml.ScalarNode:
		return p.scalarToJSON(n, path)
	}
	p.add(at(n), path, "unexpected YAML node")
	return nil, false
}

func (p *parser) scalarToJSON(n *yaml.Node, path string) (any, bool) {
	text := n.Value
	switch n.ShortTag() {
	case "!!str":
		if n.Style == 0 && yamlFloat.MatchString(text) && outOfRange(text) {
			// A plain number YAML could not hold in a float64 (1e400): YAML
			// then reads it as a string, while the same number in a JSON
			// string stays a number. Keep it a number, as written.
			if jsonNumber.MatchString(text) {
				return json.Number(text), true
			}
			p.add(at(n), path, "%s is a number too large for YAML to read; write it as JSON writes numbers (such as 1e400, kept as written), or quote it for a string", text)
			return nil, false
		}
		return text, true
	case "!!timestamp":
		return text, true
	case "!!null":
		return nil, true
	case "!!bool":
		return strings.EqualFold(text, "true"), true
	case "!!int":
		unsigned := strings.TrimLeft(text, "+-")
		if len(unsigned) > 1 && unsigned[0] == '0' && unsigned[1] >= '0' && unsigned[1] <= '9' {
			p.add(at(n), path, "%s has a leading zero, which YAML reads as octal; write it without the zero, as 0o%s for octal, or quote it for a string", text, strings.TrimLeft(unsigned, "0"))
			return nil, false
		}
		var i big.Int
		if _, ok := i.SetString(text, 0); !ok {
			p.add(at(n), path, "%s is not a number JSON can hold; quote it for a string", text)
			return nil, false
		}
		return json.Number(i.String()), true
	case "!!float":
		if jsonNumber.MatchString(text) {
			return json.Number(text), true
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(text, "_", ""), 64)
		if err != nil || f != f || f > maxFloat || f < -maxFloat {
			p.add(at(n), path, "%s is not a number JSON can hold (JSON has no infinity or NaN); quote it for a string", text)
			return nil, false
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), true
	}
	p.add(at(n), path, "the YAML tag %s is not supported in attributes", n.Tag)
	return nil, false
}

const maxFloat = 1.7976931348623157e308

func outOfRange(text string) bool {
	_, err := strconv.ParseFloat(strings.ReplaceAll(text, "_", ""), 64)
	return errors.Is(err, strconv.ErrRange)
}

func jsonMarshal(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimRight(buf.String(), "\n"), nil
}

// jsonProblem is what strictJSON found wrong in valid JSON text: a byte
// offset into the text and a message.
type jsonProblem struct {
	offset  int
	path    string // the key or element, as in YAML problems (nested.a, list[2])
	first   int    // for a duplicate key: the offset of its first setting; else -1
	message string
}

// strictJSON refuses, in text that is already known to be valid JSON, what
// encoding/json lets through silently: a key set twice in one object (it keeps
// the last) and an escaped UTF-16 surrogate that is not half of a pair (it
// becomes U+FFFD). Both are refused in the YAML form of attributes too.
func strictJSON(text string) *jsonProblem {
	s := &jsonScanner{text: text}
	s.value("")
	return s.problem
}

type jsonScanner struct {
	text    string
	pos     int
	problem *jsonProblem
}

func (s *jsonScanner) fail(offset int, path string, first int, format string, args ...any) {
	if s.problem == nil {
		s.problem = &jsonProblem{offset: offset, path: path, first: first, message: fmt.Sprintf(format, args...)}
	}
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.text) && strings.IndexByte(" \t\r\n", s.text[s.pos]) >= 0 {
		s.pos++
	}
}

// value scans one value at s.pos; path names it in messages.
func (s *jsonScanner) value(path string) {
	s.skipSpace()
	if s.problem != nil || s.pos >= len(s.text) {
		return
	}
	switch s.text[s.pos] {
	case '{':
		s.pos++
		seen := map[string]int{}
		for s.problem == nil {
			s.skipSpace()
			if s.pos >= len(s.text) || s.text[s.pos] == '}' {
				s.pos++
				return
			}
			if s.text[s.pos] == ',' {
				s.pos++
				s.skipSpace()
			}
			start := s.pos
			key := s.str(path)
			child := join(path, key)
			if first, dup := seen[key]; dup {
				s.fail(start, child, first, "duplicate key")
				return
			}
			seen[key] = start
			s.skipSpace()
			s.pos++ // ':'
			s.value(child)
		}
	case '[':
		s.pos++
		for i := 0; s.problem == nil; i++ {
			s.skipSpace()
			if s.pos >= len(s.text) || s.text[s.pos] == ']' {
				s.pos++
				return
			}
			if s.text[s.pos] == ',' {
				s.pos++
			}
			s.value(path + "[" + strconv.Itoa(i) + "]")
		}
	case '"':
		s.str(path)
	default: // number, true, false, null
		for s.pos < len(s.text) && strings.IndexByte(",]} \t\r\n", s.text[s.pos]) < 0 {
			s.pos++
		}
	}
}

// str scans a string at s.pos and returns its decoded value.
func (s *jsonScanner) str(path string) string {
	start := s.pos
	s.pos++ // '"'
	for s.pos < len(s.text) && s.text[s.pos] != '"' {
		if s.text[s.pos] != '\\' {
			s.pos++
			continue
		}
		if s.text[s.pos+1] != 'u' {
			s.pos += 2
			continue
		}
		at := s.pos
		r := hex4(s.text[s.pos+2 : s.pos+6])
		s.pos += 6
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if strings.HasPrefix(s.text[s.pos:], `\u`) && s.pos+6 <= len(s.text) {
				if lo := hex4(s.text[s.pos+2 : s.pos+6]); lo >= 0xDC00 && lo < 0xE000 {
					s.pos += 6
					continue
				}
			}
			s.fail(at, path, -1, loneSurrogate, s.text[at:at+6])
		case r >= 0xDC00 && r < 0xE000:
			s.fail(at, path, -1, loneSurrogate, s.text[at:at+6])
		}
	}
	s.pos++ // '"'
	var out string
	_ = json.Unmarshal([]byte(s.text[start:min(s.pos, len(s.text))]), &out)
	return out
}

const loneSurrogate = "%s is half of a UTF-16 surrogate pair without its other half, which is no character (JSON decoders would turn it into U+FFFD); write the character itself, or both halves"

func hex4(h string) rune {
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return -1
	}
	return rune(v)
}

// addJSONProblem reports prob, found in the JSON string held by the scalar v,
// at the place in the file it comes from when the scalar is on one line and
// plain or single-quoted (the text is then the source, but for ” standing
// for '); otherwise at the scalar, naming the line and column in the JSON.
func (p *parser) addJSONProblem(v *yaml.Node, text string, prob *jsonProblem) {
	field := resource.FieldAttributes
	if prob.path != "" {
		field = join(field, prob.path)
	}
	indent, literal := p.literalIndent(v)
	locate := func(offset int) (position, bool) {
		if literal {
			// A literal block's lines are the text's lines, indented.
			line := strings.Count(text[:offset], "\n")
			col := utf8.RuneCountInString(text[strings.LastIndexByte(text[:offset], '\n')+1 : offset])
			return position{v.Line + 1 + line, indent + 1 + col}, true
		}
		if strings.ContainsAny(text, "\n\r") || (v.Style != 0 && v.Style != yaml.SingleQuotedStyle) {
			return at(v), false
		}
		col := v.Column + utf8.RuneCountInString(text[:offset])
		if v.Style == yaml.SingleQuotedStyle {
			col += 1 + strings.Count(text[:offset], "'")
		}
		return position{v.Line, col}, true
	}
	inText := func(offset int) string {
		line := 1 + strings.Count(text[:offset], "\n")
		col := 1 + utf8.RuneCountInString(text[strings.LastIndexByte(text[:offset], '\n')+1:offset])
		return fmt.Sprintf("line %d, column %d of the JSON text", line, col)
	}
	pos, exact := locate(prob.offset)
	msg := prob.message
	if !exact {
		msg += " (at " + inText(prob.offset) + ")"
	}
	if prob.first >= 0 {
		if first, ok := locate(prob.first); ok {
			msg += fmt.Sprintf("; it is already set at line %d, column %d", first.line, first.column)
		} else {
			msg += "; it is already set at " + inText(prob.first)
		}
	}
	p.add(pos, field, "%s", msg)
}

// literalIndent returns the indentation of a literal block scalar's content
// (`|`, without an explicit indentation indicator, its content starting on
// the next line), found in the source; ok is false for any other scalar.
func (p *parser) literalIndent(v *yaml.Node) (indent int, ok bool) {
	if v.Style != yaml.LiteralStyle || p.src == nil {
		return 0, false
	}
	lines := strings.Split(string(p.src), "\n")
	if v.Line < 1 || v.Line > len(lines) {
		return 0, false
	}
	header := strings.TrimSpace(strings.SplitN(lines[v.Line-1][min(len(lines[v.Line-1]), max(0, v.Column-1)):], "#", 2)[0])
	if header != "|" && header != "|-" && header != "|+" {
		return 0, false // an indentation indicator: rare, not worth placing exactly
	}
	for _, l := range lines[v.Line:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		return len(l) - len(strings.TrimLeft(l, " ")), true
	}
	return 0, false
}
