package twilioapi

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"unicode/utf8"
)

// ErrOutcomeUnknown is wrapped by Create when the request may have been carried
// out but its answer was lost (5xx, a timeout or a dropped connection after the
// request was sent). Twilio has no idempotency key, so the caller must look for
// the resource (for example by unique_name) before creating it again.
var ErrOutcomeUnknown = errors.New("the create may or may not have happened (answer lost)")

// APIError is an error answer from Twilio (or a stand-in).
type APIError struct {
	Status   int    // HTTP status of the response
	Code     int    // Twilio error code (0 when the body was not Twilio's JSON)
	Message  string // Twilio's message, or the start of a non-JSON body
	MoreInfo string
	Method   string
	Route    string // templated path, e.g. /v1/Services/{Sid}
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %d", e.Method, e.Route, e.Status)
	if e.Code != 0 {
		fmt.Fprintf(&b, ", Twilio error %d", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Status == http.StatusUnauthorized {
		b.WriteString("; " + hintUnauthorized)
	}
	return b.String()
}

// hintUnauthorized follows a 401: the credentials, or the server they went to.
const hintUnauthorized = "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET) and --api-url / CONVSYNC_API_URL; the emulator accepts only the credentials it printed at start"

// IsNotFound reports whether err is Twilio's "not found" (404 / 20404).
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Code == 20404)
}

// IsConflict reports whether err says the unique name is taken (409 / 50353).
func IsConflict(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Status == http.StatusConflict || e.Code == 50353)
}

// IsRetryable reports whether sending the same request later could succeed:
// rate limiting (429), server errors (5xx) and transport errors. An unknown
// create outcome is not retryable: look first. Cancellation is not retryable.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrOutcomeUnknown) {
		return false
	}
	var e *APIError
	if errors.As(err, &e) {
		return e.Status == http.StatusTooManyRequests || e.Status >= 500
	}
	var t *transportError
	if errors.As(err, &t) {
		// An attempt that timed out on its own is retryable; one the caller
		// cancelled is not.
		return !t.callerGaveUp
	}
	return false
}

// IsTerminal reports whether err will not go away by retrying: a 4xx answer
// other than 429, or input this client refused before sending.
func IsTerminal(err error) bool {
	if err == nil {
		return false
	}
	var in *InputError
	if errors.As(err, &in) {
		return true
	}
	var e *APIError
	return errors.As(err, &e) && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests
}

// InputError is a request this client refused to send (unknown field, missing
// SID, unsupported operation). Retrying cannot help.
type InputError struct{ msg string }

func (e *InputError) Error() string { return e.msg }

func inputErrorf(format string, args ...any) error {
	return &InputError{msg: fmt.Sprintf(format, args...)}
}

// transportError is a request that got no HTTP answer.
type transportError struct {
	method, route string
	sent          bool // some of the request reached the wire
	callerGaveUp  bool // the caller's context was done
	err           error
}

func (e *transportError) Error() string {
	return fmt.Sprintf("%s %s: no answer: %v", e.method, e.route, e.err)
}

func (e *transportError) Unwrap() error { return e.err }

// decodeAPIError builds an APIError from an error response. Status always comes
// from the HTTP status line (twilio-go reads it from the body). A body that is
// not Twilio's JSON error becomes a short, single-line message.
func decodeAPIError(method, route string, status int, body []byte) *APIError {
	e := &APIError{Status: status, Method: method, Route: route}
	var twilio struct {
		Code     int    `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
	}
	if json.Unmarshal(body, &twilio) == nil && (twilio.Code != 0 || twilio.Message != "") {
		e.Code, e.Message, e.MoreInfo = twilio.Code, twilio.Message, twilio.MoreInfo
		return e
	}
	e.Message = bodySnippet(body)
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// bodySnippet returns up to 120 characters of body on one line.
func bodySnippet(body []byte) string {
	const max = 120
	s := string(bytes.TrimSpace(body))
	if !utf8.ValidString(s) {
		return "(non-text body)"
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// StillInFlight reports whether err is a request that reached Twilio and
// that the caller stopped waiting for (its deadline passed): Twilio may still
// be working on it, and a create may land later. A 5xx answer or a reset
// connection is not: Twilio was done with the request when it answered.
func StillInFlight(err error) bool {
	var t *transportError
	return errors.As(err, &t) && t.sent && t.callerGaveUp
}

// plainError is an operator-facing explanation of a transport error that
// keeps the original for errors.Is and errors.As.
type plainError struct {
	msg string
	err error
}

func (e *plainError) Error() string { return e.msg }
func (e *plainError) Unwrap() error { return e.err }

// explainTransport recognises the transport errors that retrying cannot fix
// soon, for a request that never reached the server at base (nil: Twilio).
// It returns the error in words an operator can act on, and how many
// attempts the operation deserves in all: 1 for a server that does not speak
// TLS (it never will), 2 for a refused connection (one quick retry, in case
// the server was restarting); 0 for any other error, which keeps the usual
// retries.
func explainTransport(base *url.URL, err error) (error, int) {
	where := "https://" + apiHost
	if base != nil {
		where = base.String()
	}
	var header tls.RecordHeaderError
	switch {
	case errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &header):
		return &plainError{msg: fmt.Sprintf("the server at %s does not speak TLS; use http:// for the emulator", where), err: err}, 1
	case errors.Is(err, syscall.ECONNREFUSED) && base != nil:
		return &plainError{msg: fmt.Sprintf("connection refused: nothing listens at %s; is the emulator running, and is --api-url / CONVSYNC_API_URL right?", where), err: err}, 2
	case errors.Is(err, syscall.ECONNREFUSED):
		return &plainError{msg: fmt.Sprintf("connection refused by %s: check the network, proxy or firewall", where), err: err}, 2
	}
	return err, 0
}
