package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

func main() {
	only := flag.String("only", "", "run only these scenarios (comma-separated: refresh, kinds, children, choice, latency, growth, apply, daemon)")
	withApply := flag.Bool("apply", false, "also run the apply throughput scenario (about 45 s)")
	runs := flag.Int("runs", 3, "runs per measurement; the median wall time is shown")
	edits := flag.Int("daemon-edits", 100, "daemon scenario: spec edits measured per run")
	files := flag.Int("daemon-files", 100, "daemon scenario: spec files the 10,000 conversations are spread over")
	debounces := flag.String("daemon-debounce", "200ms,50ms", "daemon scenario: --debounce values to run (comma-separated)")
	flag.Parse()
	want := func(name string) bool {
		if *only != "" {
			for _, s := range strings.Split(*only, ",") {
				if strings.TrimSpace(s) == name {
					return true
				}
			}
			return false
		}
		return name != "apply" || *withApply
	}
	daemonOpts := daemonOptions{conversations: 10000, files: *files, edits: *edits}
	for _, s := range strings.Split(*debounces, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "-daemon-debounce %q: want positive durations such as 200ms,50ms\n", *debounces)
			os.Exit(2)
		}
		daemonOpts.debounces = append(daemonOpts.debounces, d)
	}
	if *edits < 1 || *files < 1 || *files > daemonOpts.conversations {
		fmt.Fprintf(os.Stderr, "-daemon-edits must be at least 1 and -daemon-files between 1 and %d\n", daemonOpts.conversations)
		os.Exit(2)
	}
	b := &bench{ctx: context.Background(), runs: max(*runs, 1)}
	fmt.Printf("convsync bench — %s, %s/%s, %d CPUs, %s\n", time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	for _, sc := range []struct {
		name string
		run  func() error
	}{
		{"refresh", b.refreshCost},
		{"kinds", b.kindsRefresh},
		{"children", b.childrenRefresh},
		{"choice", b.choice},
		{"latency", b.latency},
		{"growth", b.growth},
		{"apply", b.applyThroughput},
		{"daemon", func() error { return b.daemonReaction(daemonOpts) }},
	} {
		if !want(sc.name) {
			continue
		}
		if err := sc.run(); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", sc.name, err)
			os.Exit(1)
		}
	}
}

type bench struct {
	ctx  context.Context
	runs int
}

// repeat runs f b.runs times (once when once is set) and returns the last
// result with the median wall time.
func (b *bench) repeat(once bool, f func() (result, error)) (result, error) {
	n := b.runs
	if once {
		n = 1
	}
	var walls []time.Duration
	var r result
	for i := 0; i < n; i++ {
		var err error
		if r, err = f(); err != nil {
			return r, err
		}
		walls = append(walls, r.wall)
	}
	r.wall = median(walls)
	return r, nil
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func pages(n int) int { return (n + 99) / 100 }

// refreshCost: a no-change plan over N conversations in one service, by
// listing (convsync) and by one GET per conversation (per-resource).
func (b *bench) refreshCost() error {
	fmt.Println("\n### Refresh cost: no-change plan over N conversations in one service")
	fmt.Println()
	fmt.Println("| N | added latency | approach | API requests | expected | wall time (median) |")
	fmt.Println("|---:|---:|---|---:|---:|---:|")
	for _, n := range []int{1000, 10000} {
		t, s, desired, st, api, err := seededService("refresh", n, 0, 1, "conv-")
		if err != nil {
			return err
		}
		for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
			if err := t.emu.SetFaults(emulator.Faults{Latency: latency}); err != nil {
				return err
			}
			r, err := b.repeat(false, func() (result, error) {
				return plan(b.ctx, t, api, desired, st, planner.RefreshOptions{}, s.serviceSID)
			})
			if err != nil {
				return err
			}
			fmt.Printf("| %d | %d ms | convsync (paged list) | %d | %d | %s |\n", n, latency.Milliseconds(), r.requests, pages(n)+1, ms(r.wall))
			slow := latency > 0 && n > 1000
			r, err = b.repeat(slow, func() (result, error) { return perResourceRefresh(b.ctx, t, api, st) })
			if err != nil {
				return err
			}
			fmt.Printf("| %d | %d ms | per-resource GET, parallelism 10 | %d | %d | %s |\n", n, latency.Milliseconds(), r.requests, n+1, ms(r.wall))
		}
		t.stop()
	}
	return nil
}

// choice: listing costs ceil(total/100), fetching one per owned
// conversation; Refresh picks by the size seen at the last refresh.
func (b *bench) choice() error {
	fmt.Println("\n### List or fetch: chosen per service from the size seen at the last refresh")
	fmt.Println()
	fmt.Println("| service holds | convsync owns | added latency | size known? | method | API requests | wall time (median) |")
	fmt.Println("|---:|---:|---:|---|---|---:|---:|")
	for _, c := range []struct{ owned, others int }{{20, 50000}, {10000, 0}} {
		t, s, desired, st, api, err := seededService("choice", c.owned, c.others, 1, "mine-")
		if err != nil {
			return err
		}
		// What a previous refresh saw, as the daemon keeps it.
		first, err := planner.Refresh(b.ctx, api, desired, st, planner.RefreshOptions{})
		if err != nil {
			return err
		}
		known := first.Sizes()
		for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
			if err := t.emu.SetFaults(emulator.Faults{Latency: latency}); err != nil {
				return err
			}
			for _, hint := range []map[string]int{nil, known} {
				r, err := b.repeat(false, func() (result, error) {
					return plan(b.ctx, t, api, desired, st, planner.RefreshOptions{KnownSizes: hint}, s.serviceSID)
				})
				if err != nil {
					return err
				}
				yes := "no (first run)"
				if hint != nil {
					yes = fmt.Sprintf("yes (%d)", hint[s.serviceSID])
				}
				fmt.Printf("| %d | %d | %d ms | %s | %s | %d | %s |\n", c.owned+c.others, c.owned, latency.Milliseconds(), yes, r.method, r.requests, ms(r.wall))
			}
		}
		t.stop()
	}
	return nil
}

// latency: plan wall time with 50 ms added to every request.
func (b *bench) latency() error {
	const latency = 50 * time.Millisecond
	fmt.Println("\n### Plan wall time with 50 ms added per request (no-change plans)")
	fmt.Println()
	fmt.Println("| layout | client | method | API requests | wall time (median) |")
	fmt.Println("|---|---|---|---:|---:|")
	for _, c := range []struct {
		label string
		days  int
		byDay bool
	}{
		{"1 service × 10,000, created over 100 days", 100, false},
		{"1 service × 10,000, created over 100 days", 100, true},
		{"1 service × 10,000, all created the same day", 1, true},
	} {
		t, s, desired, st, base, err := seededService("latency", 10000, 0, c.days, "conv-")
		if err != nil {
			return err
		}
		var api planner.Lister = listOnly{base}
		label := "paged list only"
		if c.byDay {
			api, label = base, "twilioapi.Client (day-range lists)"
		}
		if err := t.emu.SetFaults(emulator.Faults{Latency: latency}); err != nil {
			return err
		}
		r, err := b.repeat(false, func() (result, error) {
			return plan(b.ctx, t, api, desired, st, planner.RefreshOptions{}, s.serviceSID)
		})
		if err != nil {
			return err
		}
		fmt.Printf("| %s | %s | %s | %d | %s |\n", c.label, label, r.method, r.requests, ms(r.wall))
		t.stop()
	}

	t, err := startEmulator(emulator.Faults{})
	if err != nil {
		return err
	}
	defer t.stop()
	var all []seeded
	for i := 0; i < 10; i++ {
		s, err := t.seed(fmt.Sprintf("svc-%d", i), 1000, 0, 1, fmt.Sprintf("s%d-", i))
		if err != nil {
			return err
		}
		all = append(all, s)
	}
	desired, st := manage(all...)
	api, err := t.client(0)
	if err != nil {
		return err
	}
	if err := t.emu.SetFaults(emulator.Faults{Latency: latency}); err != nil {
		return err
	}
	for _, conc := range []int{1, 8, 10} {
		r, err := b.repeat(false, func() (result, error) {
			return plan(b.ctx, t, api, desired, st, planner.RefreshOptions{Concurrency: conc}, all[0].serviceSID)
		})
		if err != nil {
			return err
		}
		note := ""
		if conc == 8 {
			note = " (default)"
		}
		fmt.Printf("| 10 services × 1,000 | twilioapi.Client, Concurrency %d%s | %s | %d | %s |\n", conc, note, r.method, r.requests, ms(r.wall))
	}
	return nil
}

// growth: how a no-change plan's cost grows with N (no added latency).
func (b *bench) growth() error {
	fmt.Println("\n### Growth with N: no-change plan, one service, no added latency")
	fmt.Println()
	fmt.Println("| N | API requests | per-resource would send | wall time (median) | µs per conversation | heap held by snapshot + plan |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|")
	for _, n := range []int{100, 1000, 10000, 50000} {
		t, s, desired, st, api, err := seededService("growth", n, 0, 1, "conv-")
		if err != nil {
			return err
		}
		r, err := b.repeat(false, func() (result, error) {
			return plan(b.ctx, t, api, desired, st, planner.RefreshOptions{}, s.serviceSID)
		})
		if err != nil {
			return err
		}
		fmt.Printf("| %d | %d | %d | %s | %.0f | %s |\n", n, r.requests, n+1, ms(r.wall), float64(r.wall.Microseconds())/float64(n), mib(r.heap))
		t.stop()
	}
	return nil
}

// applyThroughput: create 1,000 conversations against an emulator that
// allows 30 creates per second per service, in one service and in four.
func (b *bench) applyThroughput() error {
	const n, rate = 1000, 30.0
	fmt.Println("\n### Apply throughput: create 1,000 conversations, emulator limited to 30 creates/s per service")
	fmt.Println()
	fmt.Println("| services | spec order | minimum at 30/s per service | wall time | ratio to minimum | failed steps | API requests | 429 answers |")
	fmt.Println("|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, c := range []struct {
		services   int
		interleave bool
	}{{1, false}, {4, false}, {4, true}} {
		services := c.services
		t, err := startEmulator(emulator.Faults{ActionsPerSecondPerService: rate})
		if err != nil {
			return err
		}
		var desired []resource.Desired
		for i := 0; i < services; i++ {
			svc, err := t.emu.AddService(fmt.Sprintf("apply-%d", i))
			if err != nil {
				return err
			}
			for j := 0; j < n/services; j++ {
				// Plans run in address order: "s0-…" puts one service's
				// creates first, "c0000-s0, c0000-s1, …" alternates services.
				name := fmt.Sprintf("s%d-c%04d", i, j)
				if c.interleave {
					name = fmt.Sprintf("c%04d-s%d", j, i)
				}
				desired = append(desired, resource.Desired{
					Address: resource.Address{Kind: resource.KindConversation, Name: name},
					Parent:  resource.Ref{SID: svc.SID}, Timeouts: resource.DefaultTimeouts,
					Values: resource.Values{resource.FieldUniqueName: name, resource.FieldFriendlyName: name},
				})
			}
		}
		api, err := t.client(0)
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "convsync-bench-")
		if err != nil {
			return err
		}
		store, err := state.Open(filepath.Join(dir, "convsync.state.json"), state.Options{Holder: "convsync bench"})
		if err != nil {
			return err
		}
		e := &engine.Engine{API: api}
		p, err := e.Plan(b.ctx, desired, "bench", store.State(), nil)
		if err != nil {
			return err
		}
		t.emu.ResetStats()
		start := time.Now()
		res := e.Apply(b.ctx, store, p, apply.Options{})
		wall := time.Since(start)
		stats := t.emu.Stats()
		store.Close()
		os.RemoveAll(dir)
		// The emulator's bucket starts full (one second's worth), so the
		// fastest legal run is (n/services - rate)/rate seconds per service;
		// the target is stated against n/rate/services.
		minimum := time.Duration(math.Ceil(float64(n)/rate/float64(services)*1000)) * time.Millisecond
		order := "service by service"
		if c.interleave {
			order = "services alternate"
		}
		if services == 1 {
			order = "—"
		}
		fmt.Printf("| %d | %s | %s | %s | %.2f | %d | %d | %d |\n", services, order, ms(minimum), ms(wall), wall.Seconds()/minimum.Seconds(), len(res.Failed()), stats.Total, stats.ByStatus["429"])
		t.stop()
	}
	return nil
}
