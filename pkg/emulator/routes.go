package emulator

import (
	"net/http"
	"net/url"
	"strings"
)

// routeParams are the path parameters of an API route.
type routeParams struct {
	serviceSID string // "" on the /v1/Conversations routes: the default service
	sid        string // the service, conversation, role, user, participant or webhook SID (or unique_name, identity)
	// conversation is the {ConversationSid} (SID or unique_name) of the
	// participant and conversation-webhook routes.
	conversation string
	// viaDefault: the request used the /v1/Conversations routes; URLs in the
	// answer use the same form.
	viaDefault bool
}

type result struct {
	status int
	body   any
	err    *apiError
}

func failed(e *apiError) result { return result{err: e} }

type handlerFunc func(s *Server, r *http.Request, p routeParams) result

type route struct {
	pattern string // e.g. "/v1/Services/{ServiceSid}/Conversations/{Sid}", for stats
	handler handlerFunc
	params  routeParams
	err     *apiError // set when handler is nil
}

// Route patterns, as they appear in Stats (prefixed by the method).
const (
	patternServices             = "/v1/Services"
	patternService              = "/v1/Services/{Sid}"
	patternServiceConversations = "/v1/Services/{ServiceSid}/Conversations"
	patternServiceConversation  = "/v1/Services/{ServiceSid}/Conversations/{Sid}"
	patternServiceRoles         = "/v1/Services/{ServiceSid}/Roles"
	patternServiceRole          = "/v1/Services/{ServiceSid}/Roles/{Sid}"
	patternServiceUsers         = "/v1/Services/{ServiceSid}/Users"
	patternServiceUser          = "/v1/Services/{ServiceSid}/Users/{Sid}"
	patternServiceConfiguration = "/v1/Services/{ServiceSid}/Configuration"
	patternServiceNotifications = "/v1/Services/{ServiceSid}/Configuration/Notifications"
	patternServiceWebhooks      = "/v1/Services/{ServiceSid}/Configuration/Webhooks"
	patternServiceParticipants  = "/v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Participants"
	patternServiceParticipant   = "/v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Participants/{Sid}"
	patternServiceConvWebhooks  = "/v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Webhooks"
	patternServiceConvWebhook   = "/v1/Services/{ServiceSid}/Conversations/{ConversationSid}/Webhooks/{Sid}"
	patternDefaultConversations = "/v1/Conversations"
	patternDefaultConversation  = "/v1/Conversations/{Sid}"
	patternUnmatched            = "(unmatched)"
)

// matchRoute maps a request to its handler. Segments are split before they are
// unescaped, so a unique_name holding an escaped "/" stays one segment.
func matchRoute(r *http.Request) route {
	raw := strings.TrimSuffix(r.URL.EscapedPath(), "/")
	parts := strings.Split(strings.TrimPrefix(raw, "/"), "/")
	notFound := route{pattern: patternUnmatched, err: errNotFound(strings.TrimPrefix(r.URL.Path, "/v1"))}
	if len(parts) < 2 || len(parts) > 7 || parts[0] != "v1" {
		return notFound
	}
	for i := range parts {
		seg, err := url.PathUnescape(parts[i])
		if err != nil || seg == "" {
			return notFound
		}
		parts[i] = seg
	}
	byMethod := func(pattern string, p routeParams, handlers map[string]handlerFunc) route {
		h, ok := handlers[r.Method]
		if !ok {
			return route{pattern: pattern, err: newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed")}
		}
		return route{pattern: pattern, handler: h, params: p}
	}
	switch {
	case len(parts) == 2 && parts[1] == "Services":
		return byMethod(patternServices, routeParams{}, map[string]handlerFunc{
			http.MethodGet: (*Server).listServices, http.MethodPost: (*Server).createService})
	case len(parts) == 3 && parts[1] == "Services":
		return byMethod(patternService, routeParams{sid: parts[2]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchService, http.MethodDelete: (*Server).deleteService})
	case len(parts) == 4 && parts[1] == "Services" && parts[3] == "Conversations":
		return byMethod(patternServiceConversations, routeParams{serviceSID: parts[2]}, conversationListHandlers)
	case len(parts) == 5 && parts[1] == "Services" && parts[3] == "Conversations":
		return byMethod(patternServiceConversation, routeParams{serviceSID: parts[2], sid: parts[4]}, conversationHandlers)
	case len(parts) == 4 && parts[1] == "Services" && parts[3] == "Roles":
		return byMethod(patternServiceRoles, routeParams{serviceSID: parts[2]}, map[string]handlerFunc{
			http.MethodGet: (*Server).listRoles, http.MethodPost: (*Server).createRole})
	case len(parts) == 5 && parts[1] == "Services" && parts[3] == "Roles":
		return byMethod(patternServiceRole, routeParams{serviceSID: parts[2], sid: parts[4]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchRole, http.MethodPost: (*Server).updateRole, http.MethodDelete: (*Server).deleteRole})
	case len(parts) == 4 && parts[1] == "Services" && parts[3] == "Users":
		return byMethod(patternServiceUsers, routeParams{serviceSID: parts[2]}, map[string]handlerFunc{
			http.MethodGet: (*Server).listUsers, http.MethodPost: (*Server).createUser})
	case len(parts) == 5 && parts[1] == "Services" && parts[3] == "Users":
		return byMethod(patternServiceUser, routeParams{serviceSID: parts[2], sid: parts[4]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchUser, http.MethodPost: (*Server).updateUser, http.MethodDelete: (*Server).deleteUser})
	case len(parts) == 4 && parts[1] == "Services" && parts[3] == "Configuration":
		return byMethod(patternServiceConfiguration, routeParams{serviceSID: parts[2]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchConfiguration, http.MethodPost: (*Server).updateConfiguration})
	case len(parts) == 5 && parts[1] == "Services" && parts[3] == "Configuration" && parts[4] == "Notifications":
		return byMethod(patternServiceNotifications, routeParams{serviceSID: parts[2]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchNotifications, http.MethodPost: (*Server).updateNotifications})
	case len(parts) == 5 && parts[1] == "Services" && parts[3] == "Configuration" && parts[4] == "Webhooks":
		return byMethod(patternServiceWebhooks, routeParams{serviceSID: parts[2]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchWebhooks, http.MethodPost: (*Server).updateWebhooks})
	case len(parts) == 6 && parts[1] == "Services" && parts[3] == "Conversations" && parts[5] == "Participants":
		return byMethod(patternServiceParticipants, routeParams{serviceSID: parts[2], conversation: parts[4]}, map[string]handlerFunc{
			http.MethodGet: (*Server).listParticipants, http.MethodPost: (*Server).createParticipant})
	case len(parts) == 7 && parts[1] == "Services" && parts[3] == "Conversations" && parts[5] == "Participants":
		return byMethod(patternServiceParticipant, routeParams{serviceSID: parts[2], conversation: parts[4], sid: parts[6]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchParticipant, http.MethodPost: (*Server).updateParticipant, http.MethodDelete: (*Server).deleteParticipant})
	case len(parts) == 6 && parts[1] == "Services" && parts[3] == "Conversations" && parts[5] == "Webhooks":
		return byMethod(patternServiceConvWebhooks, routeParams{serviceSID: parts[2], conversation: parts[4]}, map[string]handlerFunc{
			http.MethodGet: (*Server).listConversationWebhooks, http.MethodPost: (*Server).createConversationWebhook})
	case len(parts) == 7 && parts[1] == "Services" && parts[3] == "Conversations" && parts[5] == "Webhooks":
		return byMethod(patternServiceConvWebhook, routeParams{serviceSID: parts[2], conversation: parts[4], sid: parts[6]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchConversationWebhook, http.MethodPost: (*Server).updateConversationWebhook, http.MethodDelete: (*Server).deleteConversationWebhook})
	case parts[1] == "Configuration" || parts[1] == "Credentials":
		return accountRoute(r, parts, notFound)
	case len(parts) == 2 && parts[1] == "Conversations":
		return byMethod(patternDefaultConversations, routeParams{viaDefault: true}, conversationListHandlers)
	case len(parts) == 3 && parts[1] == "Conversations":
		return byMethod(patternDefaultConversation, routeParams{sid: parts[2], viaDefault: true}, conversationHandlers)
	}
	return notFound
}

var conversationListHandlers = map[string]handlerFunc{
	http.MethodGet:  (*Server).listConversations,
	http.MethodPost: (*Server).createConversation,
}

var conversationHandlers = map[string]handlerFunc{
	http.MethodGet:    (*Server).fetchConversation,
	http.MethodPost:   (*Server).updateConversation,
	http.MethodDelete: (*Server).deleteConversation,
}

// baseURL is where the client reached us: https for Twilio's own host names
// (a client that rewrites only the connection keeps Host), http otherwise.
func baseURL(r *http.Request) string {
	host := r.Host
	name := host
	if h, _, ok := strings.Cut(host, ":"); ok {
		name = h
	}
	if name == "twilio.com" || strings.HasSuffix(name, ".twilio.com") {
		return "https://" + host
	}
	return "http://" + host
}
