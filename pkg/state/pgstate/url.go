package pgstate

import (
	"fmt"
	"net/url"
	"strings"
)

// IsURL reports whether a --state value names PostgreSQL rather than a file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns the URL without any password (in the user part or a
// password= parameter), for messages and logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://(an unreadable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	q := u.Query()
	redacted := false
	for _, k := range secretParams {
		if q.Has(k) {
			q.Set(k, "REDACTED")
			redacted = true
		}
	}
	if redacted {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// secretParams are the URL parameters that hold secrets: the password,
// and sslpassword, which decrypts the client's TLS key (sslkey).
var secretParams = []string{"password", "sslpassword"}

// HasPassword reports whether the URL carries a password.
func HasPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return true
		}
	}
	q := u.Query()
	for _, k := range secretParams {
		if q.Has(k) {
			return true
		}
	}
	return false
}

// CheckFlagURL refuses a URL given on the command line that carries a
// password: command lines are visible to every user of the machine (ps,
// /proc) and end up in shell histories and unit files.
func CheckFlagURL(raw string) error {
	if HasPassword(raw) {
		return fmt.Errorf("--state %s: the URL holds a password, which must never be given in a flag (anyone on the machine can read command lines); "+
			"give it through PGPASSWORD (PGSSLPASSWORD for sslpassword) or a password file (~/.pgpass, PGPASSFILE, or passfile= in the URL), or put the whole URL in CONVSYNC_STATE_URL", Redact(raw))
	}
	return nil
}
