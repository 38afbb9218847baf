// Package ha tests several convsync run daemons sharing one PostgreSQL
// state, with the real binary against the emulator over HTTP and a
// throwaway PostgreSQL per test: the failure matrix of
// docs/reliability.md#several-replicas (crashes, pauses, hand-overs,
// database restarts, terminated sessions, force-unlock, the CLI against a
// leading daemon, PgBouncer) and a bounded kill storm.
package ha
