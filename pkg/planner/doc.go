// Package planner owns the decision of what to do: it reads Twilio once
// (Refresh, with list calls per service), compares that snapshot with the
// desired specs and the state file, and produces a Plan — an ordered list of
// steps, each with its action, the fields that change (before → after) and a
// reason a person can read. It makes no changes anywhere; package apply
// carries a plan out.
//
// The diff rules follow Twilio's behaviour (see docs/planning.md): attributes
// compare as JSON, write-only timers compare against what convsync last
// applied, a closed conversation can only be replaced, a service can only be
// replaced, and fields a spec leaves out are not managed.
package planner
