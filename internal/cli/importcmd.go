package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

func (c *CLI) importCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "import ADDRESS ID",
		Short: "Adopt an existing Twilio resource into the state",
		Long: `Records an existing resource as the one a spec describes, without changing
it in Twilio. ID uses the seed's format:

  convsync import conversation.vip /Services/IS…/Conversations/CH…
  convsync import service.support  /Services/IS…

The address must exist in the specs. Timers cannot be imported (Twilio never
returns them): if the spec sets timers, the next plan shows them as an update.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return c.runImport(args[0], args[1]) },
	}
}

// parseImportID reads /Services/IS… or /Services/IS…/Conversations/CH….
func parseImportID(id string) (kind resource.Kind, parentSID, sid string, err error) {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "Services" && resource.IsSID(parts[1], "IS"):
		return resource.KindService, "", parts[1], nil
	case len(parts) == 4 && parts[0] == "Services" && resource.IsSID(parts[1], "IS") && parts[2] == "Conversations" && resource.IsSID(parts[3], "CH"):
		return resource.KindConversation, parts[1], parts[3], nil
	}
	return "", "", "", fmt.Errorf("import ID %q: use /Services/IS<32 hex> for a service or /Services/IS<32 hex>/Conversations/CH<32 hex> for a conversation", id)
}

func (c *CLI) runImport(rawAddr, id string) error {
	addr, err := resource.ParseAddress(rawAddr)
	if err != nil {
		return err
	}
	kind, parentSID, sid, err := parseImportID(id)
	if err != nil {
		return err
	}
	if kind != addr.Kind {
		return fmt.Errorf("%s is a %s address, but %s names a %s", addr, strings.ToLower(string(addr.Kind)), id, strings.ToLower(string(kind)))
	}
	s, err := c.newSession()
	if err != nil {
		return err
	}
	defer s.log.Sync() //nolint:errcheck // stderr
	desired, ok := s.specs.Find(addr)
	if !ok {
		return fmt.Errorf("%s is not in the specs under %s: write its spec first, then import it", addr, c.global.dir)
	}
	sf, err := c.openState("convsync import", false)
	if err != nil {
		return err
	}
	defer sf.Close()
	st := sf.State()
	if r := st.Get(addr); r != nil {
		return fmt.Errorf("%s is already in the state as %s; to import another resource, run convsync state rm %s first", addr, r.SID, addr)
	}
	for _, r := range st.Resources {
		if r.SID == sid {
			return fmt.Errorf("%s is already in the state as %s", sid, r.Address)
		}
	}
	if kind == resource.KindConversation {
		want := desired.Parent.SID
		if want == "" {
			p := st.Get(desired.Parent.Address)
			if p == nil {
				return fmt.Errorf("%s lives in %s, which is not in the state yet: import or apply %s first", addr, desired.Parent.Address, desired.Parent.Address)
			}
			want = p.SID
		}
		if want != parentSID {
			return fmt.Errorf("the spec puts %s in service %s, but %s is in service %s: importing it would only plan its replacement. Fix the spec's service first", addr, want, sid, parentSID)
		}
	}
	ctx, cancel := timeoutContext(c.ctx, desired.Timeouts.Read)
	defer cancel()
	obs, err := s.client.Fetch(ctx, kind, parentSID, sid)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", id, err)
	}
	applied := resource.Values{}
	schema := resource.Schema(kind)
	for name := range desired.Values {
		if f := schema.Field(name); f != nil && !f.WriteOnly {
			if v, ok := obs.Values[name]; ok {
				applied[name] = v
			}
		}
	}
	if err := sf.Update(func(s *state.State) error {
		s.Put(&state.Resource{Address: addr, SID: obs.SID, ParentSID: obs.ParentSID, Applied: applied, CreatedAt: obs.DateCreated})
		s.RemovePending(addr)
		return nil
	}); err != nil {
		return err
	}
	c.printf("Imported %s as %s (%s).\n", addr, obs.SID, planner.ImportID(kind, obs.ParentSID, obs.SID))
	if _, t1 := desired.Values[resource.FieldTimersInactive]; t1 {
		c.printf("Timers cannot be imported: the next plan shows them as an update, which re-arms them from now.\n")
	} else if _, t2 := desired.Values[resource.FieldTimersClosed]; t2 {
		c.printf("Timers cannot be imported: the next plan shows them as an update, which re-arms them from now.\n")
	}
	c.printf("Run convsync plan to see how it differs from its spec.\n")
	return nil
}
