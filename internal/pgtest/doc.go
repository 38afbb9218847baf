// Package pgtest starts throwaway PostgreSQL servers for tests, from the
// server binaries installed on the machine (Debian's postgresql-15): one
// cluster is initdb'ed per test binary as a template and copied for each
// server, which starts in about a tenth of a second. When the tests run as
// root the servers run as an unprivileged user (postgres, else nobody),
// because PostgreSQL refuses to run as root.
//
// Under CI=true a missing binary fails the test instead of skipping it: a
// test that needs PostgreSQL must never silently not run in CI.
//
// A server can be killed with SIGKILL (postmaster and every backend) and
// started again on the same data, its sessions terminated, and put behind
// PgBouncer in transaction mode when pgbouncer is installed.
package pgtest
