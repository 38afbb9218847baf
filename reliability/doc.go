// Package reliability proves convsync's promises under failure (see
// docs/reliability.md): the real binary is SIGKILLed at random moments during
// applies, the applier runs against injected Twilio faults, the state file is
// damaged or cannot be written, specs are hostile, and secrets are searched for
// in everything convsync prints or writes. The tests check results through the
// emulator's own data and request counters, and each prints a summary line of
// what it tried.
package reliability
