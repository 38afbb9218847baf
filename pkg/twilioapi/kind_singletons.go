package twilioapi

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/convsync/convsync/pkg/resource"
	openapi "github.com/twilio/twilio-go/rest/conversations/v1"
)

// ---- service singletons ----
//
// A service's configuration, notification settings and webhook settings
// exist with the service: they are never created or deleted, only read and
// updated. Their ID is their path (resource.SingletonID: /Services/IS…/
// Configuration); List returns the one object (one fetch). An update sends
// only the fields given: dotted leaf names become Twilio's dotted form keys
// (new_message.with_media.enabled → NewMessage.WithMedia.Enabled), booleans
// go as true/false, a set as one repeated key per member (Filters; the
// empty set as one empty key, to clear it), and the webhook method in upper
// case.
//
// Twilio documents no per-service rate limit for these writes; they wait on
// the service's bucket anyway, which is never wrong.

// singletonAdapter builds the adapter of a singleton kind from its fetch,
// its update (already checked and converted) and its conversion.
func singletonAdapter[T any, P any](kind resource.Kind, route string,
	fetch func(api *openapi.ApiService, serviceSID string) (*T, error),
	update func(api *openapi.ApiService, serviceSID string, p *P) (*T, error),
	setters map[string]paramSetter[P],
	observed func(x *T, serviceSID string) resource.Observed,
) *kindAdapter {
	get := func(api *openapi.ApiService, serviceSID string) (resource.Observed, error) {
		x, err := fetch(api, serviceSID)
		if err != nil {
			return resource.Observed{}, err
		}
		return observed(x, serviceSID), nil
	}
	return &kindAdapter{
		kind:             kind,
		singleton:        true,
		collectionRoute:  route,
		itemRoute:        route,
		limiterKey:       func(parentSID string) string { return parentSID },
		updateLimiterKey: func(parentSID string) string { return parentSID },
		firstPage: func(api *openapi.ApiService, serviceSID string) (listPage, error) {
			o, err := get(api, serviceSID)
			if err != nil {
				return listPage{}, err
			}
			return listPage{items: []resource.Observed{o}}, nil
		},
		nextPage: func(*openapi.ApiService, string) (listPage, error) {
			return listPage{}, inputErrorf("%s: a singleton has no pages", kindName(kind))
		},
		// id was checked against the singleton's path by the Client.
		fetch: func(api *openapi.ApiService, serviceSID, _ string) (resource.Observed, error) {
			return get(api, serviceSID)
		},
		update: func(serviceSID, _ string, v resource.Values, _ CallOptions) (sendFunc, error) {
			params, err := buildParams(kind, "update", v, updateFields(kind), setters)
			if err != nil {
				return nil, err
			}
			return func(api *openapi.ApiService) (resource.Observed, error) {
				x, err := update(api, serviceSID, params)
				if err != nil {
					return resource.Observed{}, err
				}
				return observed(x, serviceSID), nil
			}, nil
		},
		// create and delete stay nil: the Client refuses them.
	}
}

// singletonObserved is the common part of a singleton's Observed.
func singletonObserved(kind resource.Kind, chatServiceSID *string, serviceSID string, url *string) resource.Observed {
	o := resource.Observed{
		Kind:      kind,
		ParentSID: deref(chatServiceSID),
		Values:    resource.Values{},
		Extra:     resource.Values{},
	}
	if o.ParentSID == "" {
		o.ParentSID = serviceSID
	}
	o.SID = resource.SingletonID(kind, o.ParentSID)
	setIf(o.Extra, "url", url)
	return o
}

// ---- /v1/Services/{ServiceSid}/Configuration ----

type configurationParams = openapi.UpdateServiceConfigurationParams

var serviceConfigurationAdapter = singletonAdapter(resource.KindServiceConfiguration,
	"/v1/Services/{ServiceSid}/Configuration",
	(*openapi.ApiService).FetchServiceConfiguration,
	(*openapi.ApiService).UpdateServiceConfiguration,
	map[string]paramSetter[configurationParams]{
		"default_conversation_role_sid":         stringParam((*configurationParams).SetDefaultConversationRoleSid),
		"default_conversation_creator_role_sid": stringParam((*configurationParams).SetDefaultConversationCreatorRoleSid),
		"default_chat_service_role_sid":         stringParam((*configurationParams).SetDefaultChatServiceRoleSid),
		"reachability_enabled":                  boolParam((*configurationParams).SetReachabilityEnabled),
	},
	func(x *openapi.ConversationsV1ServiceConfiguration, serviceSID string) resource.Observed {
		o := singletonObserved(resource.KindServiceConfiguration, x.ChatServiceSid, serviceSID, x.Url)
		setIf(o.Values, "default_conversation_role_sid", x.DefaultConversationRoleSid)
		setIf(o.Values, "default_conversation_creator_role_sid", x.DefaultConversationCreatorRoleSid)
		setIf(o.Values, "default_chat_service_role_sid", x.DefaultChatServiceRoleSid)
		setBoolIf(o.Values, "reachability_enabled", x.ReachabilityEnabled)
		return o
	})

// ---- /v1/Services/{ServiceSid}/Configuration/Notifications ----

type notificationParams = openapi.UpdateServiceNotificationParams

var serviceNotificationsAdapter = singletonAdapter(resource.KindServiceNotifications,
	"/v1/Services/{ServiceSid}/Configuration/Notifications",
	(*openapi.ApiService).FetchServiceNotification,
	(*openapi.ApiService).UpdateServiceNotification,
	map[string]paramSetter[notificationParams]{
		"log_enabled":                        boolParam((*notificationParams).SetLogEnabled),
		"new_message.enabled":                boolParam((*notificationParams).SetNewMessageEnabled),
		"new_message.template":               stringParam((*notificationParams).SetNewMessageTemplate),
		"new_message.sound":                  stringParam((*notificationParams).SetNewMessageSound),
		"new_message.badge_count_enabled":    boolParam((*notificationParams).SetNewMessageBadgeCountEnabled),
		"new_message.with_media.enabled":     boolParam((*notificationParams).SetNewMessageWithMediaEnabled),
		"new_message.with_media.template":    stringParam((*notificationParams).SetNewMessageWithMediaTemplate),
		"added_to_conversation.enabled":      boolParam((*notificationParams).SetAddedToConversationEnabled),
		"added_to_conversation.template":     stringParam((*notificationParams).SetAddedToConversationTemplate),
		"added_to_conversation.sound":        stringParam((*notificationParams).SetAddedToConversationSound),
		"removed_from_conversation.enabled":  boolParam((*notificationParams).SetRemovedFromConversationEnabled),
		"removed_from_conversation.template": stringParam((*notificationParams).SetRemovedFromConversationTemplate),
		"removed_from_conversation.sound":    stringParam((*notificationParams).SetRemovedFromConversationSound),
	},
	func(x *openapi.ConversationsV1ServiceNotification, serviceSID string) resource.Observed {
		o := singletonObserved(resource.KindServiceNotifications, x.ChatServiceSid, serviceSID, x.Url)
		setBoolIf(o.Values, "log_enabled", x.LogEnabled)
		schema := resource.Schema(resource.KindServiceNotifications)
		for name, block := range map[string]*interface{}{
			"new_message":               x.NewMessage,
			"added_to_conversation":     x.AddedToConversation,
			"removed_from_conversation": x.RemovedFromConversation,
		} {
			if block != nil {
				flattenLeaves(schema, name, *block, o.Values, o.Extra)
			}
		}
		return o
	})

// flattenLeaves puts the leaves of an untyped nested object (as twilio-go
// decodes one: map[string]interface{}) under dotted names: booleans as
// "true"/"false", strings as they are, anything else as JSON.
// Null leaves are absent. A leaf the schema knows goes to values, any other
// to extra (Twilio may add settings convsync does not manage).
func flattenLeaves(schema *resource.KindSchema, name string, x any, values, extra resource.Values) {
	var s string
	switch x := x.(type) {
	case nil:
		return
	case map[string]interface{}:
		keys := make([]string, 0, len(x))
		for key := range x {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			flattenLeaves(schema, name+"."+key, x[key], values, extra)
		}
		return
	case bool:
		s = strconv.FormatBool(x)
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	default: // a list, or anything twilio-go may decode in future
		raw, _ := json.Marshal(x)
		s = string(raw)
	}
	if schema.Field(name) != nil {
		values[name] = s
	} else {
		extra[name] = s
	}
}

// ---- /v1/Services/{ServiceSid}/Configuration/Webhooks ----

type webhookParams = openapi.UpdateServiceWebhookConfigurationParams

var serviceWebhooksAdapter = singletonAdapter(resource.KindServiceWebhooks,
	"/v1/Services/{ServiceSid}/Configuration/Webhooks",
	(*openapi.ApiService).FetchServiceWebhookConfiguration,
	(*openapi.ApiService).UpdateServiceWebhookConfiguration,
	map[string]paramSetter[webhookParams]{
		"pre_webhook_url":  stringParam((*webhookParams).SetPreWebhookUrl),
		"post_webhook_url": stringParam((*webhookParams).SetPostWebhookUrl),
		"method":           upperParam((*webhookParams).SetMethod),
		"filters":          clearableSetParam((*webhookParams).SetFilters),
	},
	func(x *openapi.ConversationsV1ServiceWebhookConfiguration, serviceSID string) resource.Observed {
		o := singletonObserved(resource.KindServiceWebhooks, x.ChatServiceSid, serviceSID, x.Url)
		setIf(o.Values, "pre_webhook_url", x.PreWebhookUrl)
		setIf(o.Values, "post_webhook_url", x.PostWebhookUrl)
		if x.Method != nil {
			o.Values["method"] = strings.ToUpper(*x.Method) // post and POST never diff
		}
		setSetIf(o.Values, "filters", x.Filters)
		return o
	})
