package planner

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// Lister is the part of the Twilio client that refresh needs.
type Lister interface {
	List(ctx context.Context, kind resource.Kind, parentSID string) ([]resource.Observed, error)
}

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
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{
		objects: map[resource.Kind]map[string]map[string]*resource.Observed{},
		listed:  map[resource.Kind]map[string]bool{},
	}
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

// RefreshOptions tunes Refresh.
type RefreshOptions struct {
	// Concurrency bounds how many list calls run at once (default 8).
	Concurrency int
}

// Refresh reads from Twilio what a plan over desired and st needs: the
// account's services (one paged list), then the conversations of every
// service that a spec or the state refers to, one paged list per service,
// services in parallel. Its cost is ceil(N/100) requests per service rather
// than one request per resource.
func Refresh(ctx context.Context, api Lister, desired []resource.Desired, st *state.State, opts RefreshOptions) (*Snapshot, error) {
	snap := NewSnapshot()
	services, err := api.List(ctx, resource.KindService, "")
	if err != nil {
		return nil, fmt.Errorf("refresh: listing services: %w", err)
	}
	snap.SetListed(resource.KindService, "", services)

	parents := map[string]bool{}
	for _, r := range st.Resources {
		if r.Address.Kind == resource.KindService {
			parents[r.SID] = true
		} else if r.ParentSID != "" {
			parents[r.ParentSID] = true
		}
	}
	for _, p := range st.Pending {
		if p.ParentSID != "" {
			parents[p.ParentSID] = true
		}
	}
	for _, d := range desired {
		if d.Parent.SID != "" {
			parents[d.Parent.SID] = true
		}
	}
	var sids []string
	for sid := range parents {
		// A service missing from the account holds nothing: no need to ask.
		if snap.Get(resource.KindService, "", sid) != nil {
			sids = append(sids, sid)
		}
	}
	sort.Strings(sids)
	if err := listChildren(ctx, api, snap, sids, opts.Concurrency); err != nil {
		return nil, err
	}
	return snap, nil
}

// listChildren lists every child kind under each service SID, concurrently.
func listChildren(ctx context.Context, api Lister, snap *Snapshot, serviceSIDs []string, concurrency int) error {
	if concurrency <= 0 {
		concurrency = 8
	}
	type result struct {
		kind   resource.Kind
		parent string
		items  []resource.Observed
		err    error
	}
	var jobs []result
	for _, k := range resource.Kinds() {
		if k.Parent != resource.KindService {
			continue
		}
		for _, sid := range serviceSIDs {
			jobs = append(jobs, result{kind: k.Kind, parent: sid})
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrency)
	for i := range jobs {
		wg.Add(1)
		go func(j *result) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				j.err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			j.items, j.err = api.List(ctx, j.kind, j.parent)
		}(&jobs[i])
	}
	wg.Wait()
	for _, j := range jobs {
		if j.err != nil {
			return fmt.Errorf("refresh: listing %ss of service %s: %w", lower(j.kind), j.parent, j.err)
		}
		snap.SetListed(j.kind, j.parent, j.items)
	}
	return nil
}

func lower(k resource.Kind) string { return resource.Address{Kind: k}.String()[:len(k)] }
