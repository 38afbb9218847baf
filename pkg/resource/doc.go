// Package resource owns convsync's vocabulary for the things it manages: kinds,
// addresses, the desired form of a resource (from the specs) and the observed
// form (from Twilio), and — as data — every kind's schema: its fields with
// their types and rules (required, forces replacement, write-only, secret,
// enums, limits), its parent, Twilio path, natural key, whether it is a
// singleton, and the few rules only that kind has (KindRules; the
// conversation's are in conversation.go).
//
// Every other layer reads these schemas rather than listing a kind's fields:
// the spec loader parses by them, the planner diffs, orders and claims by
// them, the state file encodes typed values through them, and the Twilio
// adapters check what they may send against them. Adding a kind is its schema
// here (kinds.go), its adapter in pkg/twilioapi, its emulator rules, its docs
// and its tests.
package resource
