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
// A Backend is where a state is kept: File, or pgstate.Store in PostgreSQL.
// State.Apply is the change tracking both use (which entries an Update
// touched, validated, the serial bumped), so each stores only what changed;
// statetest is the contract both pass.
//
// The state file never holds secrets: the model has no field that could carry one.
package state
