package planner

import (
	"github.com/convsync/convsync/pkg/resource"
)

// Action is what a step does to one resource.
type Action string

const (
	NoOp    Action = "no-op"
	Create  Action = "create"
	Update  Action = "update"
	Replace Action = "replace" // delete, then create
	Delete  Action = "delete"
	// Adopt records in state a resource that already exists in Twilio and is
	// recognised as ours (a create whose answer was lost); no API write.
	Adopt Action = "adopt"
	// Forget drops from state a resource that is no longer in the specs and is
	// already gone from Twilio; no API write.
	Forget Action = "forget"
	// Move re-keys a resource's state entry from Change.MovedFrom to the
	// step's address (the spec was renamed, and the natural key shows it is
	// the same resource); no API write, then an update of whatever fields
	// differ. The resource keeps its SID.
	Move Action = "move"
)

// Symbol is the glyph shown before a step in the human plan. A move has
// none, as in Terraform (a move that also updates fields shows "~").
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Update:
		return "~"
	case Replace:
		return "-/+"
	case Delete:
		return "-"
	case Adopt:
		return "<="
	case Forget:
		return "x"
	}
	return " "
}

// Destroys reports whether the action deletes something in Twilio.
func (a Action) Destroys() bool { return a == Delete || a == Replace }

// FieldChange is one field's before → after. Before is empty when the field
// did not exist (create) and After is empty when the resource goes away.
//
// Before and After are canonical text of the field's Type (see
// resource.FieldType); the JSON plan shows them as real JSON values.
type FieldChange struct {
	Name          string             `json:"name"`
	Type          resource.FieldType `json:"type,omitempty"`
	Before        string             `json:"before,omitempty"`
	After         string             `json:"after,omitempty"`
	ForcesReplace bool               `json:"forces_replace,omitempty"`
	// WriteOnly marks a field Twilio never returns: Before is what convsync
	// last applied, not what Twilio holds.
	WriteOnly bool `json:"write_only,omitempty"`
	// Secret values are never shown.
	Secret bool `json:"secret,omitempty"`
	// AfterRef, when set, is the resource whose SID the field takes: this
	// plan creates or replaces it, so the SID is known after apply.
	AfterRef resource.Address `json:"after_ref,omitzero"`
}

// Change is one step of a plan.
type Change struct {
	Address resource.Address
	Action  Action
	// Reason explains the step to a person: why this action and not another.
	Reason string
	// Warnings are shown prominently (a service replacement deletes everything in it).
	Warnings []string
	Fields   []FieldChange

	// SID is the resource's current SID in Twilio ("" when it does not exist).
	SID string
	// ParentSID is the current parent service SID (for deletes and updates).
	ParentSID string
	// NewParent is where a create puts the resource: a SID known now, or the
	// address of a service this same plan creates or replaces.
	NewParent resource.Ref
	// Desired is the spec's resource for create, update, replace and adopt.
	Desired *resource.Desired
	// Observed is Twilio's current view of the resource, when it exists.
	Observed *resource.Observed
	// DependsOn lists steps (by address) that must finish first.
	DependsOn []resource.Address
	// AfterFree lists steps that free the natural key this step needs (a
	// delete, a replace's delete, or a rename): it waits for them.
	AfterFree []resource.Address
	// AfterRelease lists steps that stop referring to this resource (a user
	// moving to another role): this step's delete waits for them.
	AfterRelease []resource.Address
	// PendingRefs holds, by field, the references to resources this plan
	// creates or replaces: the applier fills in their SIDs once they exist.
	PendingRefs map[string]resource.Address
	// CreateFirst: this replace creates the new resource before deleting the
	// old one (a kind without a natural key), so that what refers to the old
	// one can move over first.
	CreateFirst bool
	// GoesWithParent: the resource is deleted by its parent's delete in
	// this plan (resource.KindRules.DeleteTakesChildren), so this step's
	// delete sends no request of its own; it waits for the parent's delete
	// and then drops the state entry.
	GoesWithParent bool
	// Deposes, on an adoption, is the SID of the resource the adopted one
	// replaced (a replace that created first was interrupted): it is kept in
	// the state under resource.DeposedAddress, to be deleted.
	Deposes string
	// MovedFrom, on a move, is the address the state records the resource
	// under now: the applier re-keys that entry to Address.
	MovedFrom resource.Address `json:",omitzero"`
	// Cascade counts the children deleted with this resource that have no
	// step of their own (a service's unmanaged conversations).
	Cascade int
}

// Plan is the result of planning: the steps and what they were computed from.
type Plan struct {
	// StateLineage and StateSerial identify the state the plan was computed
	// from; applying the plan after the state moved on is refused as stale.
	StateLineage string
	StateSerial  uint64
	// SpecHash identifies the spec set the plan was computed from.
	SpecHash string
	Changes  []Change
	// Suspects are resources nobody manages that look like copies left by a
	// create whose answer came too late; reported, never acted on.
	Suspects []Suspect
}

// Summary counts steps by action.
type Summary struct {
	Create  int `json:"create"`
	Update  int `json:"update"`
	Replace int `json:"replace"`
	Delete  int `json:"delete"`
	Adopt   int `json:"adopt,omitempty"`
	Forget  int `json:"forget,omitempty"`
	Move    int `json:"move,omitempty"`
}

// Summary counts the plan's steps by action. A move that also changes
// fields counts as an update too: the update is an API call.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			s.Create++
		case Update:
			s.Update++
		case Replace:
			s.Replace++
		case Delete:
			s.Delete++
		case Adopt:
			s.Adopt++
		case Forget:
			s.Forget++
		case Move:
			s.Move++
			if len(c.Fields) > 0 {
				s.Update++
			}
		}
	}
	return s
}

// HasChanges reports whether applying the plan would change anything,
// in Twilio or in the state file.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action != NoOp {
			return true
		}
	}
	return false
}

// Destroys counts the resources the plan deletes in Twilio: one per delete
// or replace step, plus the children that go with a deleted parent.
func (p *Plan) Destroys() int {
	n := 0
	for _, c := range p.Changes {
		if c.Action.Destroys() {
			n += 1 + c.Cascade
		}
	}
	return n
}

// ParentOf is the SID of the parent a step's resource lives in now: the
// innermost SID of its parent key ("" for top-level kinds).
func ParentOf(ch *Change) string { return innermost(ch.ParentSID) }
