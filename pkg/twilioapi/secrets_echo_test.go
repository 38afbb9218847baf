package twilioapi

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

// A server that echoes what it was sent in its error (Twilio's messages
// quote parameters for some errors; a proxy or WAF may answer with the
// request itself) never gets a push credential's secret into an error
// message or a log line, whole or in part, in JSON or as plain text.
func TestSecretEchoedInAnErrorIsRedacted(t *testing.T) {
	const keyLine = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7LEAKCHECK"
	pem := "-----BEGIN PRIVATE KEY-----\n" + keyLine + "\nAnotherLineOfTheKeyLEAKCHECK2wggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	key := resource.SecretRef{File: path}.String()
	for name, answer := range map[string]func(w http.ResponseWriter, r *http.Request){
		"JSON message quoting the value": func(w http.ResponseWriter, r *http.Request) {
			twilioError(w, 400, 20001, "Invalid PrivateKey: "+r.PostForm.Get("PrivateKey"))
		},
		"JSON message quoting one line": func(w http.ResponseWriter, r *http.Request) {
			twilioError(w, 400, 20001, "Invalid PrivateKey near "+strings.Split(r.PostForm.Get("PrivateKey"), "\n")[1])
		},
		"plain text echo of the body": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte("rejected: PrivateKey=" + r.PostForm.Get("PrivateKey")))
		},
		"5xx echo, retried": func(w http.ResponseWriter, r *http.Request) {
			twilioError(w, 503, 20500, "upstream said: "+r.PostForm.Get("PrivateKey"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			var f *fakeTwilio
			f = newFakeTwilio(t, func(w http.ResponseWriter, r *http.Request, n int) {
				r.PostForm = f.seen()[n].Form // the fake has read the body
				answer(w, r)
			})
			var logs bytes.Buffer
			cfg := testConfig(f.URL, &sleeps{})
			cfg.Logger = newBufferLogger(&logs)
			c := newTestClient(t, cfg)
			_, errCreate := c.Create(context.Background(), resource.KindPushCredential, "",
				resource.Values{"type": "apn", "certificate": key, "private_key": key}, CallOptions{})
			_, errUpdate := c.Update(context.Background(), resource.KindPushCredential, "", "CR0123456789abcdef0123456789abcdef",
				resource.Values{"private_key": key}, CallOptions{})
			if errCreate == nil || errUpdate == nil {
				t.Fatalf("want errors, got %v, %v", errCreate, errUpdate)
			}
			if got := f.seen(); len(got) == 0 || got[0].Form.Get("PrivateKey") != pem {
				t.Fatal("the fake did not receive the key: the test proves nothing")
			}
			for what, text := range map[string]string{"create error": errCreate.Error(), "update error": errUpdate.Error(), "logs": logs.String()} {
				if strings.Contains(text, "LEAKCHECK") {
					t.Errorf("the secret appears in the %s:\n%s", what, text)
				}
			}
		})
	}
}

// The PEM armor is not secret: a message naming it stays readable.
func TestRedactionLeavesThePEMArmor(t *testing.T) {
	pem := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	msg := "PrivateKey must start with -----BEGIN PRIVATE KEY-----; got MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
	want := "PrivateKey must start with -----BEGIN PRIVATE KEY-----; got [redacted]"
	if got := redactSecrets(msg, []string{pem}); got != want {
		t.Errorf("redactSecrets = %q, want %q", got, want)
	}
}
