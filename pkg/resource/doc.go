// Package resource owns convsync's vocabulary for the things it manages: kinds,
// addresses, field names, the desired form of a resource (from the specs) and the
// observed form (from Twilio). Every other layer — spec loader, state file, planner,
// applier, Twilio client — speaks in these types, so adding a kind means adding one
// KindSchema here and one small piece in each layer, not a new data model.
package resource
