package planner

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// PendingClockSkew is how much earlier than a recorded create intent a
// resource's date_created may be and still be recognised as the result of
// that create (Twilio's clock and ours differ).
const PendingClockSkew = 5 * time.Minute

// Error is one reason a plan cannot be made.
type Error struct {
	Address resource.Address
	Message string
}

func (e Error) Error() string { return e.Address.String() + ": " + e.Message }

// Errors is every reason a plan cannot be made.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Compute compares desired (sorted by address, as the spec loader returns
// it), the state and a Twilio snapshot, and returns the plan. It fails with
// Errors when a step would break a rule (prevent_destroy, a unique_name owned
// by someone else) so that nothing is applied.
func Compute(desired []resource.Desired, st *state.State, snap *Snapshot) (*Plan, error) {
	c := &computer{
		st:      st,
		snap:    snap,
		byAddr:  map[resource.Address]*Change{},
		owned:   map[string]bool{},
		adopted: map[string]bool{},
		wanted:  map[resource.Address]bool{},
	}
	for _, r := range st.Resources {
		c.owned[r.SID] = true
	}
	plan := &Plan{StateLineage: st.Lineage, StateSerial: st.Serial}

	// Parents before children, so a child sees its parent's step.
	for _, kind := range resource.Kinds() {
		for i := range desired {
			d := &desired[i]
			if d.Address.Kind != kind.Kind {
				continue
			}
			c.wanted[d.Address] = true
			ch := c.planDesired(kind, d)
			c.byAddr[d.Address] = ch
			plan.Changes = append(plan.Changes, *ch)
		}
	}
	plan.Changes = append(plan.Changes, c.planRemoved()...)
	c.linkDependencies(plan)
	sortChanges(plan.Changes)
	if len(c.errs) > 0 {
		return plan, c.errs
	}
	return plan, nil
}

type computer struct {
	st      *state.State
	snap    *Snapshot
	byAddr  map[resource.Address]*Change
	owned   map[string]bool // SIDs in state
	adopted map[string]bool // SIDs recognised from pending creates
	wanted  map[resource.Address]bool
	errs    Errors
}

func (c *computer) fail(addr resource.Address, format string, args ...any) {
	c.errs = append(c.errs, Error{Address: addr, Message: fmt.Sprintf(format, args...)})
}

// parent resolves where d must live: a SID known now, or (pending) the
// address of a parent that this plan creates or replaces.
func (c *computer) parent(d *resource.Desired) (sid string, pending bool) {
	if d.Parent.SID != "" {
		return d.Parent.SID, false
	}
	if d.Parent.Address.IsZero() {
		return "", false
	}
	if pc := c.byAddr[d.Parent.Address]; pc != nil && (pc.Action == Create || pc.Action == Replace) {
		return "", true
	}
	if r := c.st.Resources[d.Parent.Address.String()]; r != nil {
		return r.SID, false
	}
	return "", true
}

func (c *computer) planDesired(kind *resource.KindSchema, d *resource.Desired) *Change {
	ch := &Change{Address: d.Address, Desired: d}
	parentSID, parentPending := c.parent(d)
	if parentPending {
		ch.NewParent = resource.Ref{Address: d.Parent.Address}
	} else if kind.Parent != "" {
		ch.NewParent = resource.Ref{SID: parentSID}
	}
	owner := c.st.Resources[d.Address.String()]

	// A create whose answer was lost is recognised first, also when the state
	// still names an older resource that is gone from Twilio: re-creating a
	// resource deleted outside convsync (or moved) records its intent while
	// the old entry is still there.
	if (owner == nil || c.snap.Get(kind.Kind, parentKey(kind.Kind, owner.ParentSID), owner.SID) == nil) && !parentPending {
		if obs := c.matchPending(d.Address, parentSID); obs != nil {
			ch.Action = Adopt
			ch.SID, ch.ParentSID, ch.Observed = obs.SID, obs.ParentSID, obs
			ch.Reason = "an earlier apply created it but stopped before recording it; convsync recognises it (" + obs.SID + ") and records it instead of creating a duplicate"
			// What was sent counts as applied (timers included); any field
			// still different is updated right after adoption.
			ch.Fields = diffFields(kind, d.Values, obs.Values, c.st.Pending[d.Address.String()].Values)
			return ch
		}
	}
	if owner == nil || c.snap.Get(kind.Kind, parentKey(kind.Kind, owner.ParentSID), owner.SID) == nil {
		if obs := c.matchMovedPending(d.Address, parentSID); obs != nil {
			// Creating it in the new parent replaces the intent: without this
			// step the resource in the old parent would be forgotten.
			ch.Action = Replace
			ch.SID, ch.ParentSID, ch.Observed = obs.SID, obs.ParentSID, obs
			ch.Reason = fmt.Sprintf("an earlier apply created it (%s) in %s %s but stopped before recording it, and its spec has moved to %s: it is deleted there and created again", obs.SID, lower(kind.Parent), obs.ParentSID, describeParent(d, parentSID))
			ch.Fields = append([]FieldChange{{Name: lower(kind.Parent), Before: obs.ParentSID, After: describeParent(d, parentSID), ForcesReplace: true}}, createFields(kind, d.Values)...)
			c.checkDestroy(d, ch)
			c.checkUniqueName(d, parentSID, "")
			return ch
		}
	}
	if owner == nil {
		if !parentPending {
			c.checkUniqueName(d, parentSID, "")
		}
		ch.Action = Create
		ch.Reason = "not yet created"
		ch.Fields = createFields(kind, d.Values)
		return ch
	}

	ch.SID, ch.ParentSID = owner.SID, owner.ParentSID
	if kind.Parent != "" && (parentPending || owner.ParentSID != parentSID) {
		ch.Action = Replace
		ch.Observed = c.snap.Get(kind.Kind, owner.ParentSID, owner.SID)
		if pc := c.byAddr[d.Parent.Address]; pc != nil && pc.Action == Replace {
			ch.Reason = fmt.Sprintf("its %s %s is replaced, which deletes it", lower(kind.Parent), d.Parent.Address)
		} else {
			ch.Reason = fmt.Sprintf("it moves from %s %s to %s; a %s cannot change %s, so it is deleted and created again", lower(kind.Parent), owner.ParentSID, describeParent(d, parentSID), lower(kind.Kind), lower(kind.Parent))
		}
		ch.Fields = append([]FieldChange{{Name: lower(kind.Parent), Before: owner.ParentSID, After: describeParent(d, parentSID), ForcesReplace: true}}, createFields(kind, d.Values)...)
		if ch.Observed == nil {
			// Gone already: nothing to delete.
			ch.Action = Create
			ch.SID = ""
			ch.Reason = "deleted outside convsync (was " + owner.SID + "), and it moves to " + describeParent(d, parentSID)
			ch.Fields = createFields(kind, d.Values)
			return ch
		}
		c.checkDestroy(d, ch)
		c.checkUniqueName(d, parentSID, owner.SID)
		return ch
	}

	obs := c.snap.Get(kind.Kind, parentKey(kind.Kind, owner.ParentSID), owner.SID)
	if obs == nil {
		ch.Action = Create
		ch.SID = ""
		ch.Reason = "deleted outside convsync: " + owner.SID + " is no longer in Twilio, so it is created again"
		ch.Fields = createFields(kind, d.Values)
		c.checkUniqueName(d, parentSID, "")
		return ch
	}
	ch.Observed = obs
	ch.Fields = dropTimerDrivenState(d.Values, obs.Values, diffFields(kind, d.Values, obs.Values, owner.Applied))
	if len(ch.Fields) == 0 {
		ch.Action = NoOp
		return ch
	}
	var forced []string
	for _, f := range ch.Fields {
		if f.ForcesReplace {
			forced = append(forced, f.Name)
		}
	}
	switch {
	case len(forced) > 0:
		ch.Action = Replace
		ch.Reason = fmt.Sprintf("%s cannot be changed in place", strings.Join(forced, ", "))
	case kind.Kind == resource.KindConversation && obs.Values[resource.FieldState] == resource.StateClosed:
		ch.Action = Replace
		ch.Reason = "it is closed in Twilio, and a closed conversation can never be changed again"
	default:
		ch.Action = Update
		ch.Reason = "changed: " + fieldNames(ch.Fields)
	}
	if ch.Action == Replace {
		c.checkDestroy(d, ch)
	}
	// A replace deletes first, so its own unique_name is free again either way.
	c.checkUniqueName(d, parentSID, owner.SID)
	return ch
}

func describeParent(d *resource.Desired, parentSID string) string {
	if parentSID != "" {
		return parentSID
	}
	return "new " + d.Parent.Address.String() + " (SID known after apply)"
}

func (c *computer) checkDestroy(d *resource.Desired, ch *Change) {
	if kind := resource.Schema(d.Address.Kind); kind.DeleteWarning != "" {
		ch.Warnings = append(ch.Warnings, kind.DeleteWarning)
	}
	if d.Lifecycle.PreventDestroy {
		c.fail(d.Address, "lifecycle.prevent_destroy is set, but this plan must %s it (%s). Change the spec so that no replacement is needed, or remove prevent_destroy first.", ch.Action, ch.Reason)
	}
}

// checkUniqueName fails the plan when d's unique_name is held in Twilio by a
// resource convsync does not own (creating would fail with 50353). Adopting it
// is an explicit decision: the message gives the import command.
func (c *computer) checkUniqueName(d *resource.Desired, parentSID, self string) {
	name, ok := d.Values[resource.FieldUniqueName]
	if !ok || name == "" || parentSID == "" {
		return
	}
	for _, o := range c.snap.Under(d.Address.Kind, parentSID) {
		if o.SID == self || o.Values[resource.FieldUniqueName] != name {
			continue
		}
		if c.owned[o.SID] || c.adopted[o.SID] {
			return // ours: a rename within this plan, which Twilio sorts out in order
		}
		c.fail(d.Address, "unique_name %q is already taken in service %s by %s, which convsync does not manage. To adopt it, run:\n    convsync import %s %s",
			name, parentSID, o.SID, d.Address, ImportID(d.Address.Kind, parentSID, o.SID))
		return
	}
}

// ImportID is the seed's import format: /Services/IS…/Conversations/CH… or /Services/IS….
func ImportID(kind resource.Kind, parentSID, sid string) string {
	if kind == resource.KindService {
		return "/Services/" + sid
	}
	return "/Services/" + parentSID + "/Conversations/" + sid
}

// matchPending finds, in the snapshot, the resource an interrupted create of
// addr left behind (see MatchPending).
func (c *computer) matchPending(addr resource.Address, parentSID string) *resource.Observed {
	p := c.st.Pending[addr.String()]
	if p == nil {
		return nil
	}
	if addr.Kind != resource.KindService && p.ParentSID != parentSID {
		return nil
	}
	o := MatchPending(p, c.snap.Under(addr.Kind, parentKey(addr.Kind, p.ParentSID)), func(sid string) bool {
		return c.owned[sid] || c.adopted[sid]
	})
	if o != nil {
		c.adopted[o.SID] = true
	}
	return o
}

// matchMovedPending finds the resource an interrupted create of addr left in
// a parent other than the one its spec names now.
func (c *computer) matchMovedPending(addr resource.Address, parentSID string) *resource.Observed {
	p := c.st.Pending[addr.String()]
	if p == nil || addr.Kind == resource.KindService || p.ParentSID == "" || p.ParentSID == parentSID {
		return nil
	}
	o := MatchPending(p, c.snap.Under(addr.Kind, p.ParentSID), func(sid string) bool {
		return c.owned[sid] || c.adopted[sid]
	})
	if o != nil {
		c.adopted[o.SID] = true
	}
	return o
}

// MatchPending finds the resource an interrupted create left behind among
// candidates (oldest first): one owned by nobody, created no earlier than the
// intent was recorded (less PendingClockSkew), whose readable fields equal
// what was sent. The oldest match wins. Twilio has no idempotency key; this
// is how convsync avoids creating a duplicate after a lost answer.
func MatchPending(p *state.Pending, candidates []*resource.Observed, taken func(sid string) bool) *resource.Observed {
	kind := resource.Schema(p.Address.Kind)
	for _, o := range candidates {
		if taken(o.SID) {
			continue
		}
		if o.DateCreated.Before(p.StartedAt.Add(-PendingClockSkew)) {
			continue
		}
		if !sameReadable(kind, p.Values, o.Values) {
			continue
		}
		return o
	}
	return nil
}

// unsetValues are what Twilio shows for fields a create did not send, where
// that is known (messaging_service_sid defaults to the account's own).
var unsetValues = map[string]string{
	resource.FieldUniqueName:   "",
	resource.FieldFriendlyName: "",
	resource.FieldAttributes:   "{}",
}

// sameReadable reports whether every readable field that was sent has the
// same value in Twilio, and every field that was not sent shows Twilio's
// unset value: a resource with a unique_name or attributes the create did
// not send was made by another create. State is left out: Twilio (and
// timers) move it.
func sameReadable(kind *resource.KindSchema, sent, have resource.Values) bool {
	for _, f := range kind.Fields {
		if f.WriteOnly || f.Name == resource.FieldState {
			continue
		}
		v, ok := sent[f.Name]
		if !ok {
			unset, known := unsetValues[f.Name]
			if h := have[f.Name]; known && h != "" && !equal(&f, unset, h) {
				return false
			}
			continue
		}
		if !equal(&f, v, have[f.Name]) {
			return false
		}
	}
	return true
}

// planRemoved plans resources that are in the state but not in the specs,
// and pending creates whose spec is gone.
func (c *computer) planRemoved() []Change {
	var out []Change
	for _, addr := range sortedKeys(c.st.Resources) {
		r := c.st.Resources[addr]
		if c.wanted[r.Address] {
			continue
		}
		ch := Change{Address: r.Address, SID: r.SID, ParentSID: r.ParentSID}
		obs := c.snap.Get(r.Address.Kind, parentKey(r.Address.Kind, r.ParentSID), r.SID)
		if obs == nil {
			ch.Action = Forget
			ch.Reason = "no longer in the specs, and already gone from Twilio: only the state entry is removed"
		} else {
			ch.Action = Delete
			ch.Observed = obs
			ch.Reason = "no longer in the specs"
			if w := resource.Schema(r.Address.Kind).DeleteWarning; w != "" {
				ch.Warnings = append(ch.Warnings, w)
			}
			ch.Fields = deleteFields(resource.Schema(r.Address.Kind), obs.Values)
		}
		c.byAddr[r.Address] = &ch
		out = append(out, ch)
	}
	for _, addr := range sortedKeys(c.st.Pending) {
		p := c.st.Pending[addr]
		if c.wanted[p.Address] || c.st.Resources[addr] != nil {
			continue
		}
		ch := Change{Address: p.Address, ParentSID: p.ParentSID}
		if obs := c.matchPending(p.Address, p.ParentSID); obs != nil {
			ch.Action = Delete
			ch.SID, ch.Observed = obs.SID, obs
			ch.Reason = "an interrupted apply created it (" + obs.SID + "), but it is no longer in the specs"
		} else {
			ch.Action = Forget
			ch.Reason = "an interrupted create left a note in the state; nothing was created and the spec is gone"
		}
		out = append(out, ch)
	}
	return out
}

// linkDependencies fills DependsOn: a child's create waits for its parent's
// create; a parent's delete waits for its children's deletes.
func (c *computer) linkDependencies(plan *Plan) {
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if !ch.NewParent.Address.IsZero() {
			ch.DependsOn = append(ch.DependsOn, ch.NewParent.Address)
		}
	}
	// Parent deletes (delete, replace) wait for the children that lived in them.
	bySID := map[string]*Change{}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if ch.SID != "" && ch.Action.Destroys() {
			bySID[ch.SID] = ch
		}
	}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if ch.ParentSID == "" || !(ch.Action.Destroys()) {
			continue
		}
		if parent := bySID[ch.ParentSID]; parent != nil && parent != ch {
			parent.DependsOn = append(parent.DependsOn, ch.Address)
		}
	}
}

func sortChanges(cs []Change) {
	rank := map[resource.Kind]int{}
	for i, k := range resource.Kinds() {
		rank[k.Kind] = i
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if rank[cs[i].Address.Kind] != rank[cs[j].Address.Kind] {
			return rank[cs[i].Address.Kind] < rank[cs[j].Address.Kind]
		}
		return cs[i].Address.Name < cs[j].Address.Name
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func equal(f *resource.FieldSchema, desired, observed string) bool {
	if f.Equal != nil {
		return f.Equal(desired, observed)
	}
	return desired == observed
}

// diffFields lists the managed fields whose desired value differs from
// Twilio's (or, for write-only fields, from what convsync last applied).
func diffFields(kind *resource.KindSchema, want, have, applied resource.Values) []FieldChange {
	var out []FieldChange
	for i := range kind.Fields {
		f := &kind.Fields[i]
		w, managed := want[f.Name]
		if !managed {
			continue
		}
		src := have
		if f.WriteOnly {
			src = applied
		}
		h, known := src[f.Name]
		if known && equal(f, w, h) {
			continue
		}
		out = append(out, FieldChange{Name: f.Name, Before: h, After: w, ForcesReplace: f.ForcesReplace, WriteOnly: f.WriteOnly})
	}
	return out
}

// dropTimerDrivenState removes a state difference that the spec's own
// timers explain: Twilio moves a conversation to inactive and then closed
// when its timers fire, and that is what the spec asked for — fighting it
// would reopen inactive conversations and, worse, replace closed ones.
func dropTimerDrivenState(want, have resource.Values, fields []FieldChange) []FieldChange {
	desired, observed := want[resource.FieldState], have[resource.FieldState]
	_, inactiveTimer := want[resource.FieldTimersInactive]
	_, closedTimer := want[resource.FieldTimersClosed]
	explained := (observed == resource.StateClosed && desired != resource.StateClosed && closedTimer) ||
		(observed == resource.StateInactive && desired == resource.StateActive && inactiveTimer)
	if !explained {
		return fields
	}
	out := fields[:0:0]
	for _, f := range fields {
		if f.Name != resource.FieldState {
			out = append(out, f)
		}
	}
	return out
}

func createFields(kind *resource.KindSchema, want resource.Values) []FieldChange {
	var out []FieldChange
	for _, f := range kind.Fields {
		if w, ok := want[f.Name]; ok {
			out = append(out, FieldChange{Name: f.Name, After: w, WriteOnly: f.WriteOnly})
		}
	}
	return out
}

func deleteFields(kind *resource.KindSchema, have resource.Values) []FieldChange {
	var out []FieldChange
	for _, f := range kind.Fields {
		if h, ok := have[f.Name]; ok && h != "" {
			out = append(out, FieldChange{Name: f.Name, Before: h})
		}
	}
	return out
}

func fieldNames(fs []FieldChange) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}
