package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Participant is a conversation's participant as the emulator stores it
// (../shared/twilio-kinds.md §3.6). A chat participant has an Identity; a
// messaging participant (SMS, WhatsApp, RCS) has a binding Address instead.
type Participant struct {
	SID             string `json:"sid"`
	ServiceSID      string `json:"service_sid"`
	ConversationSID string `json:"conversation_sid"`
	// Identity is "" for a messaging participant.
	Identity string `json:"identity,omitempty"`
	// Address and ProxyAddress are the messaging binding (Address "" for a
	// chat participant; ProxyAddress "" for a Group MMS participant).
	Address      string `json:"address,omitempty"`
	ProxyAddress string `json:"proxy_address,omitempty"`
	// ProjectedAddress is a chat participant's Group MMS number.
	ProjectedAddress     string    `json:"projected_address,omitempty"`
	Attributes           string    `json:"attributes"`
	RoleSID              string    `json:"role_sid,omitempty"`
	LastReadMessageIndex *int      `json:"last_read_message_index,omitempty"`
	LastReadTimestamp    *string   `json:"last_read_timestamp,omitempty"`
	DateCreated          time.Time `json:"date_created"`
	DateUpdated          time.Time `json:"date_updated"`
	Seq                  uint64    `json:"seq"`
}

func (p *Participant) clone() Participant {
	out := *p
	out.LastReadMessageIndex = clonePtr(p.LastReadMessageIndex)
	out.LastReadTimestamp = clonePtr(p.LastReadTimestamp)
	return out
}

// isChat reports whether p is a chat (SDK) participant.
func (p *Participant) isChat() bool { return p.Address == "" }

// bindingType is messaging_binding.type: the channel the address prefix
// names (whatsapp:, rcs:, messenger:), sms otherwise.
func bindingType(address string) string {
	if i := strings.IndexByte(address, ':'); i > 0 {
		return strings.ToLower(address[:i])
	}
	return "sms"
}

const (
	maxParticipantPageSize        = 100
	maxParticipantAttributes      = 4 * 1024
	maxAddressChars               = 256
	maxParticipantsPerConv        = 1000
	maxNonChatParticipantsPerConv = 50
)

// Participant error codes (../shared/twilio-kinds.md §3.6).
const (
	CodeInvalidProxyAddress       = 50408
	CodeAddressEqualsProxy        = 50409
	CodeProxyAddressMissing       = 50412
	CodeChannelTypeMismatch       = 50414
	CodeBindingInActiveConv       = 50416
	CodeIdentityInConversation    = 50433
	CodeBindingInConversation     = 50437
	CodeProxyAddressNotChangeable = 50441
)

type participantJSON struct {
	AccountSID           string            `json:"account_sid"`
	ChatServiceSID       string            `json:"chat_service_sid"`
	ConversationSID      string            `json:"conversation_sid"`
	SID                  string            `json:"sid"`
	Identity             *string           `json:"identity"`
	Attributes           string            `json:"attributes"`
	MessagingBinding     map[string]string `json:"messaging_binding"`
	RoleSID              *string           `json:"role_sid"`
	DateCreated          string            `json:"date_created"`
	DateUpdated          string            `json:"date_updated"`
	URL                  string            `json:"url"`
	LastReadMessageIndex *int              `json:"last_read_message_index"`
	LastReadTimestamp    *string           `json:"last_read_timestamp"`
}

var participantKind = &kind[Participant]{
	key:        "participants",
	rules:      listRules{maxPageSize: maxParticipantPageSize},
	seq:        func(p *Participant) uint64 { return p.Seq },
	sid:        func(p *Participant) string { return p.SID },
	naturalKey: func(p *Participant) string { return p.Identity },
	render: func(s *Server, itemURL string, p *Participant) any {
		out := participantJSON{
			AccountSID:           s.accountSID,
			ChatServiceSID:       p.ServiceSID,
			ConversationSID:      p.ConversationSID,
			SID:                  p.SID,
			Identity:             nullIfEmpty(p.Identity),
			Attributes:           p.Attributes,
			RoleSID:              nullIfEmpty(p.RoleSID),
			DateCreated:          formatDate(p.DateCreated),
			DateUpdated:          formatDate(p.DateUpdated),
			URL:                  itemURL,
			LastReadMessageIndex: clonePtr(p.LastReadMessageIndex),
			LastReadTimestamp:    clonePtr(p.LastReadTimestamp),
		}
		// The contract's examples: null for a plain chat participant;
		// {type, address, proxy_address} for SMS/WhatsApp; {type,
		// projected_address} for a chat participant in a Group MMS.
		switch {
		case p.Address != "":
			out.MessagingBinding = map[string]string{"type": bindingType(p.Address), "address": p.Address}
			if p.ProxyAddress != "" {
				out.MessagingBinding["proxy_address"] = p.ProxyAddress
			}
		case p.ProjectedAddress != "":
			out.MessagingBinding = map[string]string{"type": "sms", "projected_address": p.ProjectedAddress}
		}
		return out
	},
}

// bindingKey is the (address, proxy address) pair a messaging participant
// holds, "" for a chat participant.
func (p *Participant) bindingKey() string {
	if p.Address == "" {
		return ""
	}
	return p.Address + "\x00" + p.ProxyAddress
}

// participantChange is a validated participant create or update; nil = not
// sent. On an update an empty value leaves a field as it is.
type participantChange struct {
	identity, address, proxyAddress, projectedAddress *string
	attributes, roleSID                               *string
	lastReadIndex                                     *int
	lastReadTimestamp                                 *string
	dateCreated, dateUpdated                          *time.Time
}

func parseParticipantChange(r *http.Request, create bool) (participantChange, *apiError) {
	var ch participantChange
	form := r.PostForm
	nonEmpty := func(name string) *string {
		if v := form.Get(name); v != "" {
			return &v
		}
		return nil
	}
	ch.identity = nonEmpty("Identity")
	if ch.identity != nil && utf8.RuneCountInString(*ch.identity) > maxIdentityChars {
		return ch, errInvalidParam("Identity must be at most %d characters", maxIdentityChars)
	}
	if create {
		ch.address = nonEmpty("MessagingBinding.Address")
		if ch.address != nil && utf8.RuneCountInString(*ch.address) > maxAddressChars {
			return ch, errInvalidParam("MessagingBinding.Address must be at most %d characters", maxAddressChars)
		}
	}
	if has(form, "MessagingBinding.ProxyAddress") {
		v := form.Get("MessagingBinding.ProxyAddress")
		if v == "" && create {
			return ch, newError(http.StatusBadRequest, CodeProxyAddressMissing, "MessagingBinding.ProxyAddress must not be empty")
		}
		if utf8.RuneCountInString(v) > maxAddressChars {
			return ch, newError(http.StatusBadRequest, CodeInvalidProxyAddress, "MessagingBinding.ProxyAddress must be at most %d characters", maxAddressChars)
		}
		if v != "" {
			ch.proxyAddress = &v
		}
	}
	ch.projectedAddress = nonEmpty("MessagingBinding.ProjectedAddress")
	if create && ch.projectedAddress != nil && *ch.projectedAddress == "null" {
		ch.projectedAddress = nil // the literal null removes it; on a create there is nothing to remove
	}
	if ch.projectedAddress != nil && utf8.RuneCountInString(*ch.projectedAddress) > maxAddressChars {
		return ch, errInvalidParam("MessagingBinding.ProjectedAddress must be at most %d characters", maxAddressChars)
	}
	if v := nonEmpty("Attributes"); v != nil {
		if len(*v) > maxParticipantAttributes {
			return ch, errInvalidParam("Attributes must be at most %d bytes, got %d", maxParticipantAttributes, len(*v))
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(*v), &obj); err != nil || obj == nil {
			return ch, errInvalidParam("Attributes must be a JSON object")
		}
		ch.attributes = v
	}
	ch.roleSID = nonEmpty("RoleSid")
	for _, d := range []struct {
		param string
		into  **time.Time
	}{{"DateCreated", &ch.dateCreated}, {"DateUpdated", &ch.dateUpdated}} {
		if v := nonEmpty(d.param); v != nil {
			t, err := time.Parse(time.RFC3339, *v)
			if err != nil {
				return ch, errInvalidParam("%s %q must be an ISO 8601 date-time such as 2015-12-16T22:18:37Z", d.param, *v)
			}
			t = t.UTC().Truncate(time.Second)
			*d.into = &t
		}
	}
	if !create {
		if v := nonEmpty("LastReadMessageIndex"); v != nil {
			n, err := strconv.Atoi(*v)
			if err != nil || n < 0 {
				return ch, errInvalidParam("LastReadMessageIndex %q must be an integer of 0 or more", *v)
			}
			ch.lastReadIndex = &n
		}
		ch.lastReadTimestamp = nonEmpty("LastReadTimestamp")
		return ch, nil
	}
	// Create: a chat participant (Identity) or a messaging one (Address), never
	// both, never neither.
	switch {
	case ch.identity != nil && ch.address != nil:
		return ch, errInvalidParam("Identity and MessagingBinding.Address cannot both be given: a participant is either a chat participant or a messaging one")
	case ch.identity == nil && ch.address == nil:
		return ch, errInvalidParam("Either Identity or MessagingBinding.Address is required")
	case ch.address == nil && ch.proxyAddress != nil:
		return ch, errInvalidParam("MessagingBinding.ProxyAddress requires MessagingBinding.Address")
	case ch.address != nil && ch.projectedAddress != nil:
		return ch, errInvalidParam("MessagingBinding.ProjectedAddress is for chat participants (with Identity)")
	}
	if ch.address != nil && ch.proxyAddress != nil {
		if *ch.address == *ch.proxyAddress {
			return ch, newError(http.StatusBadRequest, CodeAddressEqualsProxy, "MessagingBinding.Address and MessagingBinding.ProxyAddress must differ")
		}
		if bindingType(*ch.address) != bindingType(*ch.proxyAddress) {
			return ch, newError(http.StatusBadRequest, CodeChannelTypeMismatch, "MessagingBinding.Address %q and MessagingBinding.ProxyAddress %q are on different channels", *ch.address, *ch.proxyAddress)
		}
	}
	return ch, nil
}

// participantsOf returns the participants of conversation c (created on first use).
func (d *serviceData) participantsOf(c *Conversation) *collection[Participant] {
	col := d.participants[c.SID]
	if col == nil {
		col = newCollection(participantKind)
		d.participants[c.SID] = col
	}
	return col
}

func participantsURL(r *http.Request, d *serviceData, c *Conversation) string {
	return baseURL(r) + "/v1/Services/" + d.svc.SID + "/Conversations/" + c.SID + "/Participants"
}

// conversationOf resolves the {ServiceSid} and {ConversationSid} of a route
// under a conversation.
func (s *Server) conversationOf(r *http.Request, p routeParams) (*serviceData, *Conversation, *apiError) {
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return nil, nil, perr
	}
	c := d.lookup(p.conversation)
	if c == nil {
		return nil, nil, errNotFound(r.URL.Path[len("/v1"):])
	}
	return d, c, nil
}

// errIfClosed refuses a participant change in a closed conversation, as any
// change of a closed conversation is refused (400/50377).
func (s *Server) errIfClosed(c *Conversation) *apiError {
	if c.effective(s.now()).State == stateClosed {
		return newError(http.StatusBadRequest, CodeConversationClosed, "Conversation %s is closed and cannot be changed", c.SID)
	}
	return nil
}

// bindingInActiveConversation finds another active (not closed) conversation
// of the account whose participants hold the binding key; a linear walk over
// every conversation that has participants.
func (s *Server) bindingInActiveConversation(key string, except *Conversation) *Conversation {
	now := s.now()
	for _, d := range s.services.all() {
		for convSID, col := range d.participants {
			if except != nil && convSID == except.SID && d.svc.SID == except.ServiceSID {
				continue
			}
			for _, p := range col.all() {
				if p.bindingKey() != key {
					continue
				}
				if c := d.conversations.get(convSID); c != nil && c.effective(now).State != stateClosed {
					return c
				}
			}
		}
	}
	return nil
}

// ensureUserLocked gives identity a User of d when it has none: Programmable
// Chat documented that adding a member with a new identity creates the user,
// and Conversations is UNVERIFIED (../shared/twilio-kinds.md §3.5, §5 q5);
// the emulator follows Chat, the only documented behaviour.
func (s *Server) ensureUserLocked(d *serviceData, identity string, now time.Time) {
	if d.users.byNaturalKey(identity) != nil {
		return
	}
	u := &User{
		SID:        s.unusedSIDLocked("US", func(sid string) bool { return d.users.get(sid) != nil }),
		ServiceSID: d.svc.SID, Identity: identity, Attributes: "{}",
		RoleSID: d.config.DefaultChatServiceRoleSID, DateCreated: now, DateUpdated: now, Seq: s.nextSeq,
	}
	s.nextSeq++
	d.users.insert(u)
}

func (s *Server) createParticipant(r *http.Request, p routeParams) result {
	ch, perr := parseParticipantChange(r, true)
	if perr != nil {
		return failed(perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, c, perr := s.conversationOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	if perr := s.errIfClosed(c); perr != nil {
		return failed(perr)
	}
	col := d.participantsOf(c)
	np := &Participant{ServiceSID: d.svc.SID, ConversationSID: c.SID, Attributes: "{}"}
	if ch.identity != nil {
		np.Identity = *ch.identity
		if col.byNaturalKey(np.Identity) != nil {
			return failed(newError(http.StatusConflict, CodeIdentityInConversation, "Participant with identity %s already exists in conversation %s", np.Identity, c.SID))
		}
		if ch.projectedAddress != nil {
			np.ProjectedAddress = *ch.projectedAddress
		}
	} else {
		np.Address = *ch.address
		if ch.proxyAddress != nil {
			np.ProxyAddress = *ch.proxyAddress
		}
		key := np.bindingKey()
		for _, other := range col.all() {
			if other.bindingKey() == key {
				return failed(newError(http.StatusConflict, CodeBindingInConversation, "A participant with address %s and proxy address %s already exists in conversation %s", np.Address, np.ProxyAddress, c.SID))
			}
		}
		if np.ProxyAddress != "" {
			if other := s.bindingInActiveConversation(key, c); other != nil {
				return failed(newError(http.StatusConflict, CodeBindingInActiveConv, "A binding for address %s and proxy address %s already exists in active conversation %s", np.Address, np.ProxyAddress, other.SID))
			}
		}
	}
	nonChat := 0
	for _, other := range col.all() {
		if !other.isChat() {
			nonChat++
		}
	}
	if col.len() >= maxParticipantsPerConv {
		return failed(errInvalidParam("Conversation %s already has the maximum of %d participants", c.SID, maxParticipantsPerConv))
	}
	if !np.isChat() && nonChat >= maxNonChatParticipantsPerConv {
		return failed(errInvalidParam("Conversation %s already has the maximum of %d non-chat participants", c.SID, maxNonChatParticipantsPerConv))
	}
	if ch.roleSID != nil {
		if perr := d.checkRoleRef("RoleSid", *ch.roleSID, roleTypeConversation, CodeConversationRoleNotFound); perr != nil {
			return failed(perr)
		}
		np.RoleSID = *ch.roleSID
	} else if np.isChat() {
		np.RoleSID = d.config.DefaultConversationRoleSID
	}
	if perr := s.takeAction(d, c.SID); perr != nil {
		return failed(perr)
	}
	now := s.clock()
	np.SID = s.unusedSIDLocked("MB", func(sid string) bool { return col.get(sid) != nil })
	np.DateCreated, np.DateUpdated = now, now
	if ch.attributes != nil {
		np.Attributes = *ch.attributes
	}
	if ch.dateCreated != nil {
		np.DateCreated = *ch.dateCreated
	}
	if ch.dateUpdated != nil {
		np.DateUpdated = *ch.dateUpdated
	}
	if np.isChat() {
		s.ensureUserLocked(d, np.Identity, now)
	}
	np.Seq = s.nextSeq
	s.nextSeq++
	col.insert(np)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusCreated, body: participantKind.render(s, participantsURL(r, d, c)+"/"+np.SID, np)}
}

func (s *Server) listParticipants(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, c, perr := s.conversationOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	col := d.participants[c.SID]
	if col == nil {
		col = newCollection(participantKind)
	}
	return col.list(s, r, d.svc.SID+"/"+c.SID, participantsURL(r, d, c))
}

// participantOf resolves {Sid} (SID or identity) of a participant route.
func (s *Server) participantOf(r *http.Request, p routeParams) (*serviceData, *Conversation, *Participant, *apiError) {
	d, c, perr := s.conversationOf(r, p)
	if perr != nil {
		return nil, nil, nil, perr
	}
	col := d.participants[c.SID]
	if col == nil {
		return nil, nil, nil, errNotFound(r.URL.Path[len("/v1"):])
	}
	mb := col.lookup(p.sid)
	if mb == nil {
		return nil, nil, nil, errNotFound(r.URL.Path[len("/v1"):])
	}
	return d, c, mb, nil
}

func (s *Server) fetchParticipant(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, c, mb, perr := s.participantOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	return result{status: http.StatusOK, body: participantKind.render(s, participantsURL(r, d, c)+"/"+mb.SID, mb)}
}

// updateParticipant changes Attributes, RoleSid, the dates, the read horizon,
// a chat participant's Identity and ProjectedAddress. The binding Address is
// not an update parameter (ignored: immutable); a different ProxyAddress is
// refused with 50441, as users report Twilio does.
func (s *Server) updateParticipant(r *http.Request, p routeParams) result {
	ch, perr := parseParticipantChange(r, false)
	if perr != nil {
		return failed(perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, c, mb, perr := s.participantOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	if perr := s.errIfClosed(c); perr != nil {
		return failed(perr)
	}
	col := d.participants[c.SID]
	if ch.identity != nil && *ch.identity != mb.Identity {
		if !mb.isChat() {
			return failed(errInvalidParam("Participant %s is a messaging participant and cannot get an Identity", mb.SID))
		}
		if col.byNaturalKey(*ch.identity) != nil {
			return failed(newError(http.StatusConflict, CodeIdentityInConversation, "Participant with identity %s already exists in conversation %s", *ch.identity, c.SID))
		}
	}
	if ch.proxyAddress != nil && *ch.proxyAddress != mb.ProxyAddress {
		return failed(newError(http.StatusBadRequest, CodeProxyAddressNotChangeable, "Failed to add a proxy address to a participant"))
	}
	if ch.projectedAddress != nil && !mb.isChat() {
		return failed(errInvalidParam("MessagingBinding.ProjectedAddress is for chat participants (with Identity)"))
	}
	if ch.roleSID != nil {
		if perr := d.checkRoleRef("RoleSid", *ch.roleSID, roleTypeConversation, CodeConversationRoleNotFound); perr != nil {
			return failed(perr)
		}
	}
	if perr := s.takeAction(d, c.SID); perr != nil {
		return failed(perr)
	}
	now := s.clock()
	if ch.identity != nil && *ch.identity != mb.Identity {
		old := mb.Identity
		mb.Identity = *ch.identity
		col.rekey(mb, old)
		s.ensureUserLocked(d, mb.Identity, now)
	}
	if ch.projectedAddress != nil {
		if *ch.projectedAddress == "null" {
			mb.ProjectedAddress = ""
		} else {
			mb.ProjectedAddress = *ch.projectedAddress
		}
	}
	if ch.attributes != nil {
		mb.Attributes = *ch.attributes
	}
	if ch.roleSID != nil {
		mb.RoleSID = *ch.roleSID
	}
	if ch.lastReadIndex != nil {
		mb.LastReadMessageIndex = ch.lastReadIndex
	}
	if ch.lastReadTimestamp != nil {
		mb.LastReadTimestamp = ch.lastReadTimestamp
	}
	mb.DateUpdated = now
	if ch.dateCreated != nil {
		mb.DateCreated = *ch.dateCreated
	}
	if ch.dateUpdated != nil {
		mb.DateUpdated = *ch.dateUpdated
	}
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: participantKind.render(s, participantsURL(r, d, c)+"/"+mb.SID, mb)}
}

func (s *Server) deleteParticipant(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, c, mb, perr := s.participantOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	if perr := s.errIfClosed(c); perr != nil {
		return failed(perr)
	}
	if perr := s.takeAction(d, c.SID); perr != nil {
		return failed(perr)
	}
	col := d.participants[c.SID]
	col.remove(mb)
	if col.len() == 0 {
		delete(d.participants, c.SID)
	}
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusNoContent}
}
