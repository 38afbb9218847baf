package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/spec"
	"github.com/convsync/convsync/pkg/state"
)

type destroyOptions struct {
	autoApprove    bool
	parallelism    int
	webhookEnabled bool
	targets        []string
}

func (c *CLI) destroyCommand() *cobra.Command {
	var o destroyOptions
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Delete everything convsync manages (every resource in the state)",
		Long: `Plans deleting every resource the state holds — children before parents,
referrers before what they refer to; the service settings are only forgotten
(Twilio keeps them with their service) — shows the plan, and asks for "yes"
on a terminal (without a terminal, --auto-approve is required). The specs are
not needed; when they load, a resource whose spec sets
lifecycle.prevent_destroy makes the destroy fail. --target destroys only
those addresses (and what lives in them).

To review first: convsync plan --destroy --out FILE, then convsync apply FILE.
Exit 1 if any step failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.runDestroy(o) },
	}
	f := cmd.Flags()
	c.addVarFlags(f)
	f.BoolVar(&o.autoApprove, "auto-approve", false, "destroy without asking")
	f.IntVar(&o.parallelism, "parallelism", 10, "how many steps run at once")
	f.BoolVar(&o.webhookEnabled, "webhook-enabled", false, "send X-Twilio-Webhook-Enabled: true so the service's webhooks fire for these deletes")
	f.StringArrayVar(&o.targets, "target", nil, "destroy only this address (and what lives in it); repeatable")
	return cmd
}

func (c *CLI) runDestroy(o destroyOptions) error {
	if o.parallelism < 1 {
		return fmt.Errorf("--parallelism must be at least 1, not %d", o.parallelism)
	}
	targets, err := parseTargets(o.targets)
	if err != nil {
		return err
	}
	s, err := c.newSession(false)
	if err != nil {
		return err
	}
	defer s.log.Sync() //nolint:errcheck // stderr
	sf, err := c.openState("convsync destroy", false)
	if err != nil {
		return err
	}
	defer sf.Close()
	c.useSizes(s.engine, sf)
	desired, specHash := c.destroySpecs(s)
	var plan *planner.Plan
	// The live state: nothing writes it until the apply below.
	sf.View(func(st *state.State) {
		plan, err = s.engine.PlanWith(c.ctx, desired, specHash, st, engine.PlanOptions{Targets: targets, Destroy: true})
	})
	if err != nil {
		return c.planError(err)
	}
	if err := c.saveSizes(sf, s.engine.SeenSizes); err != nil {
		s.log.Debug("could not keep the service sizes for the next refresh", zap.Error(err))
	}
	if err := c.renderDestroy(plan, len(targets) > 0); err != nil {
		return err
	}
	if !plan.HasChanges() {
		return nil
	}
	if !o.autoApprove {
		if err := c.confirmDestroy(); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.stdout, "\n")
	var mu sync.Mutex
	res := s.engine.Apply(c.ctx, sf, plan, apply.Options{
		Parallelism:    o.parallelism,
		WebhookEnabled: o.webhookEnabled,
		OnEvent: func(e apply.Event) {
			mu.Lock()
			defer mu.Unlock()
			c.printDestroyEvent(e)
		},
	})
	return c.printDestroySummary(res)
}

// destroySpecs loads the specs for lifecycle.prevent_destroy only. A
// destroy needs none: when they do not load, it goes on and warns that
// prevent_destroy could not be checked.
func (c *CLI) destroySpecs(s *session) ([]resource.Desired, string) {
	set, _, err := c.loadSpecSet() // with --var and --var-file
	if err == nil {
		if len(set.Resources) == 0 {
			s.log.Warn(fmt.Sprintf("the specs in %s hold no resource, so no lifecycle.prevent_destroy can protect anything; give --dir the spec folder to have it checked", c.global.dir))
		}
		for i := range set.Resources {
			// Name the file as the user would open it, not relative to --dir.
			if src := &set.Resources[i].Source; src.File != "" {
				src.File = filepath.Join(c.global.dir, src.File)
			}
		}
		return set.Resources, set.Hash
	}
	why := err.Error()
	var problems spec.Errors
	if errors.As(err, &problems) {
		why = fmt.Sprintf("%d %s, run convsync validate", len(problems), plural(len(problems), "problem", "problems"))
	}
	s.log.Warn(fmt.Sprintf("the specs in %s do not load (%s), so lifecycle.prevent_destroy cannot be checked; destroying everything in the state regardless", c.global.dir, why))
	return nil, ""
}

// renderDestroy prints a destroy plan; an empty one says there is nothing
// to destroy.
func (c *CLI) renderDestroy(plan *planner.Plan, targeted bool) error {
	if plan.HasChanges() {
		return c.renderHuman(plan, targeted)
	}
	_, err := io.WriteString(c.stdout, "No changes. The state holds nothing to destroy.\n")
	return err
}

// confirmDestroy asks for "yes" on a terminal; without one it refuses.
func (c *CLI) confirmDestroy() error {
	if f, ok := c.stdin.(*os.File); !ok || !isTerminal(f) {
		return fmt.Errorf("not destroying: no terminal to ask for approval. Use --auto-approve, or save a plan with convsync plan --destroy --out FILE and apply that file")
	}
	fmt.Fprintf(c.stdout, "\nDo you really want to destroy these resources? They cannot be recovered. Only 'yes' will be accepted.\n  Enter a value: ")
	line, _ := bufio.NewReader(c.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return fmt.Errorf("destroy cancelled; nothing was changed")
	}
	return nil
}

// printDestroyEvent prints one step's progress.
func (c *CLI) printDestroyEvent(e apply.Event) {
	verb := map[planner.Action][2]string{planner.Delete: {"deleting", "deleted"}, planner.Forget: {"forgetting", "removed from the state"}}[e.Action]
	if verb[0] == "" {
		verb = [2]string{string(e.Action), string(e.Action)}
	}
	switch e.Phase {
	case apply.Started:
		fmt.Fprintf(c.stdout, "%s: %s...\n", e.Address, verb[0])
	case apply.Succeeded:
		fmt.Fprintf(c.stdout, "%s: %s (%.1fs)\n", e.Address, verb[1], e.Duration.Seconds())
	case apply.Failed:
		fmt.Fprintf(c.stdout, "%s: FAILED: %v\n", e.Address, e.Err)
	case apply.Skipped:
		fmt.Fprintf(c.stdout, "%s: skipped (%v)\n", e.Address, e.Err)
	}
}

func (c *CLI) printDestroySummary(res *apply.Result) error {
	done, failed := res.Counts()
	fmt.Fprintf(c.stdout, "\nDestroy %s: %d deleted, %d forgotten",
		map[bool]string{true: "complete", false: "finished with errors"}[failed == 0],
		done[planner.Delete], done[planner.Forget])
	if failed > 0 {
		fmt.Fprintf(c.stdout, ", %d failed.\n\nFailed steps:\n", failed)
		for _, s := range res.Failed() {
			fmt.Fprintf(c.stdout, "  %s: %v\n", s.Address, s.Err)
		}
		fmt.Fprintf(c.stdout, "\nEverything that was deleted is gone from the state. Fix the cause and run destroy again.\n")
		return exitError{code: ExitError}
	}
	fmt.Fprintf(c.stdout, ".\n")
	return nil
}
