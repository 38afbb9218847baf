// Package e2e holds the end-to-end tests: they build the real convsync
// binary and run it, as a user would, against the real emulator served over
// HTTP, reading the emulator's own data and request counters to check what
// convsync did.
package e2e
