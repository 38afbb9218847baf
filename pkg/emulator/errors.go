package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// Twilio error codes the emulator answers with.
const (
	CodeInvalidParameter    = 20001 // missing or malformed parameter (Twilio's generic 400)
	CodeUnauthorized        = 20003
	CodeNotFound            = 20404
	CodeMethodNotAllowed    = 20004
	CodeTooManyRequests     = 20429
	CodeInternal            = 20500
	CodeUniqueNameTaken     = 50353
	CodeTimerInactiveTooLow = 50375
	CodeTimerClosedTooLow   = 50376
	CodeConversationClosed  = 50377
	CodeTimerInactiveFormat = 50379
	CodeTimerClosedFormat   = 50380
	CodeTimersWithoutState  = 50382
	CodeCreateClosed        = 50384
	CodeUniqueNameIsSID     = 50390
	CodeInvalidPageToken    = 21481
	// Roles, users and the service configuration (../shared/twilio-kinds.md §3.1, §3.4, §3.5).
	CodeFriendlyNameMissing      = 50000
	CodeFriendlyNameTooLong      = 50003
	CodeRoleNotFound             = 50100
	CodePermissionNotFound       = 50104
	CodeInvalidRoleType          = 50105
	CodeConversationRoleNotFound = 50109
	CodeUserExists               = 50201
)

// apiError is a Twilio error answer.
type apiError struct {
	Code       int    `json:"code"`
	Message    string `json:"message"`
	MoreInfo   string `json:"more_info"`
	Status     int    `json:"status"`
	retryAfter int    // seconds; > 0 adds a Retry-After header
}

func newError(status, code int, format string, args ...any) *apiError {
	return &apiError{
		Code:     code,
		Message:  fmt.Sprintf(format, args...),
		MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		Status:   status,
	}
}

func errUnauthorized() *apiError {
	return newError(http.StatusUnauthorized, CodeUnauthorized, "Authenticate")
}

func errNotFound(path string) *apiError {
	return newError(http.StatusNotFound, CodeNotFound, "The requested resource %s was not found", path)
}

func errTooManyRequests(why string) *apiError {
	e := newError(http.StatusTooManyRequests, CodeTooManyRequests, "Too Many Requests: %s", why)
	e.retryAfter = 1
	return e
}

func errInternal() *apiError {
	return newError(http.StatusInternalServerError, CodeInternal, "Internal Server Error")
}

func errInvalidParam(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, CodeInvalidParameter, format, args...)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(errInternal())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// statusRecorder remembers the status written, for the stats.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}
