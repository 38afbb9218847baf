package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/convsync/convsync/internal/testenv"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/spec"
	"github.com/convsync/convsync/pkg/state"
)

// daemonOptions shape the daemon scenario.
type daemonOptions struct {
	conversations int
	files         int // spec files the conversations are spread over
	edits         int
	debounces     []time.Duration
}

// daemonReaction: the real `convsync run` binary manages N conversations;
// one spec file is edited at a time (one friendly_name changed) and the
// bench measures, per edit, the time from the write to the change being
// visible in the emulator and the API requests the daemon sent for it.
func (b *bench) daemonReaction(o daemonOptions) error {
	bin, cleanup, err := buildConvsync()
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Printf("\n### Daemon reaction: one spec edited among %d managed conversations (%d spec files of %d), %d edits, no added latency\n",
		o.conversations, o.files, o.conversations/o.files, o.edits)
	fmt.Println()
	fmt.Println("| --debounce | write → visible in Twilio: min | p50 | p90 | p99 | max | spec reload (p50) | pass (p50 / max) | requests per edit: mean | max | routes per edit |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, debounce := range o.debounces {
		r, err := b.daemonRun(bin, o, debounce)
		if err != nil {
			return fmt.Errorf("--debounce %s: %w", debounce, err)
		}
		lat := sortedCopy(r.latencies)
		pass := sortedCopy(r.passes)
		var total, most int64
		for _, n := range r.requests {
			total += n
			most = max(most, n)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %.2f | %d | %s |\n", debounce,
			msf(lat[0]), msf(percentile(lat, 50)), msf(percentile(lat, 90)), msf(percentile(lat, 99)), msf(lat[len(lat)-1]),
			msf(r.reload), msf(percentile(pass, 50)), msf(pass[len(pass)-1]),
			float64(total)/float64(len(r.requests)), most, formatRoutes(r.routes, len(r.requests)))
	}
	return nil
}

// daemonResult is one daemon run's measurements, one entry per edit.
type daemonResult struct {
	latencies []time.Duration // write → change visible in the emulator
	passes    []time.Duration // the pass's own duration, from the daemon's log
	requests  []int64         // API requests the emulator saw for the edit
	routes    map[string]int64
	// reload is spec.LoadDir of the folder, timed in the bench (median of
	// 5): the daemon reloads the whole folder before every pass, outside
	// the pass duration it logs.
	reload time.Duration
}

func (b *bench) daemonRun(bin string, o daemonOptions, debounce time.Duration) (daemonResult, error) {
	var r daemonResult
	t, err := startEmulator(emulator.Faults{})
	if err != nil {
		return r, err
	}
	defer t.stop()
	svc, err := t.emu.AddService("daemon")
	if err != nil {
		return r, err
	}
	sids, err := t.emu.SeedConversations(svc.SID, o.conversations, "conv-")
	if err != nil {
		return r, err
	}
	work, err := os.MkdirTemp("", "convsync-bench-daemon-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(work)
	specs := &specFolder{dir: filepath.Join(work, "specs"), serviceSID: svc.SID, perFile: (o.conversations + o.files - 1) / o.files}
	for i := range sids {
		specs.friendly = append(specs.friendly, fmt.Sprintf("conv-%d", i))
	}
	if err := os.MkdirAll(specs.dir, 0o755); err != nil {
		return r, err
	}
	for f := 0; f < o.files; f++ {
		if err := specs.write(f); err != nil {
			return r, err
		}
	}
	statePath := filepath.Join(work, "convsync.state.json")
	if err := writeOwningState(statePath, svc.SID, sids); err != nil {
		return r, err
	}

	d, err := startDaemon(bin, work, t.url, specs.dir, statePath, debounce)
	if err != nil {
		return r, err
	}
	defer d.stop()
	if err := d.waitStartupPass(60 * time.Second); err != nil {
		return r, err
	}

	r.routes = map[string]int64{}
	for k := 0; k < o.edits; k++ {
		// Spread the edits over the conversations and the files.
		i := (k*7919 + 13) % o.conversations
		name := fmt.Sprintf("conv-%d", i)
		want := fmt.Sprintf("edit %d of conv-%d", k, i)
		specs.friendly[i] = want
		t.emu.ResetStats()
		written, err := specs.replace(i / specs.perFile)
		if err != nil {
			return r, err
		}
		// Out-of-band reads: a map lookup in the emulator, not an API request.
		deadline := written.Add(30 * time.Second)
		var visible time.Time
		for {
			c, err := t.emu.Conversation(svc.SID, name)
			if err != nil {
				return r, err
			}
			if c.FriendlyName != nil && *c.FriendlyName == want {
				visible = time.Now()
				break
			}
			if time.Now().After(deadline) {
				return r, fmt.Errorf("edit %d (%s): not applied within 30 s\n%s", k, name, d.tail())
			}
			time.Sleep(time.Millisecond) // polling an observable condition
		}
		// The pass ends after the write (the state is recorded): wait for its
		// log line before counting requests and starting the next edit.
		p, err := d.nextPass(30 * time.Second)
		if err != nil {
			return r, fmt.Errorf("edit %d: %w", k, err)
		}
		if p.Trigger != "file" || p.Full || p.Summary != "1 updated" {
			return r, fmt.Errorf("edit %d: the pass was trigger %q, full %v, %q; want one file-triggered incremental update", k, p.Trigger, p.Full, p.Summary)
		}
		stats := t.emu.Stats()
		r.latencies = append(r.latencies, visible.Sub(written))
		r.passes = append(r.passes, time.Duration(p.Duration*float64(time.Second)))
		r.requests = append(r.requests, stats.Total)
		for route, n := range stats.ByRoute {
			r.routes[route] += n
		}
	}
	var loads []time.Duration
	for range 5 {
		start := time.Now()
		if _, err := spec.LoadDir(specs.dir); err != nil {
			return r, err
		}
		loads = append(loads, time.Since(start))
	}
	r.reload = median(loads)
	// Nothing else may have run meanwhile (a resync would show here).
	if extra := d.passesSeen(); extra != 0 {
		return r, fmt.Errorf("%d passes ran that no edit asked for", extra)
	}
	return r, nil
}

// specFolder writes the conversations' specs, perFile to a file.
type specFolder struct {
	dir        string
	serviceSID string
	perFile    int
	friendly   []string // friendly_name of conversation i
}

func (s *specFolder) path(f int) string {
	return filepath.Join(s.dir, fmt.Sprintf("conversations-%05d.yaml", f))
}

func (s *specFolder) content(f int) []byte {
	var b strings.Builder
	for i := f * s.perFile; i < min((f+1)*s.perFile, len(s.friendly)); i++ {
		fmt.Fprintf(&b, "---\nkind: Conversation\nname: conv-%d\nservice_sid: %s\nunique_name: conv-%d\nfriendly_name: %q\n", i, s.serviceSID, i, s.friendly[i])
	}
	return []byte(b.String())
}

func (s *specFolder) write(f int) error { return os.WriteFile(s.path(f), s.content(f), 0o644) }

// replace writes file f whole under a hidden temporary name and renames it
// into place, as docs/daemon.md advises, and returns when the new content
// became visible (the rename).
func (s *specFolder) replace(f int) (time.Time, error) {
	tmp := filepath.Join(s.dir, ".bench-edit.tmp")
	if err := os.WriteFile(tmp, s.content(f), 0o644); err != nil {
		return time.Time{}, err
	}
	if err := os.Rename(tmp, s.path(f)); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// writeOwningState writes a state file owning conversations conv-0, … with
// the values the specs declare, so the startup pass has nothing to change.
func writeOwningState(path, serviceSID string, sids []string) error {
	f, err := state.Open(path, state.Options{Holder: "convsync bench"})
	if err != nil {
		return err
	}
	err = f.Update(func(s *state.State) error {
		for i, sid := range sids {
			name := fmt.Sprintf("conv-%d", i)
			s.Put(&state.Resource{
				Address: resource.Address{Kind: resource.KindConversation, Name: name}, SID: sid, ParentSID: serviceSID,
				Applied: resource.Values{resource.FieldUniqueName: name, resource.FieldFriendlyName: name},
			})
		}
		return nil
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// buildConvsync builds the real binary, as a user runs it.
func buildConvsync() (string, func(), error) {
	dir, err := os.MkdirTemp("", "convsync-bench-bin-")
	if err != nil {
		return "", nil, err
	}
	bin, err := testenv.Build(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// daemonProc is one `convsync run` process.
type daemonProc struct {
	cmd    *exec.Cmd
	addr   string
	passes chan passLog
	done   chan struct{}
	logs   *tailBuffer
}

// passLog is what the daemon logs at the end of a pass.
type passLog struct {
	Msg      string  `json:"msg"`
	Trigger  string  `json:"trigger"`
	Full     bool    `json:"full"`
	Outcome  string  `json:"outcome"`
	Duration float64 `json:"duration"` // seconds
	Summary  string  `json:"summary"`
	Listen   string  `json:"listen"`
}

func startDaemon(bin, work, apiURL, specDir, statePath string, debounce time.Duration) (*daemonProc, error) {
	cmd := exec.Command(bin, "run", "--dir", specDir, "--state", statePath, "--api-url", apiURL,
		"--listen", "127.0.0.1:0", "--log-format", "json", "--rate-limit", "0",
		"--resync", "1h", "--poll", "1h", "--debounce", debounce.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "TWILIO_ACCOUNT_SID="+accountSID, "TWILIO_AUTH_TOKEN="+authToken)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemonProc{cmd: cmd, passes: make(chan passLog, 1000), done: make(chan struct{}), logs: &tailBuffer{}}
	listening := make(chan string, 1)
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.logs.add(line)
			var l passLog
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			if l.Listen != "" {
				select {
				case listening <- l.Listen:
				default:
				}
			}
			if strings.HasPrefix(l.Msg, "pass ") {
				d.passes <- l
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case d.addr = <-listening:
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("convsync run exited at start:\n%s", d.tail())
	case <-time.After(30 * time.Second):
		d.stop()
		return nil, fmt.Errorf("convsync run did not start listening:\n%s", d.tail())
	}
}

// waitStartupPass polls /readyz until the daemon is ready and its startup
// pass (a full refresh) is done, and takes that pass's log line.
func (d *daemonProc) waitStartupPass(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var status struct {
			Ready    bool `json:"ready"`
			LastPass *struct {
				Trigger string `json:"trigger"`
				Outcome string `json:"outcome"`
				Summary string `json:"summary"`
			} `json:"last_pass"`
		}
		resp, err := http.Get("http://" + d.addr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if json.Unmarshal(body, &status) == nil && status.Ready && status.LastPass != nil {
				if status.LastPass.Outcome != "success" || status.LastPass.Summary != "no changes" {
					return fmt.Errorf("the startup pass was %s (%s); want a success with no changes\n%s", status.LastPass.Outcome, status.LastPass.Summary, d.tail())
				}
				_, err := d.nextPass(time.Until(deadline))
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("convsync run was not ready with its startup pass done within %s\n%s", timeout, d.tail())
		}
		time.Sleep(20 * time.Millisecond) // polling an observable condition
	}
}

func (d *daemonProc) nextPass(timeout time.Duration) (passLog, error) {
	select {
	case p := <-d.passes:
		return p, nil
	case <-d.done:
		return passLog{}, fmt.Errorf("convsync run exited:\n%s", d.tail())
	case <-time.After(timeout):
		return passLog{}, fmt.Errorf("no pass logged within %s\n%s", timeout, d.tail())
	}
}

// passesSeen counts the pass log lines not taken yet.
func (d *daemonProc) passesSeen() int { return len(d.passes) }

func (d *daemonProc) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

func (d *daemonProc) tail() string { return d.logs.String() }

// tailBuffer keeps the last lines of the daemon's log, for error messages.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (t *tailBuffer) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > 20 {
		t.lines = t.lines[len(t.lines)-20:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

func sortedCopy(ds []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank-1, 0)]
}

// msf formats a duration in milliseconds, one decimal below 100 ms.
func msf(d time.Duration) string {
	if d < 100*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func formatRoutes(routes map[string]int64, edits int) string {
	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s × %.2f", k, float64(routes[k])/float64(edits))
	}
	return strings.Join(parts, ", ")
}
