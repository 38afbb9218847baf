package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/leader"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/spec"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitError   = 1
	ExitChanges = 2 // plan --detailed-exitcode: the plan has changes
)

// Version is set at build time with -ldflags "-X github.com/convsync/convsync/internal/cli.Version=v1.2.3".
var Version = "dev"

// EnvAPIURL points the Twilio client at another base URL (the emulator).
const EnvAPIURL = "CONVSYNC_API_URL"

// CLI is one invocation of convsync.
type CLI struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// environ lists the environment for CONVSYNC_VAR_NAME (nil: os.Environ).
	environ func() []string
	global  globalOptions
	// exitCode lets a command ask for a non-error exit code (plan's 2).
	exitCode int
	// ctx is cancelled by SIGINT/SIGTERM.
	ctx context.Context
	// guard limits Twilio requests to the lease, once one is taken.
	guard lateGuard
}

type globalOptions struct {
	dir         string
	statePath   string
	apiURL      string
	logFormat   string
	logLevel    string
	lockTimeout time.Duration
	rateLimit   float64
	vars        []varArg // --var and --var-file, in order (vars.go)
	// The PostgreSQL state (backend.go): stateURL is "" for a file.
	stateURL      string
	stateFromEnv  bool
	workspace     string
	leaseDuration time.Duration
	// quarantine: how long a new holder waits before resolving creates an
	// earlier holder left in flight without handing over cleanly.
	quarantine time.Duration
}

// New returns a CLI reading and writing the given streams.
func New(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *CLI {
	return &CLI{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
}

// exitError carries an exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Run runs the command line args and returns the exit code.
func (c *CLI) Run(args []string) int {
	// The first signal cancels ctx (plan stops; apply starts no new step,
	// lets the calls in flight finish and saves the state). The default
	// action is restored before ctx is cancelled, so a second signal ends
	// the process at once, whatever it is waiting for, even one sent the
	// moment the first is acknowledged. (convsync run keeps its own handler
	// for both.)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		select {
		case sig := <-signals:
			signal.Stop(signals)
			cancel(fmt.Errorf("%v signal received", sig))
		case <-ctx.Done():
		}
	}()
	return c.RunContext(ctx, args)
}

// RunContext is Run with a caller-owned context (tests).
func (c *CLI) RunContext(ctx context.Context, args []string) int {
	c.ctx = ctx
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case err != nil:
		fmt.Fprintf(c.stderr, "Error: %s\n", c.withFlags(err.Error()))
		return ExitError
	}
	return c.exitCode
}

func (c *CLI) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "convsync",
		Short:         "Keep Twilio Conversations in the shape declared in YAML specs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g := &c.global
	pf := root.PersistentFlags()
	pf.StringVar(&g.dir, "dir", ".", "folder of YAML specs (read recursively)")
	pf.StringVar(&g.statePath, "state", state.DefaultPath, "state file, or a postgres://user@host/db URL shared by several convsync (env "+EnvStateURL+"; the password never in this flag: PGPASSWORD or ~/.pgpass)")
	pf.StringVar(&g.workspace, "workspace", "default", "with a PostgreSQL state: which of the database's states to use")
	pf.DurationVar(&g.leaseDuration, "lease-duration", leader.DefaultLeaseDuration, "with a PostgreSQL state: how long a holder's lease lasts without renewal (a stand-by takes over within it)")
	pf.DurationVar(&g.quarantine, "quarantine", 30*time.Second, "with a PostgreSQL state: how long a new holder (a daemon that takes the lead, or a command) waits before resolving the creates a predecessor that did not hand over cleanly left in flight")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.leaseDuration < time.Second {
			return fmt.Errorf("--lease-duration %s is too short: use at least 1s (the default is 15s)", g.leaseDuration)
		}
		return c.resolveState(cmd.Flags().Changed("state"))
	}
	pf.StringVar(&g.apiURL, "api-url", "", "Twilio API base URL, e.g. the emulator's http://127.0.0.1:4010 (env "+EnvAPIURL+")")
	pf.StringVar(&g.logFormat, "log-format", "console", "log format on stderr: console or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.DurationVar(&g.lockTimeout, "lock-timeout", 0, "how long to wait for another convsync holding the state lock")
	pf.Float64Var(&g.rateLimit, "rate-limit", twilioapi.DefaultActionsPerSecond, "conversation creates+deletes per second per service that convsync allows itself (Twilio's limit is 30); 0 or less turns the client-side limit off")
	root.AddCommand(c.validateCommand(), c.planCommand(), c.applyCommand(), c.destroyCommand(), c.importCommand(), c.exportCommand(), c.showCommand(), c.fmtCommand(), c.stateCommand(), c.versionCommand(), c.emulatorCommand(), c.runCommand(), c.schemaCommand())
	return root
}

// logger builds the zap logger the flags ask for, on stderr.
func (c *CLI) logger() (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(c.global.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", c.global.logLevel)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch c.global.logFormat {
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	default:
		return nil, fmt.Errorf("--log-format %q: use console or json", c.global.logFormat)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(c.stderr), level)), nil
}

// loadSpecs loads and validates the spec folder.
func (c *CLI) loadSpecs() (*spec.Set, error) {
	set, varErr, err := c.loadSpecSet() // vars.go: with --var, --var-file
	var problems spec.Errors
	if errors.As(err, &problems) {
		c.printSpecProblems(problems, varErr)
		return nil, c.specsInvalid(problems, varErr)
	}
	return set, err
}

// client builds the Twilio client from the environment and flags. observe,
// if not nil, sees every HTTP attempt (the daemon's metrics).
func (c *CLI) client(log *zap.Logger, observe func(twilioapi.Call)) (*twilioapi.Client, error) {
	cfg, err := twilioapi.ConfigFromEnv(c.getenv)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = c.global.apiURL
	if cfg.BaseURL == "" {
		cfg.BaseURL = c.getenv(EnvAPIURL)
	}
	cfg.Logger = log
	cfg.ActionsPerSecondPerService = c.global.rateLimit
	if c.global.rateLimit <= 0 {
		cfg.ActionsPerSecondPerService = -1 // off
	}
	cfg.Observe = observe
	if c.postgres() {
		cfg.Guard = &c.guard
	}
	testHooks(&cfg, c.getenv)
	return twilioapi.New(cfg)
}

// openState opens the state file or database; read-only opens take no
// lock (or lease).
func (c *CLI) openState(holder string, readOnly bool) (state.Backend, error) {
	if c.postgres() {
		return c.openPostgres(holder, readOnly)
	}
	sf, err := state.Open(c.global.statePath, state.Options{
		LockTimeout:     c.global.lockTimeout,
		ReadOnly:        readOnly,
		Holder:          holder,
		Emergency:       c.stderr,
		ConvsyncVersion: Version,
	})
	var locked *state.LockedError
	if errors.As(err, &locked) {
		return nil, fmt.Errorf("%w; to wait longer, use --lock-timeout (now %s), e.g. --lock-timeout 2m", err, c.global.lockTimeout)
	}
	return sf, err
}

// session is what plan and apply share: logger, specs, client, engine.
type session struct {
	log    *zap.Logger
	specs  *spec.Set
	client *twilioapi.Client
	engine *engine.Engine
}

// newSession builds the session; withSpecs false leaves specs nil (apply
// PLANFILE needs none, and must not fail on the YAML files around it).
func (c *CLI) newSession(withSpecs bool) (*session, error) {
	log, err := c.logger()
	if err != nil {
		return nil, err
	}
	var set *spec.Set
	if withSpecs {
		if set, err = c.loadSpecs(); err != nil {
			return nil, err
		}
	}
	client, err := c.client(log, nil)
	if err != nil {
		return nil, err
	}
	e := &engine.Engine{API: client, Logger: log}
	// Service sizes seen by the last apply let the refresh fetch a few owned
	// conversations instead of listing a big service.
	if !c.postgres() { // a database state keeps them itself (useSizes)
		e.Refresh.KnownSizes = engine.ReadSizeHints(engine.SizeHintsPath(c.global.statePath))
	}
	return &session{log: log, specs: set, client: client, engine: e}, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// planError prints every reason a plan failed, one per line.
func (c *CLI) planError(err error) error {
	var pe planner.Errors
	if errors.As(err, &pe) {
		for _, e := range pe {
			// Pasted hints (convsync import …) carry --dir and --state.
			fmt.Fprintln(c.stderr, c.withFlags(strings.TrimSpace(e.Error())))
		}
		return fmt.Errorf("the plan cannot be made (%d %s); nothing was changed", len(pe), plural(len(pe), "problem", "problems"))
	}
	return err
}

func (c *CLI) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print convsync's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(c.stdout, "convsync %s (state format %d, plan format %s)\n", Version, state.FormatVersion, planner.JSONFormatVersion)
			return nil
		},
	}
}

func (c *CLI) validateCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the specs without talking to Twilio",
		Long:  "Loads every *.yaml / *.yml under --dir and reports every problem as file:line:col: message (--json: as JSON, docs/formats.md). Exit 0 when valid, 1 otherwise.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return c.validateJSON() // validatejson.go
			}
			set, err := c.loadSpecs()
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "The specs are valid: %d %s in %d %s.\n", len(set.Resources), plural(len(set.Resources), "resource", "resources"), len(set.Files), plural(len(set.Files), "file", "files"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON: valid, and the problems with file, line, column, field and message")
	c.addVarFlags(cmd.Flags())
	return cmd
}
