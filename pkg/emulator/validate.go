package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convsync/convsync/pkg/resource"
)

const (
	maxFriendlyNameChars = 256
	maxAttributesBytes   = 16 * 1024
	minTimerInactive     = time.Minute
	minTimerClosed       = 10 * time.Minute
)

// conversationChange is a validated create or update request. nil fields were
// not sent (or were sent empty on an update, which leaves the field as it is).
type conversationChange struct {
	friendlyName        *string
	uniqueName          *string
	attributes          *string
	messagingServiceSID *string
	state               *string
	timerInactive       *time.Duration
	timerClosed         *time.Duration
	dateCreated         *time.Time
	dateUpdated         *time.Time
}

// has reports whether the form carries the parameter at all.
func has(form url.Values, name string) bool {
	_, ok := form[name]
	return ok
}

// parseConversationChange validates the form parameters of a conversation
// create or update. Unknown parameters are ignored, as Twilio ignores them.
func parseConversationChange(form url.Values, create bool) (conversationChange, *apiError) {
	var ch conversationChange
	// An empty value on an update leaves the field unchanged: users report that
	// Twilio does not clear friendly_name that way, and clearing is not
	// documented for the other fields either.
	nonEmpty := func(name string) (string, bool) {
		if !has(form, name) {
			return "", false
		}
		v := form.Get(name)
		return v, v != ""
	}
	if v, ok := nonEmpty("FriendlyName"); ok {
		if utf8.RuneCountInString(v) > maxFriendlyNameChars {
			return ch, errInvalidParam("FriendlyName must be at most %d characters", maxFriendlyNameChars)
		}
		ch.friendlyName = &v
	}
	if v, ok := nonEmpty("UniqueName"); ok {
		if resource.LooksLikeSID(v) {
			return ch, newError(http.StatusBadRequest, CodeUniqueNameIsSID, "Conversation unique name cannot look like a SID: %s", v)
		}
		ch.uniqueName = &v
	}
	if v, ok := nonEmpty("Attributes"); ok {
		if len(v) > maxAttributesBytes {
			return ch, errInvalidParam("Attributes must be at most %d bytes, got %d", maxAttributesBytes, len(v))
		}
		if !json.Valid([]byte(v)) {
			return ch, errInvalidParam("Attributes must be valid JSON")
		}
		ch.attributes = &v
	}
	if has(form, "MessagingServiceSid") {
		v := form.Get("MessagingServiceSid")
		if !resource.IsSID(v, "MG") {
			return ch, errInvalidParam("MessagingServiceSid %q must be MG followed by 32 hex digits", v)
		}
		ch.messagingServiceSID = &v
	}
	if has(form, "State") {
		v := form.Get("State")
		switch v {
		case stateActive, stateInactive:
		case stateClosed:
			if create {
				return ch, newError(http.StatusBadRequest, CodeCreateClosed, "Conversation cannot be created in closed state")
			}
		default:
			return ch, errInvalidParam("State %q must be one of active, inactive, closed", v)
		}
		ch.state = &v
	}
	timers := []struct {
		param            string
		min              time.Duration
		formatCode, code int
		into             **time.Duration
	}{
		{"Timers.Inactive", minTimerInactive, CodeTimerInactiveFormat, CodeTimerInactiveTooLow, &ch.timerInactive},
		{"Timers.Closed", minTimerClosed, CodeTimerClosedFormat, CodeTimerClosedTooLow, &ch.timerClosed},
	}
	for _, t := range timers {
		if !has(form, t.param) {
			continue
		}
		v := form.Get(t.param)
		d, ok := parseISODuration(v)
		if !ok {
			return ch, newError(http.StatusBadRequest, t.formatCode, "%s %q is not an ISO 8601 duration", t.param, v)
		}
		if d < t.min {
			return ch, newError(http.StatusBadRequest, t.code, "%s must be at least %s", t.param, isoMinutes(t.min))
		}
		*t.into = &d
	}
	if (ch.timerInactive != nil || ch.timerClosed != nil) && ch.state == nil {
		return ch, newError(http.StatusBadRequest, CodeTimersWithoutState, "Timers can only be set together with State")
	}
	for _, d := range []struct {
		param string
		into  **time.Time
	}{{"DateCreated", &ch.dateCreated}, {"DateUpdated", &ch.dateUpdated}} {
		if v, ok := nonEmpty(d.param); ok {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return ch, errInvalidParam("%s %q must be an ISO 8601 date-time such as 2015-12-16T22:18:37Z", d.param, v)
			}
			t = t.UTC().Truncate(time.Second)
			*d.into = &t
		}
	}
	return ch, nil
}

func isoMinutes(d time.Duration) string { return "PT" + strconv.Itoa(int(d/time.Minute)) + "M" }

// parseISODuration reads an ISO 8601 duration such as PT10M, P1DT2H or P2W.
// Years and months count as 365 and 30 days (Twilio does not say how it counts
// them; timers that long are unusual).
func parseISODuration(s string) (time.Duration, bool) {
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return 0, false
	}
	rest := s[1:]
	inTime := false
	var total float64
	sawUnit := false
	const day = 24 * float64(time.Hour)
	units := map[bool]map[byte]float64{
		false: {'Y': 365 * day, 'M': 30 * day, 'W': 7 * day, 'D': day},
		true:  {'H': float64(time.Hour), 'M': float64(time.Minute), 'S': float64(time.Second)},
	}
	for len(rest) > 0 {
		if rest[0] == 'T' {
			if inTime || len(rest) == 1 {
				return 0, false
			}
			inTime = true
			rest = rest[1:]
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.' || rest[i] == ',') {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, false
		}
		n, err := strconv.ParseFloat(strings.ReplaceAll(rest[:i], ",", "."), 64)
		if err != nil {
			return 0, false
		}
		unit, ok := units[inTime][rest[i]]
		if !ok {
			return 0, false
		}
		total += n * unit
		sawUnit = true
		rest = rest[i+1:]
	}
	if !sawUnit || total > float64(1<<62) {
		return 0, false
	}
	return time.Duration(total), true
}

// parseListDate reads a StartDate or EndDate filter: an ISO 8601 date-time, or a
// bare date (YYYY-MM-DD), which means the start of that day for StartDate and
// its end for EndDate, as Twilio's description asks.
func parseListDate(v string, endOfDay bool) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse("2006-01-02T15:04:05", v); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		if endOfDay {
			return t.Add(24*time.Hour - time.Second), true
		}
		return t, true
	}
	return time.Time{}, false
}
