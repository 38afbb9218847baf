package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/spec"
	"github.com/convsync/convsync/pkg/state"
)

func (c *CLI) exportCommand() *cobra.Command {
	var services []string
	var out string
	var adopt bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write specs for what the account holds (and, with --import, adopt it)",
		Long: `Reads every service of the account (or those given with --service) with
everything convsync manages in them — roles, users, conversations and the
service's configuration, notifications and webhooks — and writes one spec file
per service into --out; without --service also account.settings.yaml, with the
account's configuration, webhook settings and address configurations (push
credentials are not exported: their secrets cannot be read). With --import it also records every exported resource
in the state, so that a plan over the written specs has no changes: a team can
bring an existing account under git in one step.

Exported services carry lifecycle.prevent_destroy: true, so that removing a
file by mistake can never delete a service with everything in it; remove the
setting when you mean to. Write-only fields (conversation timers) cannot be
read from Twilio and are not exported.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return c.runExport(services, out, adopt) },
	}
	cmd.Flags().StringSliceVar(&services, "service", nil, "export only this service (IS…; repeatable)")
	cmd.Flags().StringVar(&out, "out", "exported", "folder to write the spec files into (must not hold them already)")
	cmd.Flags().BoolVar(&adopt, "import", false, "also record every exported resource in the state")
	return cmd
}

// exported is one resource read from Twilio, about to become a spec.
type exported struct {
	doc spec.Document
	obs resource.Observed
}

func (c *CLI) runExport(only []string, out string, adopt bool) error {
	for _, sid := range only {
		if !resource.IsSID(sid, resource.Schema(resource.KindService).SIDPrefix) {
			return fmt.Errorf("--service %q is not a service SID (IS followed by 32 hexadecimal digits)", sid)
		}
	}
	s, err := c.newSession(false)
	if err != nil {
		return err
	}
	defer s.log.Sync() //nolint:errcheck // stderr
	ctx, cancel := timeoutContext(c.ctx, 0)
	defer cancel()
	all, err := s.client.List(ctx, resource.KindService, "")
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	names := newNamer()
	var files []exportFile
	found := map[string]bool{}
	for _, svc := range all {
		if len(only) > 0 && !slices.Contains(only, svc.SID) {
			continue
		}
		found[svc.SID] = true
		f, err := c.exportService(ctx, s, svc, names)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	for _, sid := range only {
		if !found[sid] {
			return fmt.Errorf("--service %s: no such service in the account", sid)
		}
	}
	skippedCredentials := 0
	if len(only) == 0 {
		// The account's own settings (export_account.go), only when the
		// whole account is exported.
		services := map[string]resource.Address{}
		for _, f := range files {
			services[f.resources[0].obs.SID] = f.resources[0].doc.Address
		}
		f, skipped, err := c.exportAccount(ctx, s, names, services)
		if err != nil {
			return err
		}
		skippedCredentials = skipped
		if len(f.resources) > 0 {
			files = append(files, f)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(out, f.name)
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s exists already; export writes only new files (choose another --out, or remove it)", path)
		}
	}
	total := 0
	for _, f := range files {
		docs := make([]spec.Document, len(f.resources))
		for i, r := range f.resources {
			docs[i] = r.doc
		}
		text, err := spec.Write(docs)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, f.name), text, 0o644); err != nil {
			return err
		}
		total += len(f.resources)
		c.printf("Wrote %s (%d resources).\n", filepath.Join(out, f.name), len(f.resources))
	}
	for _, f := range files {
		for _, why := range f.skipped {
			c.printf("Not exported: %s. Twilio gives them no name, so convsync could not tell the two apart; delete one in Twilio.\n", why)
		}
	}
	if skippedCredentials > 0 {
		c.printf("%d push credentials were not exported: Twilio never returns their secrets. Write their specs by hand ({file: PATH} or {env: NAME}) and convsync import them.\n", skippedCredentials)
	}
	if !adopt {
		c.printf("Exported %d resources. To manage them, import them (export --import), or review the files first.\n", total)
		return nil
	}
	return c.importExported(files, total)
}

type exportFile struct {
	name      string
	resources []exported
	// skipped: resources left out, with why.
	skipped []string
}

// exportService reads one service and every kind under it.
func (c *CLI) exportService(ctx context.Context, s *session, svc resource.Observed, names *namer) (exportFile, error) {
	svcAddr := resource.Address{Kind: resource.KindService, Name: names.name(resource.KindService, svc.Values[resource.FieldFriendlyName], svc.SID)}
	f := exportFile{name: svcAddr.Name + ".yaml"}
	f.resources = append(f.resources, exported{obs: svc, doc: spec.Document{Address: svcAddr, Values: readable(resource.KindService, svc.Values), PreventDestroy: true,
		Comment: "exported from " + svc.SID}})
	bySID := map[string]resource.Address{} // for references
	if err := c.exportChildren(ctx, s, resource.KindService, svc.SID, svcAddr, names, bySID, &f); err != nil {
		return f, err
	}
	// References to exported resources are written by name.
	for i := range f.resources {
		r := &f.resources[i]
		for _, field := range resource.Schema(r.doc.Address.Kind).References() {
			if target, ok := bySID[r.doc.Values[field.Name]]; ok {
				if r.doc.Refs == nil {
					r.doc.Refs = map[string]resource.Ref{}
				}
				r.doc.Refs[field.Name] = resource.Ref{Address: target}
			}
		}
	}
	return f, nil
}

// exportChildren exports every kind that lives in the resource parentAddr
// (of kind parent, whose children have parent key key), and what lives in
// those in turn: a conversation's participants and webhooks are one list
// each per conversation.
func (c *CLI) exportChildren(ctx context.Context, s *session, parent resource.Kind, key string, parentAddr resource.Address, names *namer, bySID map[string]resource.Address, f *exportFile) error {
	for _, k := range resource.Children(parent) {
		items, err := s.client.List(ctx, k.Kind, key)
		if err != nil {
			return fmt.Errorf("listing %s of %s: %w", k.Plural, key, err)
		}
		sort.Slice(items, func(i, j int) bool {
			return items[i].DateCreated.Before(items[j].DateCreated) || items[i].DateCreated.Equal(items[j].DateCreated) && items[i].SID < items[j].SID
		})
		seen := map[string]string{} // content → SID, for kinds told apart only by it
		for _, o := range items {
			if k.UniqueByContent {
				content := contentKey(readable(k.Kind, o.Values))
				if first, dup := seen[content]; dup {
					// Its spec would be refused as identical to the first's.
					f.skipped = append(f.skipped, fmt.Sprintf("%s %s (identical to %s in %s %s)", strings.ToLower(k.Plural[:len(k.Plural)-1]), o.SID, first, strings.ToLower(string(parent)), key))
					continue
				}
				seen[content] = o.SID
			}
			name := parentAddr.Name
			if !k.Singleton {
				name = names.name(k.Kind, exportLabel(k, o), o.SID)
			}
			addr := resource.Address{Kind: k.Kind, Name: name}
			bySID[o.SID] = addr
			doc := spec.Document{Address: addr, Parent: resource.Ref{Address: parentAddr}, Values: readable(k.Kind, o.Values)}
			if !k.Singleton {
				doc.Comment = "exported from " + o.SID
			}
			f.resources = append(f.resources, exported{obs: o, doc: doc})
			if !k.Singleton && len(resource.Children(k.Kind)) > 0 {
				if err := c.exportChildren(ctx, s, k.Kind, resource.ChildKey(k.Kind, key, o.SID), addr, names, bySID, f); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// readable keeps the fields a spec may set, leaving out write-only and
// secret ones (Twilio never returns them).
func readable(kind resource.Kind, v resource.Values) resource.Values {
	out := resource.Values{}
	for _, f := range resource.Schema(kind).Fields {
		if x, ok := v[f.Name]; ok && !f.WriteOnly && !f.Secret {
			out[f.Name] = x
		}
	}
	return out
}

// exportLabel is what a resource's spec name is made from: its natural key,
// else its friendly name.
func exportLabel(k *resource.KindSchema, o resource.Observed) string {
	if key := k.KeyOf(o.Values); key != "" {
		return key
	}
	return o.Values[resource.FieldFriendlyName]
}

// importExported records every exported resource in the state.
func (c *CLI) importExported(files []exportFile, total int) error {
	sf, err := c.openState("convsync export --import", false)
	if err != nil {
		return err
	}
	defer sf.Close()
	var conflicts []string
	sf.View(func(st *state.State) {
		owned := map[string]string{}
		for _, r := range st.Resources {
			owned[r.SID] = r.Address.String()
		}
		for _, f := range files {
			for _, r := range f.resources {
				if st.Get(r.doc.Address) != nil {
					conflicts = append(conflicts, r.doc.Address.String()+" is already in the state")
				} else if a, ok := owned[r.obs.SID]; ok {
					conflicts = append(conflicts, fmt.Sprintf("%s is already in the state as %s", r.obs.SID, a))
				}
			}
		}
	})
	if len(conflicts) > 0 {
		return fmt.Errorf("nothing was imported (the files are written): %s", strings.Join(conflicts, "; "))
	}
	if err := sf.Update(func(st *state.State) error {
		for _, f := range files {
			for _, r := range f.resources {
				st.Put(&state.Resource{Address: r.doc.Address, SID: r.obs.SID, ParentSID: r.obs.ParentSID, Applied: r.doc.Values.Clone(), CreatedAt: r.obs.DateCreated})
			}
		}
		return nil
	}); err != nil {
		return err
	}
	c.printf("Imported %d resources into %s. Run convsync plan --dir DIR to check: it shows no changes.\n", total, c.global.statePath)
	return nil
}

var notNameChar = regexp.MustCompile(`[^a-z0-9_-]+`)

// namer makes spec names from Twilio's names: lower case, other characters
// as '-', at most 63 characters, unique per kind (a suffix -2, -3 … when
// two resources would share one).
type namer struct{ used map[string]bool }

func newNamer() *namer { return &namer{used: map[string]bool{}} }

func (n *namer) name(kind resource.Kind, label, sid string) string {
	base := strings.Trim(notNameChar.ReplaceAllString(strings.ToLower(label), "-"), "-_")
	if len(base) > 55 {
		base = strings.TrimRight(base[:55], "-_")
	}
	if base == "" {
		base = strings.ToLower(sid)
		if len(sid) > 10 {
			base = resource.AddressPrefix(kind) + "-" + strings.ToLower(sid[len(sid)-8:])
		}
		base = strings.ReplaceAll(base, "_", "-")
	}
	name := base
	for i := 2; n.used[string(kind)+"."+name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	n.used[string(kind)+"."+name] = true
	return name
}

// contentKey is one text for all of v: equal for equal values.
func contentKey(v resource.Values) string {
	names := sortedNames(v)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + v[n]
	}
	return strings.Join(parts, "\x00")
}
