// Package emulator owns convsync's stand-in for Twilio Conversations v1: a stateful
// HTTP server that answers the Service, Conversation, Role, User, Participant and
// conversation-scoped Webhook routes, a service's Configuration, Notifications
// and Webhooks singletons, and the account's Configuration, Configuration/Webhooks,
// address configurations and push credentials (account*.go; secrets accepted,
// never returned, kept only as digests) the way Twilio does
// (shapes checked against Twilio's own OpenAPI contract with Prism, rules taken from
// /work/shared/twilio-notes.md), keeps its data in memory or in an atomically written
// file, and can inject the faults convsync must survive: latency, per-service rate
// limits, account concurrency limits, and 500 answers before or after a write.
//
// Tests use it in-process (it is an http.Handler with out-of-band accessors that do
// not count as API traffic); the `convsync emulator` command serves it with
// ListenAndServe, and end-to-end tests read its counters and change its faults
// through the private /__emulator/ routes. What it does not imitate is listed in
// docs/emulator.md.
package emulator
