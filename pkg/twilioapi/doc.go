// Package twilioapi owns every conversation convsync has with Twilio's REST API.
//
// It wraps twilio-go (only its client and conversations/v1 packages) and adds what
// the library lacks: context cancellation, a base URL that can point at the
// emulator, retries with backoff that know which requests are safe to send twice,
// client-side rate limiting at Twilio's documented limits, paging that follows
// next_page_url exactly, path escaping of unique names, and typed errors.
//
// It converts between Twilio's JSON and the shared model in pkg/resource, one
// small adapter per kind (kinds.go), so the planner and applier see only
// resource.Values and resource.Observed through the API interface. Secret
// fields arrive as references (resource.SecretRef); the adapter reads their
// values only as it builds the request (kind_account.go).
//
// docs/twilio-client.md explains the policies and the twilio-go quirks.
package twilioapi
