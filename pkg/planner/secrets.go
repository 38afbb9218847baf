package planner

import (
	"crypto/rand"
	"fmt"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// sealSecrets returns d with every secret field's reference carrying the
// fingerprint of the value it points at now (resource.SecretRef), under
// the state's key. Twilio never returns secrets, so this fingerprint,
// compared with the one the state recorded when convsync last sent the
// field, is the only way to see that a secret file or variable changed.
// A secret that cannot be read fails the plan, naming the spec, before
// anything is sent. The value is read, fingerprinted and dropped here.
func (c *computer) sealSecrets(kind *resource.KindSchema, d *resource.Desired) *resource.Desired {
	var out *resource.Desired
	for i := range kind.Fields {
		f := &kind.Fields[i]
		text, ok := d.Values[f.Name]
		if !f.Secret || !ok {
			continue
		}
		sealed, err := resource.Seal(text, c.secretKey())
		if err != nil {
			at := ""
			if s := d.Source.String(); s != "" {
				at = " (" + s + ")"
			}
			c.fail(d.Address, "%s: the secret cannot be read%s: %v; nothing is sent until it can", f.Name, at, err)
			continue
		}
		if out == nil {
			cp := *d
			cp.Values = d.Values.Clone()
			out = &cp
		}
		out.Values[f.Name] = sealed
	}
	if out == nil {
		return d
	}
	return out
}

// secretKey is the key secrets are fingerprinted with: the state's (from
// its lineage). A state without a lineage (a fresh one, not yet saved)
// recorded no fingerprints to compare with: a random key keeps the plan
// from comparing equal by accident; the applier fingerprints again with
// the key of the state it saves.
func (c *computer) secretKey() []byte {
	if c.secretKeyCache == nil {
		if c.st.Lineage != "" {
			c.secretKeyCache = resource.SecretKey(c.st.Lineage)
		} else {
			c.secretKeyCache = make([]byte, 32)
			if _, err := rand.Read(c.secretKeyCache); err != nil {
				panic(fmt.Sprintf("reading random bytes: %v", err)) // crypto/rand does not fail on Linux
			}
		}
	}
	return c.secretKeyCache
}

// CheckSecrets reads every secret of desired (and drops the values): a
// secret that cannot be read is an Error naming the resource and its spec,
// found before anything is asked of Twilio. Compute checks again, as it
// fingerprints them.
func CheckSecrets(desired []resource.Desired) error {
	c := &computer{st: &state.State{Lineage: "check"}}
	for i := range desired {
		c.sealSecrets(resource.Schema(desired[i].Address.Kind), &desired[i])
	}
	if len(c.errs) > 0 {
		return c.errs
	}
	return nil
}

// kindWarnings adds the kind's own warnings (KindRules.Warnings) to a step
// that writes fields.
func (c *computer) kindWarnings(kind *resource.KindSchema, ch *Change) {
	if kind.Rules == nil || kind.Rules.Warnings == nil || ch.Desired == nil {
		return
	}
	switch ch.Action {
	case Create, Update, Replace, Adopt, Move:
	default:
		return
	}
	changed := make([]string, 0, len(ch.Fields))
	for _, f := range ch.Fields {
		changed = append(changed, f.Name)
	}
	ch.Warnings = append(ch.Warnings, kind.Rules.Warnings(ch.Desired.Values, changed)...)
}
