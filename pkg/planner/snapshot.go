package planner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// Lister is the part of the Twilio client that refresh needs
// (*twilioapi.Client implements it).
type Lister interface {
	List(ctx context.Context, kind resource.Kind, parentSID string) ([]resource.Observed, error)
	// Fetch reads one resource by SID or unique_name; a missing one is an
	// error for which twilioapi.IsNotFound is true.
	Fetch(ctx context.Context, kind resource.Kind, parentSID, id string) (resource.Observed, error)
}

// DayRangeLister is implemented by clients that can list a service's
// resources created between two UTC days, both included: Twilio's StartDate
// (firstDay at 00:00:00Z) and EndDate (lastDay at 23:59:59Z) filters, which
// Twilio documents at whole-day precision. A zero day leaves that end open.
// Refresh uses it, when the client has it, to list one large service as
// several day ranges at once instead of one page after another.
type DayRangeLister interface {
	ListCreatedBetween(ctx context.Context, kind resource.Kind, parentSID string, firstDay, lastDay time.Time) ([]resource.Observed, error)
}

// ReadMethod is how Refresh read a service's children.
type ReadMethod string

const (
	// ReadList: one paged list of the whole service.
	ReadList ReadMethod = "list"
	// ReadListByDay: paged lists of day ranges covering all time, run at once.
	ReadListByDay ReadMethod = "list-by-day"
	// ReadFetch: one GET per owned resource, and one per unique_name that a
	// new resource wants.
	ReadFetch ReadMethod = "fetch"
)

// Snapshot is what Twilio held at refresh time, for the resources that
// matter to a plan: every service of the account, and every conversation of
// each service that the specs or the state point at.
type Snapshot struct {
	// objects: kind → parent SID → SID → resource.
	objects map[resource.Kind]map[string]map[string]*resource.Observed
	// listed: kind → parent SIDs whose children were listed completely. A
	// resource missing from a listed parent is gone; from an unlisted one it
	// is unknown.
	listed map[resource.Kind]map[string]bool
	// sizes: SizeKey(kind, parent SID) → how many of kind the parent holds,
	// as last counted.
	sizes map[string]int
	// methods: SizeKey(kind, parent SID) → how Refresh read them.
	methods map[string]ReadMethod
}

// SizeKey names one kind's resources in one parent, in Sizes and
// RefreshOptions.KnownSizes: "Conversation/IS…". Sizes and the choice
// between listing and fetching are kept per kind and parent: one kind's
// size says nothing about another's.
func SizeKey(kind resource.Kind, parentSID string) string { return string(kind) + "/" + parentSID }

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{
		objects: map[resource.Kind]map[string]map[string]*resource.Observed{},
		listed:  map[resource.Kind]map[string]bool{},
		sizes:   map[string]int{},
		methods: map[string]ReadMethod{},
	}
}

// Sizes returns, per SizeKey(kind, parent), how many resources of the kind
// the parent held when they were last listed (ones that were fetched keep
// the size given in RefreshOptions.KnownSizes). Pass it as KnownSizes to the
// next Refresh so that it can choose between listing and fetching.
func (s *Snapshot) Sizes() map[string]int {
	out := make(map[string]int, len(s.sizes))
	for k, v := range s.sizes {
		out[k] = v
	}
	return out
}

// Method reports how Refresh read kind's resources in parentSID ("" when it
// did not read them).
func (s *Snapshot) Method(kind resource.Kind, parentSID string) ReadMethod {
	return s.methods[SizeKey(kind, parentSID)]
}

// Size reports how many of kind parentSID held when last counted.
func (s *Snapshot) Size(kind resource.Kind, parentSID string) (int, bool) {
	n, ok := s.sizes[SizeKey(kind, parentSID)]
	return n, ok
}

// SetListed records the complete list of kind's resources under parentSID.
func (s *Snapshot) SetListed(kind resource.Kind, parentSID string, items []resource.Observed) {
	byParent := s.objects[kind]
	if byParent == nil {
		byParent = map[string]map[string]*resource.Observed{}
		s.objects[kind] = byParent
	}
	m := make(map[string]*resource.Observed, len(items))
	for i := range items {
		m[items[i].SID] = &items[i]
	}
	byParent[parentSID] = m
	if s.listed[kind] == nil {
		s.listed[kind] = map[string]bool{}
	}
	s.listed[kind][parentSID] = true
}

// Put adds or replaces one resource, as a targeted refresh or an apply
// result saw it.
func (s *Snapshot) Put(o resource.Observed) {
	parent := parentKey(o.Kind, o.ParentSID)
	byParent := s.objects[o.Kind]
	if byParent == nil {
		byParent = map[string]map[string]*resource.Observed{}
		s.objects[o.Kind] = byParent
	}
	if byParent[parent] == nil {
		byParent[parent] = map[string]*resource.Observed{}
	}
	byParent[parent][o.SID] = &o
}

// Remove drops one resource (it is gone from Twilio).
func (s *Snapshot) Remove(kind resource.Kind, parentSID, sid string) {
	delete(s.objects[kind][parentKey(kind, parentSID)], sid)
}

// Listed reports whether kind's resources under parentSID were listed.
func (s *Snapshot) Listed(kind resource.Kind, parentSID string) bool {
	return s.listed[kind][parentSID]
}

// Get returns one resource, or nil when the snapshot does not hold it.
func (s *Snapshot) Get(kind resource.Kind, parentSID, sid string) *resource.Observed {
	return s.objects[kind][parentSID][sid]
}

// Under returns kind's resources under parentSID, oldest first.
func (s *Snapshot) Under(kind resource.Kind, parentSID string) []*resource.Observed {
	m := s.objects[kind][parentSID]
	out := make([]*resource.Observed, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].DateCreated.Equal(out[j].DateCreated) {
			return out[i].DateCreated.Before(out[j].DateCreated)
		}
		return out[i].SID < out[j].SID
	})
	return out
}

// parentKey is the parent SID under which a kind's resources are listed:
// "" for top-level kinds.
func parentKey(kind resource.Kind, parentSID string) string {
	if resource.Schema(kind).Parent == "" {
		return ""
	}
	return parentSID
}

// pageSizeOf is the largest page Twilio serves for kind's list.
func pageSizeOf(kind resource.Kind) int {
	if n := resource.Schema(kind).ListPageSize; n > 0 {
		return n
	}
	return 50 // Twilio's default page size
}

// minPagesPerSlice keeps day-range slices big enough that their extra
// partial last pages stay a small share of the requests.
const minPagesPerSlice = 10

// RefreshOptions tunes Refresh.
type RefreshOptions struct {
	// Concurrency bounds how many requests run at once (default 8).
	Concurrency int
	// KnownSizes holds, per SizeKey(kind, parent), how many resources of
	// the kind the parent held at the last refresh (Snapshot.Sizes). Listing
	// costs one request per page (100 conversations, 50 users or roles),
	// whoever owns them; fetching costs one request per resource convsync
	// owns there (plus one per natural key a new resource wants, to find
	// conflicts). With a known size Refresh picks the cheaper; without one it
	// lists, since only a list shows how many there are.
	KnownSizes map[string]int
}

// Refresh reads from Twilio what a plan over desired and st needs: the
// account's services (one paged list), then the conversations of every
// service that a spec or the state refers to, services in parallel.
//
// Per service it takes the cheapest complete way (see RefreshOptions):
//   - fetch: one GET per owned conversation (a 404 means it was deleted
//     outside convsync) and one GET by unique_name per name a spec wants that
//     its own conversation does not already hold (a hit is a conflict);
//   - list by day: when the service spans several pages per slice and api
//     implements DayRangeLister, day ranges covering all time are listed at
//     once; an owned conversation missing from them is confirmed with a GET;
//   - list: one paged list, ceil(N/100) requests.
//
// A service with an interrupted create (state.Pending) is always listed in
// one piece: finding what that create left behind needs every candidate.
func Refresh(ctx context.Context, api Lister, desired []resource.Desired, st *state.State, opts RefreshOptions) (*Snapshot, error) {
	snap := NewSnapshot()
	services, err := api.List(ctx, resource.KindService, "")
	if err != nil {
		return nil, fmt.Errorf("refresh: listing services: %w", err)
	}
	snap.SetListed(resource.KindService, "", services)

	r := &refresher{api: api, snap: snap, opts: opts, sem: make(chan struct{}, concurrencyOf(opts))}
	// Level by level: a participant's read needs its conversation known.
	idx := newReadIndex(desired, st)
	for level := 1; level <= maxLevel(); level++ {
		var reads []*serviceRead
		for _, need := range neededReads(level, desired, st, snap) {
			reads = append(reads, r.prepare(need.kind, need.parentSID, idx, st))
		}
		if err := r.run(ctx, reads); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

type readNeed struct {
	kind      resource.Kind
	parentSID string
}

// levelOf is how deep a kind lives: 0 for services, 1 for what is in a
// service, 2 for what is in a conversation.
func levelOf(k resource.Kind) int { return len(resource.Ancestors(k)) }

func maxLevel() int {
	n := 0
	for _, k := range resource.Kinds() {
		n = max(n, levelOf(k.Kind))
	}
	return n
}

// neededReads lists the (kind, parent) pairs of one level a plan needs
// read: the kinds that the specs or the state hold in that parent, and
// every kind in a parent this plan may delete or replace (its cascade
// count needs them). A parent missing from the snapshot holds nothing: no
// need to ask.
func neededReads(level int, desired []resource.Desired, st *state.State, snap *Snapshot) []readNeed {
	need := map[readNeed]bool{}
	owned := map[string]bool{}
	for _, r := range st.Resources {
		owned[r.SID] = true
	}
	add := func(kind resource.Kind, parentSID string) {
		if parentSID == "" || levelOf(kind) != level {
			return
		}
		parentKind := resource.Schema(kind).Parent
		parentParent, sid := resource.ParentOfKey(parentSID)
		// A parent missing from the snapshot is gone when the level above
		// listed its kind there or read it as convsync's own. A parent named
		// only by SID (a conversation convsync does not manage:
		// conversation_sid) was not read at all: its children are read
		// anyway, and a 404 says it is gone.
		gone := snap.Listed(parentKind, parentParent) || owned[sid]
		if snap.Get(parentKind, parentParent, sid) != nil || !gone {
			need[readNeed{kind, parentSID}] = true
		}
	}
	// The account's own kinds (services aside, listed above) are read once
	// each when the specs or the state hold one, with the first level.
	addAccount := func(kind resource.Kind) {
		if level == 1 && kind != resource.KindService && resource.Schema(kind).Parent == "" {
			need[readNeed{kind, ""}] = true
		}
	}
	for _, r := range st.Resources {
		addAccount(r.Address.Kind)
		add(r.Address.Kind, r.ParentSID)
	}
	for _, p := range st.Pending {
		addAccount(p.Address.Kind)
		add(p.Address.Kind, p.ParentSID)
	}
	wanted := map[resource.Address]*resource.Desired{}
	for i := range desired {
		d := &desired[i]
		wanted[d.Address] = d
		addAccount(d.Address.Kind)
		add(d.Address.Kind, st.ParentSID(d))
	}
	// Parents that this plan may delete or replace: in the state, and gone
	// from the specs or wanting what only a replacement gives.
	for _, r := range st.Resources {
		kind := resource.Schema(r.Address.Kind)
		if levelOf(kind.Kind) != level-1 || kind.Singleton || len(resource.Children(kind.Kind)) == 0 {
			continue
		}
		obs := snap.Get(kind.Kind, r.ParentSID, r.SID)
		if obs == nil || !mayDestroy(kind, wanted[r.Address], obs, st) {
			continue
		}
		for _, k := range resource.Children(kind.Kind) {
			if !k.Singleton {
				add(k.Kind, resource.ChildKey(kind.Kind, r.ParentSID, r.SID))
			}
		}
	}
	out := make([]readNeed, 0, len(need))
	for n := range need {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].parentSID != out[j].parentSID {
			return out[i].parentSID < out[j].parentSID
		}
		return resource.Rank(out[i].kind) < resource.Rank(out[j].kind)
	})
	return out
}

// mayDestroy reports whether a plan may delete or replace the resource obs
// that d wants (nil: its spec is gone): a field only a replacement changes
// differs, it can no longer be updated, or it moves to another parent.
func mayDestroy(kind *resource.KindSchema, d *resource.Desired, obs *resource.Observed, st *state.State) bool {
	if d == nil {
		return true
	}
	if kind.Parent != "" && st.ParentSID(d) != obs.ParentSID {
		return true
	}
	if kind.Rules != nil && kind.Rules.Frozen != nil && kind.Rules.Frozen(obs.Values) != "" {
		return true
	}
	for _, f := range kind.Fields {
		if want, ok := d.Values[f.Name]; ok && f.ForcesReplace && !f.WriteOnly && !f.Equal(want, obs.Values[f.Name]) {
			return true
		}
	}
	return false
}

func concurrencyOf(opts RefreshOptions) int {
	if opts.Concurrency <= 0 {
		return 8
	}
	return opts.Concurrency
}

// refresher reads the children of several services with one shared bound on
// concurrent requests.
type refresher struct {
	api  Lister
	snap *Snapshot
	opts RefreshOptions
	sem  chan struct{}
}

// serviceRead is the reading of one kind's resources under one service.
type serviceRead struct {
	kind       resource.Kind
	serviceSID string
	method     ReadMethod
	owned      []*state.Resource
	// wanted: natural key → the SID of the owned resource meant to hold it
	// ("" for a new resource).
	wanted    map[string]string
	slices    [][2]time.Time
	knownSize int

	mu    sync.Mutex
	items map[string]resource.Observed // by SID
}

func (sr *serviceRead) add(items ...resource.Observed) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	for _, o := range items {
		sr.items[o.SID] = o
	}
}

func (sr *serviceRead) has(sid string) bool {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	_, ok := sr.items[sid]
	return ok
}

// prepare gathers what the plan needs from one service and picks how to read it.
// readIndex groups the state's resources, its pending creates and the
// specs by (kind, parent key) once per refresh: a refresh of 1,000
// conversations prepares 2,000 reads of their children, and scanning
// everything for each read would cost more than the reads.
type readIndex struct {
	owned   map[readNeed][]*state.Resource
	pending map[readNeed]bool
	desired map[readNeed][]*resource.Desired
}

func newReadIndex(desired []resource.Desired, st *state.State) *readIndex {
	idx := &readIndex{owned: map[readNeed][]*state.Resource{}, pending: map[readNeed]bool{}, desired: map[readNeed][]*resource.Desired{}}
	for _, addr := range st.Addresses() {
		res := st.Resources[addr.String()]
		k := readNeed{res.Address.Kind, res.ParentSID}
		idx.owned[k] = append(idx.owned[k], res)
	}
	for _, p := range st.Pending {
		idx.pending[readNeed{p.Address.Kind, p.ParentSID}] = true
	}
	for i := range desired {
		d := &desired[i]
		k := readNeed{d.Address.Kind, st.ParentSID(d)}
		idx.desired[k] = append(idx.desired[k], d)
	}
	return idx
}

func (r *refresher) prepare(kind resource.Kind, serviceSID string, idx *readIndex, st *state.State) *serviceRead {
	sr := &serviceRead{kind: kind, serviceSID: serviceSID, wanted: map[string]string{}, items: map[string]resource.Observed{}}
	need := readNeed{kind, serviceSID}
	sr.owned = idx.owned[need]
	// What an interrupted create left behind is recognised among every
	// resource created after it started (MatchPending): only a full list
	// shows them all.
	mustList := idx.pending[need]
	schema := resource.Schema(kind)
	if schema.Singleton {
		mustList = true // one request either way
	}
	for _, d := range idx.desired[need] {
		if !schema.HasNaturalKey() {
			break
		}
		name := schema.KeyOf(d.Values)
		if name == "" {
			continue
		}
		if !schema.KeyFetchable(d.Values) {
			mustList = true // only a list finds a key of several fields
		}
		sr.wanted[name] = ""
		if own := st.Get(d.Address); own != nil && own.ParentSID == serviceSID {
			sr.wanted[name] = own.SID
		}
	}

	if len(schema.Limits) > 0 {
		// A new one counts against a limit with everything Twilio holds
		// there (checkLimits): only a list shows what convsync does not own.
		for _, d := range idx.desired[need] {
			if own := st.Get(d.Address); own == nil || own.ParentSID != serviceSID {
				mustList = true
				break
			}
		}
	}

	size, known := r.opts.KnownSizes[SizeKey(kind, serviceSID)]
	sr.knownSize = size
	pageSize := pageSizeOf(kind)
	listCost := max(1, (size+pageSize-1)/pageSize)
	newNames := 0
	for _, sid := range sr.wanted {
		if sid == "" {
			newNames++
		}
	}
	fetchCost := len(sr.owned) + newNames
	switch {
	case !mustList && known && fetchCost < listCost:
		sr.method = ReadFetch
	case !mustList:
		sr.method = ReadList
		if _, ok := r.api.(DayRangeLister); ok && schema.ListsByDate {
			pages := (max(size, len(sr.owned)) + pageSize - 1) / pageSize
			if n := min(cap(r.sem), pages/minPagesPerSlice); n >= 2 {
				if sr.slices = daySlices(sr.owned, n); sr.slices != nil {
					sr.method = ReadListByDay
				}
			}
		}
	default:
		sr.method = ReadList
	}
	return sr
}

// daySlices cuts all time into at most n ranges of whole UTC days holding
// about as many of owned's conversations each (by date_created, which
// Twilio never changes on its own). The first range has no start and the
// last no end, so conversations created before, after or between the owned
// ones are listed too; the balance is only as good as owned is typical of
// the service. nil when owned spans fewer than two days.
func daySlices(owned []*state.Resource, n int) [][2]time.Time {
	perDay := map[time.Time]int{}
	total := 0
	for _, r := range owned {
		if r.CreatedAt.IsZero() {
			continue
		}
		perDay[utcDay(r.CreatedAt)]++
		total++
	}
	days := make([]time.Time, 0, len(perDay))
	for d := range perDay {
		days = append(days, d)
	}
	if len(days) < 2 {
		return nil
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	var cuts []time.Time // first day of every range but the first
	seen := 0
	for _, d := range days {
		if seen > 0 && len(cuts) < n-1 && seen*n >= total*(len(cuts)+1) {
			cuts = append(cuts, d)
		}
		seen += perDay[d]
	}
	if len(cuts) == 0 {
		return nil
	}
	out := make([][2]time.Time, 0, len(cuts)+1)
	var first time.Time
	for _, c := range cuts {
		out = append(out, [2]time.Time{first, c.AddDate(0, 0, -1)})
		first = c
	}
	return append(out, [2]time.Time{first, {}})
}

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// run reads every service: first the lists and the fetches by SID, then the
// follow-ups that depend on them (names to look up, owned resources a
// day-range list did not show), then records the results.
func (r *refresher) run(ctx context.Context, reads []*serviceRead) error {
	var first []task
	for _, sr := range reads {
		sr := sr
		switch sr.method {
		case ReadList:
			first = append(first, task{what: sr.describe("listing"), do: func(ctx context.Context) error {
				items, err := r.api.List(ctx, sr.kind, sr.serviceSID)
				if twilioapi.IsNotFound(err) && resource.Schema(sr.kind).Parent != "" {
					return nil // the parent is gone, and everything in it
				}
				sr.add(items...)
				return err
			}})
		case ReadListByDay:
			ranged := r.api.(DayRangeLister)
			for _, sl := range sr.slices {
				sl := sl
				first = append(first, task{what: sr.describe("listing by day"), do: func(ctx context.Context) error {
					items, err := ranged.ListCreatedBetween(ctx, sr.kind, sr.serviceSID, sl[0], sl[1])
					sr.add(items...)
					return err
				}})
			}
		case ReadFetch:
			for _, own := range sr.owned {
				first = append(first, r.fetchTask(sr, own.SID))
			}
		}
	}
	if err := r.all(ctx, first); err != nil {
		return err
	}

	var second []task
	for _, sr := range reads {
		switch sr.method {
		case ReadListByDay:
			// Someone may have changed a date_created during the listing:
			// an owned conversation is only gone when a GET says so.
			for _, own := range sr.owned {
				if !sr.has(own.SID) {
					second = append(second, r.fetchTask(sr, own.SID))
				}
			}
		case ReadFetch:
			names := make([]string, 0, len(sr.wanted))
			for name := range sr.wanted {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				if holder := sr.wanted[name]; holder != "" && sr.holds(holder, name) {
					continue // its own conversation holds it: no conflict possible
				}
				second = append(second, r.fetchTask(sr, name))
			}
		}
	}
	if err := r.all(ctx, second); err != nil {
		return err
	}

	for _, sr := range reads {
		items := make([]resource.Observed, 0, len(sr.items))
		for _, o := range sr.items {
			items = append(items, o)
		}
		key := SizeKey(sr.kind, sr.serviceSID)
		r.snap.methods[key] = sr.method
		if sr.method == ReadFetch {
			for _, o := range items {
				r.snap.Put(o)
			}
			r.snap.sizes[key] = sr.knownSize
			continue
		}
		r.snap.SetListed(sr.kind, sr.serviceSID, items)
		r.snap.sizes[key] = len(items)
	}
	return nil
}

func (sr *serviceRead) holds(sid, name string) bool {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	o, ok := sr.items[sid]
	return ok && resource.Schema(sr.kind).KeyOf(o.Values) == name
}

func (sr *serviceRead) describe(verb string) string {
	if resource.Schema(sr.kind).Parent == "" {
		return fmt.Sprintf("%s %s of the account", verb, resource.Schema(sr.kind).Plural)
	}
	return fmt.Sprintf("%s %s of %s %s", verb, resource.Schema(sr.kind).Plural, lower(resource.Schema(sr.kind).Parent), sr.serviceSID)
}

// fetchTask reads one resource by SID or natural key; not found is an answer.
func (r *refresher) fetchTask(sr *serviceRead, id string) task {
	return task{what: fmt.Sprintf("fetching %s %s of %s %s", lower(sr.kind), id, lower(resource.Schema(sr.kind).Parent), sr.serviceSID), do: func(ctx context.Context) error {
		o, err := r.api.Fetch(ctx, sr.kind, sr.serviceSID, id)
		switch {
		case twilioapi.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		sr.add(o)
		return nil
	}}
}

type task struct {
	what string
	do   func(ctx context.Context) error
}

// all runs tasks at most cap(r.sem) at a time and returns the first error
// in task order. After an error the tasks not yet started are skipped.
func (r *refresher) all(ctx context.Context, tasks []task) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i := range tasks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			select {
			case r.sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-r.sem }()
			if err := ctx.Err(); err != nil {
				errs[i] = err
				return
			}
			if errs[i] = tasks[i].do(ctx); errs[i] != nil {
				cancel()
			}
		}(i)
	}
	wg.Wait()
	// Report the cause, not the cancellations it led to.
	var firstErr error
	for i, err := range errs {
		if err == nil {
			continue
		}
		wrapped := fmt.Errorf("refresh: %s: %w", tasks[i].what, err)
		if !errors.Is(err, context.Canceled) {
			return wrapped
		}
		if firstErr == nil {
			firstErr = wrapped
		}
	}
	return firstErr
}

func lower(k resource.Kind) string { return strings.ToLower(string(k)) }
