// Package leader owns leadership among convsync processes sharing one
// state: acquiring a lease (from a Lessor such as pgstate.Store), renewing
// it, and stepping down in time, on the process's own monotonic clock.
//
// The leader trusts its lease only until validUntil: the moment it sent its
// last successful renewal plus RenewDeadline, which ends LeaseDuration −
// RenewDeadline before any stand-by can take over. A watchdog steps down at
// validUntil even when the store cannot be reached, and RequestDeadline
// (the twilioapi.RequestGuard) gives every Twilio request a deadline no
// later than validUntil, refusing to start one with less than
// MinRequestBudget left. The timings follow client-go's leader election
// (15 s, 10 s, 2 s); docs/daemon.md explains them.
package leader
