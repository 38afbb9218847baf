package apply

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// API is the part of the Twilio client the applier needs.
type API interface {
	List(ctx context.Context, kind resource.Kind, parentSID string) ([]resource.Observed, error)
	Create(ctx context.Context, kind resource.Kind, parentSID string, v resource.Values, o twilioapi.CallOptions) (resource.Observed, error)
	Update(ctx context.Context, kind resource.Kind, parentSID, sid string, v resource.Values, o twilioapi.CallOptions) (resource.Observed, error)
	Delete(ctx context.Context, kind resource.Kind, parentSID, sid string, o twilioapi.CallOptions) error
}

// Store is where the applier records each change as soon as Twilio confirms
// it. *state.File implements it.
type Store interface {
	// View calls fn with the current state without copying it; fn only reads.
	View(fn func(*state.State))
	Update(func(*state.State) error) error
}

// Options tunes Apply.
type Options struct {
	// Parallelism bounds how many steps run at once (default 10).
	Parallelism int
	// WebhookEnabled sends X-Twilio-Webhook-Enabled: true with every write,
	// in addition to resources whose spec asks for it.
	WebhookEnabled bool
	// CreateAttempts bounds how often a create whose outcome stayed unknown
	// is tried again after looking for its result (default 3).
	CreateAttempts int
	Logger         *zap.Logger
	// OnEvent is told when each step starts and ends (for progress output):
	// every step ends with exactly one Succeeded, Failed, Skipped or
	// NotStarted event. Events of different steps may come from different
	// goroutines at once.
	OnEvent func(Event)
	Now     func() time.Time
	// Stop, once closed, stops the apply from starting anything new: steps
	// in flight run to their end (their calls are not cancelled, and the
	// state is saved as they finish); every step not started by then ends
	// NotStarted. Cancelling ctx stops starting steps too, and also cancels
	// the calls in flight (they fail). nil: only ctx stops the apply.
	Stop <-chan struct{}
}

// Phase of a step's event.
type Phase string

const (
	Started   Phase = "started"
	Succeeded Phase = "succeeded"
	Failed    Phase = "failed"
	Skipped   Phase = "skipped"
	// NotStarted: the apply was stopped (Options.Stop, or ctx) before this
	// step started; nothing of it was sent. A replace stopped between its
	// two halves ends NotStarted too, its error saying what was done.
	NotStarted Phase = "not_started"
)

// Outcome is how a step ended.
type Outcome string

const (
	OutcomeDone       Outcome = "done"
	OutcomeFailed     Outcome = "failed"
	OutcomeSkipped    Outcome = "skipped"     // a step it depends on failed
	OutcomeNotStarted Outcome = "not_started" // the apply was stopped first
)

// Event reports one step's progress.
type Event struct {
	Address  resource.Address
	Action   planner.Action
	Phase    Phase
	SID      string
	Err      error
	Duration time.Duration
}

// StepResult is the outcome of one step.
type StepResult struct {
	Address resource.Address
	Action  planner.Action
	SID     string
	Err     error
	// Observed is the resource as Twilio answered the last write (nil after
	// a delete, or when no answer was seen); the daemon keeps its snapshot
	// current with it instead of reading Twilio again.
	Observed *resource.Observed
	// Gone reports that the resource no longer exists in Twilio.
	Gone bool
}

// Outcome tells a step that was done from one that failed, was skipped
// (ErrSkipped) or was not started (ErrNotStarted).
func (s StepResult) Outcome() Outcome {
	switch {
	case s.Err == nil:
		return OutcomeDone
	case errors.Is(s.Err, ErrNotStarted):
		return OutcomeNotStarted
	case errors.Is(s.Err, ErrSkipped):
		return OutcomeSkipped
	}
	return OutcomeFailed
}

// Result is the outcome of an apply.
type Result struct {
	Steps []StepResult
	// LateDuplicatesDeleted counts resources an earlier attempt of a create
	// made after the attempt that was recorded (it landed late): convsync's
	// own duplicates, deleted.
	LateDuplicatesDeleted int
	// Stopped reports that the apply was stopped (Options.Stop or ctx)
	// before it had started every step.
	Stopped bool
}

// Outcomes counts the steps by outcome.
func (r *Result) Outcomes() map[Outcome]int {
	n := map[Outcome]int{}
	for _, s := range r.Steps {
		n[s.Outcome()]++
	}
	return n
}

// Failed returns the steps that failed, were skipped or were not started.
func (r *Result) Failed() []StepResult {
	var out []StepResult
	for _, s := range r.Steps {
		if s.Err != nil {
			out = append(out, s)
		}
	}
	return out
}

// Counts returns how many steps succeeded per action, and how many did not
// (failed, skipped or not started: see Outcomes).
func (r *Result) Counts() (done map[planner.Action]int, failed int) {
	done = map[planner.Action]int{}
	for _, s := range r.Steps {
		if s.Err != nil {
			failed++
		} else {
			done[s.Action]++
		}
	}
	return done, failed
}

// ErrSkipped marks a step not run because a step it depends on failed.
var ErrSkipped = errors.New("skipped")

// ErrCycle marks every step of a plan refused because its steps wait for
// each other in a cycle.
var ErrCycle = errors.New("cycle in the plan")

// ErrNotStarted marks a step not started because the apply was stopped
// (Options.Stop, or its context) before the step could start.
var ErrNotStarted = errors.New("not started")

// Apply runs every step of plan that changes something. It returns when all
// steps have finished, failed or been skipped; the error is non-nil only
// when the plan itself cannot be run.
func Apply(ctx context.Context, api API, store Store, plan *planner.Plan, opts Options) *Result {
	if opts.Parallelism <= 0 {
		opts.Parallelism = 10
	}
	if opts.CreateAttempts <= 0 {
		opts.CreateAttempts = 3
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnEvent == nil {
		opts.OnEvent = func(Event) {}
	}
	a := &applier{api: api, store: store, opts: opts, planned: map[string]bool{}, stop: make(chan struct{}), ctxDone: ctx.Done()}
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(a.stop) }) }
	defer context.AfterFunc(ctx, stop)()
	if opts.Stop != nil {
		returned := make(chan struct{})
		defer close(returned)
		go func() {
			select {
			case <-opts.Stop:
				stop()
			case <-returned:
			}
		}()
	}
	for _, c := range plan.Changes {
		if c.SID != "" {
			a.planned[c.SID] = true
		}
	}
	g := buildGraph(plan)
	if stuck := g.stuck(); len(stuck) > 0 {
		names := make([]string, len(stuck))
		for i, s := range stuck {
			names[i] = s.String()
		}
		err := fmt.Errorf("%w: the steps of %s wait for each other in a cycle, so they could never start; nothing was applied. "+
			"This is a bug in convsync (the planner refuses such plans): please report it with the output of convsync plan --json", ErrCycle, strings.Join(names, ", "))
		for _, st := range g.steps {
			st.err = err
		}
	} else {
		a.run(ctx, g)
	}
	a.watchers.Wait()
	res := &Result{}
	for _, c := range g.changes {
		st := g.steps[c.Address]
		res.Steps = append(res.Steps, StepResult{Address: c.Address, Action: c.Action, SID: st.sid, Err: st.err, Observed: st.observed, Gone: st.gone})
	}
	sort.Slice(res.Steps, func(i, j int) bool { return res.Steps[i].Address.String() < res.Steps[j].Address.String() })
	res.LateDuplicatesDeleted = int(a.lateDeleted.Load())
	res.Stopped = a.wasStopped
	return res
}

type applier struct {
	api   API
	store Store
	opts  Options
	// planned holds every SID a step of the plan names: a lost create's
	// lookup must not take one of them, even before its step records it.
	planned map[string]bool
	// lookAlikes serialises creates that Twilio could not tell apart (see
	// lookAlikeKey), by key.
	lookAlikes sync.Map // string → *sync.Mutex
	// watchers are the watches for late landings still running.
	watchers    sync.WaitGroup
	lateDeleted atomic.Int64
	// stop is closed once Options.Stop is or ctx is done: nothing new
	// starts (no step, no further create attempt, no more waiting for a
	// late landing).
	stop    chan struct{}
	ctxDone <-chan struct{}
	// wasStopped: some step was left unfinished by the stop.
	wasStopped bool
}

// lookAlikeKey identifies the creates whose results a lookup could mistake
// for one another: same kind, same parent, and the same readable fields that
// recognition compares (unset fields count as Twilio shows them).
func lookAlikeKey(kind resource.Kind, parentSID string, v resource.Values) string {
	schema := resource.Schema(kind)
	parts := []string{string(kind), parentSID}
	for _, f := range schema.Fields {
		if !schema.Recognisable(&f) {
			continue
		}
		value, ok := v[f.Name]
		if !ok {
			value = f.Unset
		}
		parts = append(parts, f.Name+"="+value)
	}
	return strings.Join(parts, "\x00")
}

// lockLookAlikes makes a create wait while a look-alike create is in flight:
// if two were in flight and one answer were lost, its lookup could take the
// other's resource before that one is recorded, leaving both addresses on
// one SID and one resource unmanaged. Look-alikes are rare (without a
// unique_name, identical fields), so this costs nothing in practice.
func (a *applier) lockLookAlikes(kind resource.Kind, parentSID string, v resource.Values) func() {
	m, _ := a.lookAlikes.LoadOrStore(lookAlikeKey(kind, parentSID, v), &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// run executes the graph's nodes as their dependencies finish, with
// Parallelism workers. Ready nodes wait in one queue per service ("lane")
// and workers take them round-robin across lanes: Twilio limits actions per
// service, so four services' creates must interleave, not queue behind
// whichever service's steps happened to become ready first.
func (a *applier) run(ctx context.Context, g *graph) {
	s := &scheduler{lanes: map[string][]*node{}, unfinished: len(g.nodes)}
	s.cond = sync.NewCond(&s.mu)
	// Once stopped, workers take no more nodes: nodes in flight finish,
	// and whatever is left is marked not started below.
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-a.stop:
		case <-finished:
			return
		}
		s.mu.Lock()
		s.cancelled = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	defer a.notStarted(ctx, g)
	for _, n := range g.nodes {
		if n.waiting == 0 {
			s.push(n)
		}
	}
	var wg sync.WaitGroup
	for range min(a.opts.Parallelism, max(len(g.nodes), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := s.take()
				if n == nil || a.stopped() {
					return // a node taken but not run stays not done
				}
				var err error
				if !n.failedDep.IsZero() {
					err = fmt.Errorf("%w: %s failed", ErrSkipped, n.failedDep)
					a.event(n, Skipped, "", err, 0)
				} else {
					err = a.runNode(ctx, g, n)
				}
				s.finish(g, n, err)
			}
		}()
	}
	wg.Wait()
}

// stopped reports whether the apply was stopped (Options.Stop or ctx).
func (a *applier) stopped() bool {
	// Options.Stop and ctx are read too, not only the stop they are
	// forwarded to: a caller that closed or cancelled them sees no step
	// start after that.
	select {
	case <-a.stop:
		return true
	case <-a.opts.Stop:
		return true
	case <-a.ctxDone:
		return true
	default:
		return false
	}
}

// notStarted ends every step the stop left unfinished, once each and in
// address order: not started (or skipped, when a step it depends on had
// already failed). A replace stopped between its halves is not started
// too, its error saying which half was done.
func (a *applier) notStarted(ctx context.Context, g *graph) {
	cause := "it was stopped"
	if ctx.Err() != nil {
		cause = fmt.Sprintf("it was cancelled (%v)", context.Cause(ctx))
	}
	pending := map[resource.Address][]*node{}
	for _, n := range g.nodes {
		if st := g.steps[n.change.Address]; !n.done && st.err == nil {
			pending[n.change.Address] = append(pending[n.change.Address], n)
		}
	}
	if len(pending) == 0 {
		return
	}
	a.wasStopped = true
	addrs := make([]resource.Address, 0, len(pending))
	for addr := range pending {
		addrs = append(addrs, addr)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].String() < addrs[j].String() })
	for _, addr := range addrs {
		nodes := pending[addr]
		st := g.steps[addr]
		first := nodes[0]
		switch {
		case !first.first:
			// The first half of a replace was done.
			half := "the old one was deleted and creating the new one"
			if first.op == opDelete {
				half = "the new one (" + st.sid + ") was created and deleting the old one (recorded in the state as " + resource.DeposedAddress(addr).String() + ")"
			}
			st.err = fmt.Errorf("%w: the apply stopped between the two halves of this replace: %s was not started; the next apply finishes it", ErrNotStarted, half)
		case !first.failedDep.IsZero():
			st.err = fmt.Errorf("%w: %s failed", ErrSkipped, first.failedDep)
			a.event(first, Skipped, "", st.err, 0)
			continue
		default:
			st.err = fmt.Errorf("%w: the apply stopped (%s) before this step could start; nothing of it was sent", ErrNotStarted, cause)
		}
		a.opts.OnEvent(Event{Address: addr, Action: first.change.Action, Phase: NotStarted, SID: st.sid, Err: st.err})
	}
}

// scheduler holds the ready nodes, one queue per lane.
type scheduler struct {
	mu         sync.Mutex
	cond       *sync.Cond
	lanes      map[string][]*node
	order      []string // lanes in the order they first had work
	next       int      // where the round-robin resumes
	unfinished int
	cancelled  bool // the apply's context is done: stop waiting for work
}

// lane is the service a node acts in: Twilio's rate limits are per service.
func lane(n *node) string {
	ch := n.change
	switch {
	case resource.Schema(ch.Address.Kind).Parent == "":
		return "account"
	case n.op != opDelete && !ch.NewParent.IsZero():
		return ch.NewParent.String()
	}
	return ch.ParentSID
}

// push queues a ready node; the caller holds mu or is the only user.
func (s *scheduler) push(n *node) {
	l := lane(n)
	if _, ok := s.lanes[l]; !ok {
		s.order = append(s.order, l)
	}
	s.lanes[l] = append(s.lanes[l], n)
}

// take waits for a ready node, round-robin across lanes; nil when every
// node has finished.
func (s *scheduler) take() *node {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.unfinished == 0 {
			return nil
		}
		for i := range s.order {
			l := s.order[(s.next+i)%len(s.order)]
			if q := s.lanes[l]; len(q) > 0 {
				s.lanes[l] = q[1:]
				s.next = (s.next + i + 1) % len(s.order)
				return q[0]
			}
		}
		if s.cancelled {
			return nil
		}
		s.cond.Wait()
	}
}

// finish records a node's outcome and queues the dependents it released.
func (s *scheduler) finish(g *graph, n *node, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := g.steps[n.change.Address]
	if err != nil && st.err == nil {
		st.err = err
	}
	n.done = true
	for _, d := range n.dependents {
		if err != nil {
			d.failedDep = n.change.Address
		}
		d.waiting--
		if d.waiting == 0 {
			s.push(d)
		}
	}
	s.unfinished--
	s.cond.Broadcast()
}

func (a *applier) event(n *node, p Phase, sid string, err error, d time.Duration) {
	a.opts.OnEvent(Event{Address: n.change.Address, Action: n.change.Action, Phase: p, SID: sid, Err: err, Duration: d})
}

func (a *applier) runNode(ctx context.Context, g *graph, n *node) error {
	ch := n.change
	started := time.Now()
	if n.first {
		a.event(n, Started, ch.SID, nil, 0)
	}
	st := g.steps[ch.Address]
	var obs *resource.Observed
	var err error
	switch n.op {
	case opDelete:
		err = a.delete(ctx, ch)
		st.gone = err == nil
	case opCreate:
		obs, err = a.create(ctx, ch)
	case opUpdate:
		obs, err = a.update(ctx, ch, ch.SID, ch.ParentSID, ch.Fields)
	case opAdopt:
		obs, err = a.adopt(ctx, ch)
	case opMove:
		obs, err = a.move(ctx, ch)
	case opForget:
		err = a.store.Update(func(s *state.State) error {
			s.Remove(ch.Address)
			s.RemovePending(ch.Address)
			return nil
		})
	}
	if obs != nil {
		st.sid, st.observed, st.gone = obs.SID, obs, false
	}
	if err != nil {
		a.opts.Logger.Warn("step failed", zap.String("address", ch.Address.String()), zap.String("action", string(ch.Action)), zap.Error(err))
		a.event(n, Failed, st.sid, err, time.Since(started))
		return err
	}
	if n.last {
		a.event(n, Succeeded, st.sid, nil, time.Since(started))
	}
	return nil
}

func timeouts(ch *planner.Change) resource.Timeouts {
	t := resource.DefaultTimeouts
	if ch.Desired != nil {
		d := ch.Desired.Timeouts
		if d.Create > 0 {
			t.Create = d.Create
		}
		if d.Update > 0 {
			t.Update = d.Update
		}
		if d.Read > 0 {
			t.Read = d.Read
		}
		if d.Delete > 0 {
			t.Delete = d.Delete
		}
	}
	return t
}

func (a *applier) callOptions(ch *planner.Change) twilioapi.CallOptions {
	return twilioapi.CallOptions{WebhookEnabled: a.opts.WebhookEnabled || (ch.Desired != nil && ch.Desired.WebhookEnabled)}
}

// delete removes the resource from Twilio, then from the state. A resource
// that is already gone counts as deleted.
func (a *applier) delete(ctx context.Context, ch *planner.Change) error {
	if !ch.GoesWithParent {
		cctx, cancel := context.WithTimeout(ctx, timeouts(ch).Delete)
		defer cancel()
		err := a.api.Delete(cctx, ch.Address.Kind, ch.ParentSID, ch.SID, a.callOptions(ch))
		if err != nil && !twilioapi.IsNotFound(err) {
			return fmt.Errorf("deleting %s: %w", ch.SID, err)
		}
	}
	return a.store.Update(func(s *state.State) error {
		if r := s.Get(ch.Address); r != nil && r.SID == ch.SID {
			s.Remove(ch.Address)
		}
		if old := resource.DeposedAddress(ch.Address); s.Get(old) != nil && s.Get(old).SID == ch.SID {
			s.Remove(old)
		}
		if p := s.GetPending(ch.Address); p != nil && s.Get(ch.Address) == nil {
			s.RemovePending(ch.Address)
		}
		return nil
	})
}

// parentSID resolves where a create goes: a SID known at plan time, or the
// SID a parent step of this apply has just recorded in the state.
func (a *applier) parentSID(ch *planner.Change) (string, error) {
	if ch.NewParent.SID != "" || ch.NewParent.Address.IsZero() {
		return ch.NewParent.SID, nil
	}
	var sid string
	a.store.View(func(s *state.State) {
		if r := s.Resources[ch.NewParent.Address.String()]; r != nil {
			sid = resource.ChildKey(ch.NewParent.Address.Kind, r.ParentSID, r.SID)
		}
	})
	if sid == "" {
		return "", fmt.Errorf("its %s was not created", ch.NewParent.Address)
	}
	return sid, nil
}

// createValues splits the desired values into what the create sends and
// what must follow as an update, by the kind's own rules (Twilio refuses to
// create a closed conversation, so it is created active and then closed).
// References to resources of this apply are filled in first.
func (a *applier) createValues(ch *planner.Change) (create, after resource.Values, err error) {
	values, err := a.withRefs(ch, ch.Desired.Values)
	if err != nil {
		return nil, nil, err
	}
	if rules := resource.Schema(ch.Address.Kind).Rules; rules != nil && rules.SplitCreate != nil {
		create, after = rules.SplitCreate(values)
		return create, after, nil
	}
	return values, nil, nil
}

// withRefs returns v with the SIDs of the resources the step refers to that
// this apply created (planner.Change.PendingRefs), read from the state.
func (a *applier) withRefs(ch *planner.Change, v resource.Values) (resource.Values, error) {
	out := v.Clone()
	if out == nil {
		out = resource.Values{}
	}
	var missing []string
	a.store.View(func(s *state.State) {
		for field, addr := range ch.PendingRefs {
			if r := s.Resources[addr.String()]; r != nil {
				out[field] = r.SID
			} else {
				missing = append(missing, addr.String())
			}
		}
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%s, which it refers to, was not created", strings.Join(missing, ", "))
	}
	return out, nil
}

// create records the intent, sends the create, and records the result. When
// the answer is lost it looks for the resource before trying again.
func (a *applier) create(ctx context.Context, ch *planner.Change) (*resource.Observed, error) {
	d := ch.Desired
	parentSID, err := a.parentSID(ch)
	if err != nil {
		return nil, err
	}
	values, after, err := a.createValues(ch)
	if err != nil {
		return nil, err
	}
	if values, err = a.sealSecrets(d.Address.Kind, values); err != nil {
		return nil, err
	}
	unlock := a.lockLookAlikes(d.Address.Kind, parentSID, values)
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	// An intent left by an earlier run whose create may have happened: look
	// before sending another (the planner normally adopts it first; this is
	// the last line of defence against a duplicate).
	var earlier *state.Pending
	var obs resource.Observed
	adoptedEarlier := false
	a.store.View(func(s *state.State) {
		if p := s.Pending[d.Address.String()]; p != nil && p.ParentSID == parentSID {
			earlier = p.Clone()
		}
	})
	if earlier != nil {
		found, err := a.findPending(ctx, ch, earlier)
		if err != nil {
			return nil, fmt.Errorf("an earlier create of it may have happened, and looking for it failed (%v); nothing was sent", err)
		}
		if found != nil {
			// What that create sent counts as applied; the next plan
			// updates whatever still differs from the spec.
			obs, adoptedEarlier, values, after = *found, true, earlier.Values.Clone(), nil
		}
	}
	// Requests sent, and when the last one that Twilio may still be working
	// on was given up: a create that lands after its timeout must be found
	// (before sending another) or, if it lands after the next one, deleted.
	sent := 0
	var lastInFlight time.Time
	var firstStart time.Time
	var intent *state.Pending
	var lastErr error
	for attempt := 1; !adoptedEarlier; attempt++ {
		if attempt > 1 && a.stopped() {
			return nil, fmt.Errorf("creating: %w (the apply was stopped before another attempt: the intent stays in the state, and the next run adopts what an earlier attempt made, or creates it)", lastErr)
		}
		started := a.opts.Now().UTC()
		if firstStart.IsZero() {
			firstStart = started
		}
		// Every attempt's intent starts with the first: a late landing of an
		// earlier attempt is recognised by the later intent too.
		intent = &state.Pending{Address: d.Address, Kind: d.Address.Kind, ParentSID: parentSID, Values: values.Clone(), StartedAt: firstStart}
		if err := a.store.Update(func(s *state.State) error { s.AddPending(intent); return nil }); err != nil {
			return nil, fmt.Errorf("recording the create intent (nothing was sent): %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, timeouts(ch).Create)
		obs, err = a.api.Create(cctx, d.Address.Kind, parentSID, values, a.callOptions(ch))
		cancel()
		sent++
		if err == nil {
			break
		}
		lastErr = err
		if !errors.Is(err, twilioapi.ErrOutcomeUnknown) {
			if sent > 1 && twilioapi.IsConflict(err) {
				// The unique_name is taken: by an earlier attempt that
				// landed late, most likely.
				if found, lookErr := a.findPending(ctx, ch, intent); lookErr == nil && found != nil {
					obs = *found
					a.opts.Logger.Info("an earlier attempt of this create landed late; adopting it", zap.String("address", d.Address.String()), zap.String("sid", obs.SID))
					break
				}
			}
			if sent > 1 {
				// An earlier attempt's outcome is still unknown: keep the
				// intent, so that the next run finds its result.
				return nil, fmt.Errorf("creating: %w (an earlier attempt's outcome is unknown: the intent stays in the state, and the next run adopts what it made)", err)
			}
			// Nothing was created: the intent can go.
			_ = a.store.Update(func(s *state.State) error { s.RemovePending(d.Address); return nil })
			return nil, fmt.Errorf("creating: %w", err)
		}
		a.opts.Logger.Warn("create outcome unknown; looking for it before trying again", zap.String("address", d.Address.String()), zap.Int("attempt", attempt), zap.Error(err))
		inFlight := twilioapi.StillInFlight(err)
		if inFlight {
			lastInFlight = a.opts.Now()
		}
		found, lookErr := a.findPending(ctx, ch, intent)
		if found == nil && lookErr == nil && inFlight {
			// Twilio may still be carrying it out: give it time to land
			// before sending another.
			found, lookErr = a.awaitLanding(ctx, ch, intent, lastInFlight.Add(settleTime(ch)), nil)
		}
		if lookErr != nil {
			return nil, fmt.Errorf("creating: %v; looking for the result also failed (%v). The intent stays in the state: the next run finds and adopts it, or creates it", err, lookErr)
		}
		if found != nil {
			obs = *found
			a.opts.Logger.Info("found the create's result; adopting it", zap.String("address", d.Address.String()), zap.String("sid", obs.SID))
			break
		}
		if attempt >= a.opts.CreateAttempts {
			if !lastInFlight.IsZero() {
				return nil, fmt.Errorf("creating: %w (gave up after %d attempts, with Twilio perhaps still carrying some out: the intent stays in the state, and the next run adopts what they made, and reports any copy)", err, attempt)
			}
			return nil, fmt.Errorf("creating: %w (gave up after %d attempts; nothing was created)", err, attempt)
		}
	}
	applied := values.Clone()
	if err := a.store.Update(func(s *state.State) error {
		if ch.Action == planner.Replace && ch.CreateFirst {
			depose(s, d.Address, ch.SID)
		}
		s.Put(&state.Resource{Address: d.Address, SID: obs.SID, ParentSID: obs.ParentSID, Applied: applied, CreatedAt: obs.DateCreated})
		s.RemovePending(d.Address)
		return nil
	}); err != nil {
		return &obs, fmt.Errorf("created %s but saving the state failed: %w", obs.SID, err)
	}
	if sent > 1 && !lastInFlight.IsZero() {
		// An attempt Twilio may still have been working on when the next was
		// sent can land after it: watch for it, in the background (the
		// apply waits for the watch before it returns), and delete it. The
		// look-alike lock stays held, so no other create's result is taken
		// for it.
		release := unlock
		unlock = nil
		a.watchers.Add(1)
		go func() {
			defer a.watchers.Done()
			defer release()
			a.deleteLateLandings(ctx, ch, intent, lastInFlight.Add(watchFactor*settleTime(ch)), sent-1)
		}()
	} else {
		unlock()
		unlock = nil
	}
	if len(after) > 0 {
		var rest []planner.FieldChange
		for _, name := range after.Keys() {
			rest = append(rest, planner.FieldChange{Name: name, Before: values[name], After: after[name]})
		}
		updated, err := a.update(ctx, ch, obs.SID, obs.ParentSID, rest)
		if err != nil {
			return &obs, fmt.Errorf("created %s, but the update that must follow (%s) failed: %w", obs.SID, strings.Join(after.Keys(), ", "), err)
		}
		return updated, nil
	}
	return &obs, nil
}

// watchFactor is how many settle times after the last attempt Twilio may
// still have been working on the applier keeps watching for its late landing.
const watchFactor = 4

// settleTime is how long a create whose request Twilio may still be working
// on (its timeout passed) is given to land before it is sent again: its own
// timeout, as long again as it was already given, at most a minute.
func settleTime(ch *planner.Change) time.Duration {
	return min(timeouts(ch).Create, time.Minute)
}

// awaitLanding looks for the result of intent every fifth of the settle time
// until until, and returns it once found (nil when nothing landed). skip, if
// set, leaves out SIDs already dealt with.
func (a *applier) awaitLanding(ctx context.Context, ch *planner.Change, intent *state.Pending, until time.Time, skip map[string]bool) (*resource.Observed, error) {
	every := min(max(settleTime(ch)/5, 10*time.Millisecond), 5*time.Second)
	for {
		wait := min(every, until.Sub(a.opts.Now()))
		if wait <= 0 {
			return nil, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-a.stop:
			// Stopped: no more waiting (the caller sends nothing more; the
			// next plan finds a late landing).
			t.Stop()
			return nil, nil
		case <-t.C:
		}
		found, err := a.findPendingSkipping(ctx, ch, intent, skip)
		if found != nil || err != nil {
			return found, err
		}
	}
}

// deleteLateLandings watches until until for up to n resources that match
// intent and nobody owns: earlier attempts of a create that landed after the
// one recorded. Each is convsync's own (it matches what this create sent and
// appeared after it started) and a duplicate: it is deleted. Whatever cannot
// be deleted is logged, and plan reports it.
func (a *applier) deleteLateLandings(ctx context.Context, ch *planner.Change, intent *state.Pending, until time.Time, n int) {
	skip := map[string]bool{}
	for deleted := 0; deleted < n; {
		found, err := a.awaitLanding(ctx, ch, intent, until, skip)
		if err != nil || found == nil {
			if err != nil {
				a.opts.Logger.Warn("watching for a late landing of an earlier create attempt failed; convsync plan reports such a copy if one appears",
					zap.String("address", ch.Address.String()), zap.Error(err))
			}
			return
		}
		skip[found.SID] = true
		a.opts.Logger.Warn("an earlier attempt of this create landed after the one recorded; deleting the duplicate",
			zap.String("address", ch.Address.String()), zap.String("sid", found.SID))
		cctx, cancel := context.WithTimeout(ctx, timeouts(ch).Delete)
		err = a.api.Delete(cctx, found.Kind, found.ParentSID, found.SID, a.callOptions(ch))
		cancel()
		if err != nil && !twilioapi.IsNotFound(err) {
			a.opts.Logger.Error("deleting the duplicate left by a late create failed; delete it by hand (convsync plan lists it)",
				zap.String("address", ch.Address.String()), zap.String("sid", found.SID), zap.Error(err))
			continue
		}
		a.lateDeleted.Add(1)
		deleted++
	}
}

// findPending lists the parent's resources and looks for the one an
// unanswered create made.
func (a *applier) findPending(ctx context.Context, ch *planner.Change, intent *state.Pending) (*resource.Observed, error) {
	return a.findPendingSkipping(ctx, ch, intent, nil)
}

// findPendingSkipping lists the parent's resources and looks for the one an
// unanswered create made.
func (a *applier) findPendingSkipping(ctx context.Context, ch *planner.Change, intent *state.Pending, skip map[string]bool) (*resource.Observed, error) {
	cctx, cancel := context.WithTimeout(ctx, timeouts(ch).Read)
	defer cancel()
	parent := intent.ParentSID
	if resource.Schema(intent.Kind).Parent == "" {
		parent = ""
	}
	items, err := a.api.List(cctx, intent.Kind, parent)
	if err != nil {
		return nil, err
	}
	snap := planner.NewSnapshot()
	snap.SetListed(intent.Kind, parent, items)
	owned := map[string]bool{}
	a.store.View(func(s *state.State) {
		for _, r := range s.Resources {
			owned[r.SID] = true
		}
	})
	return planner.MatchPending(intent, snap.Under(intent.Kind, parent), func(sid string) bool { return owned[sid] || a.planned[sid] || skip[sid] }), nil
}

// update sends the changed fields and records them as applied. A
// singleton's first write records it in the state.
func (a *applier) update(ctx context.Context, ch *planner.Change, sid, parentSID string, fields []planner.FieldChange) (*resource.Observed, error) {
	schema := resource.Schema(ch.Address.Kind)
	values := resource.Values{}
	for _, f := range fields {
		if f.AfterRef.IsZero() {
			values[f.Name] = f.After
		}
	}
	values, err := a.withRefs(ch, values)
	if err != nil {
		return nil, err
	}
	if values, err = a.sealSecrets(ch.Address.Kind, values); err != nil {
		return nil, err
	}
	if schema.Rules != nil && schema.Rules.CompleteUpdate != nil {
		var want, have resource.Values
		if ch.Desired != nil {
			want = ch.Desired.Values
		}
		if ch.Observed != nil {
			have = ch.Observed.Values
		}
		schema.Rules.CompleteUpdate(values, want, have)
	}
	if schema.Singleton {
		if parentSID == "" {
			if parentSID, err = a.parentSID(ch); err != nil {
				return nil, err
			}
		}
		sid = resource.SingletonID(schema.Kind, parentSID)
	}
	cctx, cancel := context.WithTimeout(ctx, timeouts(ch).Update)
	defer cancel()
	obs, err := a.api.Update(cctx, ch.Address.Kind, parentSID, sid, values, a.callOptions(ch))
	if err != nil {
		if twilioapi.IsNotFound(err) {
			return nil, fmt.Errorf("updating %s: it was deleted since the plan was made; plan again: %w", sid, err)
		}
		return nil, fmt.Errorf("updating %s: %w", sid, err)
	}
	return &obs, a.store.Update(func(s *state.State) error {
		r := s.Get(ch.Address)
		if schema.Singleton && (r == nil || r.SID != sid) {
			// A singleton is recorded when convsync first writes it (or
			// again after its parent was replaced).
			r = &state.Resource{Address: ch.Address, SID: sid, ParentSID: parentSID}
		}
		if r == nil || r.SID != sid {
			return nil
		}
		r = r.Clone()
		if r.Applied == nil {
			r.Applied = resource.Values{}
		}
		for k, v := range values {
			r.Applied[k] = v
		}
		s.Put(r)
		return nil
	})
}

// adopt records a resource an interrupted create left behind, then updates
// whatever still differs from the spec.
func (a *applier) adopt(ctx context.Context, ch *planner.Change) (*resource.Observed, error) {
	if err := a.store.Update(func(s *state.State) error {
		applied := resource.Values{}
		if p := s.GetPending(ch.Address); p != nil {
			applied = p.Values.Clone()
		}
		if ch.Deposes != "" {
			depose(s, ch.Address, ch.Deposes)
		}
		s.Put(&state.Resource{Address: ch.Address, SID: ch.SID, ParentSID: ch.ParentSID, Applied: applied, CreatedAt: observedCreated(ch)})
		s.RemovePending(ch.Address)
		return nil
	}); err != nil {
		return nil, err
	}
	if len(ch.Fields) == 0 {
		return ch.Observed, nil
	}
	return a.update(ctx, ch, ch.SID, ch.ParentSID, ch.Fields)
}

// move re-keys the state entry of a renamed spec from ch.MovedFrom to
// ch.Address, keeping its SID, parent and applied values (no API call),
// then updates whatever fields still differ from the spec.
func (a *applier) move(ctx context.Context, ch *planner.Change) (*resource.Observed, error) {
	if err := a.store.Update(func(s *state.State) error {
		if r := s.Get(ch.Address); r != nil && r.SID == ch.SID && s.Get(ch.MovedFrom) == nil {
			return nil // moved already
		}
		if r := s.Get(ch.MovedFrom); r == nil || r.SID != ch.SID {
			return fmt.Errorf("moving %s to %s: the state no longer records %s under %s; plan again", ch.MovedFrom, ch.Address, ch.SID, ch.MovedFrom)
		}
		_, err := s.Move(ch.MovedFrom, ch.Address)
		return err
	}); err != nil {
		return nil, err
	}
	if len(ch.Fields) == 0 {
		return ch.Observed, nil
	}
	return a.update(ctx, ch, ch.SID, ch.ParentSID, ch.Fields)
}

func observedCreated(ch *planner.Change) time.Time {
	if ch.Observed != nil {
		return ch.Observed.DateCreated
	}
	return time.Time{}
}

// depose keeps the resource sid, which addr's state entry names now, under
// resource.DeposedAddress(addr): its successor takes addr, and the old one
// must still be deleted (by this apply's delete step, or, after a crash, by
// the next plan). Without it a crash between the two would leave the old
// resource in Twilio with nothing pointing at it.
func depose(s *state.State, addr resource.Address, sid string) {
	r := s.Get(addr)
	if r == nil || r.SID != sid {
		return
	}
	old := r.Clone()
	old.Address = resource.DeposedAddress(addr)
	s.Put(old)
}
