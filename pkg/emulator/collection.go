package emulator

import (
	"net/http"
)

// kind describes one collection kind of a service (roles, users): how its
// items are identified and ordered, how a list of them pages, and how one is
// shown.
type kind[T any] struct {
	// key is the items key of a list answer ("roles"), also meta.key and the
	// scope of page tokens.
	key string
	// rules are the list's paging rules (each list has its own max PageSize).
	rules listRules
	seq   func(*T) uint64
	sid   func(*T) string
	// naturalKey, when not nil, is the kind's second identity (a user's
	// identity, a conversation's unique_name): unique in the collection, and
	// accepted where a SID is. "" means the item has none (not indexed).
	naturalKey func(*T) string
	// render shows an item; itemURL is its absolute URL.
	render func(s *Server, itemURL string, x *T) any
}

// collection holds the items of one kind in one service: ordered by creation
// (Seq, the position page tokens name), indexed by SID and by natural key.
type collection[T any] struct {
	kind  *kind[T]
	order []*T
	bySID map[string]*T
	byKey map[string]*T // nil when the kind has no natural key
}

func newCollection[T any](k *kind[T]) *collection[T] {
	c := &collection[T]{kind: k, bySID: map[string]*T{}}
	if k.naturalKey != nil {
		c.byKey = map[string]*T{}
	}
	return c
}

func (c *collection[T]) len() int { return len(c.order) }

// all returns the items in creation order (the slice is the collection's own).
func (c *collection[T]) all() []*T { return c.order }

// get finds an item by SID.
func (c *collection[T]) get(sid string) *T { return c.bySID[sid] }

// byNaturalKey finds an item by natural key (nil when the kind has none).
func (c *collection[T]) byNaturalKey(key string) *T {
	if c.byKey == nil {
		return nil
	}
	return c.byKey[key]
}

// lookup finds an item by SID or, failing that, by natural key.
func (c *collection[T]) lookup(sidOrKey string) *T {
	if x := c.bySID[sidOrKey]; x != nil {
		return x
	}
	return c.byNaturalKey(sidOrKey)
}

// insert appends x, which must have the highest Seq so far in the collection
// (every Seq comes from the server's one counter, so a new item always has).
func (c *collection[T]) insert(x *T) {
	c.order = append(c.order, x)
	c.bySID[c.kind.sid(x)] = x
	if c.byKey != nil {
		if k := c.kind.naturalKey(x); k != "" {
			c.byKey[k] = x
		}
	}
}

// rekey moves x in the natural-key index after its key changed from oldKey.
func (c *collection[T]) rekey(x *T, oldKey string) {
	if c.byKey == nil {
		return
	}
	if oldKey != "" && c.byKey[oldKey] == x {
		delete(c.byKey, oldKey)
	}
	if k := c.kind.naturalKey(x); k != "" {
		c.byKey[k] = x
	}
}

func (c *collection[T]) remove(x *T) {
	seq := c.kind.seq(x)
	lo, hi := 0, len(c.order)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.kind.seq(c.order[m]) < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(c.order) && c.order[lo] == x {
		copy(c.order[lo:], c.order[lo+1:])
		c.order[len(c.order)-1] = nil
		c.order = c.order[:len(c.order)-1]
	}
	delete(c.bySID, c.kind.sid(x))
	if c.byKey != nil {
		if k := c.kind.naturalKey(x); k != "" && c.byKey[k] == x {
			delete(c.byKey, k)
		}
	}
}

// list answers a list request for the collection at listURL: one page in
// creation order, under the kind's key, with meta.
func (c *collection[T]) list(s *Server, r *http.Request, serviceSID, listURL string) result {
	q, perr := parseListQuery(r, c.kind.rules)
	if perr != nil {
		return failed(perr)
	}
	page, perr := paginate(s, q, listScope{key: c.kind.key, serviceSID: serviceSID}, c.order, c.kind.seq,
		func(*T) bool { return true })
	if perr != nil {
		return failed(perr)
	}
	items := make([]any, 0, len(page.items))
	for _, x := range page.items {
		items = append(items, c.kind.render(s, listURL+"/"+c.kind.sid(x), x))
	}
	return result{status: http.StatusOK, body: map[string]any{
		c.kind.key: items,
		"meta":     page.meta(listURL, q, c.kind.key),
	}}
}
