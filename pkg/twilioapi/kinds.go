package twilioapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	openapi "github.com/twilio/twilio-go/rest/conversations/v1"
)

// pageSize is the largest page Twilio serves for services and conversations.
const pageSize = 100

// listPage is one page of a list, converted.
type listPage struct {
	items []resource.Observed
	next  string // meta.next_page_url, "" on the last page
}

// sendFunc performs one attempt of a prepared write.
type sendFunc func(api *openapi.ApiService) (resource.Observed, error)

// kindAdapter is everything kind-specific: routes, rate-limit bucket, and the
// twilio-go calls with their conversions. Adding a kind means adding one.
// IDs handed to it are already path-escaped.
type kindAdapter struct {
	collectionRoute, itemRoute string
	limiterKey                 func(parentSID string) string
	firstPage                  func(api *openapi.ApiService, parentSID string) (listPage, error)
	nextPage                   func(api *openapi.ApiService, nextURL string) (listPage, error)
	// firstPageCreatedBetween lists with Twilio's StartDate/EndDate filters
	// (nil: the kind's list has none).
	firstPageCreatedBetween func(api *openapi.ApiService, parentSID, startDate, endDate string) (listPage, error)
	fetch                   func(api *openapi.ApiService, parentSID, id string) (resource.Observed, error)
	// create and update check and convert the values before anything is sent.
	create func(parentSID string, v resource.Values, o CallOptions) (sendFunc, error)
	update func(parentSID, sid string, v resource.Values, o CallOptions) (sendFunc, error) // nil: no update endpoint
	delete func(api *openapi.ApiService, parentSID, sid string, o CallOptions) error
}

func adapterFor(kind resource.Kind, parentSID string) (*kindAdapter, error) {
	switch kind {
	case resource.KindService:
		if parentSID != "" {
			return nil, inputErrorf("services have no parent, got parent SID %q", parentSID)
		}
		return serviceAdapter, nil
	case resource.KindConversation:
		// The account's default service is addressed by its SID too: the
		// unprefixed routes are not used, so every conversation has a parent.
		if !resource.IsSID(parentSID, "IS") {
			return nil, inputErrorf("conversation: parent must be a service SID (IS + 32 hex digits), got %q", parentSID)
		}
		return conversationAdapter, nil
	}
	return nil, inputErrorf("twilioapi does not know kind %q", kind)
}

// getPage follows a next_page_url exactly as given (no PageToken is rebuilt).
func getPage[T any](api *openapi.ApiService, nextURL string) (*T, error) {
	resp, err := api.RequestHandler().Get(nextURL, nil, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var page T
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, err
	}
	return &page, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// setIf puts *p into v under name when Twilio sent a value (null = absent key).
func setIf(v resource.Values, name string, p *string) {
	if p != nil {
		v[name] = *p
	}
}

func timeOf(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return *p
}

// checkFields refuses fields this kind cannot write, naming them all.
func checkFields(kind string, v resource.Values, writable map[string]bool) error {
	var bad []string
	for name := range v {
		if !writable[name] {
			bad = append(bad, name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	known := make([]string, 0, len(writable))
	for name := range writable {
		known = append(known, name)
	}
	sort.Strings(known)
	return inputErrorf("%s: cannot write field(s) %s (writable: %s)", kind, strings.Join(bad, ", "), strings.Join(known, ", "))
}

// ---- services ----

const servicesAccountBucket = "services"

var serviceAdapter = &kindAdapter{
	collectionRoute: "/v1/Services",
	itemRoute:       "/v1/Services/{Sid}",
	limiterKey:      func(string) string { return servicesAccountBucket },
	firstPage: func(api *openapi.ApiService, _ string) (listPage, error) {
		resp, err := api.PageService(&openapi.ListServiceParams{PageSize: intPtr(pageSize)}, "", "")
		if err != nil {
			return listPage{}, err
		}
		return servicePage(resp), nil
	},
	nextPage: func(api *openapi.ApiService, nextURL string) (listPage, error) {
		resp, err := getPage[openapi.ListServiceResponse](api, nextURL)
		if err != nil {
			return listPage{}, err
		}
		return servicePage(resp), nil
	},
	fetch: func(api *openapi.ApiService, _, id string) (resource.Observed, error) {
		s, err := api.FetchService(id)
		if err != nil {
			return resource.Observed{}, err
		}
		return serviceObserved(s), nil
	},
	create: func(_ string, v resource.Values, _ CallOptions) (sendFunc, error) {
		if err := checkFields("service", v, map[string]bool{resource.FieldFriendlyName: true}); err != nil {
			return nil, err
		}
		params := &openapi.CreateServiceParams{}
		if name, ok := v[resource.FieldFriendlyName]; ok {
			params.SetFriendlyName(name)
		}
		return func(api *openapi.ApiService) (resource.Observed, error) {
			s, err := api.CreateService(params)
			if err != nil {
				return resource.Observed{}, err
			}
			return serviceObserved(s), nil
		}, nil
	},
	update: nil, // Twilio has no service update: a new friendly_name means a new service
	delete: func(api *openapi.ApiService, _, sid string, _ CallOptions) error {
		return api.DeleteService(sid)
	},
}

func intPtr(n int) *int { return &n }

func servicePage(resp *openapi.ListServiceResponse) listPage {
	p := listPage{next: deref(resp.Meta.NextPageUrl)}
	for i := range resp.Services {
		p.items = append(p.items, serviceObserved(&resp.Services[i]))
	}
	return p
}

func serviceObserved(s *openapi.ConversationsV1Service) resource.Observed {
	o := resource.Observed{
		Kind:        resource.KindService,
		SID:         deref(s.Sid),
		Values:      resource.Values{},
		DateCreated: timeOf(s.DateCreated),
		DateUpdated: timeOf(s.DateUpdated),
		Extra:       resource.Values{},
	}
	setIf(o.Values, resource.FieldFriendlyName, s.FriendlyName)
	setIf(o.Extra, "url", s.Url)
	return o
}

// ---- conversations ----

var conversationWritable = map[string]bool{
	resource.FieldFriendlyName:        true,
	resource.FieldUniqueName:          true,
	resource.FieldAttributes:          true,
	resource.FieldMessagingServiceSID: true,
	resource.FieldState:               true,
	resource.FieldTimersInactive:      true,
	resource.FieldTimersClosed:        true,
}

// conversationParams is the form both create and update send.
type conversationParams struct {
	friendlyName, uniqueName, attributes, messagingServiceSID, state, timersInactive, timersClosed *string
	webhook                                                                                        *string
}

func toConversationParams(v resource.Values, o CallOptions) (conversationParams, error) {
	if err := checkFields("conversation", v, conversationWritable); err != nil {
		return conversationParams{}, err
	}
	get := func(name string) *string {
		if x, ok := v[name]; ok {
			return &x
		}
		return nil
	}
	p := conversationParams{
		friendlyName:        get(resource.FieldFriendlyName),
		uniqueName:          get(resource.FieldUniqueName),
		attributes:          get(resource.FieldAttributes),
		messagingServiceSID: get(resource.FieldMessagingServiceSID),
		state:               get(resource.FieldState),
		timersInactive:      get(resource.FieldTimersInactive),
		timersClosed:        get(resource.FieldTimersClosed),
	}
	if o.WebhookEnabled {
		on := "true"
		p.webhook = &on
	}
	return p, nil
}

var conversationAdapter = &kindAdapter{
	collectionRoute: "/v1/Services/{ServiceSid}/Conversations",
	itemRoute:       "/v1/Services/{ServiceSid}/Conversations/{Sid}",
	limiterKey:      func(parentSID string) string { return parentSID },
	firstPage: func(api *openapi.ApiService, parentSID string) (listPage, error) {
		return conversationFirstPage(api, parentSID, "", "")
	},
	firstPageCreatedBetween: conversationFirstPage,
	nextPage: func(api *openapi.ApiService, nextURL string) (listPage, error) {
		resp, err := getPage[openapi.ListServiceConversationResponse](api, nextURL)
		if err != nil {
			return listPage{}, err
		}
		return conversationPage(resp, ""), nil
	},
	fetch: func(api *openapi.ApiService, parentSID, id string) (resource.Observed, error) {
		x, err := api.FetchServiceConversation(parentSID, id)
		if err != nil {
			return resource.Observed{}, err
		}
		return conversationObserved(x, parentSID), nil
	},
	create: func(parentSID string, v resource.Values, o CallOptions) (sendFunc, error) {
		p, err := toConversationParams(v, o)
		if err != nil {
			return nil, err
		}
		params := &openapi.CreateServiceConversationParams{
			XTwilioWebhookEnabled: p.webhook,
			FriendlyName:          p.friendlyName,
			UniqueName:            p.uniqueName,
			Attributes:            p.attributes,
			MessagingServiceSid:   p.messagingServiceSID,
			State:                 p.state,
			TimersInactive:        p.timersInactive,
			TimersClosed:          p.timersClosed,
		}
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.CreateServiceConversation(parentSID, params)
			if err != nil {
				return resource.Observed{}, err
			}
			return conversationObserved(x, parentSID), nil
		}, nil
	},
	update: func(parentSID, sid string, v resource.Values, o CallOptions) (sendFunc, error) {
		p, err := toConversationParams(v, o)
		if err != nil {
			return nil, err
		}
		params := &openapi.UpdateServiceConversationParams{
			XTwilioWebhookEnabled: p.webhook,
			FriendlyName:          p.friendlyName,
			UniqueName:            p.uniqueName,
			Attributes:            p.attributes,
			MessagingServiceSid:   p.messagingServiceSID,
			State:                 p.state,
			TimersInactive:        p.timersInactive,
			TimersClosed:          p.timersClosed,
		}
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.UpdateServiceConversation(parentSID, sid, params)
			if err != nil {
				return resource.Observed{}, err
			}
			return conversationObserved(x, parentSID), nil
		}, nil
	},
	delete: func(api *openapi.ApiService, parentSID, sid string, o CallOptions) error {
		params := &openapi.DeleteServiceConversationParams{}
		if o.WebhookEnabled {
			params.SetXTwilioWebhookEnabled("true")
		}
		return api.DeleteServiceConversation(parentSID, sid, params)
	},
}

func conversationPage(resp *openapi.ListServiceConversationResponse, parentSID string) listPage {
	p := listPage{next: deref(resp.Meta.NextPageUrl)}
	for i := range resp.Conversations {
		p.items = append(p.items, conversationObserved(&resp.Conversations[i], parentSID))
	}
	return p
}

// conversationObserved converts Twilio's answer. Fields Twilio sends as null are
// absent from Values (so "never set" and "set to empty" stay distinguishable);
// attributes are canonical JSON (kept verbatim if Twilio ever sends non-JSON).
// Timers are write-only: only their absolute dates go to Extra.
func conversationObserved(x *openapi.ConversationsV1ServiceConversation, parentSID string) resource.Observed {
	o := resource.Observed{
		Kind:        resource.KindConversation,
		SID:         deref(x.Sid),
		ParentSID:   deref(x.ChatServiceSid),
		Values:      resource.Values{},
		DateCreated: timeOf(x.DateCreated),
		DateUpdated: timeOf(x.DateUpdated),
		Extra:       resource.Values{},
	}
	if o.ParentSID == "" {
		o.ParentSID = parentSID
	}
	setIf(o.Values, resource.FieldFriendlyName, x.FriendlyName)
	setIf(o.Values, resource.FieldUniqueName, x.UniqueName)
	setIf(o.Values, resource.FieldMessagingServiceSID, x.MessagingServiceSid)
	setIf(o.Values, resource.FieldState, x.State)
	if x.Attributes != nil {
		attrs := *x.Attributes
		if canonical, err := resource.CanonicalJSON(attrs); err == nil {
			attrs = canonical
		}
		o.Values[resource.FieldAttributes] = attrs
	}
	if x.Timers != nil {
		if timers, ok := (*x.Timers).(map[string]interface{}); ok {
			for key, extra := range map[string]string{"date_inactive": "timers.date_inactive", "date_closed": "timers.date_closed"} {
				if val, ok := timers[key]; ok && val != nil {
					o.Extra[extra] = fmt.Sprint(val)
				}
			}
		}
	}
	setIf(o.Extra, "url", x.Url)
	return o
}

// conversationFirstPage asks for the first page of a service's
// conversations, optionally within StartDate/EndDate.
func conversationFirstPage(api *openapi.ApiService, parentSID, startDate, endDate string) (listPage, error) {
	params := &openapi.ListServiceConversationParams{PageSize: intPtr(pageSize)}
	if startDate != "" {
		params.SetStartDate(startDate)
	}
	if endDate != "" {
		params.SetEndDate(endDate)
	}
	resp, err := api.PageServiceConversation(parentSID, params, "", "")
	if err != nil {
		return listPage{}, err
	}
	return conversationPage(resp, parentSID), nil
}
