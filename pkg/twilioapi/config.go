package twilioapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	"go.uber.org/zap"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvAccountSID    = "TWILIO_ACCOUNT_SID"
	EnvAuthToken     = "TWILIO_AUTH_TOKEN"
	EnvAuthTokenFile = "TWILIO_AUTH_TOKEN_FILE"
	EnvAPIKey        = "TWILIO_API_KEY"
	EnvAPISecret     = "TWILIO_API_SECRET"
	EnvAPISecretFile = "TWILIO_API_SECRET_FILE"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultActionsPerSecond = 30 // Twilio: 30 conversation creates+deletes per second per service
	DefaultMaxAttempts      = 8
	DefaultBaseBackoff      = 200 * time.Millisecond
	DefaultMaxBackoff       = 30 * time.Second
	DefaultAttemptTimeout   = 60 * time.Second
)

// Config configures a Client. Zero values mean the documented defaults.
type Config struct {
	// AccountSID is always required (AC + 32 hex digits).
	AccountSID string
	// AuthToken authenticates with the account SID. Alternatively set APIKey
	// (SK + 32 hex) and APISecret; when both are set the API key is used.
	AuthToken         string
	APIKey, APISecret string

	// BaseURL is "" for Twilio, or scheme://host[:port] of a stand-in such as the
	// emulator ("http://127.0.0.1:4010"). Requests keep Host: conversations.twilio.com.
	BaseURL string

	// ActionsPerSecondPerService limits creates and deletes of conversations per
	// service SID, and creates and deletes of services account-wide.
	// 0 = DefaultActionsPerSecond; < 0 = no client-side limit.
	ActionsPerSecondPerService float64

	// MaxAttempts bounds the HTTP attempts of one operation (0 = 8).
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the exponential backoff with full jitter
	// (0 = 200ms and 30s). A 429's Retry-After is the minimum wait.
	BaseBackoff, MaxBackoff time.Duration
	// AttemptTimeout is a safety net on each HTTP attempt, under the caller's
	// context deadline (0 = 60s).
	AttemptTimeout time.Duration

	// Logger receives a debug line per HTTP attempt and an info line per retry.
	// Credentials are never logged. nil = no logging.
	Logger *zap.Logger
	// Observe, if set, is called after every HTTP attempt (metrics hook), from
	// the calling goroutine: it must be safe for concurrent use.
	Observe func(Call)

	// Guard, if set, is asked before every HTTP attempt whether it may be
	// sent and by when it must be done (the daemon's lease); nil: always.
	Guard RequestGuard
	// BeforeSend, if set, is called after the guard allowed an attempt and
	// right before it is sent (tests pause the process there).
	BeforeSend func(method, route string)

	// Sleep waits for d or until ctx is done (tests inject a recorder).
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0,1) for backoff jitter.
	Rand func() float64
	// Now is the rate limiter's clock.
	Now func() time.Time
}

// Call describes one HTTP attempt, for metrics.
type Call struct {
	Method string
	// Route is the templated path, e.g. "/v1/Services/{ServiceSid}/Conversations/{Sid}".
	Route string
	// Status is the HTTP status, 0 when no response arrived.
	Status   int
	Duration time.Duration
	// Attempt counts from 1 within one operation.
	Attempt int
	// Retried is true when the client will send the request again after this attempt.
	Retried bool
}

// ConfigFromEnv reads credentials from the environment. TWILIO_AUTH_TOKEN_FILE and
// TWILIO_API_SECRET_FILE name files holding the secret (for systemd
// LoadCredential); trailing newlines are trimmed. Setting both a variable and its
// _FILE form is an error. Other Config fields are left zero.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		AccountSID: strings.TrimSpace(getenv(EnvAccountSID)),
		APIKey:     strings.TrimSpace(getenv(EnvAPIKey)),
	}
	var err error
	if cfg.AuthToken, err = secretFromEnv(getenv, EnvAuthToken, EnvAuthTokenFile); err != nil {
		return Config{}, err
	}
	if cfg.APISecret, err = secretFromEnv(getenv, EnvAPISecret, EnvAPISecretFile); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func secretFromEnv(getenv func(string) string, name, fileName string) (string, error) {
	value, path := getenv(name), getenv(fileName)
	if value != "" && path != "" {
		return "", fmt.Errorf("both %s and %s are set: set only one", name, fileName)
	}
	if path == "" {
		return value, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		// The *PathError names the path and the reason, never the content.
		return "", fmt.Errorf("%s: cannot read the secret file: %v", fileName, err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

// credentials validates cfg's credentials and returns the basic-auth pair.
// Messages name the environment variables and never print a secret.
func (cfg Config) credentials() (username, password string, err error) {
	if cfg.AccountSID == "" {
		return "", "", fmt.Errorf("missing Twilio credentials: set %s and %s (or %s and %s)", EnvAccountSID, EnvAuthToken, EnvAPIKey, EnvAPISecret)
	}
	if !resource.IsSID(cfg.AccountSID, "AC") {
		// Not printed: a secret pasted into the wrong variable must not leak.
		return "", "", fmt.Errorf("%s must be AC followed by 32 hex digits (got %d characters)", EnvAccountSID, len(cfg.AccountSID))
	}
	switch {
	case cfg.APIKey != "":
		if !resource.IsSID(cfg.APIKey, "SK") {
			return "", "", fmt.Errorf("%s must be an API key SID: SK followed by 32 hex digits (got %d characters)", EnvAPIKey, len(cfg.APIKey))
		}
		if cfg.APISecret == "" {
			return "", "", fmt.Errorf("%s is set but %s is empty", EnvAPIKey, EnvAPISecret)
		}
		if !alphanumeric(cfg.APISecret) {
			return "", "", fmt.Errorf("%s contains characters other than letters and digits (twilio-go refuses it); check for quotes, spaces or a trailing newline", EnvAPISecret)
		}
		return cfg.APIKey, cfg.APISecret, nil
	case cfg.APISecret != "":
		return "", "", fmt.Errorf("%s is set but %s is empty", EnvAPISecret, EnvAPIKey)
	case cfg.AuthToken == "":
		return "", "", fmt.Errorf("missing Twilio credentials: %s is set but %s is empty (or set %s and %s)", EnvAccountSID, EnvAuthToken, EnvAPIKey, EnvAPISecret)
	case !alphanumeric(cfg.AuthToken):
		return "", "", fmt.Errorf("%s contains characters other than letters and digits (twilio-go refuses it); check for quotes, spaces or a trailing newline", EnvAuthToken)
	}
	return cfg.AccountSID, cfg.AuthToken, nil
}

func alphanumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// parseBaseURL accepts "" or scheme://host[:port] with no path, query or user info.
func parseBaseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		// Not printed: it could hold user info.
		return nil, errors.New("base URL is not a URL: it must look like http://127.0.0.1:4010")
	}
	if u.User != nil {
		return nil, errors.New("base URL must not contain user info: use the credential variables")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("base URL %q must look like http://127.0.0.1:4010", s)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("base URL %q must be scheme://host[:port] only (the /v1/... paths are added by the client)", s)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// withDefaults fills zero fields.
func (cfg Config) withDefaults() Config {
	if cfg.ActionsPerSecondPerService == 0 {
		cfg.ActionsPerSecondPerService = DefaultActionsPerSecond
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.BaseBackoff {
		cfg.MaxBackoff = cfg.BaseBackoff
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepContext
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
