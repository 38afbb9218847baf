package spec

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/convsync/convsync/pkg/resource"
	yaml "go.yaml.in/yaml/v3"
)

// Document is one resource to write as a spec document (convsync export).
type Document struct {
	Address resource.Address
	Parent  resource.Ref
	// Values are canonical text, as in resource.Desired.
	Values resource.Values
	// Refs name resources of the same specs by address, by field.
	Refs map[string]resource.Ref
	// Comment, if set, is written above the document.
	Comment string
	// PreventDestroy writes lifecycle.prevent_destroy: true.
	PreventDestroy bool
}

// Write renders documents as one spec file that the loader reads back to
// the same resources: keys in the order the kind's schema lists its fields,
// nested groups as mappings, sets as flow lists, JSON objects as JSON text
// (exact, numbers included), references by name.
func Write(docs []Document) ([]byte, error) {
	var out bytes.Buffer
	for i, d := range docs {
		node, err := documentNode(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Address, err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		if d.Comment != "" {
			for _, line := range strings.Split(d.Comment, "\n") {
				out.WriteString("# " + line + "\n")
			}
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(node); err != nil {
			return nil, fmt.Errorf("%s: %w", d.Address, err)
		}
		_ = enc.Close()
		out.Write(buf.Bytes())
	}
	return out.Bytes(), nil
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Tag: "!!str"} }

func typed(tag, s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Tag: tag} }

// mapping is a YAML mapping that keeps insertion order, with nested groups.
type mapping struct{ node *yaml.Node }

func newMapping() mapping { return mapping{&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}} }

func (m mapping) set(key string, v *yaml.Node) {
	m.node.Content = append(m.node.Content, scalar(key), v)
}

// group returns the nested mapping under key, made on first use.
func (m mapping) group(key string) mapping {
	for i := 0; i+1 < len(m.node.Content); i += 2 {
		if m.node.Content[i].Value == key && m.node.Content[i+1].Kind == yaml.MappingNode {
			return mapping{m.node.Content[i+1]}
		}
	}
	g := newMapping()
	m.set(key, g.node)
	return g
}

func documentNode(d Document) (*yaml.Node, error) {
	k := resource.Schema(d.Address.Kind)
	if k == nil {
		return nil, fmt.Errorf("unknown kind %q", d.Address.Kind)
	}
	m := newMapping()
	m.set("kind", scalar(string(k.Kind)))
	byName, bySID := parentKeys(k)
	singletonNamedByParent := k.Singleton && !d.Parent.Address.IsZero() && d.Parent.Address.Name == d.Address.Name
	if !singletonNamedByParent && !resource.AccountSingleton(k.Kind) {
		m.set("name", scalar(d.Address.Name))
	}
	switch {
	case byName == "":
	case d.Parent.SID != "":
		m.set(bySID, scalar(d.Parent.SID))
	default:
		m.set(byName, scalar(d.Parent.Address.Name))
	}
	for i := range k.Fields {
		f := &k.Fields[i]
		if f.Type == resource.TypeRef {
			if ref, ok := d.Refs[f.Name]; ok && !ref.Address.IsZero() {
				target, key := m, f.RefName
				if parts := strings.Split(f.RefName, "."); len(parts) > 1 {
					// A nested reference (auto_creation.service).
					for _, p := range parts[:len(parts)-1] {
						target = target.group(p)
					}
					key = parts[len(parts)-1]
				}
				target.set(key, scalar(ref.Address.Name))
				continue
			}
		}
		v, ok := d.Values[f.Name]
		if !ok || f.WriteOnly || f.Secret {
			continue
		}
		node, err := valueNode(f, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		target, key := m, f.Name
		if f.Nested() {
			parts := strings.Split(f.Name, ".")
			for _, p := range parts[:len(parts)-1] {
				target = target.group(p)
			}
			key = parts[len(parts)-1]
		}
		target.set(key, node)
	}
	if d.PreventDestroy {
		m.group("lifecycle").set("prevent_destroy", typed("!!bool", "true"))
	}
	return m.node, nil
}

func valueNode(f *resource.FieldSchema, v string) (*yaml.Node, error) {
	switch f.Type {
	case resource.TypeSet:
		members, err := resource.ParseSet(v)
		if err != nil {
			return nil, err
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for _, m := range members {
			seq.Content = append(seq.Content, scalar(m))
		}
		return seq, nil
	case resource.TypeBool:
		return typed("!!bool", v), nil
	case resource.TypeInt:
		return typed("!!int", v), nil
	}
	// Strings, durations, SIDs and JSON text as strings: the loader reads a
	// JSON object from a string exactly, numbers included.
	return scalar(v), nil
}
