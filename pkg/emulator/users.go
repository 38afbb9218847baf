package emulator

import (
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"
)

// User is a service's user as the emulator stores it.
type User struct {
	SID        string `json:"sid"`
	ServiceSID string `json:"service_sid"`
	// Identity is unique per service, case-sensitive, and never changes.
	Identity     string    `json:"identity"`
	FriendlyName *string   `json:"friendly_name,omitempty"`
	Attributes   string    `json:"attributes"`
	RoleSID      string    `json:"role_sid"`
	DateCreated  time.Time `json:"date_created"`
	DateUpdated  time.Time `json:"date_updated"`
	Seq          uint64    `json:"seq"`
}

func (u *User) clone() User {
	out := *u
	out.FriendlyName = clonePtr(u.FriendlyName)
	return out
}

const (
	maxUserPageSize  = 50
	maxIdentityChars = 256
)

type userJSON struct {
	SID            string            `json:"sid"`
	AccountSID     string            `json:"account_sid"`
	ChatServiceSID string            `json:"chat_service_sid"`
	RoleSID        *string           `json:"role_sid"`
	Identity       string            `json:"identity"`
	FriendlyName   *string           `json:"friendly_name"`
	Attributes     string            `json:"attributes"`
	IsOnline       *bool             `json:"is_online"`
	IsNotifiable   *bool             `json:"is_notifiable"`
	DateCreated    string            `json:"date_created"`
	DateUpdated    string            `json:"date_updated"`
	URL            string            `json:"url"`
	Links          map[string]string `json:"links"`
}

var userKind = &kind[User]{
	key:        "users",
	rules:      listRules{maxPageSize: maxUserPageSize, clamp: true},
	seq:        func(u *User) uint64 { return u.Seq },
	sid:        func(u *User) string { return u.SID },
	naturalKey: func(u *User) string { return u.Identity },
	// is_online and is_notifiable are null: the emulator has no SDK clients,
	// so no user has ever been online or registered for push (Twilio answers
	// null then, and always null in lists).
	render: func(s *Server, itemURL string, u *User) any {
		var role *string
		if u.RoleSID != "" {
			role = &u.RoleSID
		}
		return userJSON{
			SID:            u.SID,
			AccountSID:     s.accountSID,
			ChatServiceSID: u.ServiceSID,
			RoleSID:        role,
			Identity:       u.Identity,
			FriendlyName:   u.FriendlyName,
			Attributes:     u.Attributes,
			DateCreated:    formatDate(u.DateCreated),
			DateUpdated:    formatDate(u.DateUpdated),
			URL:            itemURL,
			Links:          map[string]string{"user_conversations": itemURL + "/Conversations"},
		}
	},
}

// userChange is a validated user create or update; nil = not sent (or sent
// empty on an update, which leaves the field as it is, as for conversations).
type userChange struct {
	identity     string
	friendlyName *string
	attributes   *string
	roleSID      *string
}

func parseUserChange(r *http.Request, create bool) (userChange, *apiError) {
	var ch userChange
	form := r.PostForm
	if create {
		ch.identity = form.Get("Identity")
		if ch.identity == "" {
			return ch, errInvalidParam("Missing required parameter Identity in the post body")
		}
		if utf8.RuneCountInString(ch.identity) > maxIdentityChars {
			return ch, errInvalidParam("Identity must be at most %d characters", maxIdentityChars)
		}
	}
	if v := form.Get("FriendlyName"); v != "" {
		if utf8.RuneCountInString(v) > maxFriendlyNameChars {
			return ch, errInvalidParam("FriendlyName must be at most %d characters", maxFriendlyNameChars)
		}
		ch.friendlyName = &v
	}
	if v := form.Get("Attributes"); v != "" {
		if len(v) > maxAttributesBytes {
			return ch, errInvalidParam("Attributes must be at most %d bytes, got %d", maxAttributesBytes, len(v))
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
			return ch, errInvalidParam("Attributes must be a JSON object")
		}
		ch.attributes = &v
	}
	if v := form.Get("RoleSid"); v != "" {
		ch.roleSID = &v
	}
	return ch, nil
}

// checkRoleRef reports whether sid names a role of d of type typ; code is
// the Twilio error code of a refusal (400).
func (d *serviceData) checkRoleRef(field, sid, typ string, code int) *apiError {
	role := d.roles.get(sid)
	if role == nil {
		return newError(http.StatusBadRequest, code, "%s %s is not a role of service %s", field, sid, d.svc.SID)
	}
	if role.Type != typ {
		return newError(http.StatusBadRequest, code, "%s %s is a %s role; it must be a %s role", field, sid, role.Type, typ)
	}
	return nil
}

func (s *Server) usersURL(r *http.Request, serviceSID string) string {
	return baseURL(r) + "/v1/Services/" + serviceSID + "/Users"
}

func errUserNotFound(r *http.Request) *apiError { return errNotFound(r.URL.Path[len("/v1"):]) }

func (s *Server) createUser(r *http.Request, p routeParams) result {
	ch, perr := parseUserChange(r, true)
	if perr != nil {
		return failed(perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	if d.users.byNaturalKey(ch.identity) != nil {
		return failed(newError(http.StatusConflict, CodeUserExists, "User already exists: %s", ch.identity))
	}
	role := d.config.DefaultChatServiceRoleSID
	if ch.roleSID != nil {
		if perr := d.checkRoleRef("RoleSid", *ch.roleSID, roleTypeService, CodeRoleNotFound); perr != nil {
			return failed(perr)
		}
		role = *ch.roleSID
	}
	if perr := s.takeAction(d, ""); perr != nil {
		return failed(perr)
	}
	now := s.clock()
	u := &User{
		SID:        s.unusedSIDLocked("US", func(sid string) bool { return d.users.get(sid) != nil }),
		ServiceSID: d.svc.SID, Identity: ch.identity, FriendlyName: ch.friendlyName, Attributes: "{}",
		RoleSID: role, DateCreated: now, DateUpdated: now, Seq: s.nextSeq,
	}
	s.nextSeq++
	if ch.attributes != nil {
		u.Attributes = *ch.attributes
	}
	d.users.insert(u)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusCreated, body: userKind.render(s, s.usersURL(r, d.svc.SID)+"/"+u.SID, u)}
}

func (s *Server) listUsers(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	return d.users.list(s, r, d.svc.SID, s.usersURL(r, d.svc.SID))
}

func (s *Server) fetchUser(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	u := d.users.lookup(p.sid)
	if u == nil {
		return failed(errUserNotFound(r))
	}
	return result{status: http.StatusOK, body: userKind.render(s, s.usersURL(r, d.svc.SID)+"/"+u.SID, u)}
}

// updateUser changes FriendlyName, Attributes and RoleSid; Identity is not a
// parameter of Twilio's update and is ignored.
func (s *Server) updateUser(r *http.Request, p routeParams) result {
	ch, perr := parseUserChange(r, false)
	if perr != nil {
		return failed(perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	u := d.users.lookup(p.sid)
	if u == nil {
		return failed(errUserNotFound(r))
	}
	if ch.roleSID != nil {
		if perr := d.checkRoleRef("RoleSid", *ch.roleSID, roleTypeService, CodeRoleNotFound); perr != nil {
			return failed(perr)
		}
	}
	if perr := s.takeAction(d, ""); perr != nil {
		return failed(perr)
	}
	if ch.friendlyName != nil {
		u.FriendlyName = ch.friendlyName
	}
	if ch.attributes != nil {
		u.Attributes = *ch.attributes
	}
	if ch.roleSID != nil {
		u.RoleSID = *ch.roleSID
	}
	u.DateUpdated = s.clock()
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: userKind.render(s, s.usersURL(r, d.svc.SID)+"/"+u.SID, u)}
}

func (s *Server) deleteUser(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	u := d.users.lookup(p.sid)
	if u == nil {
		return failed(errUserNotFound(r))
	}
	if perr := s.takeAction(d, ""); perr != nil {
		return failed(perr)
	}
	d.users.remove(u)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusNoContent}
}
