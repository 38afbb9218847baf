package apply

import (
	"fmt"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// sealSecrets fingerprints every secret field of v again, just before it is
// sent, with the key of the state the result is recorded in: what the
// state records is then the fingerprint of what was read now (the plan's
// may be from another moment, or, for a state not yet saved, another key).
// The Twilio adapter reads the value once more as it sends it; should the
// file change between the two reads, the next plan sees the difference and
// sends it again. A secret that cannot be read fails the step before
// anything is sent.
func (a *applier) sealSecrets(kind resource.Kind, v resource.Values) (resource.Values, error) {
	schema := resource.Schema(kind)
	var out resource.Values
	for name, text := range v {
		f := schema.Field(name)
		if f == nil || !f.Secret {
			continue
		}
		var lineage string
		a.store.View(func(s *state.State) { lineage = s.Lineage })
		sealed, err := resource.Seal(text, resource.SecretKey(lineage))
		if err != nil {
			return nil, fmt.Errorf("%s: the secret cannot be read: %v; nothing was sent", name, err)
		}
		if out == nil {
			out = v.Clone()
		}
		out[name] = sealed
	}
	if out == nil {
		return v, nil
	}
	return out, nil
}
