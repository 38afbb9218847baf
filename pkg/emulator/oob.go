package emulator

import (
	"fmt"
	"time"
)

// The methods in this file read and change the data behind convsync's back, as
// a person in the Twilio console would. They are not API requests: they skip
// auth, faults and Stats. A serviceSID of "" means the default service.

// ErrNotFound is returned by out-of-band calls for a missing service,
// conversation or role.
var ErrNotFound = fmt.Errorf("not found")

func (s *Server) serviceLocked(serviceSID string) (*serviceData, error) {
	if serviceSID == "" {
		serviceSID = s.defaultIS
	}
	d := s.services.get(serviceSID)
	if d == nil {
		return nil, fmt.Errorf("service %s: %w", serviceSID, ErrNotFound)
	}
	return d, nil
}

// Services returns every service, oldest first.
func (s *Server) Services() []Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Service, 0, s.services.len())
	for _, d := range s.services.all() {
		out = append(out, d.svc)
	}
	return out
}

// Conversations returns the conversations of a service in list order, as Twilio
// would show them now (expired timers fired).
func (s *Server) Conversations(serviceSID string) ([]Conversation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]Conversation, 0, d.conversations.len())
	for _, c := range d.conversations.all() {
		out = append(out, c.effective(now))
	}
	return out, nil
}

// Conversation returns one conversation by SID or unique_name.
func (s *Server) Conversation(serviceSID, sidOrUniqueName string) (Conversation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return Conversation{}, err
	}
	c := d.lookup(sidOrUniqueName)
	if c == nil {
		return Conversation{}, fmt.Errorf("conversation %s: %w", sidOrUniqueName, ErrNotFound)
	}
	return c.effective(s.now()), nil
}

// AddService creates a service out of band and returns it.
func (s *Server) AddService(friendlyName string) (Service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	d := s.addServiceLocked(Service{SID: s.unusedServiceSIDLocked(), FriendlyName: friendlyName, DateCreated: now, DateUpdated: now})
	return d.svc, s.saveLocked()
}

// EditConversation changes a conversation out of band. mutate sees the
// conversation as Twilio shows it now, with DateUpdated already set to now (it
// may change it). SID, ServiceSID and Seq cannot be changed; a unique_name
// that another conversation holds is refused.
func (s *Server) EditConversation(serviceSID, sidOrUniqueName string, mutate func(*Conversation)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return err
	}
	c := d.lookup(sidOrUniqueName)
	if c == nil {
		return fmt.Errorf("conversation %s: %w", sidOrUniqueName, ErrNotFound)
	}
	edited := c.effective(s.now())
	edited.DateUpdated = s.clock()
	mutate(&edited)
	edited.SID, edited.ServiceSID, edited.Seq = c.SID, c.ServiceSID, c.Seq
	if edited.UniqueName != nil {
		if other := d.conversations.byNaturalKey(*edited.UniqueName); other != nil && other != c {
			return fmt.Errorf("unique_name %q is taken by %s", *edited.UniqueName, other.SID)
		}
	}
	oldUnique := conversationKind.naturalKey(c)
	*c = edited.clone()
	d.conversations.rekey(c, oldUnique)
	return s.saveLocked()
}

// DeleteConversationOOB deletes a conversation out of band.
func (s *Server) DeleteConversationOOB(serviceSID, sidOrUniqueName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return err
	}
	c := d.lookup(sidOrUniqueName)
	if c == nil {
		return fmt.Errorf("conversation %s: %w", sidOrUniqueName, ErrNotFound)
	}
	d.remove(c)
	return s.saveLocked()
}

// SeedConversations adds n active conversations to a service out of band, for
// benchmarks and large tests, saving once at the end. When uniqueNamePrefix is
// not "", conversation i gets unique_name and friendly_name prefix+i; a name
// already taken is an error before anything is added.
func (s *Server) SeedConversations(serviceSID string, n int, uniqueNamePrefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return nil, err
	}
	names := make([]string, n)
	if uniqueNamePrefix != "" {
		for i := range names {
			names[i] = fmt.Sprintf("%s%d", uniqueNamePrefix, i)
			if d.conversations.byNaturalKey(names[i]) != nil {
				return nil, fmt.Errorf("unique_name %q is taken", names[i])
			}
		}
	}
	now := s.clock()
	sids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		mg := s.defaultMG
		c := &Conversation{
			SID: s.unusedConversationSIDLocked(d), ServiceSID: d.svc.SID, Attributes: "{}",
			MessagingServiceSID: &mg, State: stateActive, DateCreated: now, DateUpdated: now, Seq: s.nextSeq,
		}
		s.nextSeq++
		if names[i] != "" {
			name := names[i]
			c.UniqueName, c.FriendlyName = &name, clonePtr(&name)
		}
		d.insert(c)
		sids = append(sids, c.SID)
	}
	return sids, s.saveLocked()
}

// Now returns the emulator's clock reading, for tests that compute expected
// timer dates.
func (s *Server) Now() time.Time { return s.now() }

// Roles returns the roles of a service in list order.
func (s *Server) Roles(serviceSID string) ([]Role, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return nil, err
	}
	out := make([]Role, 0, d.roles.len())
	for _, r := range d.roles.all() {
		out = append(out, r.clone())
	}
	return out, nil
}

// Users returns the users of a service in list order.
func (s *Server) Users(serviceSID string) ([]User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, d.users.len())
	for _, u := range d.users.all() {
		out = append(out, u.clone())
	}
	return out, nil
}

// ServiceSettings are a service's three singletons.
type ServiceSettings struct {
	Configuration ServiceConfiguration `json:"configuration"`
	Notifications ServiceNotifications `json:"notifications"`
	Webhooks      ServiceWebhooks      `json:"webhooks"`
}

// Settings returns a service's configuration, notification and webhook
// singletons.
func (s *Server) Settings(serviceSID string) (ServiceSettings, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return ServiceSettings{}, err
	}
	return ServiceSettings{Configuration: d.config, Notifications: d.notifications.clone(), Webhooks: d.webhooks.clone()}, nil
}

// sameSet reports whether a and b hold the same strings, each once.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := setOf(a...)
	if len(in) != len(a) {
		return false
	}
	for _, v := range b {
		if !in[v] {
			return false
		}
	}
	return len(setOf(b...)) == len(b)
}

// SetRolePermissionOrder reorders a role's permissions out of band (order
// must hold exactly the role's permissions), to prove a client treats them as
// a set: Twilio does not promise any order. Nothing else changes, not even
// date_updated.
func (s *Server) SetRolePermissionOrder(serviceSID, roleSID string, order []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return err
	}
	r := d.roles.get(roleSID)
	if r == nil {
		return fmt.Errorf("role %s: %w", roleSID, ErrNotFound)
	}
	if !sameSet(r.Permissions, order) {
		return fmt.Errorf("role %s: %v is not a reordering of its permissions %v", roleSID, order, r.Permissions)
	}
	r.Permissions = append([]string(nil), order...)
	return s.saveLocked()
}

// SetWebhookFilterOrder reorders a service webhook configuration's filters
// out of band (order must hold exactly its filters), like
// SetRolePermissionOrder.
func (s *Server) SetWebhookFilterOrder(serviceSID string, order []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return err
	}
	if !sameSet(d.webhooks.Filters, order) {
		return fmt.Errorf("service %s: %v is not a reordering of its webhook filters %v", d.svc.SID, order, d.webhooks.Filters)
	}
	d.webhooks.Filters = append([]string{}, order...)
	return s.saveLocked()
}

// conversationLocked finds a conversation of a service by SID or unique_name.
func (s *Server) conversationLocked(serviceSID, sidOrUniqueName string) (*serviceData, *Conversation, error) {
	d, err := s.serviceLocked(serviceSID)
	if err != nil {
		return nil, nil, err
	}
	c := d.lookup(sidOrUniqueName)
	if c == nil {
		return nil, nil, fmt.Errorf("conversation %s: %w", sidOrUniqueName, ErrNotFound)
	}
	return d, c, nil
}

// Participants returns the participants of a conversation (SID or
// unique_name) in list order.
func (s *Server) Participants(serviceSID, conversation string) ([]Participant, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, c, err := s.conversationLocked(serviceSID, conversation)
	if err != nil {
		return nil, err
	}
	out := []Participant{}
	if col := d.participants[c.SID]; col != nil {
		for _, p := range col.all() {
			out = append(out, p.clone())
		}
	}
	return out, nil
}

// ConversationWebhooks returns the scoped webhooks of a conversation (SID or
// unique_name) in list order.
func (s *Server) ConversationWebhooks(serviceSID, conversation string) ([]ConversationWebhook, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, c, err := s.conversationLocked(serviceSID, conversation)
	if err != nil {
		return nil, err
	}
	out := []ConversationWebhook{}
	if col := d.convWebhooks[c.SID]; col != nil {
		for _, w := range col.all() {
			out = append(out, w.clone())
		}
	}
	return out, nil
}
