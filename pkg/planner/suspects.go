package planner

import (
	"fmt"
	"sort"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

// Suspect is a resource nobody manages that looks exactly like what convsync
// sent for one of its own creates, and appeared around the same time: most
// likely a copy that an earlier attempt of that create left behind when its
// answer came too late (Twilio has no idempotency key). The plan reports it
// and does nothing about it.
type Suspect struct {
	Kind      resource.Kind
	SID       string
	ParentSID string
	// LooksLike is the address whose create it resembles.
	LooksLike resource.Address
	Message   string
}

// findSuspects reports unowned resources that match a recorded create: a
// pending intent, or a resource in the state as it was created (its applied
// values and date_created). Creates with a unique_name cannot leave copies
// (Twilio refuses a second one), so only creates without one are checked.
func (c *computer) findSuspects(plan *Plan) {
	named := map[string]bool{}
	for _, ch := range plan.Changes {
		if ch.SID != "" {
			named[ch.SID] = true
		}
	}
	taken := func(sid string) bool { return c.owned[sid] || c.adopted[sid] || named[sid] }
	type record struct {
		addr      resource.Address
		sid       string // "" for a pending intent
		parentSID string
		values    resource.Values
		at        time.Time
		pending   bool
	}
	var records []record
	// Only kinds whose creates cannot be told apart by a natural key: a
	// resource with one would have been refused as taken.
	identified := func(kind resource.Kind, v resource.Values) bool {
		k := resource.Schema(kind)
		return k.Singleton || k.KeyOf(v) != ""
	}
	for _, r := range c.st.Resources {
		if r.CreatedAt.IsZero() || identified(r.Address.Kind, r.Applied) {
			continue
		}
		records = append(records, record{addr: r.Address, sid: r.SID, parentSID: r.ParentSID, values: r.Applied, at: r.CreatedAt})
	}
	for _, p := range c.st.Pending {
		if identified(p.Address.Kind, p.Values) {
			continue
		}
		records = append(records, record{addr: p.Address, parentSID: p.ParentSID, values: p.Values, at: p.StartedAt, pending: true})
	}
	sort.Slice(records, func(i, j int) bool { return records[i].addr.String() < records[j].addr.String() })
	// The resources nobody manages, per parent and friendly_name (which a
	// copy shares with its record), indexed once: a managed service may hold
	// many conversations of others, and the records may be many too.
	type parentOf struct {
		kind resource.Kind
		key  string
	}
	unowned := map[parentOf]map[string][]*resource.Observed{}
	reported := map[string]bool{}
	for _, rec := range records {
		kind := resource.Schema(rec.addr.Kind)
		pk := parentOf{rec.addr.Kind, parentKey(rec.addr.Kind, rec.parentSID)}
		byName, indexed := unowned[pk]
		if !indexed {
			byName = map[string][]*resource.Observed{}
			for _, o := range c.snap.Under(pk.kind, pk.key) {
				if !taken(o.SID) {
					byName[o.Values[resource.FieldFriendlyName]] = append(byName[o.Values[resource.FieldFriendlyName]], o)
				}
			}
			unowned[pk] = byName
		}
		for _, o := range byName[rec.values[resource.FieldFriendlyName]] {
			if reported[o.SID] || !sameReadable(kind, rec.values, o.Values) {
				continue
			}
			apart := o.DateCreated.Sub(rec.at)
			if rec.pending && (apart < -PendingClockSkew || apart > PendingWindow) {
				continue
			}
			if apart < 0 {
				apart = -apart
			}
			if !rec.pending && apart > PendingWindow {
				continue
			}
			reported[o.SID] = true
			c.suspects = append(c.suspects, suspect(rec.addr, rec.sid, o, apart))
		}
	}
	plan.Suspects = c.suspects
}

func suspect(addr resource.Address, sid string, o *resource.Observed, apart time.Duration) Suspect {
	kind := resource.AddressPrefix(addr.Kind)
	where := ""
	if p := resource.Schema(addr.Kind).Parent; p != "" && o.ParentSID != "" {
		where = " in " + resource.AddressPrefix(p) + " " + o.ParentSID
	}
	like := addr.String()
	if sid != "" {
		like += " (" + sid + ")"
	} else {
		like += " (whose create is still unconfirmed)"
	}
	msg := fmt.Sprintf("%s %s%s is possibly created by convsync: nobody manages it, and it looks exactly like what convsync sent to create %s, %s apart; "+
		"a create whose answer came too late leaves such a copy. Adopt it with `convsync import %s.NAME %s` (NAME: a spec of its own), or delete it",
		kind, o.SID, where, like, apart.Round(time.Second), resource.AddressPrefix(addr.Kind), resource.ImportID(addr.Kind, o.ParentSID, o.SID))
	return Suspect{Kind: addr.Kind, SID: o.SID, ParentSID: o.ParentSID, LooksLike: addr, Message: msg}
}
