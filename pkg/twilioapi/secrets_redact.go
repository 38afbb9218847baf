package twilioapi

import (
	"strings"

	"github.com/convsync/convsync/pkg/resource"
)

// secretValues reads the values of v's secret fields, as the adapter sends
// them, so that an answer echoing one can be scrubbed. A secret that
// cannot be read is skipped: the adapter refuses to send it anyway.
func secretValues(kind resource.Kind, v resource.Values) []string {
	schema := resource.Schema(kind)
	if schema == nil {
		return nil
	}
	var out []string
	for name, text := range v {
		if f := schema.Field(name); f == nil || !f.Secret {
			continue
		}
		if value, err := resource.ReadSecret(text); err == nil {
			out = append(out, string(value))
		}
	}
	return out
}

// minRedactedWord: shorter words of a secret are left alone, or every
// message would be riddled with "[redacted]".
const minRedactedWord = 8

// redactSecrets replaces in s every secret, and every word of one (a line
// of a PEM block, which an answer may quote alone or joined by spaces), by
// "[redacted]". Twilio's messages quote parameters for some errors, and a
// proxy may answer with the request itself.
func redactSecrets(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret = strings.TrimSpace(secret); secret == "" {
			continue
		}
		s = strings.ReplaceAll(s, secret, "[redacted]")
		for _, line := range strings.Split(secret, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "-----") {
				continue // PEM armor ("-----BEGIN PRIVATE KEY-----") is no secret, and Twilio's messages name it
			}
			for _, word := range strings.Fields(line) {
				if len(word) >= minRedactedWord {
					s = strings.ReplaceAll(s, word, "[redacted]")
				}
			}
		}
	}
	return s
}
