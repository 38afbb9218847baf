package emulator

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

// ConversationWebhook is a conversation-scoped webhook as the emulator
// stores it (../shared/twilio-kinds.md §3.7). Configuration fields are nil
// (or empty) until set.
type ConversationWebhook struct {
	SID             string `json:"sid"`
	ServiceSID      string `json:"service_sid"`
	ConversationSID string `json:"conversation_sid"`
	// Target is webhook, trigger or studio (stored lowercase; never changes).
	Target string  `json:"target"`
	URL    *string `json:"url,omitempty"`
	// Method is get or post, stored lowercase as the contract's enum spells it.
	Method *string `json:"method,omitempty"`
	// Filters and Triggers keep the order written.
	Filters     []string  `json:"filters,omitempty"`
	Triggers    []string  `json:"triggers,omitempty"`
	FlowSID     *string   `json:"flow_sid,omitempty"`
	ReplayAfter *int      `json:"replay_after,omitempty"`
	DateCreated time.Time `json:"date_created"`
	DateUpdated time.Time `json:"date_updated"`
	Seq         uint64    `json:"seq"`
}

func (w *ConversationWebhook) clone() ConversationWebhook {
	out := *w
	out.URL, out.Method, out.FlowSID, out.ReplayAfter = clonePtr(w.URL), clonePtr(w.Method), clonePtr(w.FlowSID), clonePtr(w.ReplayAfter)
	if w.Filters != nil {
		out.Filters = append([]string{}, w.Filters...)
	}
	if w.Triggers != nil {
		out.Triggers = append([]string{}, w.Triggers...)
	}
	return out
}

const (
	maxConversationWebhooks    = 5
	maxConversationWebhookPage = 5
	maxWebhookTriggers         = 5
	webhookTargetWebhook       = "webhook"
	webhookTargetTrigger       = "trigger"
	webhookTargetStudio        = "studio"
)

// Conversation-scoped webhook error codes (../shared/twilio-kinds.md §3.7).
const (
	CodeWebhookNotFound       = 50360
	CodeTooManyWebhooks       = 50361
	CodeTooManyTriggers       = 50362
	CodeInvalidWebhookSID     = 50363
	CodeInvalidWebhookTarget  = 50364
	CodeInvalidFlowSID        = 50367
	CodeWebhookTargetMissing  = 50368
	CodeWebhookURLMissing     = 50369
	CodeWebhookFiltersMissing = 50370
)

type conversationWebhookJSON struct {
	SID             string         `json:"sid"`
	AccountSID      string         `json:"account_sid"`
	ChatServiceSID  string         `json:"chat_service_sid"`
	ConversationSID string         `json:"conversation_sid"`
	Target          string         `json:"target"`
	URL             string         `json:"url"`
	Configuration   map[string]any `json:"configuration"`
	DateCreated     string         `json:"date_created"`
	DateUpdated     string         `json:"date_updated"`
}

var conversationWebhookKind = &kind[ConversationWebhook]{
	key:   "webhooks",
	rules: listRules{maxPageSize: maxConversationWebhookPage, clamp: true},
	seq:   func(w *ConversationWebhook) uint64 { return w.Seq },
	sid:   func(w *ConversationWebhook) string { return w.SID },
	// configuration holds only the keys that are set (the contract's
	// examples: url/method/filters for webhook, flow_sid for studio;
	// triggers under "triggers", as RJ's provider reads them).
	render: func(s *Server, itemURL string, w *ConversationWebhook) any {
		cfg := map[string]any{}
		if w.URL != nil {
			cfg["url"] = *w.URL
		}
		if w.Method != nil {
			cfg["method"] = *w.Method
		}
		if w.Filters != nil {
			cfg["filters"] = append([]string{}, w.Filters...)
		}
		if w.Triggers != nil {
			cfg["triggers"] = append([]string{}, w.Triggers...)
		}
		if w.FlowSID != nil {
			cfg["flow_sid"] = *w.FlowSID
		}
		if w.ReplayAfter != nil {
			cfg["replay_after"] = *w.ReplayAfter
		}
		return conversationWebhookJSON{
			SID:             w.SID,
			AccountSID:      s.accountSID,
			ChatServiceSID:  w.ServiceSID,
			ConversationSID: w.ConversationSID,
			Target:          w.Target,
			URL:             itemURL,
			Configuration:   cfg,
			DateCreated:     formatDate(w.DateCreated),
			DateUpdated:     formatDate(w.DateUpdated),
		}
	},
}

// parseWebhookConfig applies the Configuration.* parameters of a create or
// update to next. Empty values are ignored (they leave a field unchanged).
func parseWebhookConfig(form url.Values, next *ConversationWebhook, create bool) *apiError {
	if v := form.Get("Configuration.Url"); v != "" {
		if !isWebhookURL(v) {
			return errInvalidParam("Configuration.Url %q must be an absolute http or https URL", v)
		}
		next.URL = &v
	}
	if v := form.Get("Configuration.Method"); v != "" {
		m := strings.ToLower(v)
		if m != "get" && m != "post" {
			return errInvalidParam("Configuration.Method %q must be get or post", v)
		}
		next.Method = &m
	}
	list := func(param string) []string {
		vals, ok := form[param]
		if !ok {
			return nil
		}
		seen := map[string]bool{}
		out := []string{}
		for _, v := range vals {
			if v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	if f := list("Configuration.Filters"); f != nil {
		next.Filters = f
	}
	if t := list("Configuration.Triggers"); t != nil {
		if len(t) > maxWebhookTriggers {
			return newError(http.StatusBadRequest, CodeTooManyTriggers, "At most %d trigger keywords are allowed, got %d", maxWebhookTriggers, len(t))
		}
		next.Triggers = t
	}
	if v := form.Get("Configuration.FlowSid"); v != "" {
		if !resource.IsSID(v, "FW") {
			return newError(http.StatusBadRequest, CodeInvalidFlowSID, "Configuration.FlowSid %q must be FW followed by 32 hex digits", v)
		}
		next.FlowSID = &v
	}
	if create {
		if v := form.Get("Configuration.ReplayAfter"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return errInvalidParam("Configuration.ReplayAfter %q must be an integer of 0 or more", v)
			}
			next.ReplayAfter = &n
		}
	}
	// What each target needs.
	switch next.Target {
	case webhookTargetWebhook:
		if next.URL == nil {
			return newError(http.StatusBadRequest, CodeWebhookURLMissing, "Configuration.Url is required for target webhook")
		}
		if next.Filters == nil {
			return newError(http.StatusBadRequest, CodeWebhookFiltersMissing, "Configuration.Filters is required for target webhook")
		}
	case webhookTargetTrigger:
		if next.URL == nil {
			return newError(http.StatusBadRequest, CodeWebhookURLMissing, "Configuration.Url is required for target trigger")
		}
		if next.Triggers == nil {
			return errInvalidParam("Configuration.Triggers is required for target trigger")
		}
	case webhookTargetStudio:
		if next.FlowSID == nil {
			return newError(http.StatusBadRequest, CodeInvalidFlowSID, "Configuration.FlowSid is required for target studio")
		}
	}
	return nil
}

func (d *serviceData) webhooksOf(c *Conversation) *collection[ConversationWebhook] {
	col := d.convWebhooks[c.SID]
	if col == nil {
		col = newCollection(conversationWebhookKind)
		d.convWebhooks[c.SID] = col
	}
	return col
}

func conversationWebhooksURL(r *http.Request, d *serviceData, c *Conversation) string {
	return baseURL(r) + "/v1/Services/" + d.svc.SID + "/Conversations/" + c.SID + "/Webhooks"
}

func (s *Server) createConversationWebhook(r *http.Request, p routeParams) result {
	form := r.PostForm
	target := strings.ToLower(form.Get("Target"))
	switch {
	case target == "":
		return failed(newError(http.StatusBadRequest, CodeWebhookTargetMissing, "Missing required parameter Target in the post body"))
	case target != webhookTargetWebhook && target != webhookTargetTrigger && target != webhookTargetStudio:
		return failed(newError(http.StatusBadRequest, CodeInvalidWebhookTarget, "Target %q must be webhook, trigger or studio", form.Get("Target")))
	}
	w := &ConversationWebhook{Target: target}
	if perr := parseWebhookConfig(form, w, true); perr != nil {
		return failed(perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, c, perr := s.conversationOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	col := d.webhooksOf(c)
	if col.len() >= maxConversationWebhooks {
		return failed(newError(http.StatusBadRequest, CodeTooManyWebhooks, "Conversation %s already has the maximum of %d webhooks", c.SID, maxConversationWebhooks))
	}
	now := s.clock()
	w.SID = s.unusedSIDLocked("WH", func(sid string) bool { return col.get(sid) != nil })
	w.ServiceSID, w.ConversationSID = d.svc.SID, c.SID
	w.DateCreated, w.DateUpdated, w.Seq = now, now, s.nextSeq
	s.nextSeq++
	col.insert(w)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusCreated, body: conversationWebhookKind.render(s, conversationWebhooksURL(r, d, c)+"/"+w.SID, w)}
}

func (s *Server) listConversationWebhooks(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, c, perr := s.conversationOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	col := d.convWebhooks[c.SID]
	if col == nil {
		col = newCollection(conversationWebhookKind)
	}
	return col.list(s, r, d.svc.SID+"/"+c.SID, conversationWebhooksURL(r, d, c))
}

// conversationWebhookOf resolves {Sid} of a webhook route: not WH-shaped is
// 400/50363, unknown (or of another conversation) 404/50360.
func (s *Server) conversationWebhookOf(r *http.Request, p routeParams) (*serviceData, *Conversation, *ConversationWebhook, *apiError) {
	d, c, perr := s.conversationOf(r, p)
	if perr != nil {
		return nil, nil, nil, perr
	}
	if !resource.IsSID(p.sid, "WH") {
		return nil, nil, nil, newError(http.StatusBadRequest, CodeInvalidWebhookSID, "Invalid webhook SID %q", p.sid)
	}
	var w *ConversationWebhook
	if col := d.convWebhooks[c.SID]; col != nil {
		w = col.get(p.sid)
	}
	if w == nil {
		return nil, nil, nil, newError(http.StatusNotFound, CodeWebhookNotFound, "Webhook %s not found in conversation %s", p.sid, c.SID)
	}
	return d, c, w, nil
}

func (s *Server) fetchConversationWebhook(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, c, w, perr := s.conversationWebhookOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	return result{status: http.StatusOK, body: conversationWebhookKind.render(s, conversationWebhooksURL(r, d, c)+"/"+w.SID, w)}
}

// updateConversationWebhook changes the configuration; Target and
// Configuration.ReplayAfter are not update parameters (ignored: they never
// change).
func (s *Server) updateConversationWebhook(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, c, w, perr := s.conversationWebhookOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	next := w.clone()
	if perr := parseWebhookConfig(r.PostForm, &next, false); perr != nil {
		return failed(perr)
	}
	next.DateUpdated = s.clock()
	*w = next
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: conversationWebhookKind.render(s, conversationWebhooksURL(r, d, c)+"/"+w.SID, w)}
}

func (s *Server) deleteConversationWebhook(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, c, w, perr := s.conversationWebhookOf(r, p)
	if perr != nil {
		return failed(perr)
	}
	col := d.convWebhooks[c.SID]
	col.remove(w)
	if col.len() == 0 {
		delete(d.convWebhooks, c.SID)
	}
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusNoContent}
}
