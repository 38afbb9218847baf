package reliability

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/state"
)

// applyArgs is the apply every state-file test runs.
var applyArgs = []string{"apply", "--auto-approve", "--rate-limit", "0"}

// noWrites fails the test if the emulator answered any write since stats were reset.
func noWrites(t *testing.T, e *env, what string) {
	t.Helper()
	if n := e.writes(); n != 0 {
		t.Fatalf("%s: %d writes reached Twilio; want none (%v)", what, n, e.emu.Stats().ByRoute)
	}
}

// TestStateFileFaults damages the state file, or takes its disk away while an
// apply runs, and checks that convsync refuses or recovers as promised:
// nothing duplicated, nothing lost, nothing sent to Twilio when the state
// cannot be trusted, and an error that says what to do.
func TestStateFileFaults(t *testing.T) {
	var summary []string
	note := func(format string, args ...any) {
		summary = append(summary, fmt.Sprintf(format, args...))
	}

	// The disk fills up during an apply: a file-size limit on the process
	// makes every write past a few KiB fail (EFBIG), as a full disk would,
	// even for root. Without restoring anything, the next apply must still
	// not duplicate: each create's intent was saved before it was sent.
	t.Run("disk full while saving", func(t *testing.T) {
		e := newEnv(t, emulator.Faults{})
		newFleet(1, 40).write(e)
		script := fmt.Sprintf("ulimit -f 12 && exec %s \"$@\"", binary)
		args := append(append([]string{}, applyArgs...), "--dir", e.dir, "--state", e.state)
		cmd := exec.Command("sh", append([]string{"-c", script, "convsync"}, args...)...)
		cmd.Dir = e.work
		cmd.Env = append(append(os.Environ(), e.credentialsEnv()...), "CONVSYNC_API_URL="+e.url, "TMPDIR="+e.work)
		r := e.wait(cmd, applyArgs, nil)
		if r.code != 1 || !strings.Contains(r.stderr+r.stdout, "could not save state file") {
			t.Fatalf("want exit 1 saying the state could not be saved: %s", r)
		}
		where := "an emergency file"
		if strings.Contains(r.stderr, "-----BEGIN CONVSYNC STATE-----") {
			where = "standard error"
		}
		if !strings.Contains(r.stderr+r.stdout, "file too large") {
			t.Errorf("the error does not give the cause (file too large): %s", r)
		}
		finish(t, e)
		a := e.check(desired(t, e))
		e.mustConverge(a)
		note("disk full: apply exit 1, emergency copy on %s; next apply converged, %d resources, %d duplicates, %d orphans", where, a.resources, a.duplicates, a.orphans)
	})

	// The state's folder disappears in the middle of an apply (an unmounted
	// volume, a cleanup job): the emergency copy goes to the temporary
	// folder, the error names it, and putting it back lets the next apply
	// finish without duplicates.
	t.Run("state folder gone while saving", func(t *testing.T) {
		e := newEnv(t, emulator.Faults{})
		stateDir := filepath.Join(e.work, "state")
		tmp := filepath.Join(e.work, "tmp")
		for _, d := range []string{stateDir, tmp} {
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		e.state = filepath.Join(stateDir, "convsync.state.json")
		e.extraEnv = []string{"TMPDIR=" + tmp}
		newFleet(1, 30).write(e)
		var once sync.Once
		var writes int
		var mu sync.Mutex
		e.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.Method == http.MethodPost {
				mu.Lock()
				writes++
				n := writes
				mu.Unlock()
				if n == 12 {
					once.Do(func() {
						// A rename takes the folder away at once, as an
						// unmount would, even while convsync writes in it.
						if err := os.Rename(stateDir, stateDir+".gone"); err != nil {
							panic(err)
						}
					})
				}
			}
			next.ServeHTTP(w, r)
		})
		r := e.run(applyArgs...)
		e.setHook(nil)
		if r.code != 1 {
			t.Fatalf("want exit 1: %s", r)
		}
		m := regexp.MustCompile(`written to (\S+?): once the problem is fixed`).FindAllStringSubmatch(r.stdout+r.stderr, -1)
		if len(m) == 0 {
			t.Fatalf("the error does not say where the emergency copy is: %s", r)
		}
		// The newest copy holds every change: take the one with the highest serial.
		var best *state.State
		var bestData []byte
		for _, match := range m {
			data, err := os.ReadFile(match[1])
			if err != nil {
				t.Fatalf("emergency copy %s: %v", match[1], err)
			}
			s, _, err := state.Decode(data)
			if err != nil {
				t.Fatalf("emergency copy %s: %v", match[1], err)
			}
			if best == nil || s.Serial > best.Serial {
				best, bestData = s, data
			}
		}
		if err := os.Mkdir(stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.state, bestData, 0o600); err != nil {
			t.Fatal(err)
		}
		finish(t, e)
		a := e.check(desired(t, e))
		e.mustConverge(a)
		distinct := map[string]bool{}
		for _, match := range m {
			distinct[match[1]] = true
		}
		note("state folder gone: apply exit 1, %d emergency copies named in the output (the newest holds %d resources); restored, next apply converged, %d resources, %d duplicates, %d orphans", len(distinct), len(best.Resources), a.resources, a.duplicates, a.orphans)
	})

	// A damaged state file is refused before anything is sent to Twilio, with
	// the place of the damage and the backup to fall back on.
	for _, damage := range []struct {
		name string
		do   func(data []byte) []byte
		want string
	}{
		{"truncated", func(data []byte) []byte { return data[:len(data)/2] }, "truncated"},
		{"corrupt", func(data []byte) []byte {
			return append([]byte("{\"version\": 1, \"lineage\": \x00\x01garbage"), data...)
		}, "line 1"},
		{"newer version", func(data []byte) []byte {
			return []byte(strings.Replace(string(data), `"version": 2,`, `"version": 99,`, 1))
		}, "upgrade convsync"},
	} {
		t.Run(damage.name+" state", func(t *testing.T) {
			e := newEnv(t, emulator.Faults{})
			f := newFleet(1, 5)
			f.write(e)
			e.must(0, applyArgs...)
			// A second apply that changes something keeps a backup.
			f.serviceTitles["svc0"] = "Service 0 again"
			f.write(e)
			e.must(0, applyArgs...)
			data, err := os.ReadFile(e.state)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e.state, damage.do(data), 0o600); err != nil {
				t.Fatal(err)
			}
			e.emu.ResetStats()
			for _, args := range [][]string{applyArgs, {"plan"}, {"state", "list"}} {
				r := e.run(args...)
				if r.code != 1 || !strings.Contains(r.stderr, damage.want) || strings.Contains(r.stderr, "panic") {
					t.Fatalf("want exit 1 saying %q: %s", damage.want, r)
				}
				if damage.name != "newer version" && !strings.Contains(r.stderr, e.state+".backup") {
					t.Errorf("the error does not point at the backup: %s", r)
				}
			}
			noWrites(t, e, "after refusing the state")
			note("%s state: apply, plan and state list refused (exit 1, %q); writes sent to Twilio: 0", damage.name, damage.want)
		})
	}

	// Two processes on one state: the second fails after --lock-timeout,
	// naming the holder; the first finishes untouched.
	t.Run("two processes", func(t *testing.T) {
		e := newEnv(t, emulator.Faults{})
		newFleet(1, 3).write(e)
		holding := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		e.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.Method == http.MethodPost {
				once.Do(func() { close(holding); <-release })
			}
			next.ServeHTTP(w, r)
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		first := e.command(ctx, applyArgs...)
		done := make(chan result, 1)
		pids := make(chan int, 1)
		go func() {
			done <- e.wait(first, applyArgs, func(p *os.Process) { pids <- p.Pid })
		}()
		pid := <-pids
		<-holding // the first apply holds the lock and is writing
		e.emu.ResetStats()
		started := time.Now()
		second := e.run(append(append([]string{}, applyArgs...), "--lock-timeout", "300ms")...)
		waited := time.Since(started)
		noWrites(t, e, "the second apply")
		close(release)
		for _, want := range []string{"is locked by pid " + fmt.Sprint(pid), "convsync apply", "gave up after waiting"} {
			if second.code != 1 || !strings.Contains(second.stderr, want) {
				t.Fatalf("second apply: want exit 1 saying %q: %s", want, second)
			}
		}
		if r := <-done; r.code != 0 {
			t.Fatalf("the first apply: %s", r)
		}
		a := e.check(desired(t, e))
		e.mustConverge(a)
		note("two processes: the second gave up after %s naming pid %d, sent 0 writes; the first converged", waited.Round(10*time.Millisecond), pid)
	})
	t.Logf("state file faults:\n  %s", strings.Join(summary, "\n  "))
}
