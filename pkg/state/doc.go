// Package state owns convsync's memory of what it manages: which Twilio SIDs belong
// to which spec address, what convsync last applied to each (including write-only
// fields Twilio never returns), and which creates were in flight when a run stopped.
//
// It is three pieces that know little of each other:
//   - the model (State, Resource, Pending): plain Go values, no JSON, no disk;
//   - the format (Encode, Decode): the versioned JSON envelope, strict on read;
//   - the storage (File): the lock, the journal (each change appended as one
//     fsynced line to path+".journal", replayed by Open), atomic replacement
//     of the whole file every so many changes and on Close, the backup and the
//     emergency copy when a write fails.
//
// The state file never holds secrets: the model has no field that could carry one.
package state
