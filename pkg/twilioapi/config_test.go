package twilioapi

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNewRefusesBadCredentials(t *testing.T) {
	const badSecret = "abc!def ghi\n" // not letters and digits only
	tests := []struct {
		name      string
		cfg       Config
		wantParts []string
	}{
		{"nothing set", Config{}, []string{"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET"}},
		{"no token", Config{AccountSID: testAccountSID}, []string{"TWILIO_AUTH_TOKEN"}},
		{"SID not AC+32 hex", Config{AccountSID: "AC123", AuthToken: testToken}, []string{"TWILIO_ACCOUNT_SID", "AC followed by 32 hex digits"}},
		{"token in the SID variable", Config{AccountSID: testToken, AuthToken: testToken}, []string{"TWILIO_ACCOUNT_SID"}},
		{"token with punctuation", Config{AccountSID: testAccountSID, AuthToken: badSecret}, []string{"TWILIO_AUTH_TOKEN", "letters and digits"}},
		{"API key without secret", Config{AccountSID: testAccountSID, APIKey: sid("SK", 1)}, []string{"TWILIO_API_SECRET"}},
		{"API secret without key", Config{AccountSID: testAccountSID, APISecret: testToken}, []string{"TWILIO_API_KEY"}},
		{"API key not SK+32 hex", Config{AccountSID: testAccountSID, APIKey: "mykey", APISecret: testToken}, []string{"TWILIO_API_KEY", "SK"}},
		{"API secret with punctuation", Config{AccountSID: testAccountSID, APIKey: sid("SK", 1), APISecret: badSecret}, []string{"TWILIO_API_SECRET", "letters and digits"}},
		{"base URL with a path", Config{AccountSID: testAccountSID, AuthToken: testToken, BaseURL: "http://127.0.0.1:4010/v1"}, []string{"scheme://host[:port]"}},
		{"base URL without scheme", Config{AccountSID: testAccountSID, AuthToken: testToken, BaseURL: "127.0.0.1:4010"}, []string{"http://127.0.0.1:4010"}},
		{"base URL with a wrong scheme", Config{AccountSID: testAccountSID, AuthToken: testToken, BaseURL: "ftp://127.0.0.1:4010"}, []string{"http://127.0.0.1:4010"}},
		{"base URL with user info", Config{AccountSID: testAccountSID, AuthToken: testToken, BaseURL: "http://u:p@127.0.0.1:4010"}, []string{"user info"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			msg := err.Error()
			for _, part := range tt.wantParts {
				if !strings.Contains(msg, part) {
					t.Errorf("error %q lacks %q", msg, part)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
			for _, secret := range []string{testToken, badSecret, "abc!def"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains a secret", msg)
				}
			}
		})
	}
}

func TestNewAcceptsGoodCredentials(t *testing.T) {
	for _, cfg := range []Config{
		{AccountSID: testAccountSID, AuthToken: testToken},
		{AccountSID: testAccountSID, APIKey: sid("SK", 1), APISecret: testToken},
		{AccountSID: testAccountSID, AuthToken: testToken, BaseURL: "http://127.0.0.1:4010/"},
	} {
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg.BaseURL, err)
		}
	}
}

func TestAPIKeyIsUsedForBasicAuth(t *testing.T) {
	c, err := New(Config{AccountSID: testAccountSID, AuthToken: "other", APIKey: sid("SK", 1), APISecret: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if c.username != sid("SK", 1) || c.password != testToken {
		t.Errorf("basic auth user = %q, want the API key", c.username)
	}
}

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "absent")
	tests := []struct {
		name      string
		env       map[string]string
		want      Config
		wantError string
	}{
		{"variables", map[string]string{EnvAccountSID: testAccountSID, EnvAuthToken: testToken},
			Config{AccountSID: testAccountSID, AuthToken: testToken}, ""},
		{"token file, trailing newline trimmed", map[string]string{EnvAccountSID: testAccountSID, EnvAuthTokenFile: tokenFile},
			Config{AccountSID: testAccountSID, AuthToken: testToken}, ""},
		{"API key with secret file", map[string]string{EnvAccountSID: testAccountSID, EnvAPIKey: sid("SK", 1), EnvAPISecretFile: tokenFile},
			Config{AccountSID: testAccountSID, APIKey: sid("SK", 1), APISecret: testToken}, ""},
		{"token and token file", map[string]string{EnvAuthToken: testToken, EnvAuthTokenFile: tokenFile}, Config{}, "set only one"},
		{"unreadable token file", map[string]string{EnvAuthTokenFile: missing}, Config{}, "TWILIO_AUTH_TOKEN_FILE"},
		{"unreadable secret file", map[string]string{EnvAPISecretFile: missing}, Config{}, "TWILIO_API_SECRET_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantError)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error %q contains the token", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ConfigFromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}
