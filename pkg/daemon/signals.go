package daemon

import (
	"context"
	"os"
	"syscall"

	"go.uber.org/zap"
)

// handleSignals acts on signals until ctx is done: SIGHUP asks for a reload
// and a full resync; the first SIGTERM or SIGINT calls stop (graceful: no
// new work, in-flight Twilio calls finish, the state is saved); a second
// one calls exit (at once, non-zero).
func handleSignals(ctx context.Context, signals <-chan os.Signal, loop *Loop, stop func(), exit func(), log *zap.Logger) {
	terms := 0
	for {
		select {
		case <-ctx.Done():
			return
		case sig, ok := <-signals:
			if !ok {
				return
			}
			switch sig {
			case syscall.SIGHUP:
				log.Info("SIGHUP: reloading the specs and resyncing Twilio in full")
				loop.Request(TriggerSignal, true)
			case syscall.SIGTERM, os.Interrupt:
				terms++
				if terms == 1 {
					log.Info("stopping: no new work; waiting for the Twilio calls in flight and the state to be saved (send the signal again to exit at once)", zap.String("signal", sig.String()))
					stop()
					continue
				}
				log.Warn("second signal: exiting at once", zap.String("signal", sig.String()))
				exit()
				return
			}
		}
	}
}
