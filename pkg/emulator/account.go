package emulator

import (
	"net/http"
	"strings"

	"github.com/convsync/convsync/pkg/resource"
)

// The account's own settings (../shared/twilio-kinds.md §3.8, §3.9): the
// configuration singleton (/v1/Configuration) and the account's webhook
// singleton (/v1/Configuration/Webhooks). Address configurations and push
// credentials, the account's collections, are in account_addresses.go and
// account_credentials.go.

// AccountConfiguration is /v1/Configuration. Timers are "" until set.
type AccountConfiguration struct {
	DefaultChatServiceSID      string `json:"default_chat_service_sid"`
	DefaultMessagingServiceSID string `json:"default_messaging_service_sid"`
	DefaultInactiveTimer       string `json:"default_inactive_timer,omitempty"`
	DefaultClosedTimer         string `json:"default_closed_timer,omitempty"`
}

// AccountWebhooks is /v1/Configuration/Webhooks. An account starts with
// target webhook and method POST (what Twilio shows for an account never
// configured is UNVERIFIED; the contract makes both enums, so they are
// never null here) and no URLs or filters.
type AccountWebhooks struct {
	Target         string   `json:"target"`
	Method         string   `json:"method"`
	PreWebhookURL  *string  `json:"pre_webhook_url"`
	PostWebhookURL *string  `json:"post_webhook_url"`
	Filters        []string `json:"filters"`
}

// accountData is everything of the account that is not in a service.
type accountData struct {
	config      AccountConfiguration
	webhooks    AccountWebhooks
	addresses   *collection[AddressConfiguration]
	credentials *collection[Credential]
}

func newAccountData(defaultService, defaultMessagingService string) *accountData {
	return &accountData{
		config:      AccountConfiguration{DefaultChatServiceSID: defaultService, DefaultMessagingServiceSID: defaultMessagingService},
		webhooks:    AccountWebhooks{Target: "webhook", Method: "POST"},
		addresses:   newCollection(addressKind),
		credentials: newCollection(credentialKind),
	}
}

// accountWebhookFilters are the events the account's webhooks take: the
// service's and three user events (§3.9).
var accountWebhookFilters = func() map[string]bool {
	m := setOf("onUserAdded", "onUserUpdate", "onUserUpdated")
	for f := range serviceWebhookFilters {
		m[f] = true
	}
	return m
}()

// --- /v1/Configuration --------------------------------------------------------

type accountConfigurationJSON struct {
	AccountSID                 string            `json:"account_sid"`
	DefaultChatServiceSID      *string           `json:"default_chat_service_sid"`
	DefaultMessagingServiceSID *string           `json:"default_messaging_service_sid"`
	DefaultInactiveTimer       *string           `json:"default_inactive_timer"`
	DefaultClosedTimer         *string           `json:"default_closed_timer"`
	URL                        string            `json:"url"`
	Links                      map[string]string `json:"links"`
}

func (s *Server) renderAccountConfiguration(r *http.Request) accountConfigurationJSON {
	c := s.account.config
	u := baseURL(r) + "/v1/Configuration"
	return accountConfigurationJSON{
		AccountSID:                 s.accountSID,
		DefaultChatServiceSID:      nullIfEmpty(c.DefaultChatServiceSID),
		DefaultMessagingServiceSID: nullIfEmpty(c.DefaultMessagingServiceSID),
		DefaultInactiveTimer:       nullIfEmpty(c.DefaultInactiveTimer),
		DefaultClosedTimer:         nullIfEmpty(c.DefaultClosedTimer),
		URL:                        u,
		Links:                      map[string]string{"service": baseURL(r) + "/v1/Services/" + c.DefaultChatServiceSID, "webhooks": u + "/Webhooks"},
	}
}

func (s *Server) fetchAccountConfiguration(r *http.Request, _ routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return result{status: http.StatusOK, body: s.renderAccountConfiguration(r)}
}

// checkTimer reads an ISO 8601 timer parameter with its minimum, as a
// conversation's timers are checked (50379/50380 malformed, 50375/50376
// too short).
func checkTimer(name, v string, inactive bool) *apiError {
	d, err := resource.ParseISODuration(v)
	formatCode, lowCode, minimum := CodeTimerClosedFormat, CodeTimerClosedTooLow, resource.MinClosedTimer
	if inactive {
		formatCode, lowCode, minimum = CodeTimerInactiveFormat, CodeTimerInactiveTooLow, resource.MinInactiveTimer
	}
	if err != nil {
		return newError(http.StatusBadRequest, formatCode, "%s %q is not an ISO 8601 duration", name, v)
	}
	if d < minimum {
		return newError(http.StatusBadRequest, lowCode, "%s %s is shorter than the minimum of %s", name, v, minimum)
	}
	return nil
}

// updateAccountConfiguration sets the account's defaults. The default
// service must be a service of the account (a client that points at a
// service before creating it fails loudly); a messaging service is any MG
// SID (the emulator has no messaging services). What Twilio does when the
// default service is deleted is UNVERIFIED: the emulator keeps its SID.
func (s *Server) updateAccountConfiguration(r *http.Request, _ routeParams) result {
	form := r.PostForm
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.account.config
	if v := form.Get("DefaultChatServiceSid"); v != "" {
		if s.services.get(v) == nil {
			return failed(newError(http.StatusBadRequest, CodeInvalidParameter, "DefaultChatServiceSid %s is not a Conversation Service of this account", v))
		}
		next.DefaultChatServiceSID = v
	}
	if v := form.Get("DefaultMessagingServiceSid"); v != "" {
		if !resource.IsSID(v, "MG") {
			return failed(errInvalidParam("DefaultMessagingServiceSid %q is not a Messaging Service SID", v))
		}
		next.DefaultMessagingServiceSID = v
	}
	if v := form.Get("DefaultInactiveTimer"); v != "" {
		if perr := checkTimer("DefaultInactiveTimer", v, true); perr != nil {
			return failed(perr)
		}
		next.DefaultInactiveTimer = v
	}
	if v := form.Get("DefaultClosedTimer"); v != "" {
		if perr := checkTimer("DefaultClosedTimer", v, false); perr != nil {
			return failed(perr)
		}
		next.DefaultClosedTimer = v
	}
	s.account.config = next
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: s.renderAccountConfiguration(r)}
}

// --- /v1/Configuration/Webhooks -----------------------------------------------

type accountWebhooksJSON struct {
	AccountSID     string   `json:"account_sid"`
	Method         string   `json:"method"`
	Filters        []string `json:"filters"`
	PreWebhookURL  *string  `json:"pre_webhook_url"`
	PostWebhookURL *string  `json:"post_webhook_url"`
	Target         string   `json:"target"`
	URL            string   `json:"url"`
}

func (s *Server) renderAccountWebhooks(r *http.Request) accountWebhooksJSON {
	w := s.account.webhooks
	out := accountWebhooksJSON{
		AccountSID: s.accountSID, Method: w.Method, Target: w.Target,
		PreWebhookURL: clonePtr(w.PreWebhookURL), PostWebhookURL: clonePtr(w.PostWebhookURL),
		URL: baseURL(r) + "/v1/Configuration/Webhooks",
	}
	if len(w.Filters) > 0 {
		out.Filters = append([]string{}, w.Filters...)
	}
	return out
}

func (s *Server) fetchAccountWebhooks(r *http.Request, _ routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return result{status: http.StatusOK, body: s.renderAccountWebhooks(r)}
}

// updateAccountWebhooks sets what is sent: Target webhook or flex and
// Method GET or POST (any case, stored as Twilio shows them), absolute URLs,
// filters from the account's list (a lone empty Filters clears them, as
// for a service's webhooks).
func (s *Server) updateAccountWebhooks(r *http.Request, _ routeParams) result {
	form := r.PostForm
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.account.webhooks
	if has(form, "Target") {
		t := strings.ToLower(form.Get("Target"))
		if t != "webhook" && t != "flex" {
			return failed(errInvalidParam("Target %q must be webhook or flex", form.Get("Target")))
		}
		next.Target = t
	}
	if has(form, "Method") {
		m := strings.ToUpper(form.Get("Method"))
		if m != "GET" && m != "POST" {
			return failed(errInvalidParam("Method %q must be GET or POST", form.Get("Method")))
		}
		next.Method = m
	}
	for _, u := range []struct {
		param string
		into  **string
	}{{"PreWebhookUrl", &next.PreWebhookURL}, {"PostWebhookUrl", &next.PostWebhookURL}} {
		if !has(form, u.param) {
			continue
		}
		v := form.Get(u.param)
		if perr := checkURL(u.param, v); perr != nil {
			return failed(perr)
		}
		*u.into = &v
	}
	if vals, ok := form["Filters"]; ok {
		filters, perr := parseFilters(vals, accountWebhookFilters)
		if perr != nil {
			return failed(perr)
		}
		next.Filters = filters
	}
	s.account.webhooks = next
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: s.renderAccountWebhooks(r)}
}

// checkURL refuses what is not an absolute http(s) URL.
func checkURL(param, v string) *apiError {
	if !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") || len(v) > 2048 {
		return errInvalidParam("%s %q is not an absolute http(s) URL", param, v)
	}
	return nil
}

// parseFilters reads a repeated Filters-like parameter: each a known event,
// repeats dropped, order kept; one empty value clears the list.
func parseFilters(vals []string, known map[string]bool) ([]string, *apiError) {
	if len(vals) == 1 && vals[0] == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, v := range vals {
		if !known[v] {
			return nil, errInvalidParam("Filter %q is not a webhook event", v)
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}
