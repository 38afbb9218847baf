package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/spec"
	"github.com/convsync/convsync/pkg/state"
)

type applyOptions struct {
	autoApprove    bool
	parallelism    int
	webhookEnabled bool
	targets        []string
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
moved on. Progress is printed as steps finish; the state is saved after every
change Twilio confirms. Exit 1 if any step failed.`,
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
	f.BoolVar(&o.autoApprove, "auto-approve", false, "apply without asking")
	f.IntVar(&o.parallelism, "parallelism", 10, "how many steps run at once")
	f.BoolVar(&o.webhookEnabled, "webhook-enabled", false, "send X-Twilio-Webhook-Enabled: true so the service's webhooks fire for these changes")
	f.StringArrayVar(&o.targets, "target", nil, "apply only this address (and what it depends on); repeatable")
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

	var plan *planner.Plan
	if planFile != "" {
		plan, err = planner.Load(planFile)
		if err != nil {
			return err
		}
		if err := plan.CheckFresh(sf.Lineage(), sf.Serial()); err != nil {
			return err
		}
		if set, err := spec.LoadDir(c.global.dir); err == nil && plan.SpecHash != set.Hash {
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
		if err := engine.WriteSizeHints(engine.SizeHintsPath(c.global.statePath), s.engine.SeenSizes); err != nil {
			s.log.Debug("could not keep the service sizes for the next refresh", zap.Error(err))
		}
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
	if !plan.HasChanges() {
		c.printf("No changes. Twilio matches the specs.\n")
		return nil
	}
	c.printf("\n")
	var mu sync.Mutex
	res := s.engine.Apply(c.ctx, sf, plan, apply.Options{
		Parallelism:    o.parallelism,
		WebhookEnabled: o.webhookEnabled,
		OnEvent: func(e apply.Event) {
			mu.Lock()
			defer mu.Unlock()
			c.printEvent(e)
		},
	})
	return c.printApplySummary(res)
}

// confirm asks for "yes" on a terminal; without one it refuses.
func (c *CLI) confirm() error {
	if f, ok := c.stdin.(*os.File); !ok || !isTerminal(f) {
		return fmt.Errorf("not applying: no terminal to ask for approval. Use --auto-approve, or save a plan with plan --out and apply that file")
	}
	c.printf("\nDo you want to apply these changes? Only 'yes' will be accepted.\n  Enter a value: ")
	line, _ := bufio.NewReader(c.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return fmt.Errorf("apply cancelled; nothing was changed")
	}
	return nil
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

func (c *CLI) printApplySummary(res *apply.Result) error {
	done, failed := res.Counts()
	c.printf("\nApply %s: %d created, %d updated, %d replaced, %d deleted",
		map[bool]string{true: "complete", false: "finished with errors"}[failed == 0],
		done[planner.Create], done[planner.Update], done[planner.Replace], done[planner.Delete])
	if done[planner.Adopt]+done[planner.Forget]+done[planner.Move] > 0 {
		c.printf(", %d adopted, %d moved, %d forgotten", done[planner.Adopt], done[planner.Move], done[planner.Forget])
	}
	if failed > 0 {
		c.printf(", %d failed.\n\nFailed steps:\n", failed)
		for _, s := range res.Failed() {
			c.printf("  %s: %v\n", s.Address, s.Err)
		}
		c.printf("\nEverything that succeeded is recorded in the state. Fix the cause and run apply again.\n")
		return exitError{code: ExitError}
	}
	c.printf(".\n")
	return nil
}
