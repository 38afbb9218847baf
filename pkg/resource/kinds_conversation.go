package resource

import (
	"fmt"
	"slices"
	"strings"
)

// The kinds that live in a conversation: participants and
// conversation-scoped webhooks. Facts: ../shared/twilio-kinds.md §3.6, §3.7.

const (
	KindParticipant         Kind = "Participant"
	KindConversationWebhook Kind = "ConversationWebhook"
)

// Participant fields.
const (
	FieldBindingAddress          = "messaging_binding.address"
	FieldBindingProxyAddress     = "messaging_binding.proxy_address"
	FieldBindingProjectedAddress = "messaging_binding.projected_address"
)

// Conversation webhook fields.
const (
	FieldWebhookTarget      = "target"
	FieldWebhookURL         = "url"
	FieldWebhookMethod      = "method"
	FieldWebhookFilters     = "filters"
	FieldWebhookTriggers    = "triggers"
	FieldWebhookFlowSID     = "flow_sid"
	FieldWebhookReplayAfter = "replay_after"
)

// Twilio's limits per conversation
// (https://static1.twilio.com/docs/conversations/conversations-limits).
const (
	MaxParticipants          = 1000
	MaxNonChatParticipants   = 50
	MaxConversationWebhooks  = 5
	MaxWebhookTriggerKeyword = 5
)

var participantSchema = &KindSchema{
	WebhookHeader: true,
	Kind:          KindParticipant,
	Plural:        "participants",
	SIDPrefix:     "MB",
	Parent:        KindConversation,
	Collection:    "Participants",
	ListPageSize:  100,
	// A chat participant is its identity in the conversation (50433); a
	// messaging participant its address and proxy address (50437).
	NaturalKey:      FieldIdentity,
	NaturalKeyAlt:   []string{FieldBindingAddress, FieldBindingProxyAddress},
	NaturalKeyError: "50433 / 50437",
	Limits: []Limit{
		{Max: MaxParticipants, What: "participants"},
		{Max: MaxNonChatParticipants, What: "non-chat (SMS, WhatsApp) participants", Counts: isMessagingParticipant},
	},
	Fields: []FieldSchema{
		// Twilio takes a new identity on update (a chat participant only).
		{Name: FieldIdentity, Type: TypeString, NotEmpty: true, MaxLength: 256},
		// The address is not an update parameter; a new proxy address on an
		// existing participant fails with 50441 (what users report of
		// Twilio), so both change by replacing the participant.
		{Name: FieldBindingAddress, Type: TypeString, ForcesReplace: true, NotEmpty: true, MaxLength: 256},
		{Name: FieldBindingProxyAddress, Type: TypeString, ForcesReplace: true, NotEmpty: true, MaxLength: 256},
		{Name: FieldBindingProjectedAddress, Type: TypeString, NotEmpty: true, MaxLength: 256},
		{Name: FieldAttributes, Type: TypeJSON, Unset: "{}", UnsetKnown: true, Check: maxBytes(4096)},
		{Name: FieldRoleSID, Type: TypeRef, Ref: KindRole, RefName: "role", RefMust: conversationRole, Check: sidCheck("RL", "role")},
	},
	Rules: &KindRules{Validate: validateParticipant, Reshapes: participantReshapes, CreatesImplicitly: &ImplicitCreate{Field: FieldIdentity, Kind: KindUser}},
}

// participantReshapes: a spec that turns a messaging participant into a
// chat one no longer manages the binding, so nothing forces the
// replacement, and Twilio refuses an identity on a messaging participant.
// (The other way round, the new binding address forces it.)
func participantReshapes(want, have Values) string {
	if want[FieldIdentity] != "" && have[FieldBindingAddress] != "" {
		return fmt.Sprintf("a messaging participant (%s) cannot become a chat participant (identity %s) in place", have[FieldBindingAddress], want[FieldIdentity])
	}
	return ""
}

func isMessagingParticipant(v Values) bool { return v[FieldBindingAddress] != "" }

// validateParticipant: exactly one of identity (chat) or a binding address
// (SMS, WhatsApp); the binding's two addresses differ (50409) and are on
// one channel (50414); a projected address belongs to a chat participant.
func validateParticipant(v Values) []Invalid {
	identity, address := v[FieldIdentity], v[FieldBindingAddress]
	proxy, projected := v[FieldBindingProxyAddress], v[FieldBindingProjectedAddress]
	var out []Invalid
	switch {
	case identity != "" && address != "":
		out = append(out, Invalid{FieldBindingAddress, "a participant is either a chat participant (identity) or a messaging one (messaging_binding.address), not both"})
	case identity == "" && address == "":
		out = append(out, Invalid{FieldIdentity, "missing; a participant needs identity (a chat participant) or messaging_binding.address (an SMS or WhatsApp participant)"})
	}
	if proxy != "" && address == "" {
		out = append(out, Invalid{FieldBindingProxyAddress, "is set without messaging_binding.address; only a messaging participant has a proxy address"})
	}
	if projected != "" && address != "" {
		out = append(out, Invalid{FieldBindingProjectedAddress, "belongs to a chat participant in a Group MMS; a messaging participant has a proxy address instead"})
	}
	if address != "" && proxy != "" {
		if address == proxy {
			out = append(out, Invalid{FieldBindingProxyAddress, fmt.Sprintf("%q is also the address; Twilio refuses a binding whose address is its proxy address (error 50409)", proxy)})
		} else if a, p := channelOf(address), channelOf(proxy); a != p {
			out = append(out, Invalid{FieldBindingProxyAddress, fmt.Sprintf("%q is on channel %s but the address %q is on %s; Twilio requires both on one channel (error 50414)", proxy, p, address, a)})
		}
	}
	return out
}

// channelOf is the channel an address is on: its prefix (whatsapp:,
// messenger:, rcs:, …), or sms for a plain phone number.
func channelOf(address string) string {
	if prefix, _, ok := strings.Cut(address, ":"); ok && prefix != "" {
		return strings.ToLower(prefix)
	}
	return "sms"
}

// ConversationWebhookFilters are the events a conversation-scoped webhook may
// subscribe to. Twilio supports only post-event webhooks at this scope; it
// does not enumerate the list (UNVERIFIED), so convsync takes the post-event
// names of the service-level list.
var ConversationWebhookFilters = []string{
	"onConversationAdded", "onConversationRemoved", "onConversationStateUpdated", "onConversationUpdated",
	"onDeliveryUpdated",
	"onMessageAdded", "onMessageRemoved", "onMessageUpdated",
	"onParticipantAdded", "onParticipantRemoved", "onParticipantUpdated",
}

// Webhook targets.
const (
	TargetWebhook = "webhook"
	TargetTrigger = "trigger"
	TargetStudio  = "studio"
)

var conversationWebhookSchema = &KindSchema{
	Kind:         KindConversationWebhook,
	Plural:       "conversation webhooks",
	SIDPrefix:    "WH",
	Parent:       KindConversation,
	Collection:   "Webhooks",
	ListPageSize: 5,
	Limits: []Limit{
		{Max: MaxConversationWebhooks, What: "webhooks", Code: "50361"},
	},
	UniqueByContent: true,
	Fields: []FieldSchema{
		{Name: FieldWebhookTarget, Type: TypeString, Required: true, ForcesReplace: true, Enum: []string{TargetWebhook, TargetTrigger, TargetStudio}, FoldCase: true},
		{Name: FieldWebhookURL, Type: TypeString, NotEmpty: true, MaxLength: 2048, Check: webhookURL},
		{Name: FieldWebhookMethod, Type: TypeString, Enum: []string{"GET", "POST"}, FoldCase: true},
		{Name: FieldWebhookFilters, Type: TypeSet, NotEmpty: true, Enum: ConversationWebhookFilters},
		{Name: FieldWebhookTriggers, Type: TypeSet, NotEmpty: true, Check: maxMembers(MaxWebhookTriggerKeyword, "trigger keywords", 50362)},
		{Name: FieldWebhookFlowSID, Type: TypeString, Check: sidCheck("FW", "Studio flow")},
		// Create-only; whether Twilio shows it back is UNVERIFIED, so it is
		// compared with what convsync last sent, never with a read.
		{Name: FieldWebhookReplayAfter, Type: TypeInt, ForcesReplace: true, WriteOnly: true, Check: nonNegative},
	},
	Rules: &KindRules{Validate: validateConversationWebhook},
}

// validateConversationWebhook: each target has its own fields (Twilio's
// errors 50369, 50370, 50367), and the others do not apply.
func validateConversationWebhook(v Values) []Invalid {
	target := v[FieldWebhookTarget]
	need := map[string][]string{
		TargetWebhook: {FieldWebhookURL, FieldWebhookFilters},
		TargetTrigger: {FieldWebhookURL, FieldWebhookTriggers},
		TargetStudio:  {FieldWebhookFlowSID},
	}[target]
	allowed := map[string][]string{
		TargetWebhook: {FieldWebhookURL, FieldWebhookMethod, FieldWebhookFilters},
		TargetTrigger: {FieldWebhookURL, FieldWebhookMethod, FieldWebhookTriggers},
		TargetStudio:  {FieldWebhookFlowSID},
	}[target]
	if need == nil {
		return nil // the enum check reported it
	}
	code := map[string]string{FieldWebhookURL: " (error 50369)", FieldWebhookFilters: " (error 50370)", FieldWebhookFlowSID: " (error 50367)"}
	var out []Invalid
	for _, f := range need {
		if v[f] == "" {
			out = append(out, Invalid{f, fmt.Sprintf("missing; a webhook with target %s needs %s%s", target, f, code[f])})
		}
	}
	for _, f := range []string{FieldWebhookURL, FieldWebhookMethod, FieldWebhookFilters, FieldWebhookTriggers, FieldWebhookFlowSID} {
		if _, set := v[f]; set && !slices.Contains(allowed, f) {
			out = append(out, Invalid{f, fmt.Sprintf("does not apply to a webhook with target %s (it takes %s)", target, strings.Join(allowed, ", "))})
		}
	}
	return out
}

func maxBytes(n int) func(string) error {
	return func(s string) error {
		if len(s) > n {
			return fmt.Errorf("is %d bytes; Twilio's limit is %d", len(s), n)
		}
		return nil
	}
}

func maxMembers(n int, what string, code int) func(string) error {
	return func(s string) error {
		members, err := ParseSet(s)
		if err != nil {
			return err
		}
		if len(members) > n {
			return fmt.Errorf("has %d %s; Twilio allows at most %d (error %d)", len(members), what, n, code)
		}
		return nil
	}
}

func nonNegative(s string) error {
	if strings.HasPrefix(s, "-") {
		return fmt.Errorf("%s is negative; it is a message index (0 or more)", s)
	}
	return nil
}
