package emulator

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ServiceConfiguration is a service's configuration singleton.
type ServiceConfiguration struct {
	DefaultConversationCreatorRoleSID string `json:"default_conversation_creator_role_sid"`
	DefaultConversationRoleSID        string `json:"default_conversation_role_sid"`
	DefaultChatServiceRoleSID         string `json:"default_chat_service_role_sid"`
	ReachabilityEnabled               bool   `json:"reachability_enabled"`
}

// references names the default-role field that points at roleSID, or "".
func (c *ServiceConfiguration) references(roleSID string) string {
	switch roleSID {
	case c.DefaultChatServiceRoleSID:
		return "default_chat_service_role_sid"
	case c.DefaultConversationRoleSID:
		return "default_conversation_role_sid"
	case c.DefaultConversationCreatorRoleSID:
		return "default_conversation_creator_role_sid"
	}
	return ""
}

// NotificationSettings is one push-notification block (added to or removed
// from a conversation). Template and Sound are nil until set.
type NotificationSettings struct {
	Enabled  bool    `json:"enabled"`
	Template *string `json:"template"`
	Sound    *string `json:"sound"`
}

// NewMessageNotification is the new_message block.
type NewMessageNotification struct {
	Enabled           bool    `json:"enabled"`
	Template          *string `json:"template"`
	Sound             *string `json:"sound"`
	BadgeCountEnabled bool    `json:"badge_count_enabled"`
	WithMedia         struct {
		Enabled  bool    `json:"enabled"`
		Template *string `json:"template"`
	} `json:"with_media"`
}

// ServiceNotifications is a service's push-notification singleton.
type ServiceNotifications struct {
	LogEnabled              bool                   `json:"log_enabled"`
	NewMessage              NewMessageNotification `json:"new_message"`
	AddedToConversation     NotificationSettings   `json:"added_to_conversation"`
	RemovedFromConversation NotificationSettings   `json:"removed_from_conversation"`
}

func (n *ServiceNotifications) clone() ServiceNotifications {
	out := *n
	out.NewMessage.Template = clonePtr(n.NewMessage.Template)
	out.NewMessage.Sound = clonePtr(n.NewMessage.Sound)
	out.NewMessage.WithMedia.Template = clonePtr(n.NewMessage.WithMedia.Template)
	for _, b := range []*NotificationSettings{&out.AddedToConversation, &out.RemovedFromConversation} {
		b.Template, b.Sound = clonePtr(b.Template), clonePtr(b.Sound)
	}
	return out
}

// ServiceWebhooks is a service's webhook-configuration singleton. Every field
// is nil until set, as Twilio answers null for an unconfigured service.
type ServiceWebhooks struct {
	PreWebhookURL  *string `json:"pre_webhook_url"`
	PostWebhookURL *string `json:"post_webhook_url"`
	// Filters keep the order written (SetWebhookFilterOrder shuffles them).
	Filters []string `json:"filters"`
	Method  *string  `json:"method"`
}

func (w *ServiceWebhooks) clone() ServiceWebhooks {
	out := *w
	out.PreWebhookURL, out.PostWebhookURL, out.Method = clonePtr(w.PreWebhookURL), clonePtr(w.PostWebhookURL), clonePtr(w.Method)
	if w.Filters != nil {
		out.Filters = append([]string{}, w.Filters...)
	}
	return out
}

// serviceWebhookFilters are the events a service's webhooks may subscribe to
// (../shared/twilio-kinds.md §3.3; no onUser* events at service level).
var serviceWebhookFilters = setOf(
	"onConversationAdd", "onConversationAdded", "onConversationRemove", "onConversationRemoved",
	"onConversationStateUpdated", "onConversationUpdate", "onConversationUpdated",
	"onDeliveryUpdated",
	"onMessageAdd", "onMessageAdded", "onMessageRemove", "onMessageRemoved", "onMessageUpdate", "onMessageUpdated",
	"onParticipantAdd", "onParticipantAdded", "onParticipantRemove", "onParticipantRemoved", "onParticipantUpdate", "onParticipantUpdated",
)

func configurationURL(r *http.Request, serviceSID string) string {
	return baseURL(r) + "/v1/Services/" + serviceSID + "/Configuration"
}

// --- configuration ----------------------------------------------------------

type serviceConfigurationJSON struct {
	ChatServiceSID                    string            `json:"chat_service_sid"`
	DefaultConversationCreatorRoleSID *string           `json:"default_conversation_creator_role_sid"`
	DefaultConversationRoleSID        *string           `json:"default_conversation_role_sid"`
	DefaultChatServiceRoleSID         *string           `json:"default_chat_service_role_sid"`
	URL                               string            `json:"url"`
	Links                             map[string]string `json:"links"`
	ReachabilityEnabled               bool              `json:"reachability_enabled"`
}

func nullIfEmpty(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

func renderConfiguration(u string, d *serviceData) serviceConfigurationJSON {
	c := d.config
	return serviceConfigurationJSON{
		ChatServiceSID:                    d.svc.SID,
		DefaultConversationCreatorRoleSID: nullIfEmpty(c.DefaultConversationCreatorRoleSID),
		DefaultConversationRoleSID:        nullIfEmpty(c.DefaultConversationRoleSID),
		DefaultChatServiceRoleSID:         nullIfEmpty(c.DefaultChatServiceRoleSID),
		URL:                               u,
		Links:                             map[string]string{"notifications": u + "/Notifications", "webhooks": u + "/Webhooks"},
		ReachabilityEnabled:               c.ReachabilityEnabled,
	}
}

func (s *Server) fetchConfiguration(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	return result{status: http.StatusOK, body: renderConfiguration(configurationURL(r, d.svc.SID), d)}
}

// parseBool reads a boolean form parameter as twilio-go sends it ("true",
// "false"; any case).
func parseBool(form url.Values, name string) (*bool, *apiError) {
	if !has(form, name) {
		return nil, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(form.Get(name)))
	if err != nil {
		return nil, errInvalidParam("%s %q must be true or false", name, form.Get(name))
	}
	return &b, nil
}

// updateConfiguration sets the default roles (each must name a role of this
// service of the right type: 400/50100 for the chat-service role, 400/50109
// for the conversation roles) and reachability. An empty value leaves a
// field as it is.
func (s *Server) updateConfiguration(r *http.Request, p routeParams) result {
	reach, perr := parseBool(r.PostForm, "ReachabilityEnabled")
	if perr != nil {
		return failed(perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	next := d.config
	for _, f := range []struct {
		param, typ string
		code       int
		into       *string
	}{
		{"DefaultChatServiceRoleSid", roleTypeService, CodeRoleNotFound, &next.DefaultChatServiceRoleSID},
		{"DefaultConversationRoleSid", roleTypeConversation, CodeConversationRoleNotFound, &next.DefaultConversationRoleSID},
		{"DefaultConversationCreatorRoleSid", roleTypeConversation, CodeConversationRoleNotFound, &next.DefaultConversationCreatorRoleSID},
	} {
		v := r.PostForm.Get(f.param)
		if v == "" {
			continue
		}
		if perr := d.checkRoleRef(f.param, v, f.typ, f.code); perr != nil {
			return failed(perr)
		}
		*f.into = v
	}
	if reach != nil {
		next.ReachabilityEnabled = *reach
	}
	d.config = next
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: renderConfiguration(configurationURL(r, d.svc.SID), d)}
}

// --- notifications ----------------------------------------------------------

type serviceNotificationsJSON struct {
	AccountSID              string                 `json:"account_sid"`
	ChatServiceSID          string                 `json:"chat_service_sid"`
	NewMessage              NewMessageNotification `json:"new_message"`
	AddedToConversation     NotificationSettings   `json:"added_to_conversation"`
	RemovedFromConversation NotificationSettings   `json:"removed_from_conversation"`
	LogEnabled              bool                   `json:"log_enabled"`
	URL                     string                 `json:"url"`
}

func (s *Server) renderNotifications(r *http.Request, d *serviceData) serviceNotificationsJSON {
	n := d.notifications.clone()
	return serviceNotificationsJSON{
		AccountSID:              s.accountSID,
		ChatServiceSID:          d.svc.SID,
		NewMessage:              n.NewMessage,
		AddedToConversation:     n.AddedToConversation,
		RemovedFromConversation: n.RemovedFromConversation,
		LogEnabled:              n.LogEnabled,
		URL:                     configurationURL(r, d.svc.SID) + "/Notifications",
	}
}

func (s *Server) fetchNotifications(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	return result{status: http.StatusOK, body: s.renderNotifications(r, d)}
}

// updateNotifications applies the dotted form keys twilio-go sends
// (NewMessage.Enabled, NewMessage.WithMedia.Template, ...). A template or
// sound is stored as sent, "" included (whether Twilio resets an empty one to
// its default is UNVERIFIED).
func (s *Server) updateNotifications(r *http.Request, p routeParams) result {
	form := r.PostForm
	var next ServiceNotifications
	apply := func() *apiError {
		bools := []struct {
			param string
			into  *bool
		}{
			{"LogEnabled", &next.LogEnabled},
			{"NewMessage.Enabled", &next.NewMessage.Enabled},
			{"NewMessage.BadgeCountEnabled", &next.NewMessage.BadgeCountEnabled},
			{"NewMessage.WithMedia.Enabled", &next.NewMessage.WithMedia.Enabled},
			{"AddedToConversation.Enabled", &next.AddedToConversation.Enabled},
			{"RemovedFromConversation.Enabled", &next.RemovedFromConversation.Enabled},
		}
		for _, b := range bools {
			v, perr := parseBool(form, b.param)
			if perr != nil {
				return perr
			}
			if v != nil {
				*b.into = *v
			}
		}
		strs := []struct {
			param string
			into  **string
		}{
			{"NewMessage.Template", &next.NewMessage.Template},
			{"NewMessage.Sound", &next.NewMessage.Sound},
			{"NewMessage.WithMedia.Template", &next.NewMessage.WithMedia.Template},
			{"AddedToConversation.Template", &next.AddedToConversation.Template},
			{"AddedToConversation.Sound", &next.AddedToConversation.Sound},
			{"RemovedFromConversation.Template", &next.RemovedFromConversation.Template},
			{"RemovedFromConversation.Sound", &next.RemovedFromConversation.Sound},
		}
		for _, f := range strs {
			if has(form, f.param) {
				v := form.Get(f.param)
				if len(v) > maxNotificationTextBytes {
					return errInvalidParam("%s must be at most %d bytes", f.param, maxNotificationTextBytes)
				}
				*f.into = &v
			}
		}
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	next = d.notifications.clone()
	if perr := apply(); perr != nil {
		return failed(perr)
	}
	d.notifications = next
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: s.renderNotifications(r, d)}
}

// maxNotificationTextBytes bounds templates and sounds (UNVERIFIED: Twilio
// documents no limit; this only keeps the data file sane).
const maxNotificationTextBytes = 16 * 1024

// --- webhooks ---------------------------------------------------------------

type serviceWebhooksJSON struct {
	AccountSID     string   `json:"account_sid"`
	ChatServiceSID string   `json:"chat_service_sid"`
	PreWebhookURL  *string  `json:"pre_webhook_url"`
	PostWebhookURL *string  `json:"post_webhook_url"`
	Filters        []string `json:"filters"`
	Method         *string  `json:"method"`
	URL            string   `json:"url"`
}

func (s *Server) renderWebhooks(r *http.Request, d *serviceData) serviceWebhooksJSON {
	w := d.webhooks.clone()
	return serviceWebhooksJSON{
		AccountSID:     s.accountSID,
		ChatServiceSID: d.svc.SID,
		PreWebhookURL:  w.PreWebhookURL,
		PostWebhookURL: w.PostWebhookURL,
		Filters:        w.Filters,
		Method:         w.Method,
		URL:            configurationURL(r, d.svc.SID) + "/Webhooks",
	}
}

func (s *Server) fetchWebhooks(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	return result{status: http.StatusOK, body: s.renderWebhooks(r, d)}
}

// isWebhookURL accepts absolute http and https URLs with a host.
func isWebhookURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// parseWebhooksChange validates an update into next. URLs must be absolute
// http(s) URLs; "" clears one (UNVERIFIED: how Twilio clears is
// undocumented). Method is GET or POST in any case, stored uppercase. Filters
// is the repeated Filters key: each a known event, repeats dropped, order
// kept; a lone empty Filters= clears them (UNVERIFIED).
func parseWebhooksChange(form url.Values, next *ServiceWebhooks) *apiError {
	for _, f := range []struct {
		param string
		into  **string
	}{{"PreWebhookUrl", &next.PreWebhookURL}, {"PostWebhookUrl", &next.PostWebhookURL}} {
		if !has(form, f.param) {
			continue
		}
		v := form.Get(f.param)
		switch {
		case v == "":
			*f.into = nil
		case isWebhookURL(v):
			*f.into = &v
		default:
			return errInvalidParam("%s %q must be an absolute http or https URL", f.param, v)
		}
	}
	if has(form, "Method") {
		m := strings.ToUpper(form.Get("Method"))
		if m != http.MethodGet && m != http.MethodPost {
			return errInvalidParam("Method %q must be GET or POST", form.Get("Method"))
		}
		next.Method = &m
	}
	if vals, ok := form["Filters"]; ok {
		if len(vals) == 1 && vals[0] == "" {
			next.Filters = nil
			return nil
		}
		seen := map[string]bool{}
		out := []string{}
		for _, v := range vals {
			if !serviceWebhookFilters[v] {
				return errInvalidParam("Filters value %q is not a service webhook event", v)
			}
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
		next.Filters = out
	}
	return nil
}

func (s *Server) updateWebhooks(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, perr := s.serviceOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	next := d.webhooks.clone()
	if perr := parseWebhooksChange(r.PostForm, &next); perr != nil {
		return failed(perr)
	}
	d.webhooks = next
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: s.renderWebhooks(r, d)}
}
