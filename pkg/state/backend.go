package state

import "github.com/convsync/convsync/pkg/resource"

// Backend is where a state is kept: a file (*File) or PostgreSQL
// (pgstate.Store). Every backend keeps the same things (lineage, serial,
// owned resources with what was last applied, pending creates) and gives
// Update the same meaning: the change is validated, stored durably before
// Update returns, and bumps the serial by one. The contract test suite in
// statetest runs against each.
type Backend interface {
	// State returns a deep copy of the current state.
	State() *State
	// View calls fn with the current state without copying it; fn only reads
	// and must not keep it.
	View(fn func(*State))
	// Get and GetPending return copies of one entry, or nil.
	Get(addr resource.Address) *Resource
	GetPending(addr resource.Address) *Pending
	Lineage() string
	Serial() uint64
	// Update applies fn (see File.Update for the rules fn follows).
	Update(fn func(*State) error) error
	// Close stores what is left and gives up the lock or lease.
	Close() error
	// Path names the state in messages: the file's path, or the database URL
	// without its password.
	Path() string
	// WrittenBy is the convsync version that last wrote the state ("" if new).
	WrittenBy() string
}

// SizeKeeper is a backend that keeps the sizes seen by the last apply (per
// kind and parent, planner.SizeKey) itself. The file backend leaves them to
// a cache file beside it (engine.SizeHintsPath).
type SizeKeeper interface {
	Sizes() (map[string]int, error)
	SetSizes(map[string]int) error
}

var _ Backend = (*File)(nil)
