package cli

import (
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// Credentials the emulator accepts when none are given. They only ever
// unlock a local emulator, and convsync prints them at start.
const (
	EmulatorDefaultAccountSID = "AC00000000000000000000000000000000"
	EmulatorDefaultAuthToken  = "emulatortoken"
)

type emulatorOptions struct {
	listen                string
	accountSID, authToken string
	apiKey, apiSecret     string
	data                  string
	latency               time.Duration
	rateLimit             float64
	maxInFlight           int
	errorRateBefore       float64
	errorRateAfter        float64
	seed                  int64
}

func (c *CLI) emulatorCommand() *cobra.Command {
	var o emulatorOptions
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run a local, stateful Twilio Conversations emulator",
		Long: `Serves the Conversations v1 API (services, their roles, users, settings
and conversations, with participants and conversation webhooks) as Twilio
does, for trying convsync and for tests, without a Twilio account. See
docs/emulator.md for what it imitates and what it does not.

--rate-limit here is the emulator's own: how many actions per second per
service it serves before answering 429 (convsync's client-side limit of the
same name does not apply to this command).

Credentials come from the flags, else from TWILIO_ACCOUNT_SID and
TWILIO_AUTH_TOKEN (and TWILIO_API_KEY / TWILIO_API_SECRET); with none, it
accepts fixed local credentials and prints them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.runEmulator(o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:4010", "address to listen on (loopback by default)")
	f.StringVar(&o.accountSID, "account-sid", "", "accepted account SID (default $TWILIO_ACCOUNT_SID)")
	f.StringVar(&o.authToken, "auth-token", "", "accepted auth token (default $TWILIO_AUTH_TOKEN)")
	f.StringVar(&o.apiKey, "api-key", "", "accepted API key SID (default $TWILIO_API_KEY)")
	f.StringVar(&o.apiSecret, "api-secret", "", "accepted API key secret (default $TWILIO_API_SECRET)")
	f.StringVar(&o.data, "data", "", "keep all data in this file across restarts (written atomically)")
	f.DurationVar(&o.latency, "latency", 0, "added latency per request, e.g. 50ms")
	f.Float64Var(&o.rateLimit, "rate-limit", 0, "actions per second per service before 429: conversation creates and deletes, role and user creates, updates and deletes (Twilio: 30; 0 = off)")
	f.IntVar(&o.maxInFlight, "max-in-flight", 0, "requests served at once before 429 with Retry-After (0 = off)")
	f.Float64Var(&o.errorRateBefore, "error-rate-before", 0, "probability of a 500 before a write is done")
	f.Float64Var(&o.errorRateAfter, "error-rate-after", 0, "probability of a 500 after a write is done (a lost answer)")
	f.Int64Var(&o.seed, "seed", 1, "seed for the fault dice")
	return cmd
}

func (c *CLI) runEmulator(o emulatorOptions) error {
	log, err := c.logger()
	if err != nil {
		return err
	}
	pick := func(flag, env string) string {
		if flag != "" {
			return flag
		}
		return c.getenv(env)
	}
	opts := emulator.Options{
		AccountSID: pick(o.accountSID, twilioapi.EnvAccountSID),
		AuthToken:  pick(o.authToken, twilioapi.EnvAuthToken),
		APIKey:     pick(o.apiKey, twilioapi.EnvAPIKey),
		APISecret:  pick(o.apiSecret, twilioapi.EnvAPISecret),
		DataFile:   o.data,
		Faults: emulator.Faults{
			Latency:                    o.latency,
			ActionsPerSecondPerService: o.rateLimit,
			MaxInFlight:                o.maxInFlight,
			Error500BeforeWrite:        o.errorRateBefore,
			Error500AfterWrite:         o.errorRateAfter,
			Seed:                       o.seed,
		},
	}
	defaulted := false
	if opts.AccountSID == "" && opts.AuthToken == "" {
		opts.AccountSID, opts.AuthToken = EmulatorDefaultAccountSID, EmulatorDefaultAuthToken
		defaulted = true
	}
	if host, _, err := net.SplitHostPort(o.listen); err == nil {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			log.Warn("the emulator is listening beyond this machine: anyone who can reach " + o.listen + " and knows the credentials can use it")
		}
	}
	return emulator.ListenAndServe(c.ctx, o.listen, opts, func(baseURL string) {
		c.printf("convsync emulator serving Twilio Conversations v1 at %s\n", baseURL)
		if defaulted {
			c.printf("No credentials given; it accepts these (local use only):\n")
			c.printf("  export %s=%s\n  export %s=%s\n", twilioapi.EnvAccountSID, opts.AccountSID, twilioapi.EnvAuthToken, opts.AuthToken)
		} else {
			c.printf("It accepts the account SID %s with the credentials you gave.\n", opts.AccountSID)
		}
		c.printf("  export %s=%s\n", EnvAPIURL, baseURL)
	})
}
