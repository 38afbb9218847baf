package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
)

// The request counts the bench prints are exact: these tests pin them at a
// size that runs in about a second, over real HTTP against the emulator.
func TestRequestCounts(t *testing.T) {
	cases := []struct {
		name             string
		owned, others    int
		days             int
		dayRanges, known bool
		wantMethod       planner.ReadMethod
		wantRequests     int64 // including the services list
	}{
		{name: "paged list: one request per 100", owned: 1000, days: 1, wantMethod: planner.ReadList, wantRequests: 1 + 10},
		{name: "few owned, size unknown: list", owned: 20, others: 2000, days: 1, wantMethod: planner.ReadList, wantRequests: 1 + 21},
		{name: "few owned, size known: fetch", owned: 20, others: 2000, days: 1, known: true, wantMethod: planner.ReadFetch, wantRequests: 1 + 20},
		{name: "spread over days: day ranges", owned: 2000, days: 20, dayRanges: true, wantMethod: planner.ReadListByDay, wantRequests: 1 + 20},
		{name: "one day cannot be split: list", owned: 2000, days: 1, dayRanges: true, wantMethod: planner.ReadList, wantRequests: 1 + 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tw, err := startEmulator(emulator.Faults{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(tw.stop)
			s, err := tw.seed("test", tc.owned, tc.others, tc.days, "c-")
			if err != nil {
				t.Fatal(err)
			}
			desired, st := manage(s)
			client, err := tw.client(0)
			if err != nil {
				t.Fatal(err)
			}
			var api planner.Lister = listOnly{client}
			if tc.dayRanges {
				api = client
			}
			var opts planner.RefreshOptions
			if tc.known {
				opts.KnownSizes = map[string]int{planner.SizeKey(resource.KindConversation, s.serviceSID): tc.owned + tc.others}
			}
			r, err := plan(context.Background(), tw, api, desired, st, opts, s.serviceSID)
			if err != nil {
				t.Fatal(err)
			}
			if r.method != string(tc.wantMethod) || r.requests != tc.wantRequests {
				t.Errorf("method %s with %d requests, want %s with %d", r.method, r.requests, tc.wantMethod, tc.wantRequests)
			}
		})
	}
}

func TestPerResourceRefreshSendsOneGetPerConversation(t *testing.T) {
	tw, err := startEmulator(emulator.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.stop)
	s, err := tw.seed("test", 300, 0, 1, "c-")
	if err != nil {
		t.Fatal(err)
	}
	_, st := manage(s)
	client, err := tw.client(0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := perResourceRefresh(context.Background(), tw, client, st)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 301 {
		t.Errorf("%d requests, want 301 (services list + one GET each)", r.requests)
	}
}

// BenchmarkNoChangePlan: go test -bench NoChangePlan ./bench/
func BenchmarkNoChangePlan(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			tw, err := startEmulator(emulator.Faults{})
			if err != nil {
				b.Fatal(err)
			}
			defer tw.stop()
			s, err := tw.seed("bench", n, 0, 1, "c-")
			if err != nil {
				b.Fatal(err)
			}
			desired, st := manage(s)
			client, err := tw.client(0)
			if err != nil {
				b.Fatal(err)
			}
			var requests int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := plan(context.Background(), tw, client, desired, st, planner.RefreshOptions{}, s.serviceSID)
				if err != nil {
					b.Fatal(err)
				}
				requests = r.requests
			}
			b.ReportMetric(float64(requests), "requests/op")
		})
	}
}
