package resource

// FieldSchema describes how one field of a kind is diffed and written.
type FieldSchema struct {
	Name string
	// WriteOnly fields are never returned by Twilio (timers): they are compared
	// against the value convsync last applied, as recorded in the state file.
	WriteOnly bool
	// ForcesReplace: Twilio cannot update the field in place, so a change means a
	// new resource (a service's friendly_name: services have no update endpoint).
	ForcesReplace bool
	// Equal compares a desired and an observed value; nil means exact equality.
	Equal func(desired, observed string) bool
}

// KindSchema is what every layer needs to know about a kind.
type KindSchema struct {
	Kind Kind
	// SIDPrefix is the two-letter prefix of the kind's SIDs ("IS", "CH").
	SIDPrefix string
	// Parent is the kind a resource of this kind lives in ("" for top level).
	Parent Kind
	// Fields lists the fields a spec may manage, in display order.
	Fields []FieldSchema
	// DeleteWarning, if set, is shown on every plan step that deletes or
	// replaces a resource of this kind.
	DeleteWarning string
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

var serviceSchema = &KindSchema{
	Kind:      KindService,
	SIDPrefix: "IS",
	Fields: []FieldSchema{
		{Name: FieldFriendlyName, ForcesReplace: true},
	},
	DeleteWarning: "deleting a service deletes every conversation, user and role inside it",
}

var conversationSchema = &KindSchema{
	Kind:      KindConversation,
	SIDPrefix: "CH",
	Parent:    KindService,
	Fields: []FieldSchema{
		{Name: FieldUniqueName},
		{Name: FieldFriendlyName},
		{Name: FieldAttributes, Equal: JSONEqual},
		{Name: FieldMessagingServiceSID},
		{Name: FieldState},
		{Name: FieldTimersInactive, WriteOnly: true},
		{Name: FieldTimersClosed, WriteOnly: true},
	},
}

var kinds = []*KindSchema{serviceSchema, conversationSchema}

// Kinds returns every kind convsync manages, parents before children.
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
