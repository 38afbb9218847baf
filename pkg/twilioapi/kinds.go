package twilioapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	openapi "github.com/twilio/twilio-go/rest/conversations/v1"
)

// listPage is one page of a list, converted.
type listPage struct {
	items []resource.Observed
	next  string // meta.next_page_url, "" on the last page
}

// sendFunc performs one attempt of a prepared write.
type sendFunc func(api *openapi.ApiService) (resource.Observed, error)

// kindAdapter is everything kind-specific: routes, rate-limit bucket, and the
// twilio-go calls with their conversions. Adding a kind means adding one
// (one file per kind: kind_role.go, …). IDs handed to it are already
// path-escaped.
type kindAdapter struct {
	kind                       resource.Kind
	collectionRoute, itemRoute string
	// limiterKey names the token bucket creates and deletes wait on.
	limiterKey func(parentSID string) string
	// updateLimiterKey names the bucket updates wait on (nil: updates are
	// not limited per parent, as a conversation's are limited per
	// conversation).
	updateLimiterKey func(parentSID string) string
	// singleton kinds exist with their parent: never created or deleted, and
	// addressed by resource.SingletonID instead of a SID.
	singleton bool
	firstPage func(api *openapi.ApiService, parentSID string) (listPage, error)
	nextPage  func(api *openapi.ApiService, nextURL string) (listPage, error)
	// firstPageCreatedBetween lists with Twilio's StartDate/EndDate filters
	// (nil: the kind's list has none).
	firstPageCreatedBetween func(api *openapi.ApiService, parentSID, startDate, endDate string) (listPage, error)
	fetch                   func(api *openapi.ApiService, parentSID, id string) (resource.Observed, error)
	// create and update check and convert the values before anything is sent.
	create func(parentSID string, v resource.Values, o CallOptions) (sendFunc, error)      // nil: never created
	update func(parentSID, sid string, v resource.Values, o CallOptions) (sendFunc, error) // nil: no update endpoint
	delete func(api *openapi.ApiService, parentSID, sid string, o CallOptions) error       // nil: never deleted
}

// adapters are the kinds twilioapi knows. Services and the account's own
// kinds (kind_account.go) have no parent; every other kind lives in a
// service.
var adapters = map[resource.Kind]*kindAdapter{
	resource.KindService:              serviceAdapter,
	resource.KindConversation:         conversationAdapter,
	resource.KindRole:                 roleAdapter,
	resource.KindUser:                 userAdapter,
	resource.KindServiceConfiguration: serviceConfigurationAdapter,
	resource.KindServiceNotifications: serviceNotificationsAdapter,
	resource.KindServiceWebhooks:      serviceWebhooksAdapter,
	resource.KindParticipant:          participantAdapter,
	resource.KindConversationWebhook:  conversationWebhookAdapter,
	resource.KindConfiguration:        configurationAdapter,
	resource.KindAccountWebhooks:      accountWebhooksAdapter,
	resource.KindAddressConfiguration: addressConfigurationAdapter,
	resource.KindPushCredential:       pushCredentialAdapter,
}

func adapterFor(kind resource.Kind, parentSID string) (*kindAdapter, error) {
	k, ok := adapters[kind]
	schema := resource.Schema(kind)
	if !ok || schema == nil {
		return nil, inputErrorf("twilioapi does not know kind %q", kind)
	}
	if schema.Parent == "" {
		if parentSID != "" {
			return nil, inputErrorf("%s have no parent, got parent SID %q", schema.Plural, parentSID)
		}
		return k, nil
	}
	// The account's default service is addressed by its SID too: the
	// unprefixed routes are not used, so every conversation has a parent.
	// Two levels down the parent is a key of SIDs, "IS…/CH…".
	if err := resource.CheckParentKey(kind, parentSID); err != nil {
		return nil, inputErrorf("%s: %v", kindName(kind), err)
	}
	return k, nil
}

// kindName is the kind as messages write it: "conversation", "service_configuration".
func kindName(kind resource.Kind) string {
	if s := resource.Schema(kind); s != nil {
		return s.Prefix()
	}
	return strings.ToLower(string(kind))
}

// pageSizeOf is the page size a kind's list asks for: the largest Twilio
// serves for it (resource.KindSchema.ListPageSize).
func pageSizeOf(kind resource.Kind) *int {
	n := resource.Schema(kind).ListPageSize
	if n <= 0 {
		n = 50 // Twilio's default page size
	}
	return &n
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

// setBoolIf puts "true" or "false" into v under name when Twilio sent a value.
func setBoolIf(v resource.Values, name string, p *bool) {
	if p != nil {
		v[name] = strconv.FormatBool(*p)
	}
}

// setSetIf puts the set's canonical text (sorted: Twilio's order means
// nothing) into v under name when Twilio sent a list.
func setSetIf(v resource.Values, name string, p *[]string) {
	if p != nil {
		v[name] = resource.EncodeSet(*p)
	}
}

// setJSONIf puts canonical JSON into v under name when Twilio sent a value
// (kept verbatim if Twilio ever sends text that is not JSON).
func setJSONIf(v resource.Values, name string, p *string) {
	if p == nil {
		return
	}
	s := *p
	if canonical, err := resource.CanonicalJSON(s); err == nil {
		s = canonical
	}
	v[name] = s
}

func timeOf(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return *p
}

// What a write may send, from the kind's schema: a create every field, an
// update every field Twilio can change in place (a ForcesReplace field
// changes by replacing the resource).
func createFields(kind resource.Kind) []string {
	return schemaFields(kind, func(*resource.FieldSchema) bool { return true })
}

func updateFields(kind resource.Kind) []string {
	return schemaFields(kind, func(f *resource.FieldSchema) bool { return !f.ForcesReplace })
}

func schemaFields(kind resource.Kind, keep func(*resource.FieldSchema) bool) []string {
	schema := resource.Schema(kind)
	var out []string
	for i := range schema.Fields {
		if keep(&schema.Fields[i]) {
			out = append(out, schema.Fields[i].Name)
		}
	}
	return out
}

// checkFields refuses fields this kind cannot write (op: "create",
// "update"), naming them all; a field the kind has that only a replacement
// changes is named as such.
func checkFields(kind resource.Kind, op string, v resource.Values, writable []string) error {
	ok := map[string]bool{}
	for _, name := range writable {
		ok[name] = true
	}
	schema := resource.Schema(kind)
	var unknown, replace []string
	for name := range v {
		switch {
		case ok[name]:
		case schema.Field(name) != nil:
			replace = append(replace, name)
		default:
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 && len(replace) == 0 {
		return nil
	}
	sort.Strings(unknown)
	sort.Strings(replace)
	var why []string
	if len(unknown) > 0 {
		why = append(why, fmt.Sprintf("cannot write field(s) %s", strings.Join(unknown, ", ")))
	}
	if len(replace) > 0 {
		why = append(why, fmt.Sprintf("Twilio cannot change %s in place (the %s must be replaced)", strings.Join(replace, ", "), kindName(kind)))
	}
	return inputErrorf("%s %s: %s (writable: %s)", op, kindName(kind), strings.Join(why, "; "), strings.Join(writable, ", "))
}

// A paramSetter puts one field's canonical text into a twilio-go params
// struct, or says why the text is not a value of the field.
type paramSetter[P any] func(p *P, value string) error

func stringParam[P any](set func(*P, string) *P) paramSetter[P] {
	return func(p *P, s string) error { set(p, s); return nil }
}

// upperParam sends the text in upper case (Method: post and POST are one).
func upperParam[P any](set func(*P, string) *P) paramSetter[P] {
	return func(p *P, s string) error { set(p, strings.ToUpper(s)); return nil }
}

// lowerParam sends the text in lower case (the contract's enum: get, post).
func lowerParam[P any](set func(*P, string) *P) paramSetter[P] {
	return func(p *P, s string) error { set(p, strings.ToLower(s)); return nil }
}

func intParam[P any](set func(*P, int) *P) paramSetter[P] {
	return func(p *P, s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		set(p, n)
		return nil
	}
}

func boolParam[P any](set func(*P, bool) *P) paramSetter[P] {
	return func(p *P, s string) error {
		switch s {
		case "true":
			set(p, true)
		case "false":
			set(p, false)
		default:
			return fmt.Errorf("%q is not true or false", s)
		}
		return nil
	}
}

// setParam sends a set as the repeated form key Twilio takes (Permission,
// Filters), one key per member. The empty set sends no key at all (a
// twilio-go list sends nothing when empty).
func setParam[P any](set func(*P, []string) *P) paramSetter[P] {
	return func(p *P, s string) error {
		members, err := resource.ParseSet(s)
		if err != nil {
			return err
		}
		if members == nil {
			members = []string{}
		}
		set(p, members)
		return nil
	}
}

// clearableSetParam is setParam, except that the empty set is sent as one
// empty key (Filters=), the form that clears a list: sending no key would
// leave the list as it is, and the plan would show the change forever.
// How Twilio clears a list is UNVERIFIED (../shared/twilio-kinds.md §3.3);
// the emulator clears on a lone empty key, and should Twilio refuse it the
// apply fails loudly instead of silently doing nothing.
func clearableSetParam[P any](set func(*P, []string) *P) paramSetter[P] {
	return func(p *P, s string) error {
		members, err := resource.ParseSet(s)
		if err != nil {
			return err
		}
		if len(members) == 0 {
			members = []string{""}
		}
		set(p, members)
		return nil
	}
}

// buildParams checks v against the fields op may write and fills a params
// struct through setters (one per writable field).
func buildParams[P any](kind resource.Kind, op string, v resource.Values, writable []string, setters map[string]paramSetter[P]) (*P, error) {
	if err := checkFields(kind, op, v, writable); err != nil {
		return nil, err
	}
	p := new(P)
	for _, name := range v.Keys() {
		set, ok := setters[name]
		if !ok { // a schema field without a setter: a bug here, caught by tests
			return nil, inputErrorf("%s %s: twilioapi cannot send field %s", op, kindName(kind), name)
		}
		if err := set(p, v[name]); err != nil {
			return nil, inputErrorf("%s %s: field %s: %v", op, kindName(kind), name, err)
		}
	}
	return p, nil
}

// webhookHeader is the X-Twilio-Webhook-Enabled value for o (nil: not sent).
func webhookHeader(o CallOptions) *string {
	if !o.WebhookEnabled {
		return nil
	}
	on := "true"
	return &on
}

// ---- services ----

const servicesAccountBucket = "services"

var serviceAdapter = &kindAdapter{
	kind:            resource.KindService,
	collectionRoute: "/v1/Services",
	itemRoute:       "/v1/Services/{Sid}",
	limiterKey:      func(string) string { return servicesAccountBucket },
	firstPage: func(api *openapi.ApiService, _ string) (listPage, error) {
		resp, err := api.PageService(&openapi.ListServiceParams{PageSize: pageSizeOf(resource.KindService)}, "", "")
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
		params, err := buildParams(resource.KindService, "create", v, createFields(resource.KindService), map[string]paramSetter[openapi.CreateServiceParams]{
			resource.FieldFriendlyName: stringParam((*openapi.CreateServiceParams).SetFriendlyName),
		})
		if err != nil {
			return nil, err
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

// conversationParams is the form both create and update send.
type conversationParams struct {
	friendlyName, uniqueName, attributes, messagingServiceSID, state, timersInactive, timersClosed *string
	webhook                                                                                        *string
}

// toConversationParams checks v against the schema's fields op may write
// ("create" or "update").
func toConversationParams(op string, v resource.Values, o CallOptions) (conversationParams, error) {
	writable := createFields(resource.KindConversation)
	if op == "update" {
		writable = updateFields(resource.KindConversation)
	}
	if err := checkFields(resource.KindConversation, op, v, writable); err != nil {
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
	p.webhook = webhookHeader(o)
	return p, nil
}

var conversationAdapter = &kindAdapter{
	kind:            resource.KindConversation,
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
		p, err := toConversationParams("create", v, o)
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
		p, err := toConversationParams("update", v, o)
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
	setJSONIf(o.Values, resource.FieldAttributes, x.Attributes)
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
	params := &openapi.ListServiceConversationParams{PageSize: pageSizeOf(resource.KindConversation)}
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
