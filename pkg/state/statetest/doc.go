// Package statetest is the contract every state backend meets: one suite of
// tests, run against the file (pkg/state) and PostgreSQL (pkg/state/pgstate),
// so that a user who moves a state between them gets the same behaviour.
package statetest
