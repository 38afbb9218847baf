package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// CanonicalJSON returns s re-encoded with sorted object keys and no insignificant
// whitespace, so two JSON texts that mean the same compare equal as strings.
// Numbers keep their exact text. An empty string is treated as "{}", which is
// what Twilio returns for unset attributes.
func CanonicalJSON(s string) (string, error) {
	if len(bytes.TrimSpace([]byte(s))) == 0 {
		return "{}", nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("not valid JSON: %v", err)
	}
	if dec.More() {
		return "", fmt.Errorf("not valid JSON: more than one value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // encoding/json sorts map keys
		return "", err
	}
	return string(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// JSONEqual compares two JSON texts by meaning. Text that is not JSON compares
// by exact equality.
func JSONEqual(a, b string) bool {
	if a == b {
		// Both sides are usually canonical already (the spec loader and the
		// Twilio client canonicalise), so this is the common case.
		return true
	}
	ca, errA := CanonicalJSON(a)
	cb, errB := CanonicalJSON(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return ca == cb
}
