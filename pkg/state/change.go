package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/convsync/convsync/pkg/resource"
)

// Change is what one State.Apply did: the keys of the entries whose content
// changed (their new value is in the state; absent means removed), sorted.
// Backends store exactly these, so a change costs time proportional to itself.
type Change struct {
	Resources []string
	Pending   []string
	undo      func()
}

// Empty reports whether nothing changed.
func (c *Change) Empty() bool { return c == nil || len(c.Resources) == 0 && len(c.Pending) == 0 }

// Undo puts every entry the change touched back as it was, and the serial.
// A backend calls it when storing the change failed.
func (c *Change) Undo() {
	if c != nil && c.undo != nil {
		c.undo()
	}
}

// BrokenError means an update changed the state behind the tracker's back
// (replaced or wrote to its maps directly): the state in memory can no longer
// be trusted, and the backend must refuse every later change.
type BrokenError struct{ msg string }

func (e *BrokenError) Error() string { return e.msg }

// Apply runs fn on s as a backend's Update does: it records the entries fn
// touches through Get, Put, Remove, GetPending, AddPending and RemovePending,
// validates what changed, and bumps the serial when something did. If fn
// fails, or the result would not be readable, s is left as it was and the
// error says why. name is the state's name for messages (a file's path).
func (s *State) Apply(name string, fn func(*State) error) (*Change, error) {
	lineage, serial := s.Lineage, s.Serial
	resources, pending := s.Resources, s.Pending
	nResources, nPending := len(resources), len(pending)
	tx := &tracker{resources: map[string]*Resource{}, pending: map[string]*Pending{}}
	s.tx = tx
	fnErr := fn(s)
	s.tx = nil

	if !sameMap(s.Resources, resources) || !sameMap(s.Pending, pending) {
		return nil, &BrokenError{fmt.Sprintf("state %s: an update replaced the state's maps instead of using Put and Remove; "+
			"the state in memory can no longer be trusted, so no further change is accepted (what is saved is intact)", name)}
	}
	undo := func() {
		for k, prev := range tx.resources {
			if prev == nil {
				delete(s.Resources, k)
			} else {
				s.Resources[k] = prev
			}
		}
		for k, prev := range tx.pending {
			if prev == nil {
				delete(s.Pending, k)
			} else {
				s.Pending[k] = prev
			}
		}
		s.Lineage, s.Serial = lineage, serial
	}
	var err error
	c := &Change{undo: undo}
	for k, prev := range tx.resources {
		cur := s.Resources[k]
		if cur == nil && prev == nil || cur != nil && cur.Equal(prev) {
			continue
		}
		c.Resources = append(c.Resources, k)
		nResources += count(cur != nil) - count(prev != nil)
		if cur != nil && err == nil {
			err = validateResource(k, cur)
		}
	}
	for k, prev := range tx.pending {
		cur := s.Pending[k]
		if cur == nil && prev == nil || cur != nil && cur.Equal(prev) {
			continue
		}
		c.Pending = append(c.Pending, k)
		nPending += count(cur != nil) - count(prev != nil)
		if cur != nil && err == nil {
			err = validatePending(k, cur)
		}
	}
	if len(s.Resources) != nResources || len(s.Pending) != nPending {
		undo()
		return nil, &BrokenError{fmt.Sprintf("state %s: an update wrote to the state's maps directly instead of using Put and Remove; "+
			"the state in memory can no longer be trusted, so no further change is accepted (what is saved is intact)", name)}
	}
	switch {
	case fnErr != nil:
		undo()
		return nil, fnErr
	case s.Lineage != lineage:
		err = fmt.Errorf("the state's lineage cannot change (was %s, now %s)", lineage, s.Lineage)
	case s.Serial != serial:
		err = fmt.Errorf("the state's serial is managed by the state file or database that stores it; an update must not set it")
	}
	if err != nil {
		undo()
		return nil, fmt.Errorf("refusing to change state %s: %w", name, err)
	}
	sort.Strings(c.Resources)
	sort.Strings(c.Pending)
	if !c.Empty() {
		s.Serial++
	}
	return c, nil
}

// isBroken reports whether err is a BrokenError.
func isBroken(err error) bool {
	var b *BrokenError
	return errors.As(err, &b)
}

// EntryJSON is one resource or pending create in the state file's JSON form
// (the same form the file and its journal use), for backends that store
// entries one by one.
func ResourceJSON(r *Resource) ([]byte, error) { return json.Marshal(toResourceJSON(r)) }

// PendingJSON is one pending create in the state file's JSON form.
func PendingJSON(p *Pending) ([]byte, error) { return json.Marshal(toPendingJSON(p)) }

// DecodeResource reads what ResourceJSON wrote, as strictly as the file is
// read; key is the address it was stored under.
func DecodeResource(key string, data []byte) (*Resource, error) {
	var rj resourceJSON
	if err := json.Unmarshal(data, &rj); err != nil {
		return nil, fmt.Errorf("resource %s: %v", key, err)
	}
	if rj.Address != key {
		return nil, fmt.Errorf("resource stored as %s says it is %s", key, rj.Address)
	}
	addr, err := resource.ParseAddress(rj.Address)
	if err != nil {
		return nil, fmt.Errorf("resource %s: %v", key, err)
	}
	applied, err := decodeValues(addr.Kind, rj.Applied)
	if err != nil {
		return nil, fmt.Errorf("resource %s: applied: %v", key, err)
	}
	r := &Resource{Address: addr, SID: rj.SID, ParentSID: rj.ParentSID, CreatedAt: rj.CreatedAt, Applied: applied}
	if err := validateResource(key, r); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodePending reads what PendingJSON wrote.
func DecodePending(key string, data []byte) (*Pending, error) {
	var pj pendingJSON
	if err := json.Unmarshal(data, &pj); err != nil {
		return nil, fmt.Errorf("pending create %s: %v", key, err)
	}
	if pj.Address != key {
		return nil, fmt.Errorf("pending create stored as %s says it is %s", key, pj.Address)
	}
	addr, err := resource.ParseAddress(pj.Address)
	if err != nil {
		return nil, fmt.Errorf("pending create %s: %v", key, err)
	}
	values, err := decodeValues(addr.Kind, pj.Values)
	if err != nil {
		return nil, fmt.Errorf("pending create %s: values: %v", key, err)
	}
	p := &Pending{Address: addr, Kind: pj.Kind, ParentSID: pj.ParentSID, StartedAt: pj.StartedAt, Values: values}
	if err := validatePending(key, p); err != nil {
		return nil, err
	}
	return p, nil
}
