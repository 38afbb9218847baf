package emulator

import (
	"time"
)

// Service is a Conversation Service as the emulator stores it.
type Service struct {
	SID          string    `json:"sid"`
	FriendlyName string    `json:"friendly_name"`
	DateCreated  time.Time `json:"date_created"`
	DateUpdated  time.Time `json:"date_updated"`
	// Seq orders services by creation; list pages and page tokens use it.
	Seq uint64 `json:"seq"`
}

// Conversation is a conversation as the emulator stores it. Optional fields are
// pointers because Twilio answers null for them when they were never set.
type Conversation struct {
	SID                 string  `json:"sid"`
	ServiceSID          string  `json:"service_sid"`
	FriendlyName        *string `json:"friendly_name,omitempty"`
	UniqueName          *string `json:"unique_name,omitempty"`
	Attributes          string  `json:"attributes"`
	MessagingServiceSID *string `json:"messaging_service_sid,omitempty"`
	// State is the state last written. Timers that have expired since are applied
	// when the conversation is read (see effective), just as Twilio moves state
	// on its own.
	State        string     `json:"state"`
	DateCreated  time.Time  `json:"date_created"`
	DateUpdated  time.Time  `json:"date_updated"`
	DateInactive *time.Time `json:"date_inactive,omitempty"`
	DateClosed   *time.Time `json:"date_closed,omitempty"`
	// Seq orders conversations by creation within the emulator; list pages and
	// page tokens use it, so a token stays valid while items are deleted.
	Seq uint64 `json:"seq"`
}

// clone returns a deep copy, so callers never share pointers with the store.
func (c *Conversation) clone() Conversation {
	out := *c
	out.FriendlyName = clonePtr(c.FriendlyName)
	out.UniqueName = clonePtr(c.UniqueName)
	out.MessagingServiceSID = clonePtr(c.MessagingServiceSID)
	out.DateInactive = clonePtr(c.DateInactive)
	out.DateClosed = clonePtr(c.DateClosed)
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// effective returns the conversation as Twilio would show it at now: a timer
// whose date has passed has fired (inactive, then closed), and date_updated
// moved to the moment it fired.
func (c *Conversation) effective(now time.Time) Conversation {
	out := c.clone()
	if out.State == stateClosed {
		out.DateInactive, out.DateClosed = nil, nil
		return out
	}
	if out.DateInactive != nil && !now.Before(*out.DateInactive) {
		if out.State == stateActive {
			out.State = stateInactive
			if out.DateInactive.After(out.DateUpdated) {
				out.DateUpdated = *out.DateInactive
			}
		}
		out.DateInactive = nil
	}
	if out.DateClosed != nil && !now.Before(*out.DateClosed) {
		out.State = stateClosed
		if out.DateClosed.After(out.DateUpdated) {
			out.DateUpdated = *out.DateClosed
		}
		out.DateInactive, out.DateClosed = nil, nil
	}
	return out
}

const (
	stateActive       = "active"
	stateInactive     = "inactive"
	stateClosed       = "closed"
	stateInitializing = "initializing"
)

// serviceData is one service and the index of its conversations. order is sorted
// by Seq (creation), so a page is a binary search plus a short walk, never a
// scan-and-sort of the whole service.
type serviceData struct {
	svc      Service
	order    []*Conversation
	bySID    map[string]*Conversation
	byUnique map[string]*Conversation
	// limiters enforce Twilio's action rates: "" is the service's bucket
	// (conversation create+delete, role and user create+update+delete), a
	// conversation SID is that conversation's update bucket.
	limiters map[string]*tokenBucket

	roles         *collection[Role]
	users         *collection[User]
	config        ServiceConfiguration
	notifications ServiceNotifications
	webhooks      ServiceWebhooks
}

func newServiceData(svc Service) *serviceData {
	return &serviceData{
		svc:      svc,
		bySID:    map[string]*Conversation{},
		byUnique: map[string]*Conversation{},
		limiters: map[string]*tokenBucket{},
		roles:    newCollection(roleKind),
		users:    newCollection(userKind),
	}
}

// lookup finds a conversation by SID or, failing that, by unique_name.
func (d *serviceData) lookup(sidOrUniqueName string) *Conversation {
	if c, ok := d.bySID[sidOrUniqueName]; ok {
		return c
	}
	return d.byUnique[sidOrUniqueName]
}

// insert appends c, which must have the highest Seq so far in this service.
func (d *serviceData) insert(c *Conversation) {
	d.order = append(d.order, c)
	d.bySID[c.SID] = c
	if c.UniqueName != nil {
		d.byUnique[*c.UniqueName] = c
	}
}

func (d *serviceData) remove(c *Conversation) {
	i := indexBySeq(d.order, c.Seq)
	if i < len(d.order) && d.order[i] == c {
		copy(d.order[i:], d.order[i+1:])
		d.order[len(d.order)-1] = nil
		d.order = d.order[:len(d.order)-1]
	}
	delete(d.bySID, c.SID)
	if c.UniqueName != nil && d.byUnique[*c.UniqueName] == c {
		delete(d.byUnique, *c.UniqueName)
	}
	delete(d.limiters, c.SID)
}

// indexBySeq returns the index of the first conversation whose Seq is >= seq.
func indexBySeq(order []*Conversation, seq uint64) int {
	lo, hi := 0, len(order)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if order[m].Seq < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
