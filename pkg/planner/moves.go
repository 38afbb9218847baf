package planner

import (
	"fmt"
	"strings"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// A spec renamed (name: vip → name: vip-support) leaves an address in the
// state that no spec wants and a spec whose address the state does not
// know. When the two are the same resource, which a natural key proves
// (same kind, same parent, same unique_name or identity in Twilio), the
// plan moves the state entry instead of deleting the resource and creating
// a new one: the SID, and with it the history, survive. Kinds without a
// natural key are never moved by the planner: nothing tells two of their
// resources apart (`convsync state mv` does it by hand).

// moveKey identifies a resource by its natural key inside its parent.
type moveKey struct {
	kind      resource.Kind
	parentSID string
	value     string
}

// moveSource is a state entry that no spec wants and that a renamed spec
// may take over.
type moveSource struct {
	r   *state.Resource
	obs *resource.Observed
}

// moveSources indexes, once, the state entries that may have been renamed:
// not wanted by any spec, of a kind with a natural key, still in Twilio and
// holding a value of their key there.
func (c *computer) moveSources() map[moveKey]moveSource {
	if c.movable != nil {
		return c.movable
	}
	c.movable = map[moveKey]moveSource{}
	for _, addr := range sortedKeys(c.st.Resources) {
		r := c.st.Resources[addr]
		kind := resource.Schema(r.Address.Kind)
		if kind == nil || kind.NaturalKey == "" || kind.Singleton || c.wanted[r.Address] || resource.IsDeposed(r.Address) {
			continue
		}
		obs := c.snap.Get(kind.Kind, parentKey(kind.Kind, r.ParentSID), r.SID)
		if obs == nil || kind.KeyOf(obs.Values) == "" {
			continue
		}
		c.movable[moveKey{kind.Kind, parentKey(kind.Kind, r.ParentSID), kind.KeyOf(obs.Values)}] = moveSource{r: r, obs: obs}
	}
	return c.movable
}

// planMove turns ch (the step of d, whose address the state does not know,
// in parentSID, known now) into a move when a state entry no spec wants
// holds d's natural key in the same parent. The move carries the fields
// that differ, updated right after the re-key. It reports false, leaving ch
// alone, when there is no such entry, or when the resource could only
// become what d says by being replaced: then the old one is deleted and d
// created, as for any other spec, and note says why.
func (c *computer) planMove(kind *resource.KindSchema, d *resource.Desired, ch *Change, parentSID string) (moved bool, note string) {
	if kind.NaturalKey == "" || kind.Singleton {
		return false, ""
	}
	value := kind.KeyOf(d.Values)
	if value == "" {
		return false, ""
	}
	k := moveKey{kind.Kind, parentKey(kind.Kind, parentSID), value}
	src, ok := c.moveSources()[k]
	if !ok {
		return false, ""
	}
	fields := c.diff(kind, d, src.obs.Values, src.r.Applied, ch.PendingRefs)
	if kind.Rules != nil && kind.Rules.Finished != nil && kind.Rules.Finished(d.Values, src.obs.Values) {
		fields = nil // finished as its spec asks: see planDesired
	}
	var forced []string
	for _, f := range fields {
		if f.ForcesReplace {
			forced = append(forced, f.Name)
		}
	}
	why := ""
	switch {
	case len(forced) > 0:
		why = strings.Join(forced, ", ") + " cannot be changed in place"
	case len(fields) > 0 && kind.Rules != nil && kind.Rules.Frozen != nil:
		why = kind.Rules.Frozen(src.obs.Values)
	}
	if why != "" {
		return false, fmt.Sprintf("%s holds the same %s %q, but it must be replaced (%s): it is deleted and this one created", src.r.Address, kind.KeyName(d.Values), value, why)
	}
	delete(c.movable, k)
	c.moved[src.r.Address] = d.Address
	ch.Action = Move
	ch.MovedFrom = src.r.Address
	ch.SID, ch.ParentSID, ch.Observed = src.r.SID, src.r.ParentSID, src.obs
	ch.Fields = fields
	ch.Reason = fmt.Sprintf("its spec was renamed: %s %q shows it is the same %s (%s), so only its state entry moves", kind.KeyName(d.Values), value, lower(kind.Kind), src.r.SID)
	if len(fields) > 0 {
		ch.Reason += "; then it is updated in place: " + fieldNames(fields)
	}
	return true, ""
}
