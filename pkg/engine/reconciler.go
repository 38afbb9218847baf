package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// Reconciler runs the daemon's passes. Between passes it keeps the Twilio
// snapshot of the last full refresh, patched with what each pass fetched and
// wrote, so that a pass triggered by a spec edit reads only what the edit
// touches; drift made by others is caught by the periodic full resync.
// It also keeps a per-resource backoff after failures.
type Reconciler struct {
	Engine *Engine
	Store  state.Backend
	// ApplyOptions are passed to every apply.
	ApplyOptions apply.Options
	// MaxDestroy refuses a pass that would delete or replace more resources
	// than this (0: none allowed; negative: no limit).
	MaxDestroy int
	// BackoffBase and BackoffMax shape the per-resource retry delay after a
	// failed step (exponential, with jitter, capped). Defaults 5s and 10m.
	BackoffBase, BackoffMax time.Duration
	Now                     func() time.Time
	Rand                    func() float64

	// ConfirmRemovalsAfter is how long a spec must stay gone before its
	// resource is deleted (default 2s; negative: at once).
	ConfirmRemovalsAfter time.Duration

	// BeforeApply, if set, is called with the plan a pass is about to apply
	// (after the deletion guard, with the steps held back removed). If it
	// returns false nothing is applied: the pass returns its plan with
	// Applied nil, and neither Twilio nor the state is written (the daemon's
	// --dry-run). The daemon's progress report also learns the pass's size
	// here.
	BeforeApply func(plan *planner.Plan) bool

	mu        sync.Mutex
	heldBack  map[resource.Address]string // by the last pass's plan problems
	removedAt map[resource.Address]time.Time
	snap      *planner.Snapshot
	last      map[resource.Address]resource.Desired
	backoff   map[resource.Address]*backoffEntry
}

type backoffEntry struct {
	failures int
	next     time.Time
	// terminal: Twilio refused the request itself (a 4xx other than 429);
	// retrying cannot help until the resource's spec changes.
	terminal bool
	desired  resource.Desired
	lastErr  error
}

// PassResult reports one pass.
type PassResult struct {
	Full bool
	// Changed lists the addresses whose specs changed since the last pass.
	Changed []resource.Address
	Plan    *planner.Plan
	// Deferred are steps held back by backoff.
	Deferred []resource.Address
	// HeldBack are the resources left out of this pass because planning
	// found a problem with them, or with a step they depend on: each with
	// the problem's message. The rest of the plan was applied.
	HeldBack map[resource.Address]string
	// Applied is nil when nothing was applied.
	Applied *apply.Result
}

// TooManyDestroysError refuses a pass that would delete or replace more
// resources than allowed.
type TooManyDestroysError struct {
	Count, Limit int
	Addresses    []resource.Address
}

func (e *TooManyDestroysError) Error() string {
	names := make([]string, len(e.Addresses))
	for i, a := range e.Addresses {
		names[i] = a.String()
	}
	return fmt.Sprintf("refusing this pass: it would delete or replace %d resources (%s), more than --max-destroy %d allows. If this is intended, raise the limit for one pass or run convsync apply by hand", e.Count, strings.Join(names, ", "), e.Limit)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Pass reconciles desired once. full forces a complete refresh of Twilio
// (the periodic resync, and the first pass); otherwise only what changed
// since the last pass is read. allowDestroy raises MaxDestroy for this pass
// only (an operator's one-off approval); pass -1 to keep MaxDestroy.
func (r *Reconciler) Pass(ctx context.Context, desired []resource.Desired, specHash string, full bool, allowDestroy int) (*PassResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pass(ctx, desired, specHash, full, allowDestroy)
}

// destroysAParent reports whether the plan deletes or replaces a resource
// that holds others, at any depth: a service, or a conversation (apps add
// participants to it all the time).
func destroysAParent(plan *planner.Plan) bool {
	for _, c := range plan.Changes {
		if !c.Action.Destroys() || c.SID == "" {
			continue
		}
		for _, k := range resource.Children(c.Address.Kind) {
			if !k.Singleton {
				return true
			}
		}
	}
	return false
}

func (r *Reconciler) pass(ctx context.Context, desired []resource.Desired, specHash string, full bool, allowDestroy int) (*PassResult, error) {
	st := r.Store.State()
	// An interrupted create (a pending intent) is only recognised by
	// listing its parent: an incremental pass never lists, and would plan
	// a second create. Such passes are full.
	res := &PassResult{Full: full || r.snap == nil || len(st.Pending) > 0}
	current := make(map[resource.Address]resource.Desired, len(desired))
	for _, d := range desired {
		current[d.Address] = d
	}
	res.Changed = changedAddresses(r.last, current)

	if res.Full {
		opts := r.Engine.Refresh
		if r.snap != nil {
			// Sizes seen last time let Refresh fetch a few owned
			// conversations instead of listing a big service.
			opts.KnownSizes = r.snap.Sizes()
		}
		snap, err := planner.Refresh(ctx, r.Engine.API, desired, st, opts)
		if err != nil {
			return res, err
		}
		r.snap = snap
	} else if err := r.refreshChanged(ctx, res.Changed, current, st); err != nil {
		return res, err
	}

	plan, err := planner.Compute(desired, st, r.snap)
	var problems planner.Errors
	if errors.As(err, &problems) && plan != nil {
		// A daemon keeps the rest converging: only the steps a problem
		// touches, and the steps that depend on them, are held back. (The
		// CLI fails the whole plan.) A problem fixed in Twilio rather than
		// in the specs (a unique_name freed) is seen by the next full
		// refresh; one fixed in the specs, by the pass the edit triggers.
		err = nil
	}
	if err != nil {
		// The problem may be fixed in Twilio rather than in the specs (a
		// unique_name taken by someone else): read everything next time.
		r.snap = nil
		return res, err
	}
	// Held back before the guard's checks: a held-back service replacement
	// neither deletes anything nor needs a full read.
	heldBack := r.holdBackProblems(plan, problems)
	if !res.Full && destroysAParent(plan) {
		// What a service or a conversation holds is only known from a full
		// read: an app may have filled it since the last resync, and the
		// deletion guard must count those conversations or participants.
		// Plan again from a full refresh.
		return r.pass(ctx, desired, specHash, true, allowDestroy)
	}
	previous := r.last
	r.last = current
	plan.SpecHash = specHash
	res.Plan = plan
	res.HeldBack = heldBack
	res.Deferred = append(r.confirmRemovals(plan, previous, current), r.holdBack(plan, current, res.Full)...)
	// A participant whose removal is confirmed, in a conversation whose
	// delete still waits, is deleted by a request of its own.
	planner.DetachOrphans(plan)

	limit := r.MaxDestroy
	if allowDestroy > limit {
		limit = allowDestroy
	}
	if n := plan.Destroys(); limit >= 0 && n > limit {
		var addrs []resource.Address
		for _, c := range plan.Changes {
			if c.Action.Destroys() {
				addrs = append(addrs, c.Address)
			}
		}
		return res, &TooManyDestroysError{Count: n, Limit: limit, Addresses: addrs}
	}
	if !plan.HasChanges() {
		return res, nil
	}
	if r.BeforeApply != nil && !r.BeforeApply(plan) {
		return res, nil
	}
	res.Applied = r.Engine.Apply(ctx, r.Store, plan, r.ApplyOptions)
	r.record(plan, res.Applied, current)
	return res, nil
}

// confirmRemovals holds back, for ConfirmRemovalsAfter, the deletes of
// resources whose specs vanished in this very load: a folder read in the
// middle of a git pull, or of a spec moving between files, can miss a spec
// that is still wanted. The delete goes ahead only when a load at least
// that much later still lacks the spec (NextRetry asks for that pass).
func (r *Reconciler) confirmRemovals(plan *planner.Plan, previous, current map[resource.Address]resource.Desired) []resource.Address {
	if r.removedAt == nil {
		r.removedAt = map[resource.Address]time.Time{}
	}
	for a := range r.removedAt {
		if _, back := current[a]; back {
			delete(r.removedAt, a) // it came back: nothing to delete
		}
	}
	wait := r.confirmWait()
	now := r.now()
	deleting := map[resource.Address]bool{}
	for _, c := range plan.Changes {
		if c.Action == planner.Delete {
			deleting[c.Address] = true
		}
	}
	for a := range r.removedAt {
		if !deleting[a] {
			delete(r.removedAt, a) // deleted already, or nothing left to delete
		}
	}
	var held []resource.Address
	kept := plan.Changes[:0:0]
	for _, c := range plan.Changes {
		_, wanted := current[c.Address]
		if c.Action != planner.Delete || wanted || wait < 0 {
			kept = append(kept, c)
			continue
		}
		since, seen := r.removedAt[c.Address]
		if !seen {
			since = now
			r.removedAt[c.Address] = now
		}
		if now.Sub(since) < wait {
			held = append(held, c.Address)
			continue
		}
		// Confirmed. The entry stays until the delete is done, so a pass the
		// guard refused does not start the wait again.
		kept = append(kept, c)
	}
	plan.Changes = kept
	return held
}

// confirmWait is ConfirmRemovalsAfter with its default.
func (r *Reconciler) confirmWait() time.Duration {
	if r.ConfirmRemovalsAfter == 0 {
		return 2 * time.Second
	}
	return r.ConfirmRemovalsAfter
}

// changedAddresses lists addresses added, removed or edited between two
// spec sets (where a spec was declared does not count).
func changedAddresses(before, after map[resource.Address]resource.Desired) []resource.Address {
	var out []resource.Address
	for a, d := range after {
		if b, ok := before[a]; !ok || !sameDesired(b, d) {
			out = append(out, a)
		}
	}
	for a := range before {
		if _, ok := after[a]; !ok {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func sameDesired(a, b resource.Desired) bool {
	a.Source, b.Source = resource.Source{}, resource.Source{}
	return reflect.DeepEqual(a, b)
}

// refreshChanged reads from Twilio only the resources whose specs changed:
// by SID when convsync owns it, by unique_name when it is new (to see
// whether the name is taken).
func (r *Reconciler) refreshChanged(ctx context.Context, changed []resource.Address, current map[resource.Address]resource.Desired, st *state.State) error {
	for _, addr := range changed {
		if owned := st.Get(addr); owned != nil {
			obs, err := r.Engine.API.Fetch(ctx, addr.Kind, owned.ParentSID, owned.SID)
			switch {
			case twilioapi.IsNotFound(err):
				r.snap.Remove(addr.Kind, owned.ParentSID, owned.SID)
			case err != nil:
				return fmt.Errorf("refresh %s: %w", addr, err)
			default:
				r.snap.Put(obs)
			}
			continue
		}
		d, ok := current[addr]
		if !ok {
			continue
		}
		parent := st.ParentSID(&d)
		// A new resource is looked up by what identifies it in its
		// parent: a singleton by its path, others by their natural key.
		schema := resource.Schema(addr.Kind)
		if parent == "" && schema.Parent != "" {
			continue // its parent is new: nothing of it can exist yet
		}
		var name string
		switch {
		case schema.Singleton:
			name = resource.SingletonID(addr.Kind, parent)
		case schema.KeyFetchable(d.Values):
			name = d.Values[schema.NaturalKey]
		}
		if name == "" {
			continue
		}
		obs, err := r.Engine.API.Fetch(ctx, addr.Kind, parent, name)
		switch {
		case twilioapi.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("refresh %s: %w", addr, err)
		default:
			r.snap.Put(obs)
		}
	}
	return nil
}

// holdBack removes from the plan the steps still in backoff, and the steps
// that depend on them, and returns their addresses.
func (r *Reconciler) holdBack(plan *planner.Plan, current map[resource.Address]resource.Desired, full bool) []resource.Address {
	now := r.now()
	held := map[resource.Address]bool{}
	pending := map[resource.Address]bool{}
	for _, c := range plan.Changes {
		if c.Action != planner.NoOp {
			pending[c.Address] = true
		}
	}
	for addr, b := range r.backoff {
		d, stillWanted := current[addr]
		switch {
		case !pending[addr]:
			delete(r.backoff, addr) // nothing left to do: resolved, by whoever
		case b.terminal && full:
			// A full resync looks again: what Twilio refused may have been
			// fixed in Twilio (a name freed, a service restored).
			delete(r.backoff, addr)
		case b.terminal && stillWanted && sameDesired(b.desired, d):
			held[addr] = true
		case b.terminal:
			delete(r.backoff, addr) // the spec changed: try again now
		case now.Before(b.next):
			held[addr] = true
		}
	}
	if len(held) == 0 {
		return nil
	}
	for grew := true; grew; {
		grew = false
		for _, c := range plan.Changes {
			if held[c.Address] {
				continue
			}
			for _, d := range append(c.DependsOn[:len(c.DependsOn):len(c.DependsOn)], c.AfterFree...) {
				if held[d] {
					held[c.Address], grew = true, true
					break
				}
			}
		}
	}
	var kept []planner.Change
	var out []resource.Address
	for _, c := range plan.Changes {
		if held[c.Address] && c.Action != planner.NoOp {
			out = append(out, c.Address)
			continue
		}
		kept = append(kept, c)
	}
	plan.Changes = kept
	return out
}

// holdBackProblems removes from the plan the steps of the resources the
// plan's problems name (an error's Address and Others) and every step that
// depends on them (DependsOn, AfterFree), transitively. It returns them,
// each with the message of the problem that holds it back, and remembers
// them for Failing.
func (r *Reconciler) holdBackProblems(plan *planner.Plan, problems planner.Errors) map[resource.Address]string {
	r.heldBack = nil
	if len(problems) == 0 {
		return nil
	}
	held := map[resource.Address]string{}
	for _, p := range problems {
		for _, a := range append([]resource.Address{p.Address}, p.Others...) {
			if held[a] == "" {
				held[a] = p.Error()
			} else if !strings.Contains(held[a], p.Error()) {
				held[a] += "; " + p.Error()
			}
		}
	}
	for grew := true; grew; {
		grew = false
		for _, c := range plan.Changes {
			if held[c.Address] != "" || c.Action == planner.NoOp {
				continue
			}
			for _, d := range append(c.DependsOn[:len(c.DependsOn):len(c.DependsOn)], c.AfterFree...) {
				if why := held[d]; why != "" {
					held[c.Address], grew = "waits for "+d.String()+", which is held back: "+why, true
					break
				}
			}
		}
	}
	kept := plan.Changes[:0:0]
	for _, c := range plan.Changes {
		if held[c.Address] != "" && c.Action != planner.NoOp {
			continue
		}
		kept = append(kept, c)
	}
	plan.Changes = kept
	r.heldBack = held
	return held
}

// record updates the snapshot and the backoff from an apply's results.
func (r *Reconciler) record(plan *planner.Plan, res *apply.Result, current map[resource.Address]resource.Desired) {
	// What a step deleted is gone from the snapshot too; a replacement's new
	// resource comes back through Observed below.
	gone := map[resource.Address]bool{}
	for _, s := range res.Steps {
		if s.Gone || (s.Err == nil && s.Action.Destroys()) {
			gone[s.Address] = true
		}
	}
	for _, c := range plan.Changes {
		if gone[c.Address] && c.SID != "" {
			r.snap.Remove(c.Address.Kind, c.ParentSID, c.SID)
		}
	}
	if r.backoff == nil {
		r.backoff = map[resource.Address]*backoffEntry{}
	}
	base, maxDelay := r.BackoffBase, r.BackoffMax
	if base <= 0 {
		base = 5 * time.Second
	}
	if maxDelay <= 0 {
		maxDelay = 10 * time.Minute
	}
	jitter := r.Rand
	if jitter == nil {
		jitter = rand.Float64
	}
	for _, s := range res.Steps {
		if s.Observed != nil {
			r.snap.Put(*s.Observed)
		}
		if s.Err == nil {
			delete(r.backoff, s.Address)
			continue
		}
		if errors.Is(s.Err, apply.ErrSkipped) || errors.Is(s.Err, apply.ErrNotStarted) {
			continue // never sent: nothing to back off from
		}
		b := r.backoff[s.Address]
		if b == nil {
			b = &backoffEntry{}
			r.backoff[s.Address] = b
		}
		b.failures++
		b.lastErr = s.Err
		b.desired = current[s.Address]
		b.terminal = twilioapi.IsTerminal(s.Err)
		delay := base << min(b.failures-1, 20)
		if delay > maxDelay || delay <= 0 {
			delay = maxDelay
		}
		// Equal jitter: between half and all of the delay.
		delay = delay/2 + time.Duration(jitter()*float64(delay/2))
		b.next = r.now().Add(delay)
	}
}

// NextRetry returns when the earliest backoff expires, if any resource is
// waiting (terminal failures wait for a spec change instead).
func (r *Reconciler) NextRetry() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next time.Time
	for _, b := range r.backoff {
		if b.terminal {
			continue
		}
		if next.IsZero() || b.next.Before(next) {
			next = b.next
		}
	}
	wait := r.confirmWait()
	now := r.now()
	for _, since := range r.removedAt {
		// Only waits still running ask for a pass; a confirmed delete that
		// the guard refused waits for the operator.
		if at := since.Add(wait); at.After(now) && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next, !next.IsZero()
}

// Failing returns the resources currently failing, with their last error.
func (r *Reconciler) Failing() map[resource.Address]error {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[resource.Address]error{}
	for a, b := range r.backoff {
		out[a] = b.lastErr
	}
	for a, why := range r.heldBack {
		if _, failing := out[a]; !failing {
			out[a] = fmt.Errorf("held back: %s", why)
		}
	}
	return out
}
