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

// PendingWindow is how long after a recorded create intent Twilio may have
// carried the create out: the longest a create request can take (the
// default create timeout is 10 minutes; an hour leaves room for longer
// ones) plus clock skew. A resource created later was made by someone else.
const PendingWindow = time.Hour + PendingClockSkew

// Error is one reason a plan cannot be made.
type Error struct {
	Address resource.Address
	Message string
	// Others are the other resources the problem touches (the rest of a
	// cycle of steps): the daemon holds them back with Address.
	Others []resource.Address
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
	c.resolveClaims(plan)
	c.findSuspects(plan)
	c.countCascades(plan)
	c.linkDependencies(plan)
	c.checkCycles(plan)
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
	claims  []claim
	errs    Errors
	// suspects are unowned resources that look like copies of a create.
	suspects []Suspect
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
	if pc := c.byAddr[d.Parent.Address]; pc != nil {
		switch pc.Action {
		case Create, Replace:
			return "", true
		case Adopt:
			return pc.SID, false // recognised from an interrupted create: known now
		}
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
			ch.Fields = dropTimerDrivenState(d.Values, obs.Values, diffFields(kind, d.Values, obs.Values, c.st.Pending[d.Address.String()].Values))
			if obs.Values[resource.FieldState] == resource.StateClosed {
				// Closed refuses updates: adopt only; the next plan says
				// what, if anything, a closed conversation still needs.
				ch.Fields = nil
			}
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
	if closedByOwnTimer(d.Values, obs.Values) {
		// Its spec's timers.closed closed it: it is finished, as the spec
		// asked. Replacing it for a later edit would give it a new SID and
		// lose its history; remove timers.closed to have it replaced.
		ch.Fields = nil
	}
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

// claim is a step that needs a unique_name in a parent (create, replace,
// rename); resolveClaims checks who holds it now.
type claim struct {
	addr      resource.Address
	kind      resource.Kind
	parentSID string
	name      string
	self      string // the claimant's own SID, which may hold the name already
}

// checkUniqueName records that d's step needs its unique_name in parentSID.
func (c *computer) checkUniqueName(d *resource.Desired, parentSID, self string) {
	name, ok := d.Values[resource.FieldUniqueName]
	if !ok || name == "" || parentSID == "" {
		return
	}
	c.claims = append(c.claims, claim{addr: d.Address, kind: d.Address.Kind, parentSID: parentSID, name: name, self: self})
}

// resolveClaims checks every unique_name a step needs against who holds it
// in Twilio. A resource convsync does not own fails the plan (creating would
// fail with 50353) with the import command that would adopt it: adoption is
// an explicit decision. A resource convsync owns must give the name up in
// this plan (deleted, replaced, or renamed), and the claimant waits for that
// step (AfterFree); one that keeps it fails the plan.
func (c *computer) resolveClaims(plan *Plan) {
	bySID := map[string]*Change{}
	byAddr := map[resource.Address]*Change{}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		byAddr[ch.Address] = ch
		if ch.SID != "" {
			bySID[ch.SID] = ch
		}
	}
	ownerOf := map[string]resource.Address{}
	for _, r := range c.st.Resources {
		ownerOf[r.SID] = r.Address
	}
	for _, cl := range c.claims {
		for _, o := range c.snap.Under(cl.kind, cl.parentSID) {
			if o.SID == cl.self || o.Values[resource.FieldUniqueName] != cl.name {
				continue
			}
			if !c.owned[o.SID] && !c.adopted[o.SID] {
				c.fail(cl.addr, "unique_name %q is already taken in service %s by %s, which convsync does not manage. To adopt it, run:\n    convsync import %s %s",
					cl.name, cl.parentSID, o.SID, cl.addr, ImportID(cl.kind, cl.parentSID, o.SID))
				break
			}
			holder := bySID[o.SID]
			if holder != nil && holder.Address != cl.addr && releasesName(holder) {
				if me := byAddr[cl.addr]; me != nil {
					me.AfterFree = append(me.AfterFree, holder.Address)
				}
				break
			}
			who := ownerOf[o.SID]
			if holder != nil {
				who = holder.Address
			}
			c.fail(cl.addr, "unique_name %q is held in service %s by %s (%s), which keeps it. Give one of them another unique_name, or remove %s's spec first", cl.name, cl.parentSID, who, o.SID, who)
			break
		}
	}
}

// releasesName reports whether a step frees its resource's unique_name:
// it deletes the resource, or renames it.
func releasesName(ch *Change) bool {
	if ch.Action.Destroys() {
		return true
	}
	if ch.Action == Update || ch.Action == Adopt {
		for _, f := range ch.Fields {
			if f.Name == resource.FieldUniqueName {
				return true
			}
		}
	}
	return false
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
// candidates: one owned by nobody, created within PendingWindow of the
// moment the intent was recorded (allowing PendingClockSkew before it),
// whose readable fields equal what was sent and whose unsent fields are
// unset. Of several, the one created closest to the intent wins. Twilio has
// no idempotency key; this is how convsync avoids creating a duplicate after
// a lost answer.
func MatchPending(p *state.Pending, candidates []*resource.Observed, taken func(sid string) bool) *resource.Observed {
	kind := resource.Schema(p.Address.Kind)
	var best *resource.Observed
	var bestDistance time.Duration
	for _, o := range candidates {
		if taken(o.SID) {
			continue
		}
		if o.DateCreated.Before(p.StartedAt.Add(-PendingClockSkew)) || o.DateCreated.After(p.StartedAt.Add(PendingWindow)) {
			continue
		}
		if !sameReadable(kind, p.Values, o.Values) {
			continue
		}
		d := o.DateCreated.Sub(p.StartedAt)
		if d < 0 {
			d = -d
		}
		if best == nil || d < bestDistance {
			best, bestDistance = o, d
		}
	}
	return best
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
			if p := c.st.Pending[addr]; p != nil {
				if re := c.matchPending(r.Address, p.ParentSID); re != nil {
					// An interrupted re-create left a resource behind.
					ch.Action = Delete
					ch.SID, ch.ParentSID, ch.Observed = re.SID, re.ParentSID, re
					ch.Reason = "no longer in the specs; an interrupted apply had created it again (" + re.SID + ")"
					ch.Fields = deleteFields(resource.Schema(r.Address.Kind), re.Values)
				}
			}
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

// countCascades records, on each step that deletes a parent, how many of
// its children go with it without a step of their own (convsync does not
// manage them), and says so in a warning: deleting a service deletes every
// conversation in it. Plan.Destroys counts them, so the daemon's deletion
// guard sees a service replacement for what it is.
func (c *computer) countCascades(plan *Plan) {
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if !ch.Action.Destroys() || ch.SID == "" || resource.Schema(ch.Address.Kind).Parent != "" {
			continue
		}
		unmanaged, known := 0, true
		for _, k := range resource.Kinds() {
			if k.Parent != ch.Address.Kind {
				continue
			}
			if c.snap.Listed(k.Kind, ch.SID) {
				for _, o := range c.snap.Under(k.Kind, ch.SID) {
					if !c.owned[o.SID] && !c.adopted[o.SID] {
						unmanaged++
					}
				}
				continue
			}
			if size, ok := c.snap.Sizes()[ch.SID]; ok {
				owned := 0
				for _, r := range c.st.Resources {
					if r.ParentSID == ch.SID {
						owned++
					}
				}
				unmanaged += max(0, size-owned)
				continue
			}
			known = false
		}
		ch.Cascade = unmanaged
		switch {
		case !known:
			ch.Warnings = append(ch.Warnings, "convsync did not read what it holds: everything in it is deleted with it")
		case unmanaged > 0:
			ch.Warnings = append(ch.Warnings, fmt.Sprintf("it holds %d %s that convsync does not manage; %s deleted with it", unmanaged, plural(unmanaged, "conversation", "conversations"), plural(unmanaged, "it is", "they are")))
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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

// closedByOwnTimer reports a conversation that is closed in Twilio while its
// spec does not ask for closed but sets timers.closed: its timer fired.
func closedByOwnTimer(want, have resource.Values) bool {
	_, closedTimer := want[resource.FieldTimersClosed]
	return closedTimer && have[resource.FieldState] == resource.StateClosed && want[resource.FieldState] != resource.StateClosed
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
