package resource

import (
	"fmt"
	"strings"
)

// A parent key names where a resource lives: the SID of its parent, and for
// a kind two levels down (a participant: service, then conversation) the
// parent's own parent key before it, joined by "/": "IS…/CH…". Everything
// that only compares or indexes parents (snapshots, claims, the state,
// cascades) treats the key as opaque text; the few places that need the
// parent itself (adapters' routes, import paths, the parent lookups) split
// it. For kinds one level down the key is the parent's SID, as before, so
// nothing stored changes.

// parentKeySeparator joins the SIDs of a parent key. SIDs never contain it.
const parentKeySeparator = "/"

// ChildKey is the parent key of the resources that live in a resource of
// kind parent, given that resource's own parent key and SID.
func ChildKey(parent Kind, parentParentKey, parentSID string) string {
	if s := Schema(parent); s == nil || s.Parent == "" || parentSID == "" {
		return parentSID
	}
	if parentParentKey == "" {
		return ""
	}
	return parentParentKey + parentKeySeparator + parentSID
}

// SplitParentKey returns the SIDs of a parent key, outermost first.
func SplitParentKey(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, parentKeySeparator)
}

// ParentOfKey splits a parent key into the parent's own parent key and its
// SID: "IS…/CH…" → ("IS…", "CH…"); "IS…" → ("", "IS…").
func ParentOfKey(key string) (parentParentKey, parentSID string) {
	i := strings.LastIndex(key, parentKeySeparator)
	if i < 0 {
		return "", key
	}
	return key[:i], key[i+1:]
}

// Ancestors lists the kinds above k, nearest first: a participant's are
// Conversation, Service.
func Ancestors(k Kind) []Kind {
	var out []Kind
	for s := Schema(k); s != nil && s.Parent != ""; s = Schema(s.Parent) {
		out = append(out, s.Parent)
	}
	return out
}

// CheckParentKey reports whether key has the shape a parent key of kind k
// must have: one SID per ancestor, each of its ancestor's kind.
func CheckParentKey(k Kind, key string) error {
	ancestors := Ancestors(k)
	if len(ancestors) == 0 {
		if key != "" {
			return fmt.Errorf("parent %q is set, but a %s has no parent", key, k)
		}
		return nil
	}
	sids := SplitParentKey(key)
	if len(sids) != len(ancestors) {
		return fmt.Errorf("parent must be %s, got %q", describeParentKey(ancestors), key)
	}
	for i, sid := range sids {
		a := Schema(ancestors[len(ancestors)-1-i])
		if !IsSID(sid, a.SIDPrefix) {
			return fmt.Errorf("parent must be %s, got %q", describeParentKey(ancestors), key)
		}
	}
	return nil
}

func describeParentKey(ancestors []Kind) string {
	var parts []string
	for i := len(ancestors) - 1; i >= 0; i-- {
		a := Schema(ancestors[i])
		parts = append(parts, fmt.Sprintf("a %s SID (%s + 32 hex digits)", strings.ToLower(string(a.Kind)), a.SIDPrefix))
	}
	if len(parts) > 1 {
		return strings.Join(parts, ", then ") + ", joined by /"
	}
	return parts[0]
}

// PathOfKey is Twilio's path of the resource of kind parent that a parent
// key names: "IS…/CH…" → /Services/IS…/Conversations/CH….
func PathOfKey(parent Kind, key string) string {
	s := Schema(parent)
	if s == nil {
		return ""
	}
	parentParentKey, sid := ParentOfKey(key)
	prefix := ""
	if s.Parent != "" {
		prefix = PathOfKey(s.Parent, parentParentKey)
	}
	return s.Path(prefix, sid)
}
