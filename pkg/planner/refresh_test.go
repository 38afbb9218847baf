package planner

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// fakeTwilio serves List and Fetch from memory and counts the requests
// Twilio would have answered (one per page of 100 for a list).
type fakeTwilio struct {
	services []resource.Observed
	convs    map[string][]resource.Observed

	mu       sync.Mutex
	requests int
	fetched  []string
}

func newFakeTwilio(serviceSIDs ...string) *fakeTwilio {
	f := &fakeTwilio{convs: map[string][]resource.Observed{}}
	for _, sid := range serviceSIDs {
		f.services = append(f.services, observedService(sid, "svc "+sid))
	}
	return f
}

// add puts n conversations into service, named prefix+i, created on
// consecutive days from t0 (day i%days).
func (f *fakeTwilio) add(service, prefix string, n, days int) []resource.Observed {
	var out []resource.Observed
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		o := observedConv(fmt.Sprintf("CH%s%030d", prefix[:2], i), service, resource.Values{resource.FieldUniqueName: name})
		o.DateCreated = t0.AddDate(0, 0, i%max(days, 1))
		f.convs[service] = append(f.convs[service], o)
		out = append(out, o)
	}
	return out
}

func (f *fakeTwilio) count(pages int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests += max(pages, 1)
}

func (f *fakeTwilio) List(_ context.Context, kind resource.Kind, parent string) ([]resource.Observed, error) {
	if kind == resource.KindService {
		f.count(1)
		return append([]resource.Observed(nil), f.services...), nil
	}
	items := f.convs[parent]
	f.count((len(items) + 99) / 100)
	return append([]resource.Observed(nil), items...), nil
}

func (f *fakeTwilio) Fetch(_ context.Context, kind resource.Kind, parent, id string) (resource.Observed, error) {
	f.count(1)
	f.mu.Lock()
	f.fetched = append(f.fetched, id)
	f.mu.Unlock()
	for _, o := range f.convs[parent] {
		if o.SID == id || o.Values[resource.FieldUniqueName] == id {
			return o, nil
		}
	}
	return resource.Observed{}, &twilioapi.APIError{Status: 404, Code: 20404, Message: "not found"}
}

// rangedTwilio also lists by day range; hide leaves SIDs out of every
// range, as if someone changed their date_created during the listing.
type rangedTwilio struct {
	*fakeTwilio
	hide   map[string]bool
	ranges [][2]time.Time
}

func (f *rangedTwilio) ListCreatedBetween(_ context.Context, _ resource.Kind, parent string, first, last time.Time) ([]resource.Observed, error) {
	var out []resource.Observed
	for _, o := range f.convs[parent] {
		day := utcDay(o.DateCreated)
		if f.hide[o.SID] || (!first.IsZero() && day.Before(first)) || (!last.IsZero() && day.After(last)) {
			continue
		}
		out = append(out, o)
	}
	f.count((len(out) + 99) / 100)
	f.mu.Lock()
	f.ranges = append(f.ranges, [2]time.Time{first, last})
	f.mu.Unlock()
	return out, nil
}

// own records convs in st as managed, with specs that match them.
func own(st *state.State, convs []resource.Observed) []resource.Desired {
	var desired []resource.Desired
	for _, o := range convs {
		name := o.Values[resource.FieldUniqueName]
		v := resource.Values{resource.FieldUniqueName: name}
		st.Put(&state.Resource{Address: convAddr(name), SID: o.SID, ParentSID: o.ParentSID, Applied: v, CreatedAt: o.DateCreated})
		desired = append(desired, desiredConv(name, o.ParentSID, v))
	}
	return desired
}

// convKey is the size key of the test service's conversations.
var convKey = SizeKey(resource.KindConversation, svcSID)

func TestRefreshChoosesTheCheaperRead(t *testing.T) {
	cases := []struct {
		name         string
		owned, other int
		known        map[string]int
		pending      bool
		wantMethod   ReadMethod
		wantRequests int // including the services list
	}{
		{name: "few owned among many: fetch", owned: 20, other: 5000, known: map[string]int{convKey: 5020}, wantMethod: ReadFetch, wantRequests: 1 + 20},
		{name: "all owned: list", owned: 300, known: map[string]int{convKey: 300}, wantMethod: ReadList, wantRequests: 1 + 3},
		{name: "size unknown: list", owned: 20, other: 5000, wantMethod: ReadList, wantRequests: 1 + 51},
		{name: "fetching costs as much as listing: list", owned: 2, other: 198, known: map[string]int{convKey: 200}, wantMethod: ReadList, wantRequests: 1 + 2},
		{name: "interrupted create: list to find what it left", owned: 20, other: 5000, known: map[string]int{convKey: 5020}, pending: true, wantMethod: ReadList, wantRequests: 1 + 51},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeTwilio(svcSID)
			api.add(svcSID, "zz-other-", tc.other, 1)
			st := state.New()
			desired := own(st, api.add(svcSID, "mine-", tc.owned, 1))
			if tc.pending {
				st.AddPending(&state.Pending{Address: convAddr("lost"), Kind: resource.KindConversation, ParentSID: svcSID, Values: resource.Values{resource.FieldFriendlyName: "lost"}, StartedAt: t0})
			}
			snap, err := Refresh(context.Background(), api, desired, st, RefreshOptions{KnownSizes: tc.known})
			if err != nil {
				t.Fatal(err)
			}
			if got := snap.Method(resource.KindConversation, svcSID); got != tc.wantMethod {
				t.Errorf("method = %s, want %s", got, tc.wantMethod)
			}
			if api.requests != tc.wantRequests {
				t.Errorf("requests = %d, want %d", api.requests, tc.wantRequests)
			}
			plan, err := Compute(desired, st, snap)
			if err != nil {
				t.Fatal(err)
			}
			if noOps(plan) != tc.owned {
				t.Errorf("plan: %+v, want %d conversations unchanged", plan.Summary(), tc.owned)
			}
			want := tc.owned + tc.other
			if tc.wantMethod == ReadFetch {
				want = tc.known[convKey] // kept for the next refresh
			}
			if got := snap.Sizes()[convKey]; got != want {
				t.Errorf("Sizes()[service] = %d, want %d", got, want)
			}
		})
	}
}

// Reading by fetch must see what a list would have shown the plan.
func TestRefreshByFetchSeesDeletionsAndNameConflicts(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(st *state.State, desired []resource.Desired) []resource.Desired
		deleted string // SID deleted outside convsync before the refresh
		wantErr string
		want    string // a reason in the plan
	}{
		{
			name:    "owned conversation deleted outside convsync",
			deleted: "CHmi000000000000000000000000000001",
			want:    "deleted outside convsync: CHmi000000000000000000000000000001 is no longer in Twilio",
		},
		{
			name: "new conversation wants a unique_name someone else holds",
			edit: func(_ *state.State, d []resource.Desired) []resource.Desired {
				return append(d, desiredConv("newcomer", svcSID, resource.Values{resource.FieldUniqueName: "zz-other-7"}))
			},
			wantErr: `unique_name "zz-other-7" is already taken in service ` + svcSID + " by CHzz000000000000000000000000000007",
		},
		{
			name: "owned conversation renamed to a unique_name someone else holds",
			edit: func(_ *state.State, d []resource.Desired) []resource.Desired {
				d[0].Values = resource.Values{resource.FieldUniqueName: "zz-other-3"}
				return d
			},
			wantErr: `unique_name "zz-other-3" is already taken`,
		},
		{
			name: "new conversation with a free unique_name",
			edit: func(_ *state.State, d []resource.Desired) []resource.Desired {
				return append(d, desiredConv("newcomer", svcSID, resource.Values{resource.FieldUniqueName: "free"}))
			},
			want: "not yet created",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeTwilio(svcSID)
			api.add(svcSID, "zz-other-", 5000, 1)
			st := state.New()
			desired := own(st, api.add(svcSID, "mine-", 3, 1))
			if tc.edit != nil {
				desired = tc.edit(st, desired)
			}
			if tc.deleted != "" {
				kept := api.convs[svcSID][:0]
				for _, o := range api.convs[svcSID] {
					if o.SID != tc.deleted {
						kept = append(kept, o)
					}
				}
				api.convs[svcSID] = kept
			}
			snap, err := Refresh(context.Background(), api, desired, st, RefreshOptions{KnownSizes: map[string]int{convKey: 5003}})
			if err != nil {
				t.Fatal(err)
			}
			if got := snap.Method(resource.KindConversation, svcSID); got != ReadFetch {
				t.Fatalf("method = %s, want fetch", got)
			}
			plan, err := Compute(desired, st, snap)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Compute error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, c := range plan.Changes {
				reasons = append(reasons, c.Reason)
			}
			if !strings.Contains(strings.Join(reasons, "\n"), tc.want) {
				t.Errorf("plan reasons %q, want one containing %q", reasons, tc.want)
			}
		})
	}
}

func TestRefreshListsALargeServiceByDayRanges(t *testing.T) {
	api := &rangedTwilio{fakeTwilio: newFakeTwilio(svcSID), hide: map[string]bool{}}
	before := api.add(svcSID, "bb-before-", 50, 1)
	for i := range before {
		before[i].DateCreated = t0.AddDate(-1, 0, 0) // a year before any owned one
		api.convs[svcSID][i] = before[i]
	}
	st := state.New()
	mine := api.add(svcSID, "mine-", 3000, 30)
	desired := own(st, mine)
	after := api.add(svcSID, "zz-after-", 70, 1)
	for i := range after {
		api.convs[svcSID][3050+i].DateCreated = t0.AddDate(1, 0, 0)
	}
	api.hide[mine[5].SID] = true // its date_created moved during the listing

	snap, err := Refresh(context.Background(), api, desired, st, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Method(resource.KindConversation, svcSID); got != ReadListByDay {
		t.Fatalf("method = %s, want %s", got, ReadListByDay)
	}
	if len(api.ranges) != 3 { // 30 pages, at least 10 per range
		t.Errorf("listed %d day ranges, want 3: %v", len(api.ranges), api.ranges)
	}
	if got := snap.Sizes()[convKey]; got != 3120 {
		t.Errorf("snapshot holds %d conversations, want all 3120 (those before, between and after the owned ones)", got)
	}
	if len(api.fetched) != 1 || api.fetched[0] != mine[5].SID {
		t.Errorf("fetched %v, want only the owned conversation the ranges did not show", api.fetched)
	}
	plan, err := Compute(desired, st, snap)
	if err != nil {
		t.Fatal(err)
	}
	if plan.HasChanges() || noOps(plan) != 3000 {
		t.Errorf("plan %+v, want 3000 unchanged", plan.Summary())
	}
}

func TestDaySlicesCoverAllTime(t *testing.T) {
	day := func(n int) time.Time { return t0.AddDate(0, 0, n) }
	var owned []*state.Resource
	for i := 0; i < 100; i++ {
		owned = append(owned, &state.Resource{CreatedAt: day(i % 10).Add(time.Duration(i) * time.Minute)})
	}
	slices := daySlices(owned, 4)
	if len(slices) < 2 || len(slices) > 4 {
		t.Fatalf("got %d slices, want 2 to 4: %v", len(slices), slices)
	}
	if !slices[0][0].IsZero() || !slices[len(slices)-1][1].IsZero() {
		t.Errorf("first range must have no start and last no end: %v", slices)
	}
	for i := 1; i < len(slices); i++ {
		if !slices[i][0].Equal(slices[i-1][1].AddDate(0, 0, 1)) {
			t.Errorf("range %d starts %s, want the day after %s (no gap, no overlap)", i, slices[i][0], slices[i-1][1])
		}
	}
	if got := daySlices(owned[:1], 4); got != nil {
		t.Errorf("one day cannot be split, got %v", got)
	}
}

func noOps(p *Plan) int {
	n := 0
	for _, c := range p.Changes {
		if c.Action == NoOp {
			n++
		}
	}
	return n
}
