package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/daemon"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/spec"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

type runOptions struct {
	resync         time.Duration
	poll           time.Duration
	listen         string
	maxDestroy     int
	debounce       time.Duration
	debounceMax    time.Duration
	stopTimeout    time.Duration
	backoffBase    time.Duration
	backoffMax     time.Duration
	parallelism    int
	webhookEnabled bool
	dryRun         bool
	progressEvery  time.Duration
	quarantine     time.Duration
}

func (c *CLI) runCommand() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run as a daemon: watch the specs and keep Twilio in their shape",
		Long: `Watches --dir (recursively) and reconciles Twilio whenever the specs change,
and refreshes Twilio in full every --resync to undo changes made by others.
A spec set that fails to load is reported and the last good one stays in
force. A pass that would delete or replace more than --max-destroy resources
is refused until an operator allows it (POST /allow-destroy?count=N on
--listen) or runs convsync apply by hand.

With --dry-run it plans on every trigger and reports what it would do (logs,
/readyz, /metrics, GET /plan) without changing anything in Twilio or the
state: a safe first step when rolling it out.

SIGHUP reloads and resyncs; SIGTERM/SIGINT stop gracefully (a second one
exits at once). Serves /healthz, /readyz, /metrics and GET /plan on --listen, and
speaks systemd's notify protocol (Type=notify, WatchdogSec) when run by
systemd. See docs/daemon.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.runDaemon(o) },
	}
	f := cmd.Flags()
	c.addVarFlags(f)
	f.DurationVar(&o.resync, "resync", 10*time.Minute, "time between full refreshes of Twilio, which catch changes made by others")
	f.DurationVar(&o.poll, "poll", 30*time.Second, "slow poll of the spec folder, in case file events were missed (0: off)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:9464", `address for /healthz, /readyz, /metrics and POST /allow-destroy ("" to disable); keep it on loopback or a private network`)
	f.IntVar(&o.maxDestroy, "max-destroy", 5, "refuse a pass that would delete or replace more resources than this (0: none allowed; -1: no limit)")
	f.DurationVar(&o.debounce, "debounce", 200*time.Millisecond, "quiet time after the last file event before a pass")
	f.DurationVar(&o.debounceMax, "debounce-max", 2*time.Second, "longest wait after the first file event, however busy the folder")
	f.DurationVar(&o.stopTimeout, "stop-timeout", 30*time.Second, "on SIGTERM/SIGINT, how long to let the Twilio calls in flight finish")
	f.DurationVar(&o.backoffBase, "backoff-base", 5*time.Second, "first retry delay for a resource whose step failed (doubles, with jitter)")
	f.DurationVar(&o.backoffMax, "backoff-max", 10*time.Minute, "longest retry delay for a failing resource")
	f.IntVar(&o.parallelism, "parallelism", 10, "how many steps of a pass run at once")
	f.BoolVar(&o.webhookEnabled, "webhook-enabled", false, "send X-Twilio-Webhook-Enabled: true so the service's webhooks fire for these changes")
	f.BoolVar(&o.dryRun, "dry-run", false, "plan on every trigger and report what would be done (logs, /readyz, /metrics, GET /plan); change nothing in Twilio or the state")
	f.DurationVar(&o.progressEvery, "progress-interval", 5*time.Second, "how often a pass in progress logs its progress (steps done/total, rate)")
	return cmd
}

func (o runOptions) validate() error {
	switch {
	case o.resync < time.Second:
		return fmt.Errorf("--resync %s is too short: use at least 1s (the default is 10m)", o.resync)
	case o.poll < 0:
		return fmt.Errorf("--poll %s: use a positive duration, or 0 to turn the poll off", o.poll)
	case o.debounce <= 0 || o.debounceMax < o.debounce:
		return fmt.Errorf("--debounce %s and --debounce-max %s: both must be positive, and --debounce-max at least --debounce", o.debounce, o.debounceMax)
	case o.stopTimeout <= 0:
		return fmt.Errorf("--stop-timeout %s: use a positive duration", o.stopTimeout)
	case o.maxDestroy < -1:
		return fmt.Errorf("--max-destroy %d: use 0 or more, or -1 for no limit", o.maxDestroy)
	case o.parallelism < 1:
		return fmt.Errorf("--parallelism must be at least 1, not %d", o.parallelism)
	case o.progressEvery <= 0:
		return fmt.Errorf("--progress-interval %s: use a positive duration", o.progressEvery)
	case o.backoffBase <= 0 || o.backoffMax < o.backoffBase:
		return fmt.Errorf("--backoff-base %s and --backoff-max %s: both must be positive, and --backoff-max at least --backoff-base", o.backoffBase, o.backoffMax)
	}
	return nil
}

func (c *CLI) runDaemon(o runOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	// Our own signal handling: the first SIGTERM/SIGINT stops gracefully,
	// the second exits at once, SIGHUP resyncs. Installed first so that a
	// signal during start-up is not lost.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(signals)

	log, err := c.logger()
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr
	metrics := daemon.NewMetrics()
	progress := daemon.NewProgress(log, o.dryRun)
	var gate *daemon.Gate // set below, before any call is made
	client, err := c.client(log, func(call twilioapi.Call) {
		metrics.ObserveAPICall(call)
		progress.Request()
		gate.Heartbeat() // every HTTP attempt, for the systemd watchdog
	})
	if err != nil {
		return err
	}
	var listener net.Listener
	if o.listen != "" {
		if listener, err = daemon.Listen(o.listen); err != nil {
			return err
		}
		if host, _, err := net.SplitHostPort(o.listen); err == nil {
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				log.Warn("the HTTP listener is reachable beyond this machine: anyone who reaches " + o.listen + " can read the status and the plan, and POST /allow-destroy")
			}
		}
	}
	var sf state.Backend
	var leadership *daemonLeadership
	var lockHeld atomic.Bool
	if c.postgres() {
		// Every replica opens the state without its lease and stands by
		// until it leads (runlead.go).
		store, el, err := c.openStandby(log)
		if err != nil {
			if listener != nil {
				listener.Close()
			}
			return err
		}
		sf = store
		leadership = &daemonLeadership{el: el, store: store, quarantine: c.global.quarantine, log: log}
		c.guard.elector = el
		metrics.SetLeadership(store.Workspace(), el.Status)
		defer func() {
			if err := store.Close(); err != nil {
				log.Warn("closing the state", zap.Error(err))
			}
		}()
	} else {
		f, err := c.openState("convsync run", false)
		if err != nil {
			if listener != nil {
				listener.Close()
			}
			return err
		}
		sf = f
		lockHeld.Store(true)
		defer func() {
			lockHeld.Store(false)
			if err := sf.Close(); err != nil {
				log.Error("saving the state at exit failed", zap.Error(err))
			}
		}()
	}
	stateLockHeld := lockHeld.Load
	var leadershipCfg daemon.Leadership
	if leadership != nil {
		stateLockHeld = func() bool { return leadership.el.Status().Role == "leader" }
		leadershipCfg = leadership
	}

	gate = daemon.NewGate(client)
	rec := &engine.Reconciler{
		Engine:       &engine.Engine{API: gate, Logger: log},
		Store:        sf,
		ApplyOptions: apply.Options{Parallelism: o.parallelism, WebhookEnabled: o.webhookEnabled, Logger: daemon.ApplyLogger(log), OnEvent: progress.Step, Stop: gate.Stopping()},
		// One log line per step, the pass's size for /readyz, and --dry-run.
		BeforeApply: progress.BeforeApply,
		MaxDestroy:  o.maxDestroy,
		BackoffBase: o.backoffBase,
		BackoffMax:  o.backoffMax,
	}
	log.Info("convsync run starting", zap.String("version", Version), zap.String("dir", c.global.dir), zap.String("state", sf.Path()),
		zap.Duration("resync", o.resync), zap.Int("max_destroy", o.maxDestroy), zap.Bool("dry_run", o.dryRun))
	err = daemon.Run(c.ctx, daemon.Config{
		Loop: daemon.LoopOptions{
			Dir:        c.global.dir,
			Load:       guardedLoad(c.daemonLoad(spec.NewCache()), sf), // reloads parse only changed files
			Reconciler: rec,
			Resync:     o.resync,
			Managed: func() map[string]int {
				out := map[string]int{}
				sf.View(func(st *state.State) { // no copy: /readyz asks often
					for _, r := range st.Resources {
						out[strings.ToLower(string(r.Address.Kind))]++
					}
				})
				return out
			},
			Logger:        log,
			Metrics:       metrics,
			Progress:      progress,
			ProgressEvery: o.progressEvery,
		},
		Poll:          pollInterval(o.poll),
		DebounceQuiet: o.debounce,
		DebounceMax:   o.debounceMax,
		StopTimeout:   o.stopTimeout,
		Listener:      listener,
		Gate:          gate,
		Notifier:      daemon.NotifierFromEnv(c.getenv),
		Signals:       signals,
		Exit: func() {
			log.Sync() //nolint:errcheck // stderr
			os.Exit(ExitError)
		},
		StateLockHeld: stateLockHeld,
		Leadership:    leadershipCfg,
	})
	if errors.Is(err, daemon.ErrLeadershipLost) && leadership != nil {
		// Never mark a lost lease released: the next leader must wait its
		// quarantine.
		leadership.store.SetLease("", 0)
	}
	return err
}

// pollInterval maps the flag (0: off) to daemon.Config.Poll (negative: off).
func pollInterval(flag time.Duration) time.Duration {
	if flag == 0 {
		return -1
	}
	return flag
}

// guardedLoad refuses a spec set with no resource while the state holds
// some, as plan and apply do: the daemon then keeps the last good specs
// (or, at start, makes no pass) instead of deleting everything.
func guardedLoad(load func(string) (*spec.Set, error), sf state.Backend) func(string) (*spec.Set, error) {
	return func(dir string) (*spec.Set, error) {
		set, err := load(dir)
		if err != nil {
			return nil, err
		}
		if err := checkNotEmptied(dir, len(set.Resources), stateSize(sf), sf.Path()); err != nil {
			return nil, err
		}
		return set, nil
	}
}
