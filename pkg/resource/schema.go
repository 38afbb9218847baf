package resource

import (
	"slices"
	"strings"
)

// FieldType says what a field holds, and so how it is parsed, compared,
// written to the state file and the JSON plan, and shown in a human plan.
//
// Inside convsync a field's value travels as its canonical text (Values is
// map[string]string): a string as itself; a JSON object, a set, a boolean
// and an integer as canonical JSON; a duration as upper-case ISO 8601; a
// reference as the SID it resolves to. Canonical text makes equality of
// equal meanings plain string equality in the common case; Equal still
// compares by meaning for values that did not pass through Canonical (what
// an older state file holds, what Twilio sends). The state file and the
// JSON plan carry real JSON values (arrays, objects, booleans, numbers),
// converted by JSONValue and FromJSON.
type FieldType string

const (
	TypeString FieldType = "string"
	// TypeJSON is a JSON object (attributes), compared by meaning.
	TypeJSON FieldType = "json"
	// TypeSet is a set of strings (role permissions, webhook filters): order
	// and repetition never matter.
	TypeSet FieldType = "set"
	// TypeDuration is an ISO 8601 duration (PT1H), compared by meaning.
	TypeDuration FieldType = "duration"
	TypeBool     FieldType = "bool"
	TypeInt      FieldType = "int"
	// TypeRef is the SID of another resource (a user's role_sid). A spec
	// names the target by address (under RefName: role: agent) or by SID
	// (under Name: role_sid: RL…).
	TypeRef FieldType = "ref"
)

// Nested objects (a notification block, a participant's messaging binding)
// are written as dotted leaf fields: new_message.with_media.enabled is one
// boolean field. Each leaf is diffed, managed and left unmanaged on its own;
// the spec loader reads them from nested YAML mappings, and the state file
// and the JSON plan nest them again (NestValues).

// FieldSchema is every rule about one field, in one place: the spec loader,
// the planner, the applier's adapters, the state file and the emulator's
// tests read them from here.
type FieldSchema struct {
	Name string
	Type FieldType
	// Required fields must be in a spec (Twilio requires them on create).
	Required bool
	// ForcesReplace: Twilio cannot update the field in place, so a change
	// means a new resource (a service's friendly_name, a role's type).
	ForcesReplace bool
	// WriteOnly fields are never returned by Twilio (timers): they are
	// compared with the value convsync last applied, as the state records it.
	WriteOnly bool
	// Secret fields (part 3: push credentials) are write-only and never
	// shown: plans, logs and errors print "(sensitive)".
	Secret bool
	// Enum lists the allowed values (for a set, the allowed members).
	Enum []string
	// FoldCase: Twilio accepts any case (Method: post or POST); the
	// canonical form is the Enum's spelling, so the two never diff.
	FoldCase bool
	// Ref is the kind a TypeRef field points at; RefName is the spec key
	// that names it by address ("role" for role_sid).
	Ref     Kind
	RefName string
	// RefMust holds field values the referenced resource must have (a
	// user's role must be of type service).
	RefMust map[string]string
	// Unset is what Twilio shows for the field when a create did not send
	// it, where that is known (UnsetKnown): a resource showing anything
	// else was not made by that create.
	Unset      string
	UnsetKnown bool
	// MaxLength bounds a string, in characters (0: only the global limit).
	MaxLength int
	// NotEmpty refuses "" (Twilio cannot reliably clear the field), and
	// for a set an empty set (Twilio requires at least one member).
	NotEmpty bool
	// Check holds further rules on the canonical value (minimums, SID
	// shapes); its error text is shown after the field's name.
	Check func(canonical string) error
	// Doc is a one-line description for error messages, docs and editors
	// (fielddocs.go fills it for the kinds of kinds.go).
	Doc string
	// SIDPrefix is, for a TypeString field holding the SID of something
	// convsync does not manage (messaging_service_sid), the SID's two-letter
	// prefix ("MG"); the JSON Schema turns it into a pattern.
	SIDPrefix string
}

// Equal compares a desired and an observed value of the field by meaning.
func (f *FieldSchema) Equal(desired, observed string) bool {
	if f.Secret {
		// Only fingerprints say whether two secrets are the same value.
		return secretsEqual(desired, observed)
	}
	if desired == observed {
		return true
	}
	switch f.Type {
	case TypeJSON:
		return JSONEqual(desired, observed)
	case TypeSet:
		a, errA := ParseSet(desired)
		b, errB := ParseSet(observed)
		return errA == nil && errB == nil && EncodeSet(a) == EncodeSet(b)
	case TypeDuration:
		a, errA := ParseISODuration(desired)
		b, errB := ParseISODuration(observed)
		return errA == nil && errB == nil && a == b
	case TypeString:
		if f.FoldCase {
			return strings.EqualFold(desired, observed)
		}
	}
	return false
}

// Nested reports whether the field is part of a nested object ("a.b").
func (f *FieldSchema) Nested() bool { return strings.Contains(f.Name, ".") }

// KindSchema is what every layer needs to know about a kind.
type KindSchema struct {
	Kind Kind
	// Plural names resources of the kind in messages ("conversations").
	Plural string
	// SIDPrefix is the two-letter prefix of the kind's SIDs ("IS", "CH").
	SIDPrefix string
	// Parent is the kind a resource of this kind lives in ("" for top level).
	// Parents nest to any depth: a kind's parent may have a parent.
	Parent Kind
	// Collection is the kind's path segment under its parent ("Roles"), as
	// in Twilio's paths and the import IDs.
	Collection string
	// Fields lists the fields a spec may manage, in display order.
	Fields []FieldSchema
	// NaturalKey, if set, is the field that identifies a resource inside its
	// parent (a conversation's unique_name, a user's identity). Claims ("taken
	// by a resource convsync does not own"), recognition of a create whose
	// answer was lost, and adoption use it. Without one, every readable field
	// is compared.
	NaturalKey string
	// NaturalKeyAlt, if set, are the fields that together identify a
	// resource whose NaturalKey field is not set: a messaging participant
	// has no identity, but its binding's address and proxy address are
	// unique in its conversation. KeyOf reads whichever applies.
	NaturalKeyAlt []string
	// NaturalKeyError is the error Twilio answers a taken natural key with
	// ("50353"), for messages.
	NaturalKeyError string
	// Singleton kinds exist as soon as their parent does (a service's
	// configuration): never created or deleted, only read and updated. Their
	// ID is their path (SingletonID).
	Singleton bool
	// WebhookHeader: Twilio takes X-Twilio-Webhook-Enabled on the kind's
	// writes, so specs may set webhook_enabled.
	WebhookHeader bool
	// ListsByDate: the kind's list takes StartDate/EndDate filters, so a
	// large parent can be listed as several day ranges at once.
	ListsByDate bool
	// ListPageSize is the largest page Twilio serves for the kind's list.
	ListPageSize int
	// DeleteWarning, if set, is shown on every plan step that deletes or
	// replaces a resource of this kind.
	DeleteWarning string
	// Limits bound how many resources of the kind one parent holds (five
	// webhooks per conversation): checked across all spec files, and at
	// plan time with the ones Twilio holds that convsync does not manage.
	Limits []Limit
	// UniqueByContent refuses two specs of the kind in one parent with the
	// same readable values: with no natural key, only its content tells a
	// resource apart, so convsync could not tell which one is which.
	UniqueByContent bool
	// Rules are the kind's own rules, that no other kind has (nil: none).
	Rules *KindRules
	// GoneNote, if set, explains on a plan step why a resource of the kind
	// may have vanished from Twilio without convsync (Twilio deletes some
	// on its own).
	GoneNote string
}

// Limit is a bound on the resources of one kind in one parent.
type Limit struct {
	Max int
	// Counts selects the resources the limit is about (nil: every one).
	Counts func(v Values) bool
	// What names them in messages ("webhooks", "non-chat participants").
	What string
	// Code is the error Twilio answers a resource over the limit with.
	Code string
}

// Applies reports whether the limit counts a resource with values v.
func (l *Limit) Applies(v Values) bool { return l.Counts == nil || l.Counts(v) }

// Invalid is one problem a kind's own rules find in a spec's values.
type Invalid struct {
	Field   string
	Message string
}

// HasNaturalKey reports whether resources of the kind have a natural key.
func (k *KindSchema) HasNaturalKey() bool { return k.NaturalKey != "" }

// KeyOf is the natural key of a resource with values v: its NaturalKey
// field, or else its NaturalKeyAlt fields joined by " / " ("" when v
// holds neither).
func (k *KindSchema) KeyOf(v Values) string {
	if k.NaturalKey == "" {
		return ""
	}
	if s := v[k.NaturalKey]; s != "" {
		return s
	}
	if len(k.NaturalKeyAlt) == 0 || v[k.NaturalKeyAlt[0]] == "" {
		return ""
	}
	var parts []string
	for _, f := range k.NaturalKeyAlt {
		if s := v[f]; s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " / ")
}

// KeyName names the natural key of a resource with values v, for messages:
// "identity", or "messaging_binding.address / messaging_binding.proxy_address".
func (k *KindSchema) KeyName(v Values) string {
	if v[k.NaturalKey] != "" || len(k.NaturalKeyAlt) == 0 || v[k.NaturalKeyAlt[0]] == "" {
		return k.NaturalKey
	}
	var parts []string
	for _, f := range k.NaturalKeyAlt {
		if v[f] != "" {
			parts = append(parts, f)
		}
	}
	return strings.Join(parts, " / ")
}

// KeyFetchable reports whether Twilio finds the resource with values v by
// its natural key in a path (a conversation's unique_name, a participant's
// identity); a key made of NaturalKeyAlt fields is found only by listing.
func (k *KindSchema) KeyFetchable(v Values) bool {
	return k.NaturalKey != "" && v[k.NaturalKey] != ""
}

// KindRules hold what Twilio does for one kind only. The planner and the
// applier call them; a kind without such rules leaves Rules nil.
type KindRules struct {
	// Explained drops, from the fields that differ, the ones Twilio's own
	// behaviour explains as the spec asked (a timer moved a conversation's
	// state). want is the spec's values, have Twilio's.
	Explained func(want, have Values, differing []string) []string
	// Finished reports a resource that must not be changed any more even
	// though its fields differ, as the spec asked (closed by its own timer).
	Finished func(want, have Values) bool
	// Frozen reports why a resource can no longer be updated, so a change
	// must replace it ("" when it can be updated).
	Frozen func(have Values) string
	// Reshapes reports why the change from have to want needs a new
	// resource although no ForcesReplace field the spec manages differs (a
	// messaging participant cannot become a chat one); "" when it does not.
	Reshapes func(want, have Values) string
	// SplitCreate divides the values of a create into what the create sends
	// and what an update must send right after (Twilio refuses to create a
	// closed conversation).
	SplitCreate func(v Values) (create, after Values)
	// CompleteUpdate adds to an update what Twilio requires to travel with
	// the fields sent (timers need a state). want and have may be nil.
	CompleteUpdate func(send, want, have Values)
	// Volatile fields move on their own in Twilio (a conversation's state):
	// recognising a lost create ignores them.
	Volatile []string
	// Warnings returns what a plan step that writes the changed fields
	// must warn about (routing every conversation to Flex). want is the
	// spec's values.
	Warnings func(want Values, changed []string) []string
	// Validate finds what the kind's fields cannot be together in a spec
	// (a participant with both an identity and a messaging binding).
	Validate func(v Values) []Invalid
	// DeleteTakesChildren: deleting a resource of the kind deletes what
	// lives in it, and Twilio refuses to change those children first (a
	// closed conversation refuses its participants' deletes, 50377). A
	// child that goes with it gets no request of its own: its state entry
	// goes once its parent's delete has succeeded.
	DeleteTakesChildren bool
	// CreatesImplicitly: a create with Field set makes a resource of Kind
	// whose natural key is that value, when none exists (a chat
	// participant's identity makes a User; UNVERIFIED for Conversations,
	// documented for Programmable Chat). A spec of Kind with that key that
	// this plan creates goes first: created after, it would find its key
	// taken.
	CreatesImplicitly *ImplicitCreate
}

// ImplicitCreate is what KindRules.CreatesImplicitly names.
type ImplicitCreate struct {
	Field string
	Kind  Kind
}

// Field returns the schema of the named field, or nil.
func (k *KindSchema) Field(name string) *FieldSchema {
	for i := range k.Fields {
		if k.Fields[i].Name == name {
			return &k.Fields[i]
		}
	}
	return nil
}

// Prefix is the kind's address prefix: "conversation", "service_configuration".
func (k *KindSchema) Prefix() string { return AddressPrefix(k.Kind) }

// HasGroup reports whether some field nests under prefix ("new_message").
func (k *KindSchema) HasGroup(prefix string) bool {
	for _, f := range k.Fields {
		if strings.HasPrefix(f.Name, prefix+".") {
			return true
		}
	}
	return false
}

// Recognisable reports whether recognising a create whose answer was lost
// compares the field: Twilio shows it as sent (not write-only or secret, and
// not one of the kind's volatile fields, which Twilio moves on its own).
func (k *KindSchema) Recognisable(f *FieldSchema) bool {
	return !f.WriteOnly && !f.Secret && (k.Rules == nil || !slices.Contains(k.Rules.Volatile, f.Name))
}

// References lists the TypeRef fields.
func (k *KindSchema) References() []*FieldSchema {
	var out []*FieldSchema
	for i := range k.Fields {
		if k.Fields[i].Type == TypeRef {
			out = append(out, &k.Fields[i])
		}
	}
	return out
}

// Path is Twilio's path of a resource, the form `convsync import` takes:
// /Services/IS…, /Services/IS…/Roles/RL…, /Services/IS…/Configuration.
// parentPath is the parent's Path ("" for top-level kinds).
func (k *KindSchema) Path(parentPath, sid string) string {
	if k.Singleton {
		return parentPath + "/" + k.Collection
	}
	return parentPath + "/" + k.Collection + "/" + sid
}

// SingletonID is the ID a singleton has in plans and the state: its path.
// Singletons have no SID of their own.
func SingletonID(kind Kind, parentSID string) string {
	k := Schema(kind)
	if k.Parent == "" {
		return "/" + k.Collection // a singleton of the account
	}
	return PathOfKey(k.Parent, parentSID) + "/" + k.Collection
}

// ImportID is Twilio's path for a resource of kind with the given parent
// key (or "" for a top-level kind) and SID.
func ImportID(kind Kind, parentSID, sid string) string {
	k := Schema(kind)
	parentPath := ""
	if k.Parent != "" {
		parentPath = PathOfKey(k.Parent, parentSID)
	}
	return k.Path(parentPath, sid)
}

var kinds = []*KindSchema{serviceSchema, roleSchema, userSchema, conversationSchema,
	serviceConfigurationSchema, serviceNotificationsSchema, serviceWebhooksSchema,
	participantSchema, conversationWebhookSchema,
	configurationSchema, accountWebhooksSchema, addressConfigurationSchema, pushCredentialSchema}

// Kinds returns every kind convsync manages, parents before children, and
// referenced kinds before the kinds that reference them.
func Kinds() []*KindSchema { return kinds }

// Schema returns the schema of k, or nil for an unknown kind.
func Schema(k Kind) *KindSchema {
	for _, s := range kinds {
		if s.Kind == k {
			return s
		}
	}
	return nil
}

// Children returns the kinds whose parent is k.
func Children(k Kind) []*KindSchema {
	var out []*KindSchema
	for _, s := range kinds {
		if s.Parent == k {
			out = append(out, s)
		}
	}
	return out
}

// Rank orders kinds as Kinds does.
func Rank(k Kind) int {
	for i, s := range kinds {
		if s.Kind == k {
			return i
		}
	}
	return len(kinds)
}
