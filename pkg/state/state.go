package state

import (
	"crypto/rand"
	"fmt"
	"sort"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

// State is everything convsync remembers between runs. It knows nothing about
// JSON or files; File stores it and Encode/Decode give it its on-disk form.
type State struct {
	// Lineage identifies one state's history. It is set once when the state is
	// created and never changes, so a saved plan (or a copied file) can tell
	// whether it belongs to this state at all.
	Lineage string
	// Serial counts content changes. File bumps it; callers never set it.
	Serial uint64
	// Resources are the resources convsync manages, by address string
	// ("conversation.vip").
	Resources map[string]*Resource
	// Pending are creates convsync was about to send, by address string.
	Pending map[string]*Pending

	// tx records what File.Update's function touches, so that the change can
	// be checked, journaled and undone without copying the whole state. Nil
	// outside File.Update.
	tx *tracker
}

// tracker remembers, for each entry touched through the methods below during
// one File.Update, a copy of the entry as it was before the first touch (nil
// if it was absent).
type tracker struct {
	resources map[string]*Resource
	pending   map[string]*Pending
}

func (s *State) touchResource(key string) {
	if s.tx == nil {
		return
	}
	if _, seen := s.tx.resources[key]; !seen {
		s.tx.resources[key] = s.Resources[key].Clone()
	}
}

func (s *State) touchPending(key string) {
	if s.tx == nil {
		return
	}
	if _, seen := s.tx.pending[key]; !seen {
		s.tx.pending[key] = s.Pending[key].Clone()
	}
}

// Resource is one Twilio resource convsync owns.
type Resource struct {
	Address   resource.Address
	SID       string
	ParentSID string // service SID of a conversation; "" for services
	// Applied is what convsync last applied for each managed field, including
	// write-only ones (timers): Twilio never returns durations, so this is the
	// only way to notice that a timer in the specs changed.
	Applied   resource.Values
	CreatedAt time.Time // date_created from Twilio; zero if unknown
}

// Pending records a create convsync is about to send, before sending it, so
// that if the answer is lost (crash, timeout, 500 after the write) the next run
// can find the resource and adopt it instead of creating a duplicate: Twilio has
// no idempotency key.
type Pending struct {
	Address   resource.Address
	Kind      resource.Kind
	ParentSID string
	// Values is what was sent (unique_name, friendly_name, attributes...), used to
	// recognise the resource among those Twilio lists.
	Values resource.Values
	// StartedAt is taken before the request is sent: the resource's date_created
	// will be at or after it (minus clock skew between this machine and Twilio).
	StartedAt time.Time
}

// New returns an empty state with a fresh lineage.
func New() *State {
	return &State{
		Lineage:   NewLineage(),
		Resources: map[string]*Resource{},
		Pending:   map[string]*Pending{},
	}
}

// NewLineage returns a random version 4 UUID.
func NewLineage() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (and panics rather than return short)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Get returns the resource at addr, or nil. Inside File.Update the result may be
// changed in place; elsewhere treat it as read-only.
//
// Inside File.Update, read and change the state only through Get, Put, Remove,
// GetPending, AddPending and RemovePending (and the entries they return): they
// tell the file what changed, so a change costs time proportional to itself.
func (s *State) Get(addr resource.Address) *Resource {
	key := addr.String()
	s.touchResource(key) // the caller may change the result in place
	return s.Resources[key]
}

// Put records r under its address, replacing any resource already there.
func (s *State) Put(r *Resource) {
	if s.Resources == nil {
		s.Resources = map[string]*Resource{}
	}
	key := r.Address.String()
	s.touchResource(key)
	s.Resources[key] = r
}

// Remove forgets the resource at addr and reports whether there was one.
func (s *State) Remove(addr resource.Address) bool {
	key := addr.String()
	s.touchResource(key)
	_, ok := s.Resources[key]
	delete(s.Resources, key)
	return ok
}

// GetPending returns the create in flight for addr, or nil.
func (s *State) GetPending(addr resource.Address) *Pending {
	key := addr.String()
	s.touchPending(key) // the caller may change the result in place
	return s.Pending[key]
}

// AddPending records a create about to be sent. An empty Kind is taken from the
// address.
func (s *State) AddPending(p *Pending) {
	if s.Pending == nil {
		s.Pending = map[string]*Pending{}
	}
	if p.Kind == "" {
		p.Kind = p.Address.Kind
	}
	key := p.Address.String()
	s.touchPending(key)
	s.Pending[key] = p
}

// RemovePending forgets the create in flight for addr and reports whether there
// was one.
func (s *State) RemovePending(addr resource.Address) bool {
	key := addr.String()
	s.touchPending(key)
	_, ok := s.Pending[key]
	delete(s.Pending, key)
	return ok
}

// Addresses returns the addresses of the managed resources, sorted by their
// string form.
func (s *State) Addresses() []resource.Address {
	return sortedAddresses(s.Resources, func(r *Resource) resource.Address { return r.Address })
}

// PendingAddresses returns the addresses of the creates in flight, sorted.
func (s *State) PendingAddresses() []resource.Address {
	return sortedAddresses(s.Pending, func(p *Pending) resource.Address { return p.Address })
}

func sortedAddresses[T any](m map[string]T, addr func(T) resource.Address) []resource.Address {
	keys := sortedKeys(m)
	out := make([]resource.Address, len(keys))
	for i, k := range keys {
		out[i] = addr(m[k])
	}
	return out
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	out := &State{
		Lineage:   s.Lineage,
		Serial:    s.Serial,
		Resources: make(map[string]*Resource, len(s.Resources)),
		Pending:   make(map[string]*Pending, len(s.Pending)),
	}
	for k, r := range s.Resources {
		out.Resources[k] = r.Clone()
	}
	for k, p := range s.Pending {
		out.Pending[k] = p.Clone()
	}
	return out
}

// Clone returns a deep copy of r.
func (r *Resource) Clone() *Resource {
	if r == nil {
		return nil
	}
	c := *r
	c.Applied = r.Applied.Clone()
	return &c
}

// Clone returns a deep copy of p.
func (p *Pending) Clone() *Pending {
	if p == nil {
		return nil
	}
	c := *p
	c.Values = p.Values.Clone()
	return &c
}

// SameContent reports whether s and o record the same resources and pending
// creates under the same lineage. Serial is ignored: it counts changes, it is
// not one.
func (s *State) SameContent(o *State) bool {
	if s.Lineage != o.Lineage || len(s.Resources) != len(o.Resources) || len(s.Pending) != len(o.Pending) {
		return false
	}
	for k, r := range s.Resources {
		if !r.Equal(o.Resources[k]) {
			return false
		}
	}
	for k, p := range s.Pending {
		if !p.Equal(o.Pending[k]) {
			return false
		}
	}
	return true
}

// Equal reports whether r and o record the same thing. Times compare as
// instants, and a nil Values equals an empty one.
func (r *Resource) Equal(o *Resource) bool {
	if r == nil || o == nil {
		return r == o
	}
	return r.Address == o.Address && r.SID == o.SID && r.ParentSID == o.ParentSID &&
		r.CreatedAt.Equal(o.CreatedAt) && valuesEqual(r.Applied, o.Applied)
}

// Equal reports whether p and o record the same create.
func (p *Pending) Equal(o *Pending) bool {
	if p == nil || o == nil {
		return p == o
	}
	return p.Address == o.Address && p.Kind == o.Kind && p.ParentSID == o.ParentSID &&
		p.StartedAt.Equal(o.StartedAt) && valuesEqual(p.Values, o.Values)
}

func valuesEqual(a, b resource.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		if y, ok := b[k]; !ok || x != y {
			return false
		}
	}
	return true
}

// ParentSID is the parent key of d (resource.ChildKey: its parent's SID,
// "IS…/CH…" two levels down): the one its spec names, or the one the state
// records for a parent of the specs ("" when that parent has not
// been created yet, or d has no parent).
func (s *State) ParentSID(d *resource.Desired) string {
	if d.Parent.SID != "" {
		return d.Parent.SID
	}
	if !d.Parent.Address.IsZero() {
		if p := s.Get(d.Parent.Address); p != nil {
			return resource.ChildKey(d.Parent.Address.Kind, p.ParentSID, p.SID)
		}
	}
	return ""
}
