// Package apply carries out a plan through the Twilio API: it runs the steps
// in dependency order (a service before the conversations created in it, and
// after the conversations deleted from it), independent steps in parallel,
// and records every change in the state file the moment Twilio confirms it.
//
// Before each create it records a pending intent in the state, so that a
// create whose answer is lost (crash, timeout, 500 after the write) is found
// and adopted — here, right away, or by the next plan — instead of being
// repeated. One failing step does not stop unrelated steps; steps that depend
// on a failed one are skipped.
package apply
