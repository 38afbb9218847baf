// Package engine owns one reconciliation pass — refresh Twilio, compute the
// plan, apply it — as a single piece that both the one-shot CLI commands
// (plan, apply) and the daemon (run) call, so they cannot drift apart.
package engine
