// Package cli owns convsync's command line: flags parsed into one typed
// options struct per command, the human and JSON views on stdout, logs on
// stderr, and exit codes. It wires the spec loader, state file, Twilio client
// and engine together; the work itself lives in those packages.
package cli
