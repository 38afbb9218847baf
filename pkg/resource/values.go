package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ParseSet reads a set's canonical text (a JSON array of strings).
func ParseSet(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("not a list of strings: %v", err)
	}
	return out, nil
}

// EncodeSet writes members as a set's canonical text: sorted, each once.
func EncodeSet(members []string) string {
	seen := map[string]bool{}
	out := make([]string, 0, len(members))
	for _, m := range members {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	sort.Strings(out)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out) // a []string always encodes
	return strings.TrimRight(buf.String(), "\n")
}

// SetDiff returns the members of after missing from before (added) and the
// members of before missing from after (removed), sorted.
func SetDiff(before, after string) (added, removed []string) {
	b, _ := ParseSet(before)
	a, _ := ParseSet(after)
	inB := map[string]bool{}
	for _, m := range b {
		inB[m] = true
	}
	inA := map[string]bool{}
	for _, m := range a {
		inA[m] = true
		if !inB[m] {
			added = append(added, m)
		}
	}
	for _, m := range b {
		if !inA[m] {
			removed = append(removed, m)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

// Canonical turns a value into the field's canonical text, or says why it
// is not a valid value of the field. Strings pass unchanged except that an
// enum with FoldCase takes the Enum's spelling.
func (f *FieldSchema) Canonical(s string) (string, error) {
	if f.Secret {
		r, err := ParseSecretRef(s)
		if err != nil {
			return "", err
		}
		return r.String(), nil
	}
	switch f.Type {
	case TypeJSON:
		return CanonicalJSON(s)
	case TypeSet:
		members, err := ParseSet(s)
		if err != nil {
			return "", err
		}
		for _, m := range members {
			if _, err := f.enumValue(m); err != nil {
				return "", err
			}
		}
		return EncodeSet(members), nil
	case TypeDuration:
		if _, err := ParseISODuration(s); err != nil {
			return "", err
		}
		return strings.ToUpper(s), nil
	case TypeBool:
		switch strings.ToLower(s) {
		case "true":
			return "true", nil
		case "false":
			return "false", nil
		}
		return "", fmt.Errorf("%q is not true or false", s)
	case TypeInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not a whole number", s)
		}
		return strconv.FormatInt(n, 10), nil
	}
	return f.enumValue(s)
}

// enumValue checks s against the field's Enum (if any), returning the
// Enum's spelling.
func (f *FieldSchema) enumValue(s string) (string, error) {
	if len(f.Enum) == 0 {
		return s, nil
	}
	for _, e := range f.Enum {
		if s == e || f.FoldCase && strings.EqualFold(s, e) {
			return e, nil
		}
	}
	return "", fmt.Errorf("%q is not allowed; allowed: %s", s, strings.Join(f.Enum, ", "))
}

// JSONValue is the field's canonical text as a real JSON value, for the
// state file and the JSON plan: objects and sets as themselves, booleans
// and integers as JSON booleans and numbers, everything else as a string.
// Text that is not valid for the type stays a string.
func (f *FieldSchema) JSONValue(s string) json.RawMessage {
	switch f.Type {
	case TypeJSON, TypeSet, TypeBool, TypeInt:
		if json.Valid([]byte(s)) && s != "" {
			return json.RawMessage(s)
		}
	}
	b, _ := json.Marshal(s)
	return b
}

// FromJSON reads a value written by JSONValue (or, for every type, a JSON
// string holding the canonical text, as state format 1 wrote it).
func (f *FieldSchema) FromJSON(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		if f.Type == TypeString || f.Type == TypeRef || f.Type == TypeDuration {
			return s, nil
		}
		return f.withoutEnum().Canonical(s)
	}
	switch f.Type {
	case TypeJSON, TypeSet, TypeBool, TypeInt:
		return f.withoutEnum().Canonical(string(raw))
	}
	return "", fmt.Errorf("expected a string, found %s", raw)
}

// withoutEnum is f without its allowed values: what the state recorded was
// sent to (or read from) Twilio, and a value a later Twilio allows must not
// make the state unreadable.
func (f *FieldSchema) withoutEnum() *FieldSchema {
	g := *f
	g.Enum = nil
	return &g
}

// NestValues turns v into a JSON object through the schema: dotted leaf
// fields nest (timers.inactive → {"timers": {"inactive": …}}) and each value
// is its real JSON type. Fields the schema does not know stay strings at the
// top level (validation refuses them elsewhere).
func (k *KindSchema) NestValues(v Values) map[string]any {
	out := map[string]any{}
	for _, name := range v.Keys() {
		var raw json.RawMessage
		if f := k.Field(name); f != nil {
			raw = f.JSONValue(v[name])
		} else {
			raw, _ = json.Marshal(v[name])
		}
		parts := strings.Split(name, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = raw
	}
	return out
}

// FlattenValues reads what NestValues wrote (or state format 1's flat map of
// strings) back into Values, refusing fields the kind does not have.
func (k *KindSchema) FlattenValues(raw json.RawMessage) (Values, error) {
	out := Values{}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return out, nil
	}
	var walk func(prefix string, raw json.RawMessage) error
	walk = func(prefix string, raw json.RawMessage) error {
		var obj map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&obj); err != nil {
			if prefix == "" {
				return fmt.Errorf("expected an object of fields: %v", err)
			}
			return fmt.Errorf("%s: expected an object: %v", prefix, err)
		}
		for key, val := range obj {
			name := key
			if prefix != "" {
				name = prefix + "." + key
			}
			if f := k.Field(name); f != nil {
				s, err := f.FromJSON(val)
				if err != nil {
					return fmt.Errorf("field %q: %v", name, err)
				}
				out[name] = s
				continue
			}
			if k.HasGroup(name) {
				if err := walk(name, val); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("field %q is not a %s field", name, k.Kind)
		}
		return nil
	}
	if err := walk("", raw); err != nil {
		return nil, err
	}
	return out, nil
}
