package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"
	"unicode/utf8"
)

// dateFormat is how Twilio writes dates: ISO 8601 in UTC, whole seconds.
const dateFormat = "2006-01-02T15:04:05Z"

func formatDate(t time.Time) string { return t.UTC().Format(dateFormat) }

// newSID returns prefix + 32 random lowercase hex digits, as Twilio issues them.
func newSID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("emulator: crypto/rand failed: " + err.Error())
	}
	return prefix + hex.EncodeToString(b[:])
}

// --- services ---------------------------------------------------------------

type serviceJSON struct {
	SID          string            `json:"sid"`
	AccountSID   string            `json:"account_sid"`
	FriendlyName string            `json:"friendly_name"`
	DateCreated  string            `json:"date_created"`
	DateUpdated  string            `json:"date_updated"`
	URL          string            `json:"url"`
	Links        map[string]string `json:"links"`
}

// serviceLinks are the link names of Twilio's service resource.
var serviceLinks = []struct{ key, path string }{
	{"conversations", "Conversations"},
	{"users", "Users"},
	{"roles", "Roles"},
	{"bindings", "Bindings"},
	{"configuration", "Configuration"},
	{"participant_conversations", "ParticipantConversations"},
	{"conversation_with_participants", "ConversationWithParticipants"},
}

func (s *Server) renderService(base string, svc *Service) serviceJSON {
	u := base + "/v1/Services/" + svc.SID
	links := make(map[string]string, len(serviceLinks))
	for _, l := range serviceLinks {
		links[l.key] = u + "/" + l.path
	}
	return serviceJSON{
		SID:          svc.SID,
		AccountSID:   s.accountSID,
		FriendlyName: svc.FriendlyName,
		DateCreated:  formatDate(svc.DateCreated),
		DateUpdated:  formatDate(svc.DateUpdated),
		URL:          u,
		Links:        links,
	}
}

func (s *Server) createService(r *http.Request, _ routeParams) result {
	if !has(r.PostForm, "FriendlyName") {
		return failed(errInvalidParam("Missing required parameter FriendlyName in the post body"))
	}
	name := r.PostForm.Get("FriendlyName")
	if utf8.RuneCountInString(name) > maxFriendlyNameChars {
		return failed(errInvalidParam("FriendlyName must be at most %d characters", maxFriendlyNameChars))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	d := s.addServiceLocked(Service{SID: s.unusedServiceSIDLocked(), FriendlyName: name, DateCreated: now, DateUpdated: now})
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusCreated, body: s.renderService(baseURL(r), &d.svc)}
}

func (s *Server) unusedServiceSIDLocked() string {
	for {
		sid := newSID("IS")
		if s.services.get(sid) == nil {
			return sid
		}
	}
}

// addServiceLocked stores svc with the next sequence number, and its
// default roles.
func (s *Server) addServiceLocked(svc Service) *serviceData {
	svc.Seq = s.nextSeq
	s.nextSeq++
	d := newServiceData(svc)
	s.addDefaultRolesLocked(d)
	s.services.insert(d)
	return d
}

func (s *Server) removeServiceLocked(d *serviceData) {
	s.services.remove(d)
}

func (s *Server) fetchService(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.services.get(p.sid)
	if d == nil {
		return failed(errNotFound("/Services/" + p.sid))
	}
	return result{status: http.StatusOK, body: s.renderService(baseURL(r), &d.svc)}
}

func (s *Server) deleteService(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.services.get(p.sid)
	if d == nil {
		return failed(errNotFound("/Services/" + p.sid))
	}
	if p.sid == s.defaultIS {
		// Unverified: Twilio does not document deleting the default service; the
		// /v1/Conversations routes depend on it, so the emulator refuses.
		return failed(errInvalidParam("The account's default conversation service cannot be deleted"))
	}
	s.removeServiceLocked(d)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusNoContent}
}

func (s *Server) listServices(r *http.Request, _ routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.services.list(s, r, "", baseURL(r)+"/v1/Services")
}

// --- conversations ----------------------------------------------------------

type conversationJSON struct {
	SID                 string            `json:"sid"`
	AccountSID          string            `json:"account_sid"`
	ChatServiceSID      string            `json:"chat_service_sid"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	FriendlyName        *string           `json:"friendly_name"`
	UniqueName          *string           `json:"unique_name"`
	Attributes          string            `json:"attributes"`
	DateCreated         string            `json:"date_created"`
	DateUpdated         string            `json:"date_updated"`
	State               string            `json:"state"`
	Timers              map[string]string `json:"timers"`
	Bindings            any               `json:"bindings"`
	URL                 string            `json:"url"`
	Links               map[string]string `json:"links"`
}

// conversationsURL is the list URL in the form the client used.
func conversationsURL(base string, p routeParams, serviceSID string) string {
	if p.viaDefault {
		return base + "/v1/Conversations"
	}
	return base + "/v1/Services/" + serviceSID + "/Conversations"
}

// renderConversation shows c as Twilio does at now (expired timers fired).
func (s *Server) renderConversation(listURL string, c *Conversation, now time.Time) conversationJSON {
	e := c.effective(now)
	u := listURL + "/" + e.SID
	timers := map[string]string{}
	if e.DateInactive != nil {
		timers["date_inactive"] = formatDate(*e.DateInactive)
	}
	if e.DateClosed != nil {
		timers["date_closed"] = formatDate(*e.DateClosed)
	}
	return conversationJSON{
		SID:                 e.SID,
		AccountSID:          s.accountSID,
		ChatServiceSID:      e.ServiceSID,
		MessagingServiceSID: e.MessagingServiceSID,
		FriendlyName:        e.FriendlyName,
		UniqueName:          e.UniqueName,
		Attributes:          e.Attributes,
		DateCreated:         formatDate(e.DateCreated),
		DateUpdated:         formatDate(e.DateUpdated),
		State:               e.State,
		Timers:              timers,
		URL:                 u,
		Links: map[string]string{
			"participants": u + "/Participants",
			"messages":     u + "/Messages",
			"webhooks":     u + "/Webhooks",
			"export":       u + "/Export",
		},
	}
}

// serviceFor resolves the service of a conversation route ("" = default).
func (s *Server) serviceFor(r *http.Request, p routeParams) (*serviceData, *apiError) {
	sid := p.serviceSID
	if p.viaDefault {
		sid = s.defaultIS
	}
	d := s.services.get(sid)
	if d == nil {
		return nil, errNotFound(r.URL.Path[len("/v1"):])
	}
	return d, nil
}

// takeAction spends one action from the bucket key of service d, or says how
// long to wait. Twilio counts creates and deletes per service and updates per
// conversation; reads are free.
func (s *Server) takeAction(d *serviceData, key string) *apiError {
	rate := s.Faults().ActionsPerSecondPerService
	if rate <= 0 {
		return nil
	}
	b, ok := d.limiters[key]
	if !ok {
		b = &tokenBucket{}
		d.limiters[key] = b
	}
	if ok, wait := b.take(s.now(), rate); !ok {
		e := errTooManyRequests("the rate limit of actions was exceeded")
		e.retryAfter = wait
		return e
	}
	return nil
}

func (s *Server) createConversation(r *http.Request, p routeParams) result {
	ch, perr := parseConversationChange(r.PostForm, true)
	if perr != nil {
		return failed(perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceFor(r, p)
	if perr != nil {
		return failed(perr)
	}
	if ch.uniqueName != nil {
		if d.conversations.byNaturalKey(*ch.uniqueName) != nil {
			return failed(errUniqueNameTaken(*ch.uniqueName))
		}
	}
	if perr := s.takeAction(d, ""); perr != nil {
		return failed(perr)
	}
	now := s.clock()
	c := &Conversation{
		SID:         s.unusedConversationSIDLocked(d),
		ServiceSID:  d.svc.SID,
		Attributes:  "{}",
		State:       stateActive,
		DateCreated: now,
		DateUpdated: now,
		Seq:         s.nextSeq,
	}
	s.nextSeq++
	mg := s.defaultMG
	c.MessagingServiceSID = &mg
	applyChange(c, ch, now)
	d.insert(c)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusCreated, body: s.renderConversation(conversationsURL(baseURL(r), p, d.svc.SID), c, s.now())}
}

func errUniqueNameTaken(name string) *apiError {
	return newError(http.StatusConflict, CodeUniqueNameTaken, "A Conversation with the unique name %s already exists", name)
}

func (s *Server) unusedConversationSIDLocked(d *serviceData) string {
	for {
		sid := newSID("CH")
		if d.conversations.get(sid) == nil {
			return sid
		}
	}
}

// applyChange writes a validated change into c. Timers count from now; a
// closed conversation has no timers left.
func applyChange(c *Conversation, ch conversationChange, now time.Time) {
	if ch.friendlyName != nil {
		c.FriendlyName = clonePtr(ch.friendlyName)
	}
	if ch.uniqueName != nil {
		c.UniqueName = clonePtr(ch.uniqueName)
	}
	if ch.attributes != nil {
		c.Attributes = *ch.attributes
	}
	if ch.messagingServiceSID != nil {
		c.MessagingServiceSID = clonePtr(ch.messagingServiceSID)
	}
	if ch.state != nil {
		c.State = *ch.state
	}
	if ch.timerInactive != nil {
		t := now.Add(*ch.timerInactive)
		c.DateInactive = &t
	}
	if ch.timerClosed != nil {
		t := now.Add(*ch.timerClosed)
		c.DateClosed = &t
	}
	if c.State == stateClosed {
		c.DateInactive, c.DateClosed = nil, nil
	}
	if c.State == stateInactive {
		c.DateInactive = nil
	}
	c.DateUpdated = now
	if ch.dateCreated != nil {
		c.DateCreated = *ch.dateCreated
	}
	if ch.dateUpdated != nil {
		c.DateUpdated = *ch.dateUpdated
	}
}

func (s *Server) fetchConversation(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, perr := s.serviceFor(r, p)
	if perr != nil {
		return failed(perr)
	}
	c := d.lookup(p.sid)
	if c == nil {
		return failed(errNotFound(r.URL.Path[len("/v1"):]))
	}
	return result{status: http.StatusOK, body: s.renderConversation(conversationsURL(baseURL(r), p, d.svc.SID), c, s.now())}
}

func (s *Server) updateConversation(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceFor(r, p)
	if perr != nil {
		return failed(perr)
	}
	c := d.lookup(p.sid)
	if c == nil {
		return failed(errNotFound(r.URL.Path[len("/v1"):]))
	}
	// Timers that fired since the last write become real state now.
	*c = c.effective(s.now())
	if c.State == stateClosed {
		return failed(newError(http.StatusBadRequest, CodeConversationClosed, "Conversation %s is closed and cannot be updated", c.SID))
	}
	ch, perr := parseConversationChange(r.PostForm, false)
	if perr != nil {
		return failed(perr)
	}
	if ch.uniqueName != nil {
		if other := d.conversations.byNaturalKey(*ch.uniqueName); other != nil && other != c {
			return failed(errUniqueNameTaken(*ch.uniqueName))
		}
	}
	if perr := s.takeAction(d, c.SID); perr != nil {
		return failed(perr)
	}
	oldUnique := conversationKind.naturalKey(c)
	applyChange(c, ch, s.clock())
	d.conversations.rekey(c, oldUnique)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: s.renderConversation(conversationsURL(baseURL(r), p, d.svc.SID), c, s.now())}
}

func (s *Server) deleteConversation(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceFor(r, p)
	if perr != nil {
		return failed(perr)
	}
	c := d.lookup(p.sid)
	if c == nil {
		return failed(errNotFound(r.URL.Path[len("/v1"):]))
	}
	if perr := s.takeAction(d, ""); perr != nil {
		return failed(perr)
	}
	d.remove(c)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusNoContent}
}

func (s *Server) listConversations(r *http.Request, p routeParams) result {
	q, perr := parseListQuery(r, conversationKind.rules)
	if perr != nil {
		return failed(perr)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, perr := s.serviceFor(r, p)
	if perr != nil {
		return failed(perr)
	}
	now := s.now()
	match := func(c *Conversation) bool {
		if q.startDate != nil && c.DateCreated.Before(*q.startDate) {
			return false
		}
		if q.endDate != nil && c.DateCreated.After(*q.endDate) {
			return false
		}
		if q.state != "" && c.effective(now).State != q.state {
			return false
		}
		return true
	}
	page, perr := paginate(s, q, listScope{key: "conversations", serviceSID: d.svc.SID}, d.conversations.all(),
		func(c *Conversation) uint64 { return c.Seq }, match)
	if perr != nil {
		return failed(perr)
	}
	base := baseURL(r)
	listURL := conversationsURL(base, p, d.svc.SID)
	items := make([]conversationJSON, 0, len(page.items))
	for _, c := range page.items {
		items = append(items, s.renderConversation(listURL, c, now))
	}
	return result{status: http.StatusOK, body: map[string]any{
		"conversations": items,
		"meta":          page.meta(listURL, q, "conversations"),
	}}
}
