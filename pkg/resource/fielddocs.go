package resource

import (
	"errors"
	"fmt"
)

// The one-line description of every field, as editors show it (the JSON
// Schema of `convsync schema`) and docs/spec-format.md words it. They live
// here, apart from the field lists in kinds.go, so the lists stay readable;
// init copies each into its FieldSchema.Doc; a test fails when an entry
// names a kind or field that no longer exists.
//
// sidPrefixes names the two-letter prefix of string fields that hold the SID
// of something convsync does not manage (a messaging service): their Check
// already refuses other values; the schema turns the prefix into a pattern.
var (
	fieldDocs = map[Kind]map[string]string{
		KindService: {
			FieldFriendlyName: "The service's name. Services cannot be updated: a new friendly_name means a new service (and deleting a service deletes everything in it).",
		},
		KindRole: {
			FieldFriendlyName: "The role's name. Immutable: a change replaces the role.",
			FieldRoleType:     "conversation (what a participant may do in a conversation) or service (what a user may do in the service); any case. Immutable: a change replaces the role.",
			FieldPermissions:  "The permissions the role grants, spelled exactly; at least one. Order does not matter.",
		},
		KindUser: {
			FieldIdentity:     "The user's identity, unique in the service and compared exactly. Immutable: a change replaces the user.",
			FieldFriendlyName: "The user's display name.",
			FieldAttributes:   "A JSON object (a mapping, or a string holding JSON), at most 16 KB as compact JSON.",
			FieldRoleSID:      "The user's role, a service role: role names a Role of these specs, role_sid one convsync does not manage.",
		},
		KindConversation: {
			FieldUniqueName:          "Unique among the service's conversations; must not look like a Twilio SID.",
			FieldFriendlyName:        "The conversation's display name.",
			FieldAttributes:          "A JSON object (a mapping, or a string holding JSON), at most 16 KB as compact JSON.",
			FieldMessagingServiceSID: "The messaging service the conversation sends through (MG…). It cannot be cleared: leave it out to leave it unmanaged.",
			FieldState:               "active, inactive or closed. Closed is final: a closed conversation can only be replaced.",
			FieldTimersInactive:      "ISO 8601 duration (at least PT1M) after which an idle conversation becomes inactive.",
			FieldTimersClosed:        "ISO 8601 duration (at least PT10M) after which an idle conversation is closed.",
		},
		KindServiceConfiguration: {
			"default_conversation_role_sid":         "The role given to a user added to a conversation (a conversation role).",
			"default_conversation_creator_role_sid": "The role given to a conversation's creator (a conversation role).",
			"default_chat_service_role_sid":         "The role given to a user added to the service (a service role).",
			"reachability_enabled":                  "Whether user reachability (online status) is on; Twilio's default is false.",
		},
		KindServiceNotifications: {
			"log_enabled":                        "Whether Twilio logs push notifications.",
			"new_message.enabled":                "Send a push notification for a new message; Twilio's default is false.",
			"new_message.template":               "The notification text; Twilio's placeholders such as ${PARTICIPANT} and ${MESSAGE} are kept as written.",
			"new_message.sound":                  "The sound of the notification.",
			"new_message.badge_count_enabled":    "Show the unread count as a badge; Twilio's default is false.",
			"new_message.with_media.enabled":     "Send a push notification for a message with media; Twilio's default is false.",
			"new_message.with_media.template":    "The notification text for a message with media.",
			"added_to_conversation.enabled":      "Notify a user added to a conversation; Twilio's default is false.",
			"added_to_conversation.template":     "The notification text.",
			"added_to_conversation.sound":        "The sound of the notification.",
			"removed_from_conversation.enabled":  "Notify a user removed from a conversation; Twilio's default is false.",
			"removed_from_conversation.template": "The notification text.",
			"removed_from_conversation.sound":    "The sound of the notification.",
		},
		KindServiceWebhooks: {
			"pre_webhook_url":  "Absolute http(s) URL for pre-event hooks (on…Add, on…Update, on…Remove), which can block the action.",
			"post_webhook_url": "Absolute http(s) URL for post-event hooks (on…Added, on…Updated, …), which are notifications.",
			"method":           "GET or POST, any case; stored upper case.",
			"filters":          "The events Twilio sends, spelled exactly. Order does not matter.",
		},
	}
	sidPrefixes = map[Kind]map[string]string{
		KindConversation: {FieldMessagingServiceSID: "MG"},
	}
)

func init() { _ = applyFieldDocs() } // stale entries: TestFieldDocsNameExistingFields

// applyFieldDocs copies the tables into the schemas, filling only what a
// kind's own field list left empty. It returns the entries that name no
// existing kind or field (they are skipped).
func applyFieldDocs() error {
	var stale []error
	for kind, docs := range fieldDocs {
		for name, doc := range docs {
			if f := fieldOf(kind, name, &stale); f != nil && f.Doc == "" {
				f.Doc = doc
			}
		}
	}
	for kind, prefixes := range sidPrefixes {
		for name, prefix := range prefixes {
			if f := fieldOf(kind, name, &stale); f != nil && f.SIDPrefix == "" {
				f.SIDPrefix = prefix
			}
		}
	}
	return errors.Join(stale...)
}

func fieldOf(kind Kind, name string, stale *[]error) *FieldSchema {
	k := Schema(kind)
	if k == nil {
		*stale = append(*stale, fmt.Errorf("fielddocs.go: unknown kind %s", kind))
		return nil
	}
	f := k.Field(name)
	if f == nil {
		*stale = append(*stale, fmt.Errorf("fielddocs.go: %s has no field %s", kind, name))
	}
	return f
}
