package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/state"
)

type applyOptions struct {
	autoApprove    bool
	parallelism    int
	webhookEnabled bool
	targets        []string
	json           bool
	replace        []string
}

func (c *CLI) applyCommand() *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply [PLANFILE]",
		Short: "Make Twilio match the specs, recording owned SIDs in the state",
		Long: `Without PLANFILE: plans, shows the plan, and asks for "yes" on a terminal
(without a terminal, --auto-approve is required). With PLANFILE (from
plan --out): applies exactly those steps, refusing a plan whose state has
moved on. Progress is printed as steps finish, each line prefixed [finished/all]
(on a terminal: a status line with the rate and the time left); the state is
saved after every change Twilio confirms. --json prints one JSON event per line
instead (format ` + ApplyJSONFormatVersion + `, see docs/planning.md).

The first Ctrl-C (SIGINT or SIGTERM) stops starting new steps: the steps in
flight finish, the state is saved, and what was not started is listed. A
second Ctrl-C aborts at once. Exit 1 unless every step was done.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			planFile := ""
			if len(args) == 1 {
				planFile = args[0]
			}
			return c.runApply(o, planFile)
		},
	}
	f := cmd.Flags()
	c.addVarFlags(f)
	f.BoolVar(&o.autoApprove, "auto-approve", false, "apply without asking")
	f.IntVar(&o.parallelism, "parallelism", 10, "how many steps run at once")
	f.BoolVar(&o.webhookEnabled, "webhook-enabled", false, "send X-Twilio-Webhook-Enabled: true so the service's webhooks fire for these changes")
	f.StringArrayVar(&o.targets, "target", nil, "apply only this address (and what it depends on); repeatable")
	f.BoolVar(&o.json, "json", false, "print one JSON event per line on stdout, and no plan (needs --auto-approve or PLANFILE)")
	f.StringArrayVar(&o.replace, "replace", nil, "replace this resource even though nothing forces it; repeatable")
	return cmd
}

func (c *CLI) printf(format string, args ...any) { fmt.Fprintf(c.stdout, format, args...) }

func (c *CLI) runApply(o applyOptions, planFile string) error {
	if o.parallelism < 1 {
		return fmt.Errorf("--parallelism must be at least 1, not %d", o.parallelism)
	}
	targets, err := parseTargets(o.targets)
	if err != nil {
		return err
	}
	if planFile != "" && len(targets) > 0 {
		return fmt.Errorf("--target cannot be used with a saved plan: plan again with --target")
	}
	if o.json && planFile == "" && !o.autoApprove {
		return fmt.Errorf("apply --json asks nothing: add --auto-approve, or apply a plan saved with plan --out")
	}
	replace, err := parseReplace(o.replace)
	if err != nil {
		return err
	}
	if planFile != "" && len(replace) > 0 {
		return fmt.Errorf("--replace cannot be used with a saved plan: plan again with --replace")
	}
	// A saved plan holds everything it applies: the specs are not loaded, so
	// invalid YAML files around it (in the current folder) cannot stop it.
	s, err := c.newSession(planFile == "")
	if err != nil {
		return err
	}
	defer s.log.Sync() //nolint:errcheck // stderr
	sf, err := c.openState("convsync apply", false)
	if err != nil {
		return err
	}
	defer sf.Close()
	c.useSizes(s.engine, sf)

	var plan *planner.Plan
	if planFile != "" {
		plan, err = planner.Load(planFile)
		if err != nil {
			return err
		}
		if err := plan.CheckFresh(sf.Lineage(), sf.Serial()); err != nil {
			return err
		}
		if set, _, err := c.loadSpecSet(); err == nil && plan.SpecHash != set.Hash {
			s.log.Warn("the specs changed since the plan was saved; applying the saved plan as it is")
		}
	} else {
		if err := checkNotEmptied(c.global.dir, len(s.specs.Resources), stateSize(sf), sf.Path()); err != nil {
			return err
		}
		// The live state, not a copy: nothing writes it until the apply
		// below, and the plan keeps nothing of it.
		sf.View(func(st *state.State) {
			plan, err = s.engine.PlanWith(c.ctx, s.specs.Resources, s.specs.Hash, st, engine.PlanOptions{Targets: targets, Replace: replace})
		})
		if err != nil {
			return c.planError(err)
		}
		if err := c.saveSizes(sf, s.engine.SeenSizes); err != nil {
			s.log.Debug("could not keep the service sizes for the next refresh", zap.Error(err))
		}
		if !o.json {
			if err := c.renderHuman(plan, len(targets) > 0); err != nil {
				return err
			}
			if !plan.HasChanges() {
				return nil
			}
			if !o.autoApprove {
				if err := c.confirm(); err != nil {
					return err
				}
			}
		}
	}
	view := newApplyView(c.stdout, c.stderr, o.json, c.stdoutIsTerminal(), countSteps(plan))
	if !plan.HasChanges() {
		if o.json {
			view.begin()
		}
		return view.summary(nil)
	}
	if !o.json {
		c.printf("\n")
	}
	view.begin()
	// The first Ctrl-C cancels c.ctx (Run), and from then on the default
	// action ends the process at a second one. The apply is only stopped by
	// it: calls in flight run on, under a context the signal does not
	// cancel, so that their results are recorded.
	noticed := make(chan struct{})
	unwatch := context.AfterFunc(c.ctx, func() {
		defer close(noticed)
		why := "interrupted"
		if cause := context.Cause(c.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			why = cause.Error()
		}
		view.stopping(why)
	})
	res := s.engine.Apply(context.WithoutCancel(c.ctx), sf, plan, apply.Options{
		Parallelism:    o.parallelism,
		WebhookEnabled: o.webhookEnabled,
		Stop:           c.ctx.Done(),
		OnEvent:        view.event,
	})
	if !unwatch() && c.ctx.Err() != nil {
		<-noticed
	}
	view.end()
	return view.summary(res)
}

// countSteps counts the plan's steps that change something.
func countSteps(plan *planner.Plan) int {
	n := 0
	for _, ch := range plan.Changes {
		if ch.Action != planner.NoOp {
			n++
		}
	}
	return n
}

// stdoutIsTerminal reports whether stdout is a terminal (the status line
// is drawn in place there).
func (c *CLI) stdoutIsTerminal() bool {
	f, ok := c.stdout.(*os.File)
	return ok && isTerminal(f)
}

// confirm asks for "yes" on a terminal; without one it refuses.
func (c *CLI) confirm() error {
	if f, ok := c.stdin.(*os.File); !ok || !isTerminal(f) {
		return fmt.Errorf("not applying: no terminal to ask for approval. Use --auto-approve, or save a plan with plan --out and apply that file")
	}
	c.printf("\nDo you want to apply these changes? Only 'yes' will be accepted.\n  Enter a value: ")
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(c.stdin).ReadString('\n')
		answer <- line
	}()
	select {
	case line := <-answer:
		if strings.TrimSpace(line) == "yes" && c.ctx.Err() == nil {
			return nil
		}
	case <-c.ctx.Done(): // Ctrl-C at the prompt
		c.printf("\n")
	}
	return fmt.Errorf("apply cancelled; nothing was changed")
}

// isTerminal asks the terminal driver; a character device such as
// /dev/null is not a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

var pastTense = map[planner.Action]string{
	planner.Create: "created", planner.Update: "updated", planner.Replace: "replaced",
	planner.Delete: "deleted", planner.Adopt: "adopted", planner.Forget: "removed from the state",
	planner.Move: "moved in the state",
}

var progressive = map[planner.Action]string{
	planner.Create: "creating", planner.Update: "updating", planner.Replace: "replacing",
	planner.Delete: "deleting", planner.Adopt: "adopting", planner.Forget: "forgetting",
	planner.Move: "moving",
}

// printEvent prints one step event as a plain line, without the apply
// view's [finished/all] prefix (destroy's progress).
func (c *CLI) printEvent(e apply.Event) {
	switch e.Phase {
	case apply.Started:
		c.printf("%s: %s...\n", e.Address, progressive[e.Action])
	case apply.Succeeded:
		sid := ""
		if e.SID != "" {
			sid = " " + e.SID
		}
		c.printf("%s: %s%s (%.1fs)\n", e.Address, pastTense[e.Action], sid, e.Duration.Seconds())
	case apply.Failed:
		c.printf("%s: FAILED: %v\n", e.Address, e.Err)
	case apply.Skipped:
		c.printf("%s: skipped (%v)\n", e.Address, e.Err)
	}
}
