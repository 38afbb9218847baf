package resource

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The account-level kinds (../shared/twilio-kinds.md §3.8–§3.11): they have
// no parent. Configuration and AccountWebhooks are singletons of the
// account (addressed as plain "configuration" and "account_webhooks");
// AddressConfiguration and PushCredential are collections of the account.

const (
	KindConfiguration        Kind = "Configuration"
	KindAccountWebhooks      Kind = "AccountWebhooks"
	KindAddressConfiguration Kind = "AddressConfiguration"
	KindPushCredential       Kind = "PushCredential"
)

// Field names of the account kinds that other code refers to.
const (
	FieldAddress          = "address"
	FieldAddressType      = "type"
	FieldAutoCreationType = "auto_creation.type"
	FieldCredentialType   = "type"
)

var configurationSchema = &KindSchema{
	Kind:       KindConfiguration,
	Plural:     "account configurations",
	Collection: "Configuration",
	Singleton:  true,
	Fields: []FieldSchema{
		// DefaultChatServiceSid: the service the short /v1/Conversations
		// paths act on, and where auto-created conversations go when an
		// address names none.
		{Name: "default_service_sid", Type: TypeRef, Ref: KindService, RefName: "default_service", Check: sidCheck("IS", "conversation service")},
		{Name: "default_messaging_service_sid", Type: TypeString, Check: sidCheck("MG", "messaging service")},
		// Twilio returns the timers, so they are read back and compared as
		// durations (PT60M == PT1H); whether Twilio rewrites them is
		// UNVERIFIED (§3.8).
		{Name: "default_inactive_timer", Type: TypeDuration, Check: minDuration(MinInactiveTimer, "1 minute (PT1M)", 50375)},
		{Name: "default_closed_timer", Type: TypeDuration, Check: minDuration(MinClosedTimer, "10 minutes (PT10M)", 50376)},
	},
}

// AccountWebhookFilters are the events the account's webhooks may subscribe
// to: the service ones and three user events (§3.9).
var AccountWebhookFilters = append(append([]string(nil), ServiceWebhookFilters...), "onUserAdded", "onUserUpdate", "onUserUpdated")

// FlexTargetWarning is shown on a plan step that routes the account's
// conversations to Flex.
const FlexTargetWarning = "target flex routes every conversation of the account to Flex instead of the webhook URLs: check that this account runs Flex"

var accountWebhooksSchema = &KindSchema{
	Kind:       KindAccountWebhooks,
	Plural:     "account webhook settings",
	Collection: "Configuration/Webhooks",
	Singleton:  true,
	Fields: []FieldSchema{
		{Name: FieldWebhookTarget, Type: TypeString, Enum: []string{"webhook", "flex"}, FoldCase: true},
		{Name: "pre_webhook_url", Type: TypeString, NotEmpty: true, MaxLength: 2048, Check: webhookURL},
		{Name: "post_webhook_url", Type: TypeString, NotEmpty: true, MaxLength: 2048, Check: webhookURL},
		{Name: "method", Type: TypeString, Enum: []string{"GET", "POST"}, FoldCase: true},
		{Name: "filters", Type: TypeSet, Enum: AccountWebhookFilters},
	},
	Rules: &KindRules{
		Warnings: func(want Values, changed []string) []string {
			for _, name := range changed {
				if name == FieldWebhookTarget && want[name] == "flex" {
					return []string{FlexTargetWarning}
				}
			}
			return nil
		},
	},
}

// AddressTypes are the address types Twilio lists (case-insensitive input).
var AddressTypes = []string{"sms", "whatsapp", "messenger", "gbm", "email", "rcs", "apple", "chat"}

// AutoCreationWebhookFilters are the events an auto-created conversation's
// webhook may subscribe to (§3.10).
var AutoCreationWebhookFilters = []string{
	"onConversationRemoved", "onConversationStateUpdated", "onConversationUpdated", "onDeliveryUpdated",
	"onMessageAdded", "onMessageRemoved", "onMessageUpdated",
	"onParticipantAdded", "onParticipantRemoved", "onParticipantUpdated",
}

// autoCreationOnly names the auto_creation keys that only one integration
// type takes: Twilio returns only its type's keys, so a key of another type
// would be a change the plan shows for ever.
var autoCreationOnly = map[string]string{
	"auto_creation.webhook_url":        "webhook",
	"auto_creation.webhook_method":     "webhook",
	"auto_creation.webhook_filters":    "webhook",
	"auto_creation.studio_flow_sid":    "studio",
	"auto_creation.studio_retry_count": "studio",
}

func studioRetryCount(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 3 {
		return fmt.Errorf("%s is not between 0 and 3", s)
	}
	return nil
}

func countryCode(s string) error {
	if len(s) != 2 || strings.ToUpper(s) != s || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return fmt.Errorf("%q is not an ISO 3166-1 alpha-2 country code such as US", s)
	}
	return nil
}

var addressConfigurationSchema = &KindSchema{
	Kind:         KindAddressConfiguration,
	Plural:       "address configurations",
	SIDPrefix:    "IG",
	Collection:   "Configuration/Addresses",
	ListPageSize: 50,
	NaturalKey:   FieldAddress,
	GoneNote:     "Twilio deletes an address configuration itself when its number is released or ported out (warning 50610)",
	Fields: []FieldSchema{
		{Name: FieldAddressType, Type: TypeString, Required: true, ForcesReplace: true, Enum: AddressTypes, FoldCase: true},
		{Name: FieldAddress, Type: TypeString, Required: true, ForcesReplace: true, NotEmpty: true, MaxLength: 256},
		{Name: "address_country", Type: TypeString, ForcesReplace: true, Check: countryCode},
		{Name: FieldFriendlyName, Type: TypeString, NotEmpty: true, MaxLength: 256, Unset: "", UnsetKnown: true},
		{Name: "auto_creation.enabled", Type: TypeBool},
		{Name: FieldAutoCreationType, Type: TypeString, Enum: []string{"default", "webhook", "studio"}, FoldCase: true},
		{Name: "auto_creation.conversation_service_sid", Type: TypeRef, Ref: KindService, RefName: "auto_creation.service", Check: sidCheck("IS", "conversation service")},
		{Name: "auto_creation.webhook_url", Type: TypeString, NotEmpty: true, MaxLength: 2048, Check: webhookURL},
		// Twilio's request enum is lowercase, its answers upper case (§1.7).
		{Name: "auto_creation.webhook_method", Type: TypeString, Enum: []string{"GET", "POST"}, FoldCase: true},
		{Name: "auto_creation.webhook_filters", Type: TypeSet, Enum: AutoCreationWebhookFilters},
		{Name: "auto_creation.studio_flow_sid", Type: TypeString, Check: sidCheck("FW", "Studio flow")},
		{Name: "auto_creation.studio_retry_count", Type: TypeInt, Check: studioRetryCount},
	},
	Rules: &KindRules{Validate: validateAddressConfiguration},
}

// validateAddressConfiguration refuses auto_creation keys of another type
// than the spec's, and a type without the keys it needs.
func validateAddressConfiguration(set Values) []Invalid {
	typ, typed := set[FieldAutoCreationType]
	var out []Invalid
	for _, name := range set.Keys() {
		only, ok := autoCreationOnly[name]
		if !ok || (typed && typ == only) {
			continue
		}
		if !typed {
			out = append(out, Invalid{Field: name, Message: fmt.Sprintf("only an auto_creation of type %s takes it: add type: %s to auto_creation", only, only)})
			continue
		}
		out = append(out, Invalid{Field: name, Message: fmt.Sprintf("only an auto_creation of type %s takes it, and this one is of type %s: remove it, or change the type", only, typ)})
	}
	if typ == "studio" {
		if _, ok := set["auto_creation.studio_flow_sid"]; !ok {
			out = append(out, Invalid{Field: "auto_creation.studio_flow_sid", Message: "missing; an auto_creation of type studio needs studio_flow_sid: FW… (Twilio error 45763)"})
		}
	}
	if typ == "webhook" {
		if _, ok := set["auto_creation.webhook_url"]; !ok {
			out = append(out, Invalid{Field: "auto_creation.webhook_url", Message: "missing; an auto_creation of type webhook needs webhook_url"})
		}
	}
	return out
}

// credentialOnly names the credential fields that only one type takes.
var credentialOnly = map[string]string{
	"certificate": "apn",
	"private_key": "apn",
	"sandbox":     "apn",
	"secret":      "fcm",
}

// credentialNeeds are the secrets a credential of each type needs.
var credentialNeeds = map[string][]string{
	"apn": {"certificate", "private_key"},
	"fcm": {"secret"},
}

var pushCredentialSchema = &KindSchema{
	Kind:         KindPushCredential,
	Plural:       "push credentials",
	SIDPrefix:    "CR",
	Collection:   "Credentials",
	ListPageSize: 100,
	Fields: []FieldSchema{
		// Twilio's update takes Type, but whether it honours a switch is
		// UNVERIFIED (§3.11): a new type means a new credential.
		{Name: FieldCredentialType, Type: TypeString, Required: true, ForcesReplace: true, Enum: []string{"apn", "fcm"}, FoldCase: true},
		{Name: FieldFriendlyName, Type: TypeString, NotEmpty: true, MaxLength: 64, Unset: "", UnsetKnown: true},
		// Twilio takes a boolean and answers the string "True"/"False".
		{Name: "sandbox", Type: TypeBool},
		{Name: "certificate", Type: TypeString, Secret: true, WriteOnly: true},
		{Name: "private_key", Type: TypeString, Secret: true, WriteOnly: true},
		{Name: "secret", Type: TypeString, Secret: true, WriteOnly: true},
	},
	DeleteWarning: "apps whose access tokens name this credential's SID get no push notifications until they use the new one",
	Rules:         &KindRules{Validate: validatePushCredential},
}

// validatePushCredential refuses fields of another type than the
// credential's, and a type without the secrets it needs.
func validatePushCredential(set Values) []Invalid {
	typ := set[FieldCredentialType]
	var out []Invalid
	names := make([]string, 0, len(credentialOnly))
	for name := range credentialOnly {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := set[name]; ok && typ != "" && credentialOnly[name] != typ {
			out = append(out, Invalid{Field: name, Message: fmt.Sprintf("only a credential of type %s takes it, and this one is of type %s", credentialOnly[name], typ)})
		}
	}
	for _, name := range credentialNeeds[typ] {
		if _, ok := set[name]; !ok {
			out = append(out, Invalid{Field: name, Message: fmt.Sprintf("missing; a credential of type %s needs %s: {file: PATH} or {env: NAME}", typ, name)})
		}
	}
	return out
}
