package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

func (c *CLI) importCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import ADDRESS ID",
		Short: "Adopt an existing Twilio resource into the state",
		Long: `Records an existing resource as the one a spec describes, without changing
it in Twilio. ID is Twilio's path of the resource (the seed's format):

  convsync import service.support  /Services/IS…
  convsync import conversation.vip /Services/IS…/Conversations/CH…
  convsync import role.agent       /Services/IS…/Roles/RL…
  convsync import user.alice       /Services/IS…/Users/US…   (or the identity instead of US…)
  convsync import service_configuration.support  /Services/IS…/Configuration
  convsync import service_notifications.support  /Services/IS…/Configuration/Notifications
  convsync import service_webhooks.support       /Services/IS…/Configuration/Webhooks

The address must exist in the specs. Write-only fields (conversation timers)
cannot be imported (Twilio never returns them): if the spec sets them, the
next plan shows them as an update.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return c.runImport(args[0], args[1]) },
	}
	c.addVarFlags(cmd.Flags())
	return cmd
}

// parseImportID reads Twilio's path of a resource of any kind: a
// top-level collection and SID, then for each level down a child kind's
// collection and, unless the kind is a singleton, its SID (or, for a kind
// with a natural key, that key: Twilio's paths take a user's identity).
func parseImportID(id string) (kind resource.Kind, parentSID, sid string, err error) {
	segments := strings.Split(strings.Trim(id, "/"), "/")
	var parent *resource.KindSchema
	for len(segments) > 0 {
		var next *resource.KindSchema
		var rest []string
		for _, k := range resource.Kinds() {
			if k.Parent != kindOf(parent) {
				continue
			}
			// The longest collection wins: Configuration/Webhooks over
			// Configuration.
			coll := strings.Split(k.Collection, "/")
			if len(segments) >= len(coll) && strings.Join(segments[:len(coll)], "/") == k.Collection && (next == nil || len(coll) > len(strings.Split(next.Collection, "/"))) {
				next, rest = k, segments[len(coll):]
			}
		}
		if next == nil {
			break
		}
		if next.Singleton {
			if len(rest) != 0 {
				break
			}
			key := resource.ChildKey(kindOf(parent), parentSID, sid)
			return next.Kind, key, resource.SingletonID(next.Kind, key), nil
		}
		if len(rest) == 0 || !(resource.IsSID(rest[0], next.SIDPrefix) || next.NaturalKey != "" && len(rest) == 1 && rest[0] != "") {
			break
		}
		if parent != nil {
			// Two levels down the parent is a key: IS…/CH….
			parentSID = resource.ChildKey(parent.Kind, parentSID, sid)
		}
		sid, parent, segments = rest[0], next, rest[1:]
		if len(segments) == 0 {
			return next.Kind, parentSID, sid, nil
		}
	}
	return "", "", "", fmt.Errorf("import ID %q is not a Twilio path convsync knows; use for example /Services/IS<32 hex>, /Services/IS…/Conversations/CH…, /Services/IS…/Roles/RL…, /Services/IS…/Users/US… (or the identity), /Services/IS…/Configuration[/Notifications|/Webhooks], /Services/IS…/Conversations/CH…/Participants/MB… (or the identity), /Services/IS…/Conversations/CH…/Webhooks/WH…, /Configuration[/Webhooks], /Configuration/Addresses/IG… (or the address) or /Credentials/CR…", id)
}

func kindOf(k *resource.KindSchema) resource.Kind {
	if k == nil {
		return ""
	}
	return k.Kind
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
	s, err := c.newSession(true)
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
	schema := resource.Schema(kind)
	if schema.Parent != "" {
		want := st.ParentSID(desired)
		if want == "" {
			return fmt.Errorf("%s lives in %s, which is not in the state yet: import or apply %s first", addr, desired.Parent.Address, desired.Parent.Address)
		}
		if want != parentSID {
			return fmt.Errorf("the spec puts %s in %s %s, but %s is in %s %s: importing it would only plan its replacement. Fix the spec's %s first", addr, resource.AddressPrefix(schema.Parent), want, sid, resource.AddressPrefix(schema.Parent), parentSID, resource.AddressPrefix(schema.Parent))
		}
	}
	ctx, cancel := timeoutContext(c.ctx, desired.Timeouts.Read)
	defer cancel()
	obs, err := s.client.Fetch(ctx, kind, parentSID, sid)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", id, err)
	}
	for _, r := range st.Resources {
		if r.SID == obs.SID {
			return fmt.Errorf("%s is already in the state as %s", obs.SID, r.Address)
		}
	}
	applied := resource.Values{}
	var assumed []string
	for _, name := range sortedNames(desired.Values) {
		f := schema.Field(name)
		switch {
		case f == nil:
		case !f.WriteOnly:
			if v, ok := obs.Values[name]; ok {
				applied[name] = v
			}
		case f.ForcesReplace && !f.Secret:
			// Create-only and never returned (a webhook's replay_after):
			// unknown, it would replace at once what was just adopted.
			// Nothing can change it but a replacement, so the spec's value
			// stands for it.
			applied[name] = desired.Values[name]
			assumed = append(assumed, name)
		}
	}
	if err := sf.Update(func(s *state.State) error {
		s.Put(&state.Resource{Address: addr, SID: obs.SID, ParentSID: obs.ParentSID, Applied: applied, CreatedAt: obs.DateCreated})
		s.RemovePending(addr)
		return nil
	}); err != nil {
		return err
	}
	c.printf("Imported %s as %s (%s).\n", addr, obs.SID, resource.ImportID(kind, obs.ParentSID, obs.SID))
	if len(assumed) > 0 {
		c.printf("%s cannot be read from Twilio or changed after a create: recorded as the spec sets it. If Twilio holds another value, apply --replace %s.\n", strings.Join(assumed, ", "), addr)
	}
	var writeOnly []string
	for _, f := range schema.Fields {
		if _, set := desired.Values[f.Name]; set && f.WriteOnly && !slices.Contains(assumed, f.Name) {
			writeOnly = append(writeOnly, f.Name)
		}
	}
	if len(writeOnly) > 0 {
		c.printf("%s cannot be imported (Twilio never returns them): the next plan shows them as an update.\n", strings.Join(writeOnly, ", "))
	}
	c.printf("Run convsync plan to see how it differs from its spec.\n")
	return nil
}

func sortedNames(v resource.Values) []string {
	out := make([]string, 0, len(v))
	for name := range v {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
