package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/state/pgstate"
)

func (c *CLI) forceUnlockCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "force-unlock [EPOCH]",
		Short: "Force a PostgreSQL state's lease open, fencing its holder",
		Long: `Ends the workspace's lease at once and bumps its fencing epoch, so that the
holder, should it still be alive, has every later state write and lease renewal
refused (it then stops acting). Use it only when the holder is gone for good and
you cannot wait for its lease to expire (which happens by itself within
--lease-duration). Give the epoch shown in the lock error to be sure you force
the lease you meant. The next leader waits its quarantine before resolving
creates that were in flight. A state file's lock needs no forcing: it is an
flock the kernel releases when its holder exits.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !c.postgres() {
				return fmt.Errorf("state %s is a file: its lock is an flock that the kernel releases when the holding process exits, so it is never stale and there is nothing to force; stop the convsync that holds it", c.global.statePath)
			}
			store, err := pgstate.Open(c.ctx, c.global.stateURL, pgstate.Options{Workspace: c.global.workspace, ConvsyncVersion: Version})
			if err != nil {
				return err
			}
			defer store.Close()
			var want int64 // 0: whatever epoch the lease is at
			if len(args) == 1 {
				var err error
				want, err = strconv.ParseInt(args[0], 10, 64)
				if err != nil || want <= 0 {
					return fmt.Errorf("EPOCH %q: give the lease's epoch, a number (see the lock error or /readyz)", args[0])
				}
				li, err := store.Lease(c.ctx)
				if err != nil {
					return err
				}
				if li == nil || li.Epoch != want {
					got := "no lease"
					if li != nil {
						got = fmt.Sprintf("epoch %d, held by %s", li.Epoch, li.Holder)
					}
					return fmt.Errorf("the lease of %s is at %s, not epoch %d: nothing was changed", store.Path(), got, want)
				}
			}
			host, _ := os.Hostname()
			// The epoch is checked again as it is bumped: the lease may have
			// changed hands since it was read above.
			prev, epoch, err := store.ForceUnlockEpoch(c.ctx, fmt.Sprintf("force-unlock by pid %d on %s", os.Getpid(), host), want)
			if err != nil {
				return err
			}
			if prev == nil {
				fmt.Fprintf(c.stdout, "The lease of %s was never taken: nothing to force.\n", store.Path())
				return nil
			}
			was := "expired"
			if prev.Live {
				was = fmt.Sprintf("live for %s more", prev.Left.Round(1e6))
			}
			fmt.Fprintf(c.stdout, "Forced the lease of %s open. It was held by %s (%s, epoch %d, %s).\n"+
				"The epoch is now %d: that holder's writes and renewals are refused from now on.\n", store.Path(), prev.Holder, prev.Command, prev.Epoch, was, epoch)
			return nil
		},
	}
}

func (c *CLI) migrateCommand() *cobra.Command {
	var to, from string
	cmd := &cobra.Command{
		Use:   "migrate --to URL | --from URL",
		Short: "Move a state between the file (--state) and PostgreSQL",
		Long: `--to URL copies the state file named by --state into the PostgreSQL workspace
(--workspace) at URL; --from URL copies that workspace into the state file named
by --state. Either way the whole state (lineage, serial, resources, pending
creates) moves in one step: one transaction under the workspace's lease, or one
atomic file write. The target must hold no state yet. The source is left as it
was: point convsync at the new place, and keep or delete the old one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (to == "") == (from == "") {
				return errors.New("give exactly one of --to URL (file to PostgreSQL) or --from URL (PostgreSQL to file)")
			}
			if c.postgres() {
				return fmt.Errorf("--state %s is a database; migrate moves between the state file named by --state and the URL given to --to or --from", c.global.statePath)
			}
			url := to + from
			if !pgstate.IsURL(url) {
				return fmt.Errorf("%s is not a postgres:// URL", pgstate.Redact(url))
			}
			if err := pgstate.CheckFlagURL(url); err != nil {
				return err
			}
			f, err := state.Open(c.global.statePath, state.Options{LockTimeout: c.global.lockTimeout, Holder: "convsync state migrate", Emergency: c.stderr, ConvsyncVersion: Version})
			if err != nil {
				return err
			}
			defer f.Close()
			c.global.stateURL = url
			db, err := c.openPostgres("convsync state migrate", false)
			c.global.stateURL = ""
			if err != nil {
				return err
			}
			defer db.Close()
			store := db.(*leasedStore).Store
			if to != "" {
				st := f.State()
				if err := store.Import(context.WithoutCancel(c.ctx), st); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "Moved the state of %s (%d resources, %d pending creates, lineage %s, serial %d) to %s.\n"+
					"Point convsync at it with --state or %s; the file is left as it was.\n",
					f.Path(), len(st.Resources), len(st.Pending), st.Lineage, st.Serial, store.Path(), EnvStateURL)
				return nil
			}
			st := store.State()
			if st.Serial == 0 && len(st.Resources) == 0 {
				return fmt.Errorf("%s holds no state: nothing to migrate", store.Path())
			}
			if err := f.Replace(st); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Moved the state of %s (%d resources, %d pending creates, lineage %s, serial %d) to %s.\n"+
				"The database keeps its copy: make sure no convsync uses it any more.\n",
				store.Path(), len(st.Resources), len(st.Pending), st.Lineage, st.Serial, f.Path())
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "copy the state file into this PostgreSQL URL (workspace --workspace)")
	cmd.Flags().StringVar(&from, "from", "", "copy this PostgreSQL URL's workspace into the state file")
	return cmd
}
