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

// serviceData is one service and its collections. Each collection is sorted
// by Seq (creation), so a page is a binary search plus a short walk, never a
// scan-and-sort of the whole service.
type serviceData struct {
	svc           Service
	conversations *collection[Conversation]
	// limiters enforce Twilio's action rates: "" is the service's bucket
	// (conversation create+delete, role and user create+update+delete), a
	// conversation SID is that conversation's bucket (its updates and its
	// participant creates+updates+deletes).
	limiters map[string]*tokenBucket

	roles         *collection[Role]
	users         *collection[User]
	config        ServiceConfiguration
	notifications ServiceNotifications
	webhooks      ServiceWebhooks

	// participants and convWebhooks hold each conversation's participants and
	// scoped webhooks, by conversation SID (absent: none yet).
	participants map[string]*collection[Participant]
	convWebhooks map[string]*collection[ConversationWebhook]
}

func newServiceData(svc Service) *serviceData {
	return &serviceData{
		svc:           svc,
		conversations: newCollection(conversationKind),
		limiters:      map[string]*tokenBucket{},
		roles:         newCollection(roleKind),
		users:         newCollection(userKind),
		participants:  map[string]*collection[Participant]{},
		convWebhooks:  map[string]*collection[ConversationWebhook]{},
	}
}

// conversationKind: conversations are found by SID or unique_name. Lists use
// paginate directly (they filter and may run newest first) and render with
// the clock (timers fire), so render here is for generic callers only.
var conversationKind = &kind[Conversation]{
	key:   "conversations",
	rules: listRules{filters: true, maxPageSize: maxPageSize},
	seq:   func(c *Conversation) uint64 { return c.Seq },
	sid:   func(c *Conversation) string { return c.SID },
	naturalKey: func(c *Conversation) string {
		if c.UniqueName == nil {
			return ""
		}
		return *c.UniqueName
	},
	render: func(s *Server, itemURL string, c *Conversation) any {
		return s.renderConversation(itemURL[:len(itemURL)-len(c.SID)-1], c, s.now())
	},
}

// serviceKind: services are found by SID only.
var serviceKind = &kind[serviceData]{
	key:   "services",
	rules: strictRules,
	seq:   func(d *serviceData) uint64 { return d.svc.Seq },
	sid:   func(d *serviceData) string { return d.svc.SID },
	render: func(s *Server, itemURL string, d *serviceData) any {
		return s.renderService(itemURL[:len(itemURL)-len("/v1/Services/")-len(d.svc.SID)], &d.svc)
	},
}

// lookup finds a conversation by SID or, failing that, by unique_name.
func (d *serviceData) lookup(sidOrUniqueName string) *Conversation {
	return d.conversations.lookup(sidOrUniqueName)
}

// insert appends c, which must have the highest Seq so far in this service.
func (d *serviceData) insert(c *Conversation) { d.conversations.insert(c) }

// remove deletes c with its participants and scoped webhooks.
func (d *serviceData) remove(c *Conversation) {
	d.conversations.remove(c)
	delete(d.limiters, c.SID)
	delete(d.participants, c.SID)
	delete(d.convWebhooks, c.SID)
}
