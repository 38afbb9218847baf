// Package daemon owns `convsync run`: the long-lived reconciliation loop and
// everything around it that an operator relies on.
//
//   - Loop is level-triggered: triggers (a spec file changed, the slow poll,
//     the resync timer, SIGHUP, a backoff expiring, an operator allowing
//     deletions) only mark work pending; one worker reloads the whole spec set
//     and runs one engine.Reconciler pass. Triggers that arrive during a pass
//     collapse into one follow-up pass. An unchanged spec hash skips the pass;
//     a spec set that fails to load keeps the last good one in force.
//   - Watcher turns fsnotify events on the spec folder (recursively) into
//     "something changed" notifications, and Debounce holds them until the
//     folder has been quiet for a moment (or a maximum wait has passed).
//   - Run wires these together with signals (SIGHUP reloads and resyncs;
//     SIGTERM/SIGINT stop gracefully, a second one exits at once), the HTTP
//     listener (/healthz, /readyz, /metrics, POST /allow-destroy), Prometheus
//     metrics, and systemd notifications (READY, STATUS, WATCHDOG).
//
// The engine decides what to change in Twilio; this package decides when.
// docs/daemon.md is the user-facing description; keep the two in step.
package daemon
