package emulator

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Role is a service's role as the emulator stores it.
type Role struct {
	SID          string `json:"sid"`
	ServiceSID   string `json:"service_sid"`
	FriendlyName string `json:"friendly_name"`
	// Type is "conversation" or "service" (stored lowercase).
	Type string `json:"type"`
	// Permissions are kept in the order they were written: the answers show
	// them so, and the out-of-band SetRolePermissionOrder shuffles them to prove
	// a client treats them as a set.
	Permissions []string  `json:"permissions"`
	DateCreated time.Time `json:"date_created"`
	DateUpdated time.Time `json:"date_updated"`
	Seq         uint64    `json:"seq"`
}

func (r *Role) clone() Role {
	out := *r
	out.Permissions = append([]string(nil), r.Permissions...)
	return out
}

const (
	roleTypeConversation = "conversation"
	roleTypeService      = "service"
	maxRolePageSize      = 50
)

// rolePermissions are the permission values Twilio documents for roles
// (../shared/twilio-kinds.md §3.4). Which apply to which role type is
// UNVERIFIED, so both types accept all of them.
var rolePermissions = setOf(
	"addNonChatParticipant", "addParticipant", "createConversation", "deleteAnyMessage",
	"deleteConversation", "deleteOwnMessage", "editAnyMessage", "editAnyMessageAttributes",
	"editAnyParticipantAttributes", "editAnyUserInfo", "editConversationAttributes",
	"editConversationName", "editNotificationLevel", "editOwnMessage", "editOwnMessageAttributes",
	"editOwnParticipantAttributes", "editOwnUserInfo", "joinConversation", "leaveConversation",
	"removeParticipant", "sendMediaMessage", "sendMessage",
)

func setOf(values ...string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

type roleJSON struct {
	SID            string   `json:"sid"`
	AccountSID     string   `json:"account_sid"`
	ChatServiceSID string   `json:"chat_service_sid"`
	FriendlyName   string   `json:"friendly_name"`
	Type           string   `json:"type"`
	Permissions    []string `json:"permissions"`
	DateCreated    string   `json:"date_created"`
	DateUpdated    string   `json:"date_updated"`
	URL            string   `json:"url"`
}

var roleKind = &kind[Role]{
	key:   "roles",
	rules: listRules{maxPageSize: maxRolePageSize, clamp: true},
	seq:   func(r *Role) uint64 { return r.Seq },
	sid:   func(r *Role) string { return r.SID },
	render: func(s *Server, itemURL string, r *Role) any {
		return roleJSON{
			SID:            r.SID,
			AccountSID:     s.accountSID,
			ChatServiceSID: r.ServiceSID,
			FriendlyName:   r.FriendlyName,
			Type:           r.Type,
			Permissions:    append([]string{}, r.Permissions...),
			DateCreated:    formatDate(r.DateCreated),
			DateUpdated:    formatDate(r.DateUpdated),
			URL:            itemURL,
		}
	},
}

// defaultRoles are the roles a new service gets, as Twilio creates some with
// every service (RJ's docs tell users to point the configuration back at "one
// of the roles that were created when the service was created"). Their names
// and permissions are UNVERIFIED: these follow Programmable Chat's defaults
// (service admin/user, channel admin/user). The configuration points at
// "service user" (chat service role), "channel user" (conversation role) and
// "channel admin" (conversation creator role).
var defaultRoles = []struct {
	name, typ string
	perms     []string
}{
	{"service admin", roleTypeService, []string{"createConversation", "joinConversation", "editOwnUserInfo", "editAnyUserInfo"}},
	{"service user", roleTypeService, []string{"createConversation", "joinConversation", "editOwnUserInfo"}},
	{"channel admin", roleTypeConversation, []string{"sendMessage", "sendMediaMessage", "leaveConversation",
		"editConversationName", "editConversationAttributes", "addParticipant", "addNonChatParticipant",
		"removeParticipant", "editAnyMessage", "editAnyMessageAttributes", "deleteAnyMessage",
		"editAnyParticipantAttributes", "editNotificationLevel", "deleteConversation"}},
	{"channel user", roleTypeConversation, []string{"sendMessage", "sendMediaMessage", "leaveConversation",
		"editOwnMessage", "editOwnMessageAttributes", "deleteOwnMessage", "editOwnParticipantAttributes",
		"editNotificationLevel"}},
}

// addDefaultRolesLocked gives d the default roles and points its
// configuration at them. Their SIDs derive from the service SID, so the
// default service's roles keep their SIDs across restarts without a data file.
func (s *Server) addDefaultRolesLocked(d *serviceData) {
	now := d.svc.DateCreated
	sids := map[string]string{}
	for _, dr := range defaultRoles {
		r := &Role{
			SID:          derivedSID("RL", d.svc.SID, "default-role:"+dr.name),
			ServiceSID:   d.svc.SID,
			FriendlyName: dr.name,
			Type:         dr.typ,
			Permissions:  append([]string(nil), dr.perms...),
			DateCreated:  now,
			DateUpdated:  now,
			Seq:          s.nextSeq,
		}
		s.nextSeq++
		d.roles.insert(r)
		sids[dr.name] = r.SID
	}
	d.config = ServiceConfiguration{
		DefaultChatServiceRoleSID:         sids["service user"],
		DefaultConversationRoleSID:        sids["channel user"],
		DefaultConversationCreatorRoleSID: sids["channel admin"],
	}
}

// parsePermissions reads the repeated Permission parameter: at least one,
// each a known permission. Repeats are dropped (a role's permissions are a
// set); the order sent is kept.
func parsePermissions(r *http.Request) ([]string, *apiError) {
	vals, ok := r.PostForm["Permission"]
	if !ok || len(vals) == 0 {
		return nil, errInvalidParam("Missing required parameter Permission in the post body")
	}
	seen := map[string]bool{}
	var out []string
	for _, v := range vals {
		if !rolePermissions[v] {
			return nil, newError(http.StatusBadRequest, CodePermissionNotFound, "Permission not found: %q", v)
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}

func (s *Server) rolesURL(r *http.Request, serviceSID string) string {
	return baseURL(r) + "/v1/Services/" + serviceSID + "/Roles"
}

// serviceOf resolves the {ServiceSid} of a service-scoped route.
func (s *Server) serviceOf(r *http.Request, p routeParams) (*serviceData, *apiError) {
	d := s.services.get(p.serviceSID)
	if d == nil {
		return nil, errNotFound(r.URL.Path[len("/v1"):])
	}
	return d, nil
}

func errRoleNotFound(sid string) *apiError {
	return newError(http.StatusNotFound, CodeRoleNotFound, "Role not found: %s", sid)
}

func (s *Server) createRole(r *http.Request, p routeParams) result {
	name := r.PostForm.Get("FriendlyName")
	if name == "" {
		return failed(newError(http.StatusBadRequest, CodeFriendlyNameMissing, "Missing required parameter FriendlyName in the post body"))
	}
	if utf8.RuneCountInString(name) > maxFriendlyNameChars {
		return failed(newError(http.StatusBadRequest, CodeFriendlyNameTooLong, "FriendlyName must be at most %d characters", maxFriendlyNameChars))
	}
	typ := strings.ToLower(r.PostForm.Get("Type"))
	if typ != roleTypeConversation && typ != roleTypeService {
		return failed(newError(http.StatusBadRequest, CodeInvalidRoleType, "Invalid role type %q: must be conversation or service", r.PostForm.Get("Type")))
	}
	perms, perr := parsePermissions(r)
	if perr != nil {
		return failed(perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	if perr := s.takeAction(d, ""); perr != nil {
		return failed(perr)
	}
	now := s.clock()
	role := &Role{
		SID:        s.unusedSIDLocked("RL", func(sid string) bool { return d.roles.get(sid) != nil }),
		ServiceSID: d.svc.SID, FriendlyName: name, Type: typ, Permissions: perms,
		DateCreated: now, DateUpdated: now, Seq: s.nextSeq,
	}
	s.nextSeq++
	d.roles.insert(role)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusCreated, body: roleKind.render(s, s.rolesURL(r, d.svc.SID)+"/"+role.SID, role)}
}

// unusedSIDLocked draws SIDs until taken says no.
func (s *Server) unusedSIDLocked(prefix string, taken func(string) bool) string {
	for {
		if sid := newSID(prefix); !taken(sid) {
			return sid
		}
	}
}

func (s *Server) listRoles(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	return d.roles.list(s, r, d.svc.SID, s.rolesURL(r, d.svc.SID))
}

func (s *Server) fetchRole(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	role := d.roles.get(p.sid)
	if role == nil {
		return failed(errRoleNotFound(p.sid))
	}
	return result{status: http.StatusOK, body: roleKind.render(s, s.rolesURL(r, d.svc.SID)+"/"+role.SID, role)}
}

// updateRole replaces the role's permissions. Twilio's update takes only
// Permission: FriendlyName and Type sent with it are ignored, like any
// parameter the operation does not know.
func (s *Server) updateRole(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	role := d.roles.get(p.sid)
	if role == nil {
		return failed(errRoleNotFound(p.sid))
	}
	perms, perr := parsePermissions(r)
	if perr != nil {
		return failed(perr)
	}
	if perr := s.takeAction(d, ""); perr != nil {
		return failed(perr)
	}
	role.Permissions = perms
	role.DateUpdated = s.clock()
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: roleKind.render(s, s.rolesURL(r, d.svc.SID)+"/"+role.SID, role)}
}

// deleteRole removes a role. A role the service configuration points at
// cannot be deleted (UNVERIFIED: Twilio does not document deleting a role in
// use; refusing makes a client that deletes before re-pointing fail loudly).
// Users keep a deleted role's SID.
func (s *Server) deleteRole(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	role := d.roles.get(p.sid)
	if role == nil {
		return failed(errRoleNotFound(p.sid))
	}
	if field := d.config.references(role.SID); field != "" {
		return failed(errInvalidParam("Role %s is the service's %s and cannot be deleted; point the service configuration at another role first", role.SID, field))
	}
	if perr := s.takeAction(d, ""); perr != nil {
		return failed(perr)
	}
	d.roles.remove(role)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusNoContent}
}
