package resource

import (
	"fmt"
	"net/url"
	"time"
)

// The kinds convsync manages, as data. Facts: ../shared/twilio-notes.md
// (services, conversations) and ../shared/twilio-kinds.md (the rest).

// Field names shared by several kinds, as written in specs, state and plans.
const (
	FieldFriendlyName        = "friendly_name"
	FieldUniqueName          = "unique_name"
	FieldAttributes          = "attributes"
	FieldMessagingServiceSID = "messaging_service_sid"
	FieldState               = "state"
	FieldTimersInactive      = "timers.inactive"
	FieldTimersClosed        = "timers.closed"
	FieldIdentity            = "identity"
	FieldRoleType            = "type"
	FieldPermissions         = "permissions"
	FieldRoleSID             = "role_sid"
)

// Conversation states.
const (
	StateActive   = "active"
	StateInactive = "inactive"
	StateClosed   = "closed"
)

// Twilio's minimum timers (errors 50375, 50376).
const (
	MinInactiveTimer = time.Minute
	MinClosedTimer   = 10 * time.Minute
)

func sidCheck(prefix, what string) func(string) error {
	return func(s string) error {
		if !IsSID(s, prefix) {
			return fmt.Errorf("%q is not a %s SID: expected %s followed by 32 hexadecimal digits", s, what, prefix)
		}
		return nil
	}
}

func minDuration(minimum time.Duration, text string, code int) func(string) error {
	return func(s string) error {
		d, err := ParseISODuration(s)
		if err != nil {
			return err
		}
		if d < minimum {
			return fmt.Errorf("%s is shorter than Twilio's minimum of %s (error %d)", s, text, code)
		}
		return nil
	}
}

func notSIDLike(s string) error {
	if LooksLikeSID(s) {
		return fmt.Errorf("%q looks like a Twilio SID (two letters and 32 hex digits); Twilio refuses such unique names (error 50390)", s)
	}
	return nil
}

// webhookURL accepts absolute http and https URLs, as Twilio does.
func webhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL such as https://hooks.example.com/conversations", s)
	}
	return nil
}

var serviceSchema = &KindSchema{
	WebhookHeader: true,
	Kind:          KindService,
	Plural:        "services",
	SIDPrefix:     "IS",
	Collection:    "Services",
	ListPageSize:  100,
	Fields: []FieldSchema{
		// No update endpoint: a new friendly_name means a new service.
		{Name: FieldFriendlyName, Type: TypeString, Required: true, ForcesReplace: true, NotEmpty: true, MaxLength: 256},
	},
	DeleteWarning: "deleting a service deletes every conversation, user and role inside it",
}

// RolePermissions are the permission values Twilio documents. Which apply
// to which role type is UNVERIFIED (../shared/twilio-kinds.md §3.4), so
// both types accept all of them and Twilio has the last word (50104).
var RolePermissions = []string{
	"addNonChatParticipant", "addParticipant", "createConversation", "deleteAnyMessage",
	"deleteConversation", "deleteOwnMessage", "editAnyMessage", "editAnyMessageAttributes",
	"editAnyParticipantAttributes", "editAnyUserInfo", "editConversationAttributes",
	"editConversationName", "editNotificationLevel", "editOwnMessage", "editOwnMessageAttributes",
	"editOwnParticipantAttributes", "editOwnUserInfo", "joinConversation", "leaveConversation",
	"removeParticipant", "sendMediaMessage", "sendMessage",
}

var roleSchema = &KindSchema{
	Kind:         KindRole,
	Plural:       "roles",
	SIDPrefix:    "RL",
	Parent:       KindService,
	Collection:   "Roles",
	ListPageSize: 50,
	Fields: []FieldSchema{
		// Twilio's update takes only Permission: the rest is immutable.
		{Name: FieldFriendlyName, Type: TypeString, Required: true, ForcesReplace: true, NotEmpty: true, MaxLength: 256},
		{Name: FieldRoleType, Type: TypeString, Required: true, ForcesReplace: true, Enum: []string{"conversation", "service"}, FoldCase: true},
		{Name: FieldPermissions, Type: TypeSet, Required: true, NotEmpty: true, Enum: RolePermissions},
	},
}

var userSchema = &KindSchema{
	WebhookHeader:   true,
	Kind:            KindUser,
	Plural:          "users",
	SIDPrefix:       "US",
	Parent:          KindService,
	Collection:      "Users",
	ListPageSize:    50,
	NaturalKey:      FieldIdentity,
	NaturalKeyError: "50201",
	Fields: []FieldSchema{
		// Unique per service (50201), case-sensitive; update does not take it.
		{Name: FieldIdentity, Type: TypeString, Required: true, ForcesReplace: true, NotEmpty: true, MaxLength: 256},
		{Name: FieldFriendlyName, Type: TypeString, NotEmpty: true, MaxLength: 256, Unset: "", UnsetKnown: true},
		{Name: FieldAttributes, Type: TypeJSON, Unset: "{}", UnsetKnown: true},
		{Name: FieldRoleSID, Type: TypeRef, Ref: KindRole, RefName: "role", RefMust: serviceRole, Check: sidCheck("RL", "role")},
	},
}

var conversationSchema = &KindSchema{
	WebhookHeader:   true,
	Kind:            KindConversation,
	Plural:          "conversations",
	SIDPrefix:       "CH",
	Parent:          KindService,
	Collection:      "Conversations",
	ListPageSize:    100,
	NaturalKey:      FieldUniqueName,
	NaturalKeyError: "50353",
	ListsByDate:     true,
	Fields: []FieldSchema{
		{Name: FieldUniqueName, Type: TypeString, NotEmpty: true, MaxLength: 256, Check: notSIDLike, Unset: "", UnsetKnown: true},
		{Name: FieldFriendlyName, Type: TypeString, NotEmpty: true, MaxLength: 256, Unset: "", UnsetKnown: true},
		{Name: FieldAttributes, Type: TypeJSON, Unset: "{}", UnsetKnown: true},
		// It cannot be cleared: leave the field out to leave it unmanaged.
		{Name: FieldMessagingServiceSID, Type: TypeString, Check: sidCheck("MG", "messaging service")},
		{Name: FieldState, Type: TypeString, Enum: []string{StateActive, StateInactive, StateClosed}},
		{Name: FieldTimersInactive, Type: TypeDuration, WriteOnly: true, Check: minDuration(MinInactiveTimer, "1 minute (PT1M)", 50375)},
		{Name: FieldTimersClosed, Type: TypeDuration, WriteOnly: true, Check: minDuration(MinClosedTimer, "10 minutes (PT10M)", 50376)},
	},
	Rules: conversationRules,
}

// A user's role and the service's chat-service role are service roles; the
// conversation defaults are conversation roles (INFERRED from Twilio's
// field descriptions, ../shared/twilio-kinds.md §3.1).
var (
	serviceRole      = map[string]string{FieldRoleType: "service"}
	conversationRole = map[string]string{FieldRoleType: "conversation"}
)

var serviceConfigurationSchema = &KindSchema{
	Kind:       KindServiceConfiguration,
	Plural:     "service configurations",
	Parent:     KindService,
	Collection: "Configuration",
	Singleton:  true,
	Fields: []FieldSchema{
		{Name: "default_conversation_role_sid", Type: TypeRef, Ref: KindRole, RefName: "default_conversation_role", RefMust: conversationRole, Check: sidCheck("RL", "role")},
		{Name: "default_conversation_creator_role_sid", Type: TypeRef, Ref: KindRole, RefName: "default_conversation_creator_role", RefMust: conversationRole, Check: sidCheck("RL", "role")},
		{Name: "default_chat_service_role_sid", Type: TypeRef, Ref: KindRole, RefName: "default_chat_service_role", RefMust: serviceRole, Check: sidCheck("RL", "role")},
		{Name: "reachability_enabled", Type: TypeBool},
	},
}

func notificationBlock(name string, extra ...FieldSchema) []FieldSchema {
	out := []FieldSchema{
		{Name: name + ".enabled", Type: TypeBool},
		{Name: name + ".template", Type: TypeString, MaxLength: 1024},
		{Name: name + ".sound", Type: TypeString, MaxLength: 256},
	}
	return append(out, extra...)
}

var serviceNotificationsSchema = &KindSchema{
	Kind:       KindServiceNotifications,
	Plural:     "service notification settings",
	Parent:     KindService,
	Collection: "Configuration/Notifications",
	Singleton:  true,
	Fields: concatFields(
		[]FieldSchema{{Name: "log_enabled", Type: TypeBool}},
		notificationBlock("new_message",
			FieldSchema{Name: "new_message.badge_count_enabled", Type: TypeBool},
			FieldSchema{Name: "new_message.with_media.enabled", Type: TypeBool},
			FieldSchema{Name: "new_message.with_media.template", Type: TypeString, MaxLength: 1024}),
		notificationBlock("added_to_conversation"),
		notificationBlock("removed_from_conversation"),
	),
}

// ServiceWebhookFilters are the events a service's webhooks may subscribe
// to (no onUser* events at service level).
var ServiceWebhookFilters = []string{
	"onConversationAdd", "onConversationAdded", "onConversationRemove", "onConversationRemoved",
	"onConversationStateUpdated", "onConversationUpdate", "onConversationUpdated",
	"onDeliveryUpdated",
	"onMessageAdd", "onMessageAdded", "onMessageRemove", "onMessageRemoved", "onMessageUpdate", "onMessageUpdated",
	"onParticipantAdd", "onParticipantAdded", "onParticipantRemove", "onParticipantRemoved", "onParticipantUpdate", "onParticipantUpdated",
}

var serviceWebhooksSchema = &KindSchema{
	Kind:       KindServiceWebhooks,
	Plural:     "service webhook settings",
	Parent:     KindService,
	Collection: "Configuration/Webhooks",
	Singleton:  true,
	Fields: []FieldSchema{
		{Name: "pre_webhook_url", Type: TypeString, NotEmpty: true, MaxLength: 2048, Check: webhookURL},
		{Name: "post_webhook_url", Type: TypeString, NotEmpty: true, MaxLength: 2048, Check: webhookURL},
		{Name: "method", Type: TypeString, Enum: []string{"GET", "POST"}, FoldCase: true},
		{Name: "filters", Type: TypeSet, Enum: ServiceWebhookFilters},
	},
}

func concatFields(lists ...[]FieldSchema) []FieldSchema {
	var out []FieldSchema
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
