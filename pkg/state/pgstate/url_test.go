package pgstate_test

import (
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/state/pgstate"
)

// Every secret a state URL can carry (the password in the user part or as
// a parameter, and sslpassword, which unlocks the client's TLS key) is
// refused in a flag and never shown.
func TestStateURLSecretsAreRedactedAndRefusedInFlags(t *testing.T) {
	const secret = "LEAKCHECK-s3cr3t"
	for _, url := range []string{
		"postgres://u:" + secret + "@h/db",
		"postgres://u@h/db?password=" + secret,
		"postgres://u@h/db?sslmode=verify-full&sslkey=/k.pem&sslpassword=" + secret,
		"postgresql://u@h1:5432,h2:5433/db?sslpassword=" + secret,
	} {
		t.Run(url, func(t *testing.T) {
			if r := pgstate.Redact(url); strings.Contains(r, secret) {
				t.Errorf("Redact = %s", r)
			}
			err := pgstate.CheckFlagURL(url)
			if err == nil {
				t.Fatal("CheckFlagURL accepted a URL holding a secret in a flag")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("CheckFlagURL's refusal shows the secret: %v", err)
			}
		})
	}
}
