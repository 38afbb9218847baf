package main

// The "scale of the engine itself" target of issue 6: loading specs and state
// and planning N conversations (refresh excluded) must take under 2 s of CPU
// and under 500 MB of peak memory at N = 100,000.
//
//	go test -run '^$' -bench EngineScale -benchtime 1x ./bench/
//
// Each measurement runs in a fresh child process (this test binary again), so
// that its CPU time and peak resident memory (getrusage: utime+stime, maxrss)
// count only the work measured, not the generation of the fixtures. Set
// BENCH_ENGINE_SCALE_CPUPROFILE=/tmp/scale.prof to get a CPU profile of each
// child (one file per N).

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/spec"
	"github.com/convsync/convsync/pkg/state"
)

const (
	scaleServiceSID  = "IS00000000000000000000000000000001"
	scalePerSpecFile = 1000 // conversations per spec file
)

func scaleConversationSID(i int) string { return fmt.Sprintf("CH%032x", i+1) }

func scaleConversationName(i int) string { return fmt.Sprintf("customer-%06d", i) }

// scaleConversationValues is what the spec of conversation i asks for, as the
// loader returns it and as Twilio would show it.
func scaleConversationValues(i int) resource.Values {
	return resource.Values{
		resource.FieldUniqueName:   scaleConversationName(i),
		resource.FieldFriendlyName: "Customer " + scaleConversationName(i),
		resource.FieldAttributes:   fmt.Sprintf(`{"customer":%d,"tier":"gold"}`, i),
		resource.FieldState:        resource.StateActive,
	}
}

// writeScaleFixtures writes, under dir, a spec folder with one service and n
// conversations (scalePerSpecFile to a file), and a state file that owns them all,
// as after an apply of those specs.
func writeScaleFixtures(tb testing.TB, dir string, n int) {
	tb.Helper()
	specs := filepath.Join(dir, "specs")
	if err := os.MkdirAll(specs, 0o755); err != nil {
		tb.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(specs, name), []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write("service.yaml", "kind: Service\nname: support\nfriendly_name: Support\n")
	var b strings.Builder
	for i := range n {
		if b.Len() > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, "kind: Conversation\nname: %s\nservice: support\nunique_name: %s\nfriendly_name: Customer %s\nattributes: {customer: %d, tier: gold}\nstate: active\n",
			scaleConversationName(i), scaleConversationName(i), scaleConversationName(i), i)
		if (i+1)%scalePerSpecFile == 0 || i == n-1 {
			write(fmt.Sprintf("conversations-%04d.yaml", i/scalePerSpecFile), b.String())
			b.Reset()
		}
	}

	st := state.New()
	st.Serial = uint64(n + 1)
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	st.Put(&state.Resource{Address: resource.Address{Kind: resource.KindService, Name: "support"}, SID: scaleServiceSID,
		Applied: resource.Values{resource.FieldFriendlyName: "Support"}, CreatedAt: created})
	for i := range n {
		st.Put(&state.Resource{Address: resource.Address{Kind: resource.KindConversation, Name: scaleConversationName(i)},
			SID: scaleConversationSID(i), ParentSID: scaleServiceSID, Applied: scaleConversationValues(i), CreatedAt: created})
	}
	out, err := os.OpenFile(filepath.Join(dir, state.DefaultPath), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	if err := state.Encode(out, st, "bench"); err != nil {
		tb.Fatal(err)
	}
}

// scalePhase is the cost of one step of the child, from getrusage.
type scalePhase struct {
	Name    string
	Wall    time.Duration
	CPU     time.Duration // user + system
	Counted bool          // part of the target (the snapshot stands in for refresh, which is excluded)
}

type scaleReport struct {
	Phases   []scalePhase
	MaxRSSMB float64 // peak resident memory of the whole child process
	Changes  int     // plan steps that are not no-ops (must be 0)
	Steps    int
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestEngineScaleChild is not a test: BenchmarkEngineScale runs the test
// binary again with BENCH_ENGINE_SCALE_DIR set, to measure one load-and-plan
// in a process of its own, and reads the report it prints.
func TestEngineScaleChild(t *testing.T) {
	dir := os.Getenv("BENCH_ENGINE_SCALE_DIR")
	if dir == "" {
		return
	}
	if prof := os.Getenv("BENCH_ENGINE_SCALE_CPUPROFILE"); prof != "" {
		// For whoever optimises a phase: go tool pprof on this file.
		out, err := os.Create(fmt.Sprintf("%s.%s", prof, filepath.Base(dir)))
		if err == nil && pprof.StartCPUProfile(out) == nil {
			defer out.Close()
		}
	}
	var rep scaleReport
	timed := func(name string, counted bool, fn func()) {
		wall, cpu := time.Now(), processCPU()
		fn()
		rep.Phases = append(rep.Phases, scalePhase{Name: name, Wall: time.Since(wall), CPU: processCPU() - cpu, Counted: counted})
	}
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}

	var set *spec.Set
	timed("load specs", true, func() {
		var err error
		if set, err = spec.LoadDir(filepath.Join(dir, "specs")); err != nil {
			fail(err)
		}
	})
	var st *state.State
	timed("open state", true, func() {
		sf, err := state.Open(filepath.Join(dir, state.DefaultPath), state.Options{ReadOnly: true})
		if err != nil {
			fail(err)
		}
		st = sf.State() // as the CLI's plan does
		sf.Close()
	})
	// Stands in for the refresh (excluded from the target): what Twilio would
	// list, identical to the specs, so the plan has nothing to do.
	snap := planner.NewSnapshot()
	timed("synthetic snapshot (refresh stand-in, not counted)", false, func() {
		services := []resource.Observed{{Kind: resource.KindService, SID: scaleServiceSID, Values: resource.Values{resource.FieldFriendlyName: "Support"}}}
		snap.SetListed(resource.KindService, "", services)
		convs := make([]resource.Observed, 0, len(set.Resources))
		for _, d := range set.Resources {
			if d.Address.Kind != resource.KindConversation {
				continue
			}
			r := st.Resources[d.Address.String()]
			convs = append(convs, resource.Observed{Kind: resource.KindConversation, SID: r.SID, ParentSID: scaleServiceSID, Values: d.Values.Clone(), DateCreated: r.CreatedAt})
		}
		snap.SetListed(resource.KindConversation, scaleServiceSID, convs)
	})
	timed("plan (planner.Compute)", true, func() {
		p, err := planner.Compute(set.Resources, st, snap)
		if err != nil {
			fail(err)
		}
		rep.Steps = len(p.Changes)
		for _, c := range p.Changes {
			if c.Action != planner.NoOp {
				rep.Changes++
			}
		}
	})
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	rep.MaxRSSMB = float64(ru.Maxrss) / 1024 // KiB on Linux
	out, _ := json.Marshal(rep)
	fmt.Println("report:", string(out))
	pprof.StopCPUProfile()
	os.Exit(0)
}

// BenchmarkEngineScale loads N conversations' specs and state and plans them
// against a snapshot identical to the specs, in a child process, and prints
// CPU time and peak memory per phase.
func BenchmarkEngineScale(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("conversations=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			writeScaleFixtures(b, dir, n)
			var rep scaleReport
			for b.Loop() {
				rep = runScaleChild(b, dir)
			}
			if rep.Changes != 0 || rep.Steps != n+1 {
				b.Fatalf("the plan has %d steps, %d of them changes; want %d no-ops", rep.Steps, rep.Changes, n+1)
			}
			var cpu, wall time.Duration
			fmt.Printf("\nengine scale, %d conversations (one child process; peak RSS %.0f MB)\n", n, rep.MaxRSSMB)
			fmt.Printf("  %-52s %10s %10s\n", "phase", "CPU", "wall")
			for _, p := range rep.Phases {
				fmt.Printf("  %-52s %10s %10s\n", p.Name, p.CPU.Round(time.Millisecond), p.Wall.Round(time.Millisecond))
				if p.Counted {
					cpu += p.CPU
					wall += p.Wall
				}
			}
			fmt.Printf("  %-52s %10s %10s   (target: < 2s CPU, < 500 MB)\n", "total (specs + state + plan)", cpu.Round(time.Millisecond), wall.Round(time.Millisecond))
			b.ReportMetric(cpu.Seconds(), "cpu-s")
			b.ReportMetric(rep.MaxRSSMB, "peak-MB")
		})
	}
}

func runScaleChild(b *testing.B, dir string) scaleReport {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEngineScaleChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BENCH_ENGINE_SCALE_DIR="+dir)
	out, err := cmd.Output()
	text := string(out)
	_, js, found := strings.Cut(text, "report: ")
	if err != nil || !found {
		b.Fatalf("child: %v\n%s", err, text)
	}
	var rep scaleReport
	if err := json.Unmarshal([]byte(strings.TrimSpace(strings.SplitN(js, "\n", 2)[0])), &rep); err != nil {
		b.Fatalf("child report %q: %v", js, err)
	}
	return rep
}
