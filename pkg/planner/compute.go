package planner

import (
	"fmt"
	"slices"
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
// by someone else) so that nothing is applied. Options (at most one) ask for
// a destroy or forced replacements (destroy.go).
func Compute(desired []resource.Desired, st *state.State, snap *Snapshot, opts ...Options) (*Plan, error) {
	c := &computer{
		opts:    mergeOptions(opts),
		st:      st,
		snap:    snap,
		byAddr:  map[resource.Address]*Change{},
		owned:   map[string]bool{},
		adopted: map[string]bool{},
		wanted:  map[resource.Address]bool{},
		moved:   map[resource.Address]resource.Address{},
	}
	for _, r := range st.Resources {
		c.owned[r.SID] = true
	}
	if c.opts.Destroy {
		desired = nil // plan deleting everything the state holds
	}
	// Every address the specs want, before any is planned: a renamed spec
	// (a move) takes over only an address no spec wants.
	for i := range desired {
		c.wanted[desired[i].Address] = true
	}
	plan := &Plan{StateLineage: st.Lineage, StateSerial: st.Serial}

	// Parents before children, so a child sees its parent's step.
	for _, kind := range resource.Kinds() {
		for i := range desired {
			d := &desired[i]
			if d.Address.Kind != kind.Kind {
				continue
			}
			ch := c.planDesired(kind, d)
			c.byAddr[d.Address] = ch
			plan.Changes = append(plan.Changes, *ch)
		}
	}
	plan.Changes = append(plan.Changes, c.planRemoved()...)
	c.resolveClaims(plan)
	c.checkLimits(plan)
	c.findSuspects(plan)
	c.warnExisting(plan)
	c.countCascades(plan)
	c.linkDependencies(plan)
	c.destroyOrder(plan)
	c.checkCycles(plan)
	sortChanges(plan.Changes)
	if len(c.errs) > 0 {
		return plan, c.errs
	}
	return plan, nil
}

type computer struct {
	opts    Options
	st      *state.State
	snap    *Snapshot
	byAddr  map[resource.Address]*Change
	owned   map[string]bool // SIDs in state
	adopted map[string]bool // SIDs recognised from pending creates
	wanted  map[resource.Address]bool
	// moved maps the state addresses that renamed specs take over (moves)
	// to their new address; movable indexes the candidates (moveSources).
	moved   map[resource.Address]resource.Address
	movable map[moveKey]moveSource
	claims  []claim
	errs    Errors
	// suspects are unowned resources that look like copies of a create.
	suspects []Suspect
	// secretKeyCache is secretKey's, computed once.
	secretKeyCache []byte
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
		case Adopt, Move:
			// Recognised from an interrupted create, or renamed: known now.
			return resource.ChildKey(d.Parent.Address.Kind, pc.ParentSID, pc.SID), false
		}
	}
	if r := c.st.Resources[d.Parent.Address.String()]; r != nil {
		return resource.ChildKey(d.Parent.Address.Kind, r.ParentSID, r.SID), false
	}
	return "", true
}

func (c *computer) planDesired(kind *resource.KindSchema, spec *resource.Desired) *Change {
	d, pendingRefs := c.resolveRefs(kind, spec)
	d = c.sealSecrets(kind, d)
	ch := &Change{Address: d.Address, Desired: d, PendingRefs: pendingRefs}
	defer c.kindWarnings(kind, ch)
	parentSID, parentPending := c.parent(d)
	if parentPending {
		ch.NewParent = resource.Ref{Address: d.Parent.Address}
	} else if kind.Parent != "" {
		ch.NewParent = resource.Ref{SID: parentSID}
	}
	owner := c.st.Resources[d.Address.String()]
	if kind.Singleton {
		c.planSingleton(kind, d, ch, owner, parentSID, parentPending)
		return ch
	}

	// A create whose answer was lost is recognised first, also when the state
	// still names an older resource that is gone from Twilio: re-creating a
	// resource deleted outside convsync (or moved) records its intent while
	// the old entry is still there.
	ownerPresent := owner != nil && c.snap.Get(kind.Kind, parentKey(kind.Kind, owner.ParentSID), owner.SID) != nil
	// A replace that creates first (CreateFirst) leaves its intent while the
	// old resource is still there: its lost answer is recognised too, and
	// the old one is kept in the state to be deleted (deposed).
	createdFirst := ownerPresent && kind.NaturalKey == "" && kind.Parent != "" && !kind.Singleton
	if (!ownerPresent || createdFirst) && !parentPending {
		if obs := c.matchPending(d.Address, parentSID); obs != nil {
			ch.Action = Adopt
			ch.SID, ch.ParentSID, ch.Observed = obs.SID, obs.ParentSID, obs
			ch.Reason = "an earlier apply created it but stopped before recording it; convsync recognises it (" + obs.SID + ") and records it instead of creating a duplicate"
			if ownerPresent {
				ch.Deposes = owner.SID
				ch.Reason += "; the resource it replaces (" + owner.SID + ") is kept in the state as " + resource.DeposedAddress(d.Address).String() + " and deleted by the next apply"
			}
			// What was sent counts as applied (timers included); any field
			// still different is updated right after adoption.
			ch.Fields = c.diff(kind, d, obs.Values, c.st.Pending[d.Address.String()].Values, pendingRefs)
			if kind.Rules != nil && kind.Rules.Frozen != nil && kind.Rules.Frozen(obs.Values) != "" {
				// It refuses updates: adopt only; the next plan says what,
				// if anything, it still needs.
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
			ch.Reason = fmt.Sprintf("an earlier apply created it (%s) in %s %s but stopped before recording it, and its spec has moved to %s: it is deleted there and created again", obs.SID, lower(kind.Parent), innermost(obs.ParentSID), describeParent(d, parentSID))
			ch.Fields = append([]FieldChange{{Name: lower(kind.Parent), Before: innermost(obs.ParentSID), After: describeParent(d, parentSID), ForcesReplace: true}}, createFields(kind, d.Values, pendingRefs)...)
			c.checkDestroy(d, ch)
			c.checkNaturalKey(d, parentSID, "")
			return ch
		}
	}
	if owner == nil {
		reason := "not yet created"
		if !parentPending && c.st.Pending[d.Address.String()] == nil {
			moved, note := c.planMove(kind, d, ch, parentSID)
			if moved {
				return ch
			}
			if note != "" {
				reason = note
			}
		}
		if !parentPending {
			c.checkNaturalKey(d, parentSID, "")
		}
		ch.Action = Create
		ch.Reason = reason
		ch.Fields = createFields(kind, d.Values, pendingRefs)
		return ch
	}

	ch.SID, ch.ParentSID = owner.SID, owner.ParentSID
	if kind.Parent != "" && (parentPending || owner.ParentSID != parentSID) {
		ch.Action = Replace
		ch.Observed = c.snap.Get(kind.Kind, owner.ParentSID, owner.SID)
		if pc := c.byAddr[d.Parent.Address]; pc != nil && pc.Action == Replace {
			ch.Reason = fmt.Sprintf("its %s %s is replaced, which deletes it", lower(kind.Parent), d.Parent.Address)
		} else {
			ch.Reason = fmt.Sprintf("it moves from %s %s to %s; a %s cannot change %s, so it is deleted and created again", lower(kind.Parent), innermost(owner.ParentSID), describeParent(d, parentSID), lower(kind.Kind), lower(kind.Parent))
		}
		ch.Fields = append([]FieldChange{{Name: lower(kind.Parent), Before: innermost(owner.ParentSID), After: describeParent(d, parentSID), ForcesReplace: true}}, createFields(kind, d.Values, pendingRefs)...)
		if ch.Observed == nil {
			// Gone already: nothing to delete.
			ch.Action = Create
			ch.SID = ""
			ch.Reason = "deleted outside convsync (was " + owner.SID + "), and it moves to " + describeParent(d, parentSID)
			ch.Fields = createFields(kind, d.Values, pendingRefs)
			return ch
		}
		c.checkDestroy(d, ch)
		c.checkNaturalKey(d, parentSID, owner.SID)
		return ch
	}

	obs := c.snap.Get(kind.Kind, parentKey(kind.Kind, owner.ParentSID), owner.SID)
	if obs == nil {
		ch.Action = Create
		ch.SID = ""
		ch.Reason = "deleted outside convsync: " + owner.SID + " is no longer in Twilio, so it is created again"
		if kind.GoneNote != "" {
			ch.Reason += "; " + kind.GoneNote
		}
		ch.Fields = createFields(kind, d.Values, pendingRefs)
		c.checkNaturalKey(d, parentSID, "")
		return ch
	}
	ch.Observed = obs
	ch.Fields = c.diff(kind, d, obs.Values, owner.Applied, pendingRefs)
	if kind.Rules != nil && kind.Rules.Finished != nil && kind.Rules.Finished(d.Values, obs.Values) {
		// Finished, as the spec asked (a conversation closed by its own
		// timer): a replacement for a later edit would lose its history.
		ch.Fields = nil
	}
	if len(ch.Fields) == 0 && !c.opts.forces(d.Address) {
		ch.Action = NoOp
		return ch
	}
	var forced []string
	for _, f := range ch.Fields {
		if f.ForcesReplace {
			forced = append(forced, f.Name)
		}
	}
	frozen := ""
	if kind.Rules != nil && kind.Rules.Frozen != nil {
		frozen = kind.Rules.Frozen(obs.Values)
	}
	if kind.Rules != nil && kind.Rules.Reshapes != nil && frozen == "" {
		frozen = kind.Rules.Reshapes(d.Values, obs.Values)
	}
	switch {
	case len(forced) > 0:
		ch.Action = Replace
		ch.Reason = fmt.Sprintf("%s cannot be changed in place", strings.Join(forced, ", "))
	case frozen != "":
		ch.Action = Replace
		ch.Reason = frozen
	case len(ch.Fields) > 0:
		ch.Action = Update
		ch.Reason = "changed: " + fieldNames(ch.Fields)
	}
	c.opts.forceReplace(ch)
	if ch.Action == Replace {
		c.checkDestroy(d, ch)
		// Without a natural key nothing stops the new resource from
		// existing beside the old one: create it first, so that whatever
		// refers to the old one can move over before it is deleted.
		ch.CreateFirst = kind.NaturalKey == "" && kind.Parent != "" && !parentPending && owner.ParentSID == parentSID
	}
	// A replace deletes first, so its own natural key is free again either way.
	c.checkNaturalKey(d, parentSID, owner.SID)
	return ch
}

// planSingleton plans a kind that exists with its parent: never created or
// deleted, only read and updated. A new or replaced parent gets every field
// the spec manages written once it exists.
func (c *computer) planSingleton(kind *resource.KindSchema, d *resource.Desired, ch *Change, owner *state.Resource, parentSID string, parentPending bool) {
	if parentPending {
		ch.Action = Update
		ch.Reason = fmt.Sprintf("its %s %s is new or replaced: its settings are written once it exists", lower(kind.Parent), d.Parent.Address)
		ch.Fields = createFields(kind, d.Values, ch.PendingRefs)
		return
	}
	ch.SID, ch.ParentSID = resource.SingletonID(kind.Kind, parentSID), parentSID
	obs := c.snap.Get(kind.Kind, parentSID, ch.SID)
	if obs == nil {
		// Not read (its parent is gone, or the read failed): write it all.
		ch.Action = Update
		ch.Reason = "not read from Twilio: every field the spec manages is written"
		ch.Fields = createFields(kind, d.Values, ch.PendingRefs)
		return
	}
	ch.Observed = obs
	var applied resource.Values
	if owner != nil {
		applied = owner.Applied
	}
	ch.Fields = c.diff(kind, d, obs.Values, applied, ch.PendingRefs)
	if len(ch.Fields) == 0 {
		ch.Action = NoOp
		return
	}
	ch.Action = Update
	ch.Reason = "changed: " + fieldNames(ch.Fields)
}

// resolveRefs returns d with every reference to a resource of the specs
// turned into its SID where that is known now; the others (the target is
// created or replaced by this plan) are returned by field, to be filled in
// by the applier once the target exists.
func (c *computer) resolveRefs(kind *resource.KindSchema, d *resource.Desired) (*resource.Desired, map[string]resource.Address) {
	if len(d.Refs) == 0 {
		return d, nil
	}
	out := *d
	out.Values = d.Values.Clone()
	if out.Values == nil {
		out.Values = resource.Values{}
	}
	var pending map[string]resource.Address
	for field, ref := range d.Refs {
		if ref.SID != "" {
			out.Values[field] = ref.SID
			continue
		}
		sid, isPending := c.sidOf(ref.Address)
		if isPending {
			if pending == nil {
				pending = map[string]resource.Address{}
			}
			pending[field] = ref.Address
			delete(out.Values, field)
			continue
		}
		out.Values[field] = sid
	}
	return &out, pending
}

// sidOf is the SID a resource of the specs has now, or pending when this
// plan creates or replaces it (the SID is known after apply).
func (c *computer) sidOf(addr resource.Address) (sid string, pending bool) {
	if ch := c.byAddr[addr]; ch != nil {
		switch ch.Action {
		case Create, Replace:
			return "", true
		}
		if ch.SID != "" {
			return ch.SID, false
		}
	}
	if r := c.st.Resources[addr.String()]; r != nil {
		return r.SID, false
	}
	return "", true
}

// diff lists the fields to change, after the kind's own rules, with the
// references still pending as changes to a SID known after apply.
func (c *computer) diff(kind *resource.KindSchema, d *resource.Desired, have, applied resource.Values, pendingRefs map[string]resource.Address) []FieldChange {
	fields := diffFields(kind, d.Values, have, applied)
	if kind.Rules != nil && kind.Rules.Explained != nil {
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = f.Name
		}
		keep := map[string]bool{}
		for _, n := range kind.Rules.Explained(d.Values, have, names) {
			keep[n] = true
		}
		out := fields[:0:0]
		for _, f := range fields {
			if keep[f.Name] {
				out = append(out, f)
			}
		}
		fields = out
	}
	for _, name := range sortedKeys(pendingRefs) {
		f := kind.Field(name)
		fields = append(fields, FieldChange{Name: name, Type: f.Type, Before: have[name], AfterRef: pendingRefs[name], ForcesReplace: f.ForcesReplace})
	}
	return fields
}

func describeParent(d *resource.Desired, parentSID string) string {
	if parentSID != "" {
		return innermost(parentSID)
	}
	return "new " + d.Parent.Address.String() + " (SID known after apply)"
}

// innermost is the parent's own SID in a parent key (CH… of IS…/CH…), as
// plans show a parent.
func innermost(parentKey string) string {
	_, sid := resource.ParentOfKey(parentKey)
	return sid
}

func (c *computer) checkDestroy(d *resource.Desired, ch *Change) {
	if kind := resource.Schema(d.Address.Kind); kind.DeleteWarning != "" {
		ch.Warnings = append(ch.Warnings, kind.DeleteWarning)
	}
	if d.Lifecycle.PreventDestroy {
		c.fail(d.Address, "lifecycle.prevent_destroy is set, but this plan must %s it (%s). Change the spec so that no replacement is needed, or remove prevent_destroy first.", ch.Action, ch.Reason)
	}
}

// claim is a step that needs a natural key (a unique_name, an identity) in a
// parent (create, replace, rename); resolveClaims checks who holds it now.
type claim struct {
	addr      resource.Address
	kind      *resource.KindSchema
	parentSID string
	name      string
	values    resource.Values // the claimant's, to name its key
	self      string          // the claimant's own SID, which may hold the key already
}

// checkNaturalKey records that d's step needs its natural key in parentSID.
func (c *computer) checkNaturalKey(d *resource.Desired, parentSID, self string) {
	kind := resource.Schema(d.Address.Kind)
	name := kind.KeyOf(d.Values)
	if name == "" || parentSID == "" && kind.Parent != "" {
		return
	}
	c.claims = append(c.claims, claim{addr: d.Address, kind: kind, parentSID: parentSID, name: name, values: d.Values, self: self})
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
		key := cl.kind.KeyName(cl.values)
		where := lower(cl.kind.Parent) + " " + cl.parentSID
		if cl.kind.Parent == "" {
			where = "the account"
		}
		for _, o := range c.snap.Under(cl.kind.Kind, cl.parentSID) {
			if o.SID == cl.self || cl.kind.KeyOf(o.Values) != cl.name {
				continue
			}
			if !c.owned[o.SID] && !c.adopted[o.SID] {
				c.fail(cl.addr, "%s %q is already taken in %s by %s, which convsync does not manage. To adopt it, run:\n    convsync import %s %s",
					key, cl.name, where, o.SID, cl.addr, resource.ImportID(cl.kind.Kind, cl.parentSID, o.SID))
				break
			}
			holder := bySID[o.SID]
			if holder != nil && holder.Address != cl.addr && releasesName(holder, key) {
				if me := byAddr[cl.addr]; me != nil {
					me.AfterFree = append(me.AfterFree, holder.Address)
				}
				break
			}
			who := ownerOf[o.SID]
			if holder != nil {
				who = holder.Address
			}
			c.fail(cl.addr, "%s %q is held in %s by %s (%s), which keeps it. Give one of them another %s, or remove %s's spec first", key, cl.name, where, who, o.SID, key, who)
			break
		}
	}
}

// releasesName reports whether a step frees its resource's natural key:
// it deletes the resource, or renames it.
func releasesName(ch *Change, key string) bool {
	if ch.Action.Destroys() {
		return true
	}
	if ch.Action == Update || ch.Action == Adopt {
		for _, f := range ch.Fields {
			if slices.Contains(strings.Split(key, " / "), f.Name) {
				return true
			}
		}
	}
	return false
}

// matchPending finds, in the snapshot, the resource an interrupted create of
// addr left behind (see MatchPending).
func (c *computer) matchPending(addr resource.Address, parentSID string) *resource.Observed {
	p := c.st.Pending[addr.String()]
	if p == nil {
		return nil
	}
	if resource.Schema(addr.Kind).Parent != "" && p.ParentSID != parentSID {
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
	if p == nil || resource.Schema(addr.Kind).Parent == "" || p.ParentSID == "" || p.ParentSID == parentSID {
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

// sameReadable reports whether every readable field that was sent has the
// same value in Twilio, and every field that was not sent shows Twilio's
// unset value (FieldSchema.Unset, where known): a resource with a
// unique_name or attributes the create did not send was made by another
// create. The kind's volatile fields are left out: Twilio moves them.
func sameReadable(kind *resource.KindSchema, sent, have resource.Values) bool {
	for _, f := range kind.Fields {
		if !kind.Recognisable(&f) {
			continue
		}
		v, ok := sent[f.Name]
		if !ok {
			if h := have[f.Name]; f.UnsetKnown && h != "" && !f.Equal(f.Unset, h) {
				return false
			}
			continue
		}
		if !f.Equal(v, have[f.Name]) {
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
		if _, ok := c.moved[r.Address]; ok {
			continue // a renamed spec's move takes it over
		}
		ch := Change{Address: r.Address, SID: r.SID, ParentSID: r.ParentSID}
		if resource.Schema(r.Address.Kind).Singleton {
			ch.Action = Forget
			holder := "the " + lower(resource.Schema(r.Address.Kind).Parent)
			if resource.Schema(r.Address.Kind).Parent == "" {
				holder = "the account"
			}
			ch.Reason = c.removedWhy() + ": convsync stops managing it; Twilio keeps its settings as they are (they exist as long as " + holder + " does and cannot be deleted)"
			c.byAddr[r.Address] = &ch
			out = append(out, ch)
			continue
		}
		obs := c.snap.Get(r.Address.Kind, parentKey(r.Address.Kind, r.ParentSID), r.SID)
		if resource.IsDeposed(r.Address) {
			// The old resource of a replace that created its successor
			// first; an interrupted apply had not deleted it yet.
			if obs == nil {
				ch.Action = Forget
				ch.Reason = "the resource an earlier replace superseded is already gone from Twilio: only the state entry is removed"
			} else {
				ch.Action = Delete
				ch.Observed = obs
				ch.Reason = "an earlier replace created its successor, then stopped before deleting it"
				ch.Fields = deleteFields(resource.Schema(r.Address.Kind), obs.Values)
			}
			c.byAddr[r.Address] = &ch
			out = append(out, ch)
			continue
		}
		if obs == nil {
			ch.Action = Forget
			ch.Reason = c.removedWhy() + ", and already gone from Twilio: only the state entry is removed"
			if note := resource.Schema(r.Address.Kind).GoneNote; note != "" {
				ch.Reason += "; " + note
			}
			if p := c.st.Pending[addr]; p != nil {
				if re := c.matchPending(r.Address, p.ParentSID); re != nil {
					// An interrupted re-create left a resource behind.
					ch.Action = Delete
					ch.SID, ch.ParentSID, ch.Observed = re.SID, re.ParentSID, re
					ch.Reason = c.removedWhy() + "; an interrupted apply had created it again (" + re.SID + ")"
					ch.Fields = deleteFields(resource.Schema(r.Address.Kind), re.Values)
				}
			}
		} else {
			ch.Action = Delete
			ch.Observed = obs
			ch.Reason = c.removedWhy()
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

// checkLimits fails a plan after which a parent would hold more resources
// of a kind than Twilio allows (resource.KindSchema.Limits: five webhooks
// per conversation), counting the ones Twilio holds there that convsync
// does not manage, before any request is sent. (The spec loader checks the
// specs alone.)
func (c *computer) checkLimits(plan *Plan) {
	type bucket struct {
		kind   resource.Kind
		parent string
		limit  int
	}
	wanted := map[bucket][]resource.Address{}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		kind := resource.Schema(ch.Address.Kind)
		if ch.Desired == nil || len(kind.Limits) == 0 || ch.NewParent.SID == "" {
			continue // a new parent holds nothing else
		}
		for l := range kind.Limits {
			if kind.Limits[l].Applies(ch.Desired.Values) {
				b := bucket{kind.Kind, ch.NewParent.SID, l}
				wanted[b] = append(wanted[b], ch.Address)
			}
		}
	}
	buckets := make([]bucket, 0, len(wanted))
	for b := range wanted {
		buckets = append(buckets, b)
	}
	sort.Slice(buckets, func(i, j int) bool {
		if buckets[i].parent != buckets[j].parent {
			return buckets[i].parent < buckets[j].parent
		}
		return buckets[i].kind < buckets[j].kind || buckets[i].kind == buckets[j].kind && buckets[i].limit < buckets[j].limit
	})
	for _, b := range buckets {
		kind := resource.Schema(b.kind)
		l := kind.Limits[b.limit]
		var unmanaged []string
		for _, o := range c.snap.Under(b.kind, b.parent) {
			if !c.owned[o.SID] && !c.adopted[o.SID] && l.Applies(o.Values) {
				unmanaged = append(unmanaged, o.SID)
			}
		}
		addrs := wanted[b]
		if len(addrs)+len(unmanaged) <= l.Max {
			continue
		}
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].String() < addrs[j].String() })
		code := ""
		if l.Code != "" {
			code = " (error " + l.Code + ")"
		}
		msg := fmt.Sprintf("%s %s would hold %d %s, more than Twilio's limit of %d%s: %d in these specs", lower(kind.Parent), b.parent, len(addrs)+len(unmanaged), l.What, l.Max, code, len(addrs))
		if len(unmanaged) > 0 {
			msg += fmt.Sprintf(" and %d that convsync does not manage (%s); delete those in Twilio or adopt them with convsync import", len(unmanaged), strings.Join(unmanaged, ", "))
		}
		c.fail(addrs[len(addrs)-1], "%s", msg)
	}
	for _, b := range buckets {
		c.orderUnderLimit(plan, b.kind, b.parent, &resource.Schema(b.kind).Limits[b.limit])
	}
}

// orderUnderLimit keeps a parent under a limit while the plan runs, not only
// after it: the applier runs steps in parallel, so a create could reach
// Twilio before the delete that makes room for it (a sixth webhook for a
// moment: 50361). When every create before any delete would pass the limit,
// the creates in the parent wait for the deletes there (AfterFree), and a
// replace there deletes first.
func (c *computer) orderUnderLimit(plan *Plan, kind resource.Kind, parent string, l *resource.Limit) {
	held := 0
	for _, o := range c.snap.Under(kind, parent) {
		if l.Applies(o.Values) {
			held++
		}
	}
	var creates []*Change
	var frees []resource.Address
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if ch.Address.Kind != kind {
			continue
		}
		if (ch.Action == Create || ch.Action == Replace) && ch.Desired != nil && ch.NewParent.SID == parent && l.Applies(ch.Desired.Values) {
			creates = append(creates, ch)
		}
		if ch.Action.Destroys() && ch.ParentSID == parent && ch.Observed != nil && l.Applies(ch.Observed.Values) {
			frees = append(frees, ch.Address)
		}
	}
	if held+len(creates) <= l.Max || len(frees) == 0 {
		return
	}
	for _, ch := range creates {
		if ch.CreateFirst {
			ch.CreateFirst = false
			ch.Reason += fmt.Sprintf("; deleted before it is created again, to stay within Twilio's limit of %d %s", l.Max, l.What)
		}
		for _, f := range frees {
			if f != ch.Address && !slices.Contains(ch.AfterFree, f) {
				ch.AfterFree = append(ch.AfterFree, f)
			}
		}
	}
}

// warnExisting warns on each create of a kind without a natural key (a
// service, a role) when its parent already holds a resource that convsync
// does not manage with every readable field the spec sets (a service of
// the same friendly_name): after a lost state file, that is most likely
// the one the spec describes, and creating would make a second. Twilio
// lets two such resources exist side by side, so this never fails the
// plan; the warning names the import command that adopts it. (A kind with
// a natural key fails the plan instead: see resolveClaims.)
func (c *computer) warnExisting(plan *Plan) {
	skip := map[string]bool{}
	for _, ch := range plan.Changes {
		if ch.SID != "" {
			skip[ch.SID] = true
		}
	}
	for _, s := range plan.Suspects {
		skip[s.SID] = true // reported already, as a copy of a create of ours
	}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		kind := resource.Schema(ch.Address.Kind)
		if ch.Action != Create || ch.Desired == nil || kind.NaturalKey != "" || kind.Singleton || !ch.NewParent.Address.IsZero() {
			continue
		}
		parentSID := ch.NewParent.SID
		if kind.Parent != "" && parentSID == "" {
			continue
		}
		for _, o := range c.snap.Under(kind.Kind, parentKey(kind.Kind, parentSID)) {
			if c.owned[o.SID] || c.adopted[o.SID] || skip[o.SID] || !sameSetFields(kind, ch.Desired.Values, o.Values) {
				continue
			}
			what := "with the same " + fieldNames(createFields(kind, readable(kind, ch.Desired.Values), nil))
			if name, ok := ch.Desired.Values[resource.FieldFriendlyName]; ok {
				what = "named " + quote(name)
			}
			where := ""
			if kind.Parent != "" {
				where = " in " + lower(kind.Parent) + " " + innermost(parentSID)
			}
			ch.Warnings = append(ch.Warnings, fmt.Sprintf("a %s %s already exists (%s)%s that convsync does not manage; if it is this one, adopt it with convsync import %s %s",
				strings.ReplaceAll(kind.Prefix(), "_", " "), what, o.SID, where, ch.Address, resource.ImportID(kind.Kind, parentSID, o.SID)))
		}
	}
}

// readable returns the values of want that Twilio shows (not write-only,
// not secret).
func readable(kind *resource.KindSchema, want resource.Values) resource.Values {
	out := resource.Values{}
	for _, f := range kind.Fields {
		if v, ok := want[f.Name]; ok && !f.WriteOnly && !f.Secret {
			out[f.Name] = v
		}
	}
	return out
}

// sameSetFields reports whether have shows every readable field of want
// with the same meaning (and want sets at least one).
func sameSetFields(kind *resource.KindSchema, want, have resource.Values) bool {
	r := readable(kind, want)
	if len(r) == 0 {
		return false
	}
	for name, v := range r {
		if !kind.Field(name).Equal(v, have[name]) {
			return false
		}
	}
	return true
}

// countCascades records, on each step that deletes a parent, how many of
// its descendants go with it without a step of their own (convsync does not
// manage them), of every kind, and says so in a warning: deleting a service
// deletes every role, user and conversation in it. Plan.Destroys counts
// them, so the daemon's deletion guard sees a service replacement for what
// it is.
func (c *computer) countCascades(plan *Plan) {
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if !ch.Action.Destroys() || ch.SID == "" || len(resource.Children(ch.Address.Kind)) == 0 {
			continue
		}
		counts := map[resource.Kind]int{}
		known := c.countUnmanaged(ch.Address.Kind, resource.ChildKey(ch.Address.Kind, ch.ParentSID, ch.SID), counts)
		total := 0
		var parts []string
		for _, k := range resource.Kinds() {
			if n := counts[k.Kind]; n > 0 {
				total += n
				parts = append(parts, fmt.Sprintf("%d %s", n, plural(n, lower(k.Kind), k.Plural)))
			}
		}
		ch.Cascade = total
		switch {
		case !known:
			ch.Warnings = append(ch.Warnings, "convsync did not read everything it holds: everything in it is deleted with it")
		case total > 0:
			ch.Warnings = append(ch.Warnings, fmt.Sprintf("it holds %s that convsync does not manage; %s deleted with it", strings.Join(parts, ", "), plural(total, "it is", "they are")))
		}
	}
}

// countUnmanaged adds, per kind, the descendants of parentSID (the parent
// key of a kind resource's children) that convsync does not own; known is
// false when some kind in it was neither listed nor counted before. Below
// the children, only what was listed is counted: a service's deletion does
// not read the participants of every conversation in it (a request per
// conversation), and their count is not what makes that plan dangerous.
func (c *computer) countUnmanaged(kind resource.Kind, parentSID string, counts map[resource.Kind]int) (known bool) {
	return c.countDescendants(kind, parentSID, counts, true)
}

func (c *computer) countDescendants(kind resource.Kind, parentSID string, counts map[resource.Kind]int, direct bool) (known bool) {
	known = true
	for _, k := range resource.Children(kind) {
		if k.Singleton {
			continue // exists with its parent; nothing of the user's is lost
		}
		switch {
		case c.snap.Listed(k.Kind, parentSID):
			for _, o := range c.snap.Under(k.Kind, parentSID) {
				if !c.owned[o.SID] && !c.adopted[o.SID] {
					counts[k.Kind]++
				}
				if len(resource.Children(k.Kind)) > 0 && !c.countDescendants(k.Kind, resource.ChildKey(k.Kind, parentSID, o.SID), counts, false) {
					known = false
				}
			}
		case !direct:
			// Not read: not counted (see countUnmanaged).
		default:
			size, ok := c.snap.Size(k.Kind, parentSID)
			if !ok {
				known = false
				continue
			}
			owned := 0
			for _, r := range c.st.Resources {
				if r.Address.Kind == k.Kind && r.ParentSID == parentSID {
					owned++
				}
			}
			counts[k.Kind] += max(0, size-owned)
			if len(resource.Children(k.Kind)) > 0 && !c.snap.Listed(k.Kind, parentSID) {
				known = false // its children were not read
			}
		}
	}
	return known
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
		// A reference to a resource this plan creates waits for it.
		for _, field := range sortedKeys(ch.PendingRefs) {
			if dep := ch.PendingRefs[field]; !slices.Contains(ch.DependsOn, dep) {
				ch.DependsOn = append(ch.DependsOn, dep)
			}
		}
	}
	c.linkReleases(plan)
	linkImplicitCreates(plan)
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
		parent := bySID[ParentOf(ch)]
		if parent == nil || parent == ch {
			continue
		}
		if rules := resource.Schema(parent.Address.Kind).Rules; rules != nil && rules.DeleteTakesChildren {
			// Its parent's delete deletes it: no request of its own,
			// after that delete.
			ch.GoesWithParent = true
			if ch.Action == Delete {
				ch.Reason += "; it goes with " + parent.Address.String() + ", whose delete deletes it (no request of its own)"
			}
			if !slices.Contains(ch.DependsOn, parent.Address) {
				ch.DependsOn = append(ch.DependsOn, parent.Address)
			}
			continue
		}
		parent.DependsOn = append(parent.DependsOn, ch.Address)
	}
}

// linkImplicitCreates makes a create that would make another resource
// implicitly (resource.KindRules.CreatesImplicitly: a chat participant's
// identity makes a User) wait for the create of that resource's own spec,
// so that the spec's create does not find its key taken. Matching by the
// key alone may order steps of different services too; that only costs
// parallelism.
func linkImplicitCreates(plan *Plan) {
	creates := map[resource.Kind]map[string]resource.Address{}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		kind := resource.Schema(ch.Address.Kind)
		if ch.Desired == nil || !kind.HasNaturalKey() || (ch.Action != Create && ch.Action != Replace) {
			continue
		}
		if creates[kind.Kind] == nil {
			creates[kind.Kind] = map[string]resource.Address{}
		}
		creates[kind.Kind][kind.KeyOf(ch.Desired.Values)] = ch.Address
	}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		rules := resource.Schema(ch.Address.Kind).Rules
		if ch.Desired == nil || rules == nil || rules.CreatesImplicitly == nil || (ch.Action != Create && ch.Action != Replace) {
			continue
		}
		ic := rules.CreatesImplicitly
		if dep, ok := creates[ic.Kind][ch.Desired.Values[ic.Field]]; ok && ch.Desired.Values[ic.Field] != "" && !slices.Contains(ch.DependsOn, dep) {
			ch.DependsOn = append(ch.DependsOn, dep)
		}
	}
}

// linkReleases makes the delete of a resource wait for the steps that stop
// referring to it: a user moves to another role, a service configuration
// points at another default role, or the referrer is deleted itself, before
// the role they pointed at is deleted. Whether Twilio refuses to delete a
// role still in use is not known (../shared/twilio-kinds.md §3.4); this
// order is safe either way.
func (c *computer) linkReleases(plan *Plan) {
	destroyed := map[string]*Change{}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if ch.Action.Destroys() && ch.SID != "" {
			destroyed[ch.SID] = ch
		}
	}
	if len(destroyed) == 0 {
		return
	}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if ch.Observed == nil {
			continue
		}
		for _, f := range resource.Schema(ch.Address.Kind).References() {
			target := destroyed[ch.Observed.Values[f.Name]]
			if target == nil || target == ch {
				continue
			}
			if target.Action == Replace && !target.CreateFirst && repoints(ch, f.Name, target.Address) {
				// A replace that deletes first (a service): the referrer
				// can only point at the new one once it exists, after the
				// delete; it is re-pointed right after the create.
				continue
			}
			if ch.Action.Destroys() || changesField(ch, f.Name) {
				if !slices.Contains(target.AfterRelease, ch.Address) {
					target.AfterRelease = append(target.AfterRelease, ch.Address)
				}
			}
		}
	}
}

// repoints reports whether ch sets field name to the SID of the resource
// at target, known after apply.
func repoints(ch *Change, name string, target resource.Address) bool {
	for _, f := range ch.Fields {
		if f.Name == name && f.AfterRef == target {
			return true
		}
	}
	return false
}

func changesField(ch *Change, name string) bool {
	for _, f := range ch.Fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

func sortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		if ri, rj := resource.Rank(cs[i].Address.Kind), resource.Rank(cs[j].Address.Kind); ri != rj {
			return ri < rj
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
		if known && f.Equal(w, h) || !known && f.Type == resource.TypeSet && w == resource.EncodeSet(nil) && !f.WriteOnly {
			// Twilio shows an empty set as null.
			continue
		}
		out = append(out, FieldChange{Name: f.Name, Type: f.Type, Before: h, After: w, ForcesReplace: f.ForcesReplace, WriteOnly: f.WriteOnly, Secret: f.Secret})
	}
	return out
}

// createFields lists every field a create (or a singleton's first write)
// sends, references still pending included.
func createFields(kind *resource.KindSchema, want resource.Values, pendingRefs map[string]resource.Address) []FieldChange {
	var out []FieldChange
	for _, f := range kind.Fields {
		if w, ok := want[f.Name]; ok {
			out = append(out, FieldChange{Name: f.Name, Type: f.Type, After: w, WriteOnly: f.WriteOnly, Secret: f.Secret})
		} else if ref, ok := pendingRefs[f.Name]; ok {
			out = append(out, FieldChange{Name: f.Name, Type: f.Type, AfterRef: ref})
		}
	}
	return out
}

func deleteFields(kind *resource.KindSchema, have resource.Values) []FieldChange {
	var out []FieldChange
	for _, f := range kind.Fields {
		if h, ok := have[f.Name]; ok && h != "" {
			out = append(out, FieldChange{Name: f.Name, Type: f.Type, Before: h, Secret: f.Secret})
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
