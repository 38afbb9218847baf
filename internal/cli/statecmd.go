package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

func timeoutContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = resource.DefaultTimeouts.Read
	}
	return context.WithTimeout(ctx, d)
}

func (c *CLI) stateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Inspect or edit the state file (never touches Twilio)",
	}
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the resources convsync manages, with their SIDs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sf, err := c.openState("convsync state list", true)
			if err != nil {
				return err
			}
			defer sf.Close()
			st := sf.State()
			if listJSON {
				return writeJSON(c.stdout, stateListOf(sf.Lineage(), sf.Serial(), st))
			}
			for _, a := range st.Addresses() {
				r := st.Get(a)
				c.printf("%s\t%s\n", a, r.SID)
			}
			for _, a := range st.PendingAddresses() {
				c.printf("%s\t(create pending since %s)\n", a, st.GetPending(a).StartedAt.Format(time.RFC3339))
			}
			return nil
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print the list as JSON: address, kind, sid and parent_sid per resource (docs/formats.md)")
	cmd.AddCommand(list)
	cmd.AddCommand(&cobra.Command{
		Use:   "show ADDRESS",
		Short: "Show what the state holds for one resource",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := resource.ParseAddress(args[0])
			if err != nil {
				return err
			}
			sf, err := c.openState("convsync state show", true)
			if err != nil {
				return err
			}
			defer sf.Close()
			st := sf.State()
			r := st.Get(addr)
			if r == nil {
				return fmt.Errorf("%s is not in the state %s", addr, c.global.statePath)
			}
			out := map[string]any{"address": addr.String(), "sid": r.SID, "applied": resource.Schema(addr.Kind).NestValues(r.Applied)}
			// One key per ancestor, as specs name them: service_sid, and
			// conversation_sid for what lives in a conversation.
			ancestors := resource.Ancestors(addr.Kind)
			for i, sid := range resource.SplitParentKey(r.ParentSID) {
				if j := len(ancestors) - 1 - i; j >= 0 {
					out[resource.AddressPrefix(ancestors[j])+"_sid"] = sid
				}
			}
			if !r.CreatedAt.IsZero() {
				out["date_created"] = r.CreatedAt.UTC().Format(time.RFC3339)
			}
			enc := json.NewEncoder(c.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "rm ADDRESS",
		Short: "Stop managing a resource: remove it from the state, leave it in Twilio",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := resource.ParseAddress(args[0])
			if err != nil {
				return err
			}
			sf, err := c.openState("convsync state rm", false)
			if err != nil {
				return err
			}
			defer sf.Close()
			var sid string
			if err := sf.Update(func(s *state.State) error {
				r := s.Get(addr)
				if r == nil {
					return fmt.Errorf("%s is not in the state %s", addr, c.global.statePath)
				}
				sid = r.SID
				s.Remove(addr)
				return nil
			}); err != nil {
				return err
			}
			c.printf("Removed %s (%s) from the state. It still exists in Twilio; convsync no longer manages it.\n", addr, sid)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "mv OLD NEW",
		Short: "Record a managed resource under a new address (a renamed spec), keeping its SID",
		Long: "Moves the state entry at OLD to NEW, keeping the resource's SID, service and applied values, " +
			"so that a renamed spec keeps its resource instead of planning a delete and a create. Nothing is sent to Twilio. " +
			"It refuses when OLD is not in the state, when NEW already is, and when the two are of different kinds. " +
			"convsync plan detects a renamed spec by its natural key (unique_name, identity) on its own; this is for the rest (roles, services, a conversation without unique_name).",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := resource.ParseAddress(args[0])
			if err != nil {
				return err
			}
			to, err := resource.ParseAddress(args[1])
			if err != nil {
				return err
			}
			for _, a := range []resource.Address{from, to} {
				if resource.IsDeposed(a) {
					return fmt.Errorf("%s is a deposed entry, which the next apply deletes: it cannot be moved", a)
				}
			}
			sf, err := c.openState("convsync state mv", false)
			if err != nil {
				return err
			}
			defer sf.Close()
			var moved *state.Resource
			if err := sf.Update(func(s *state.State) error {
				moved, err = s.Move(from, to)
				if err != nil {
					return fmt.Errorf("%w (state %s)", err, c.global.statePath)
				}
				return nil
			}); err != nil {
				return err
			}
			c.printf("Moved %s to %s (%s). Nothing changed in Twilio.\n", from, to, moved.SID)
			return nil
		},
	})
	cmd.AddCommand(c.forceUnlockCommand(), c.migrateCommand()) // statecmd_pg.go
	return cmd
}

// StateListJSONFormatVersion is the version of state list --json's output
// (docs/formats.md). Consumers should check the major number.
const StateListJSONFormatVersion = "1.0"

type stateListEntry struct {
	Address   string        `json:"address"`
	Kind      resource.Kind `json:"kind"`
	SID       string        `json:"sid"`
	ParentSID string        `json:"parent_sid"`
	// Deposed: superseded by a replace that created first; the next apply
	// deletes it.
	Deposed bool `json:"deposed,omitempty"`
}

type statePendingEntry struct {
	Address   string        `json:"address"`
	Kind      resource.Kind `json:"kind"`
	ParentSID string        `json:"parent_sid"`
	StartedAt time.Time     `json:"started_at"`
}

type stateList struct {
	FormatVersion string              `json:"format_version"`
	StateLineage  string              `json:"state_lineage"`
	StateSerial   uint64              `json:"state_serial"`
	Resources     []stateListEntry    `json:"resources"`
	Pending       []statePendingEntry `json:"pending"`
}

// stateListOf is state list --json: every resource by address, and every
// create still pending.
func stateListOf(lineage string, serial uint64, st *state.State) stateList {
	out := stateList{FormatVersion: StateListJSONFormatVersion, StateLineage: lineage, StateSerial: serial, Resources: []stateListEntry{}, Pending: []statePendingEntry{}}
	for _, a := range st.Addresses() {
		r := st.Get(a)
		out.Resources = append(out.Resources, stateListEntry{Address: a.String(), Kind: a.Kind, SID: r.SID, ParentSID: r.ParentSID, Deposed: resource.IsDeposed(a)})
	}
	for _, a := range st.PendingAddresses() {
		p := st.GetPending(a)
		out.Pending = append(out.Pending, statePendingEntry{Address: a.String(), Kind: a.Kind, ParentSID: p.ParentSID, StartedAt: p.StartedAt.UTC()})
	}
	return out
}
