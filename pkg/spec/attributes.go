package spec

import (
	"bytes"
	"encoding/json"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// jsonNumber matches JSON's number grammar; such YAML numbers are copied as
// written, so no digit is lost (YAML reads integers beyond 64 bits as floats).
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

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
	case "!!str", "!!timestamp":
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

func jsonMarshal(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimRight(buf.String(), "\n"), nil
}
