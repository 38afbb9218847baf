package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Config configures Run.
type Config struct {
	Loop LoopOptions
	// Poll is the slow poll that re-reads the folder in case the watcher
	// missed something (default 30s; negative: off).
	Poll time.Duration
	// DebounceQuiet and DebounceMax: see Debounce (defaults 200ms and 2s).
	DebounceQuiet, DebounceMax time.Duration
	// StopTimeout bounds the graceful stop; after it, Twilio calls in flight
	// are cancelled and Run returns ErrStopTimeout (default 30s).
	StopTimeout time.Duration
	// Listener serves /healthz, /readyz, /metrics, /plan and /allow-destroy; nil: none.
	Listener net.Listener
	// Gate is the Twilio API the reconciler uses, closed when stopping.
	Gate *Gate
	// Notifier talks to systemd (nil or outside systemd: silent).
	Notifier *Notifier
	// Signals delivers SIGHUP, SIGTERM and SIGINT (nil: none).
	Signals <-chan os.Signal
	// Exit ends the process at once on a second SIGTERM/SIGINT.
	Exit func()
	// StateLockHeld reports whether this process still holds the state lock.
	StateLockHeld func() bool
	// Leadership, if set, makes the daemon a stand-by until it leads (the
	// PostgreSQL backend); nil: it leads from the start (the state file).
	Leadership Leadership
}

// ErrStopTimeout is returned when the pass in flight did not finish within
// the stop timeout and was cancelled.
var ErrStopTimeout = errors.New("the pass in flight did not finish within --stop-timeout; it was cancelled (the state holds every change Twilio confirmed, and create intents for the rest)")

// Run runs the daemon until ctx is done or a SIGTERM/SIGINT arrives, then
// stops gracefully. It returns nil after a graceful stop.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Loop.Logger
	if log == nil {
		log = zap.NewNop()
		cfg.Loop.Logger = log
	}
	if cfg.Poll == 0 {
		cfg.Poll = 30 * time.Second
	}
	if cfg.DebounceQuiet <= 0 {
		cfg.DebounceQuiet = 200 * time.Millisecond
	}
	if cfg.DebounceMax <= 0 {
		cfg.DebounceMax = 2 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.Exit == nil {
		cfg.Exit = func() { os.Exit(1) }
	}
	lockHeld := cfg.StateLockHeld
	if lockHeld == nil {
		lockHeld = func() bool { return true }
	}

	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	// Passes run under work: not cancelled by the stop, only by the stop timeout.
	work, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	// alive lasts until Run returns, so a second signal is still heard while stopping.
	alive, done := context.WithCancel(context.WithoutCancel(ctx))
	defer done()

	var loop *Loop
	status := func() Status {
		s := loop.Status()
		s.State.LockHeld = lockHeld()
		if cfg.Leadership != nil {
			ls := cfg.Leadership.Status()
			s.Leadership = &ls
		}
		if cfg.Loop.Managed != nil {
			s.State.Managed = cfg.Loop.Managed()
		}
		s.evaluate()
		return s
	}
	var readyOnce sync.Once
	onChange := cfg.Loop.OnChange
	cfg.Loop.OnChange = func(Status) {
		s := status()
		cfg.Loop.Metrics.setReady(s.Ready)
		msg := "STATUS=" + s.statusLine()
		if s.Specs.Loaded && s.State.LockHeld || s.standingBy() && s.Ready {
			readyOnce.Do(func() {
				msg = "READY=1\n" + msg
				if s.standingBy() {
					log.Info("ready: standing by while another convsync leads")
				} else {
					log.Info("ready: specs loaded and state lock held")
				}
			})
		}
		if err := cfg.Notifier.Notify(msg); err != nil {
			log.Debug("systemd notify failed", zap.Error(err))
		}
		if onChange != nil {
			onChange(s)
		}
	}
	if cfg.Loop.Progress.DryRun() {
		log.Warn("dry run: convsync plans on every trigger and reports what it would do; nothing is applied to Twilio or the state")
	}
	cfg.Loop.Metrics.SetDryRun(cfg.Loop.Progress.DryRun())
	loop = NewLoop(cfg.Loop)
	if cfg.Gate != nil {
		cfg.Gate.setOnCall(loop.Beat)
	}

	var wg sync.WaitGroup
	goRun := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}

	// Watcher → debounce → a "file" trigger.
	watcher, err := NewWatcher(cfg.Loop.Dir, log)
	if err != nil {
		log.Warn("cannot watch the spec folder; relying on the slow poll", zap.Error(err))
	} else {
		events := make(chan struct{}, 1)
		goRun(func() {
			watcher.Run(stopCtx, func() {
				select {
				case events <- struct{}{}:
				default:
				}
			})
		})
		goRun(func() {
			Debounce(stopCtx, events, cfg.DebounceQuiet, cfg.DebounceMax, func() { loop.Request(TriggerFile, false) })
		})
	}
	if cfg.Poll > 0 {
		goRun(func() {
			t := time.NewTicker(cfg.Poll)
			defer t.Stop()
			for {
				select {
				case <-stopCtx.Done():
					return
				case <-t.C:
					if watcher != nil {
						watcher.Rewatch()
					}
					loop.Request(TriggerPoll, false)
				}
			}
		})
	}

	var srv *http.Server
	if cfg.Listener != nil {
		srv = &http.Server{Handler: newHandler(loop, cfg.Loop.Metrics, status), ReadHeaderTimeout: 10 * time.Second}
		goRun(func() {
			if err := srv.Serve(cfg.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("the HTTP listener failed", zap.Error(err))
			}
		})
		log.Info("serving /healthz, /readyz, /metrics, /plan and POST /allow-destroy", zap.String("listen", cfg.Listener.Addr().String()))
	}

	if cfg.Signals != nil {
		goRun(func() { handleSignals(alive, cfg.Signals, loop, stop, cfg.Exit, log) })
	}

	if wd := cfg.Notifier.WatchdogInterval(); wd > 0 {
		goRun(func() {
			t := time.NewTicker(wd / 4)
			defer t.Stop()
			for {
				select {
				case <-stopCtx.Done():
					return
				case <-t.C:
					// Only while the loop beats: a stuck pass stops the pings and systemd restarts us.
					// A stand-by runs no loop: it is alive while it campaigns.
					standingBy := cfg.Leadership != nil && cfg.Leadership.Status().Role != "leader"
					if loop.Alive(wd) || standingBy {
						_ = cfg.Notifier.Notify("WATCHDOG=1")
					}
				}
			}
		})
	}

	loopDone := make(chan struct{})
	heartbeat := 10 * time.Second
	if wd := cfg.Notifier.WatchdogInterval(); wd > 0 && wd/4 < heartbeat {
		heartbeat = wd / 4
	}
	var lost atomic.Bool
	go func() {
		defer close(loopDone)
		if cfg.Leadership != nil {
			goRun(func() {
				select {
				case <-cfg.Leadership.Lost():
					lost.Store(true)
					log.Error("leadership lost: no new Twilio call is started; stopping so that a fresh process stands by")
					stop()
				case <-stopCtx.Done():
				}
			})
			cfg.Loop.OnChange(Status{}) // a stand-by is ready
			if err := cfg.Leadership.Lead(stopCtx); err != nil {
				return // stopping (or lost) before leading
			}
			cfg.Loop.OnChange(Status{})
		}
		loop.Run(stopCtx, work, heartbeat)
	}()

	<-stopCtx.Done()
	loop.setStopping()
	cfg.Loop.Metrics.setReady(false)
	_ = cfg.Notifier.Notify("STOPPING=1\nSTATUS=stopping: waiting for the Twilio calls in flight")
	if cfg.Gate != nil {
		cfg.Gate.Close()
	}
	var result error
	timer := time.NewTimer(cfg.StopTimeout)
	select {
	case <-loopDone:
		timer.Stop()
	case <-timer.C:
		log.Error("the stop timeout passed; cancelling the Twilio calls in flight", zap.Duration("stop_timeout", cfg.StopTimeout))
		abort()
		// A pass that does not return once cancelled (stuck on something
		// that ignores its context) must not keep the process alive: give
		// it one more stop timeout, then return without it. The state file
		// holds every change saved so far; the caller closes it.
		grace := time.NewTimer(cfg.StopTimeout)
		select {
		case <-loopDone:
			grace.Stop()
		case <-grace.C:
			log.Error("the pass in flight did not return after being cancelled; exiting without waiting for it", zap.Duration("waited", 2*cfg.StopTimeout))
		}
		result = ErrStopTimeout
	}
	loop.abandon()
	if cfg.Leadership != nil {
		if lost.Load() {
			result = ErrLeadershipLost
		} else if result == nil {
			// Every call has returned: hand over now rather than let the
			// stand-by wait out the lease (and a quarantine).
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := cfg.Leadership.Release(rctx); err != nil {
				log.Warn("releasing the lease failed; a stand-by takes over when it expires", zap.Error(err))
			}
			cancel()
		}
	}
	if srv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := srv.Shutdown(shutdownCtx); err != nil {
			srv.Close()
		}
		cancel()
	}
	done()
	if watcher != nil {
		watcher.Close()
	}
	wg.Wait()
	if result == nil {
		log.Info("stopped")
	}
	return result
}

// Listen opens the HTTP listener early, so a taken port fails the start.
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	return l, nil
}
