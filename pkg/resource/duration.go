package resource

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// ParseISODuration reads the ISO 8601 durations Twilio takes for conversation
// timers: P[nD][T[nH][nM][n[.f]S]], case-insensitive, for example PT1H, P30D,
// P1DT12H, PT90S, PT0.5S. At least one component is required and every number is
// a whole number except the seconds, which may carry up to 9 decimal places.
//
// Years (Y), months (M before T) and weeks (W) are refused: a year or month has no
// fixed length, and Twilio's parser is not documented to accept them. Write P365D,
// P30D or P7D instead. Negative durations are refused.
func ParseISODuration(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration (for example PT1H, P30D, P1DT12H): %s", s, why)
	}
	u := strings.ToUpper(s)
	if strings.HasPrefix(u, "-") || strings.HasPrefix(u, "+") {
		return bad("a timer cannot be negative or signed")
	}
	if !strings.HasPrefix(u, "P") {
		return bad("it must start with P")
	}
	rest := u[1:]
	var total time.Duration
	components := 0
	inTime := false
	// order ranks the designators so each may appear once, in ISO order.
	order := 0
	for len(rest) > 0 {
		if rest[0] == 'T' {
			if inTime {
				return bad("T appears twice")
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return bad("T must be followed by hours, minutes or seconds")
			}
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		whole := rest[:i]
		frac := ""
		if i < len(rest) && (rest[i] == '.' || rest[i] == ',') {
			j := i + 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			frac = rest[i+1 : j]
			if frac == "" {
				return bad("a decimal point must be followed by digits")
			}
			i = j
		}
		if whole == "" {
			if i < len(rest) {
				return bad(fmt.Sprintf("expected a number before %q", rest[i:i+1]))
			}
			return bad("expected a number")
		}
		if i == len(rest) {
			return bad(fmt.Sprintf("the number %s has no designator (D, H, M or S)", rest[:i]))
		}
		designator := rest[i]
		rest = rest[i+1:]
		var unit time.Duration
		var rank int
		switch {
		case !inTime && designator == 'D':
			unit, rank = 24*time.Hour, 1
		case !inTime && (designator == 'Y' || designator == 'M' || designator == 'W'):
			unitName := map[byte]string{'Y': "years", 'M': "months", 'W': "weeks"}[designator]
			return bad(fmt.Sprintf("%c (%s) is not accepted: years and months have no fixed length, and Twilio does not document Y, M or W; write days, for example P30D or P7D", designator, unitName))
		case !inTime && (designator == 'H' || designator == 'S'):
			return bad(fmt.Sprintf("%c must come after T, for example PT%s%c", designator, whole, designator))
		case inTime && designator == 'H':
			unit, rank = time.Hour, 2
		case inTime && designator == 'M':
			unit, rank = time.Minute, 3
		case inTime && designator == 'S':
			unit, rank = time.Second, 4
		default:
			return bad(fmt.Sprintf("unexpected %q", string(designator)))
		}
		if rank <= order {
			return bad("components must appear once each, in the order D, T, H, M, S")
		}
		order = rank
		if frac != "" && designator != 'S' {
			return bad("only seconds may have a decimal fraction")
		}
		if len(frac) > 9 {
			return bad("seconds may have at most 9 decimal places")
		}
		d, ok := component(whole, frac, unit)
		if !ok || total > math.MaxInt64-d {
			return bad("too long")
		}
		total += d
		components++
	}
	if components == 0 {
		return bad("it has no components")
	}
	return total, nil
}

// component returns whole.frac × unit, or false on overflow.
func component(whole, frac string, unit time.Duration) (time.Duration, bool) {
	var n int64
	for _, c := range whole {
		digit := int64(c - '0')
		if n > (math.MaxInt64-digit)/10 {
			return 0, false
		}
		n = n*10 + digit
	}
	if n > math.MaxInt64/int64(unit) {
		return 0, false
	}
	d := time.Duration(n) * unit
	if frac != "" {
		// unit is a second here: frac counts nanoseconds once padded to 9 digits.
		nanos := int64(0)
		for i := 0; i < 9; i++ {
			nanos *= 10
			if i < len(frac) {
				nanos += int64(frac[i] - '0')
			}
		}
		if d > math.MaxInt64-time.Duration(nanos) {
			return 0, false
		}
		d += time.Duration(nanos)
	}
	return d, true
}
