package state

import (
	"fmt"

	"github.com/convsync/convsync/pkg/resource"
)

// Move re-keys the resource recorded at from to the address to, keeping its
// SID, parent and applied values: the spec that describes it was renamed.
// It refuses when from is not in the state, when to is already taken (by a
// resource or by a create in flight), and when the two addresses are of
// different kinds. It returns the moved entry.
func (s *State) Move(from, to resource.Address) (*Resource, error) {
	if from.Kind != to.Kind {
		return nil, fmt.Errorf("cannot move %s to %s: a resource keeps its kind (%s)", from, to, from.Kind)
	}
	if from == to {
		return nil, fmt.Errorf("cannot move %s to itself", from)
	}
	r := s.Get(from)
	if r == nil {
		return nil, fmt.Errorf("%s is not in the state", from)
	}
	if o := s.Get(to); o != nil {
		return nil, fmt.Errorf("%s is already in the state (%s); remove it first (convsync state rm %s) if it should go", to, o.SID, to)
	}
	if p := s.GetPending(to); p != nil {
		return nil, fmt.Errorf("%s has a create in flight (since %s); run convsync plan and apply first", to, p.StartedAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	moved := r.Clone()
	moved.Address = to
	s.Remove(from)
	s.Put(moved)
	return moved, nil
}
