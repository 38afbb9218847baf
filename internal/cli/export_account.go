package cli

import (
	"context"
	"fmt"
	"sort"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/spec"
)

// accountFile is the spec file export writes the account's own kinds into.
const accountFile = "account.settings.yaml" // a service's file name never holds a dot

// exportAccount reads the account's own kinds: its configuration and
// webhook settings, and its address configurations, with references to the
// exported services by name. Push credentials are not exported: their
// secrets cannot be read from Twilio, and a spec without them would plan
// to send nothing valid; skipped counts them, for the message.
func (c *CLI) exportAccount(ctx context.Context, s *session, names *namer, services map[string]resource.Address) (f exportFile, skipped int, err error) {
	f = exportFile{name: accountFile}
	for _, k := range resource.Kinds() {
		if k.Parent != "" || k.Kind == resource.KindService {
			continue
		}
		items, err := s.client.List(ctx, k.Kind, "")
		if err != nil {
			return f, 0, fmt.Errorf("listing %s: %w", k.Plural, err)
		}
		if hasSecrets(k) {
			skipped += len(items)
			continue
		}
		sort.Slice(items, func(i, j int) bool {
			return items[i].DateCreated.Before(items[j].DateCreated) || items[i].DateCreated.Equal(items[j].DateCreated) && items[i].SID < items[j].SID
		})
		for _, o := range items {
			addr := resource.Address{Kind: k.Kind}
			doc := spec.Document{Values: readable(k.Kind, o.Values)}
			if !k.Singleton {
				// A friendly name reads better than a number.
				label := o.Values[resource.FieldFriendlyName]
				if label == "" {
					label = exportLabel(k, o)
				}
				addr.Name = names.name(k.Kind, label, o.SID)
				doc.Comment = "exported from " + o.SID
			}
			doc.Address = addr
			for _, field := range k.References() {
				if target, ok := services[doc.Values[field.Name]]; ok {
					if doc.Refs == nil {
						doc.Refs = map[string]resource.Ref{}
					}
					doc.Refs[field.Name] = resource.Ref{Address: target}
					delete(doc.Values, field.Name)
				}
			}
			if len(doc.Values) == 0 && len(doc.Refs) == 0 {
				continue // nothing configured: nothing to manage
			}
			f.resources = append(f.resources, exported{obs: o, doc: doc})
		}
	}
	return f, skipped, nil
}

func hasSecrets(k *resource.KindSchema) bool {
	for _, f := range k.Fields {
		if f.Secret {
			return true
		}
	}
	return false
}
