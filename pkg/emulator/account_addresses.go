package emulator

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convsync/convsync/pkg/resource"
)

// AddressConfiguration is /v1/Configuration/Addresses/{IG} (§3.10): what
// happens to an inbound message to one of the account's addresses. The
// address is its natural key: one configuration per address, and the {Sid}
// segment takes the address too.
type AddressConfiguration struct {
	SID            string       `json:"sid"`
	Type           string       `json:"type"` // lower case
	Address        string       `json:"address"`
	AddressCountry *string      `json:"address_country,omitempty"`
	FriendlyName   *string      `json:"friendly_name,omitempty"`
	AutoCreation   AutoCreation `json:"auto_creation"`
	DateCreated    time.Time    `json:"date_created"`
	DateUpdated    time.Time    `json:"date_updated"`
	Seq            uint64       `json:"seq"`
}

// AutoCreation is an address's auto_creation block. Only the keys of its
// type are kept: switching the type drops the others (Twilio's answers show
// only the keys of the type; whether it forgets the others is UNVERIFIED).
type AutoCreation struct {
	Enabled                bool     `json:"enabled"`
	Type                   string   `json:"type"` // default | webhook | studio
	ConversationServiceSID *string  `json:"conversation_service_sid,omitempty"`
	WebhookURL             *string  `json:"webhook_url,omitempty"`
	WebhookMethod          *string  `json:"webhook_method,omitempty"` // upper case, as Twilio answers
	WebhookFilters         []string `json:"webhook_filters,omitempty"`
	StudioFlowSID          *string  `json:"studio_flow_sid,omitempty"`
	StudioRetryCount       *int     `json:"studio_retry_count,omitempty"`
}

func (a *AddressConfiguration) clone() AddressConfiguration {
	out := *a
	out.AddressCountry, out.FriendlyName = clonePtr(a.AddressCountry), clonePtr(a.FriendlyName)
	ac := &out.AutoCreation
	ac.ConversationServiceSID, ac.WebhookURL, ac.WebhookMethod = clonePtr(ac.ConversationServiceSID), clonePtr(ac.WebhookURL), clonePtr(ac.WebhookMethod)
	ac.StudioFlowSID, ac.StudioRetryCount = clonePtr(ac.StudioFlowSID), clonePtr(ac.StudioRetryCount)
	ac.WebhookFilters = append([]string(nil), a.AutoCreation.WebhookFilters...)
	return out
}

// Error codes of address configurations.
const (
	// CodeAutoCreationType: an empty or unknown integration type (a Flex
	// validation code Twilio documents for misconfigured addresses).
	CodeAutoCreationType = 45762
	// CodeAutoCreationStudioFlow: type studio without a flow SID.
	CodeAutoCreationStudioFlow = 45763
	maxAddressPageSize         = 50
)

var addressTypes = setOf("sms", "whatsapp", "messenger", "gbm", "email", "rcs", "apple", "chat")

var autoCreationWebhookFilters = setOf(
	"onConversationRemoved", "onConversationStateUpdated", "onConversationUpdated", "onDeliveryUpdated",
	"onMessageAdded", "onMessageRemoved", "onMessageUpdated",
	"onParticipantAdded", "onParticipantRemoved", "onParticipantUpdated",
)

type addressConfigurationJSON struct {
	SID            string         `json:"sid"`
	AccountSID     string         `json:"account_sid"`
	Type           string         `json:"type"`
	Address        string         `json:"address"`
	FriendlyName   *string        `json:"friendly_name"`
	AutoCreation   map[string]any `json:"auto_creation"`
	DateCreated    string         `json:"date_created"`
	DateUpdated    string         `json:"date_updated"`
	URL            string         `json:"url"`
	AddressCountry *string        `json:"address_country"`
}

var addressKind = &kind[AddressConfiguration]{
	key:        "address_configurations",
	rules:      listRules{maxPageSize: maxAddressPageSize, clamp: true},
	seq:        func(a *AddressConfiguration) uint64 { return a.Seq },
	sid:        func(a *AddressConfiguration) string { return a.SID },
	naturalKey: func(a *AddressConfiguration) string { return a.Address },
	render: func(s *Server, itemURL string, a *AddressConfiguration) any {
		ac := a.AutoCreation
		auto := map[string]any{"enabled": ac.Enabled, "type": ac.Type}
		if ac.ConversationServiceSID != nil {
			auto["conversation_service_sid"] = *ac.ConversationServiceSID
		}
		switch ac.Type {
		case "webhook":
			auto["webhook_url"] = ac.WebhookURL
			auto["webhook_method"] = ac.WebhookMethod
			filters := append([]string{}, ac.WebhookFilters...)
			auto["webhook_filters"] = filters
		case "studio":
			auto["studio_flow_sid"] = ac.StudioFlowSID
			auto["studio_retry_count"] = ac.StudioRetryCount
		}
		return addressConfigurationJSON{
			SID: a.SID, AccountSID: s.accountSID, Type: a.Type, Address: a.Address,
			FriendlyName: clonePtr(a.FriendlyName), AutoCreation: auto,
			DateCreated: formatDate(a.DateCreated), DateUpdated: formatDate(a.DateUpdated),
			URL: itemURL, AddressCountry: clonePtr(a.AddressCountry),
		}
	},
}

func addressesURL(r *http.Request) string { return baseURL(r) + "/v1/Configuration/Addresses" }

// applyAutoCreation reads the AutoCreation.* parameters into ac. A type
// switch drops the keys of the old type. The service must exist.
func (s *Server) applyAutoCreation(form map[string][]string, ac *AutoCreation) *apiError {
	get := func(k string) (string, bool) {
		v, ok := form[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	if v, ok := get("AutoCreation.Enabled"); ok {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return errInvalidParam("AutoCreation.Enabled %q must be true or false", v)
		}
		ac.Enabled = b
	}
	if v, ok := get("AutoCreation.Type"); ok {
		t := strings.ToLower(v)
		if t != "default" && t != "webhook" && t != "studio" {
			return newError(http.StatusBadRequest, CodeAutoCreationType, "AutoCreation.Type %q must be default, webhook or studio", v)
		}
		if t != ac.Type {
			*ac = AutoCreation{Enabled: ac.Enabled, Type: t, ConversationServiceSID: ac.ConversationServiceSID}
		}
	}
	if ac.Type == "" {
		ac.Type = "default"
	}
	if v, ok := get("AutoCreation.ConversationServiceSid"); ok {
		if s.services.get(v) == nil {
			return errInvalidParam("AutoCreation.ConversationServiceSid %s is not a Conversation Service of this account", v)
		}
		ac.ConversationServiceSID = &v
	}
	webhookKeys := []string{"AutoCreation.WebhookUrl", "AutoCreation.WebhookMethod", "AutoCreation.WebhookFilters"}
	studioKeys := []string{"AutoCreation.StudioFlowSid", "AutoCreation.StudioRetryCount"}
	for _, keys := range []struct {
		typ  string
		keys []string
	}{{"webhook", webhookKeys}, {"studio", studioKeys}} {
		for _, k := range keys.keys {
			if _, ok := form[k]; ok && ac.Type != keys.typ {
				return errInvalidParam("%s is for an auto-creation of type %s; this one is of type %s", k, keys.typ, ac.Type)
			}
		}
	}
	if v, ok := get("AutoCreation.WebhookUrl"); ok {
		if perr := checkURL("AutoCreation.WebhookUrl", v); perr != nil {
			return perr
		}
		ac.WebhookURL = &v
	}
	if v, ok := get("AutoCreation.WebhookMethod"); ok {
		m := strings.ToUpper(v)
		if m != "GET" && m != "POST" {
			return errInvalidParam("AutoCreation.WebhookMethod %q must be get or post", v)
		}
		ac.WebhookMethod = &m
	}
	if vals, ok := form["AutoCreation.WebhookFilters"]; ok {
		filters, perr := parseFilters(vals, autoCreationWebhookFilters)
		if perr != nil {
			return perr
		}
		ac.WebhookFilters = filters
	}
	if v, ok := get("AutoCreation.StudioFlowSid"); ok {
		if !resource.IsSID(v, "FW") {
			return errInvalidParam("AutoCreation.StudioFlowSid %q is not a Studio Flow SID", v)
		}
		ac.StudioFlowSID = &v
	}
	if v, ok := get("AutoCreation.StudioRetryCount"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 3 {
			return errInvalidParam("AutoCreation.StudioRetryCount %q must be 0 to 3", v)
		}
		ac.StudioRetryCount = &n
	}
	if ac.Type == "studio" && ac.StudioFlowSID == nil {
		return newError(http.StatusBadRequest, CodeAutoCreationStudioFlow, "An auto-creation of type studio needs AutoCreation.StudioFlowSid")
	}
	if ac.Type == "webhook" && ac.WebhookMethod == nil {
		post := "POST"
		ac.WebhookMethod = &post
	}
	return nil
}

// createAddress configures an address: Type and Address required, one
// configuration per address (409; Twilio's code for it is UNVERIFIED, the
// emulator answers 20001).
func (s *Server) createAddress(r *http.Request, _ routeParams) result {
	form := r.PostForm
	typ := strings.ToLower(form.Get("Type"))
	if typ == "" {
		return failed(errInvalidParam("Missing required parameter Type in the post body"))
	}
	if !addressTypes[typ] {
		return failed(errInvalidParam("Type %q is not an address type", form.Get("Type")))
	}
	address := form.Get("Address")
	if address == "" {
		return failed(errInvalidParam("Missing required parameter Address in the post body"))
	}
	a := &AddressConfiguration{Type: typ, Address: address}
	if v := form.Get("FriendlyName"); v != "" {
		if utf8.RuneCountInString(v) > maxFriendlyNameChars {
			return failed(newError(http.StatusBadRequest, CodeFriendlyNameTooLong, "FriendlyName must be at most %d characters", maxFriendlyNameChars))
		}
		a.FriendlyName = &v
	}
	if v := form.Get("AddressCountry"); v != "" {
		a.AddressCountry = &v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.account.addresses.byNaturalKey(address) != nil {
		return failed(newError(http.StatusConflict, CodeInvalidParameter, "Address %s is already configured", address))
	}
	if perr := s.applyAutoCreation(form, &a.AutoCreation); perr != nil {
		return failed(perr)
	}
	now := s.clock()
	a.SID = s.unusedSIDLocked("IG", func(sid string) bool { return s.account.addresses.get(sid) != nil })
	a.DateCreated, a.DateUpdated, a.Seq = now, now, s.nextSeq
	s.nextSeq++
	s.account.addresses.insert(a)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusCreated, body: addressKind.render(s, addressesURL(r)+"/"+a.SID, a)}
}

func (s *Server) listAddresses(r *http.Request, _ routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.account.addresses.list(s, r, "", addressesURL(r))
}

func errAddressNotFound(r *http.Request) *apiError { return errNotFound(r.URL.Path[len("/v1"):]) }

func (s *Server) fetchAddress(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.account.addresses.lookup(p.sid)
	if a == nil {
		return failed(errAddressNotFound(r))
	}
	return result{status: http.StatusOK, body: addressKind.render(s, addressesURL(r)+"/"+a.SID, a)}
}

// updateAddress changes the friendly name and auto-creation; Type, Address
// and AddressCountry are not parameters of the update (ignored, as Twilio
// ignores parameters an operation does not know).
func (s *Server) updateAddress(r *http.Request, p routeParams) result {
	form := r.PostForm
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.account.addresses.lookup(p.sid)
	if a == nil {
		return failed(errAddressNotFound(r))
	}
	next := a.clone()
	if has(form, "FriendlyName") {
		v := form.Get("FriendlyName")
		if utf8.RuneCountInString(v) > maxFriendlyNameChars {
			return failed(newError(http.StatusBadRequest, CodeFriendlyNameTooLong, "FriendlyName must be at most %d characters", maxFriendlyNameChars))
		}
		next.FriendlyName = &v
	}
	if perr := s.applyAutoCreation(form, &next.AutoCreation); perr != nil {
		return failed(perr)
	}
	next.DateUpdated = s.clock()
	*a = next
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: addressKind.render(s, addressesURL(r)+"/"+a.SID, a)}
}

func (s *Server) deleteAddress(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.account.addresses.lookup(p.sid)
	if a == nil {
		return failed(errAddressNotFound(r))
	}
	s.account.addresses.remove(a)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusNoContent}
}
