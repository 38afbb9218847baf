package resource

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Kind names a type of Twilio resource that convsync manages. The value is the
// `kind:` of a spec document.
type Kind string

const (
	KindService              Kind = "Service"
	KindConversation         Kind = "Conversation"
	KindRole                 Kind = "Role"
	KindUser                 Kind = "User"
	KindServiceConfiguration Kind = "ServiceConfiguration"
	KindServiceNotifications Kind = "ServiceNotifications"
	KindServiceWebhooks      Kind = "ServiceWebhooks"
)

// Address identifies a resource in specs, state and plans: "conversation.vip".
type Address struct {
	Kind Kind
	Name string
}

func (a Address) String() string {
	if a.Name == "" && a.Kind != "" {
		return AddressPrefix(a.Kind) // a singleton of the account: "configuration"
	}
	return AddressPrefix(a.Kind) + "." + a.Name
}

// AccountSingleton reports whether k is a singleton of the account (no
// parent): its address is its kind's prefix alone, with no name.
func AccountSingleton(k Kind) bool {
	s := Schema(k)
	return s != nil && s.Singleton && s.Parent == ""
}

// AddressPrefix is a kind's name in addresses: the kind in snake case
// (Conversation → conversation, ServiceConfiguration → service_configuration).
func AddressPrefix(k Kind) string {
	var b strings.Builder
	for i, r := range string(k) {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// IsZero reports whether a is the empty address.
func (a Address) IsZero() bool { return a.Kind == "" && a.Name == "" }

// ParseAddress reads "service.support" or "conversation.vip".
func ParseAddress(s string) (Address, error) {
	prefix, name, ok := strings.Cut(s, ".")
	if !ok {
		for _, k := range Kinds() {
			if AccountSingleton(k.Kind) && (strings.EqualFold(s, k.Prefix()) || strings.EqualFold(s, string(k.Kind))) {
				return Address{Kind: k.Kind}, nil
			}
		}
	}
	if !ok || name == "" {
		return Address{}, fmt.Errorf("address %q must look like KIND.NAME, for example conversation.vip", s)
	}
	for _, k := range Kinds() {
		if strings.EqualFold(prefix, k.Prefix()) || strings.EqualFold(prefix, string(k.Kind)) {
			return Address{Kind: k.Kind, Name: name}, nil
		}
	}
	return Address{}, fmt.Errorf("address %q: unknown kind %q (known: %s)", s, prefix, knownKindPrefixes())
}

func knownKindPrefixes() string {
	var out []string
	for _, k := range Kinds() {
		out = append(out, k.Prefix())
	}
	return strings.Join(out, ", ")
}

// Values holds field values by field name. In a Desired resource, a field that is
// absent is not managed: convsync neither diffs nor clears it.
type Values map[string]string

// Clone returns a copy of v (nil stays nil).
func (v Values) Clone() Values {
	if v == nil {
		return nil
	}
	out := make(Values, len(v))
	for k, x := range v {
		out[k] = x
	}
	return out
}

// Keys returns the field names in v, sorted.
func (v Values) Keys() []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Ref points at a parent resource: either one managed by these specs (Address) or
// one convsync does not manage (SID). Exactly one is set.
type Ref struct {
	Address Address
	SID     string
}

func (r Ref) IsZero() bool { return r.Address.IsZero() && r.SID == "" }

func (r Ref) String() string {
	switch {
	case r.SID != "":
		return r.SID
	case r.Address.IsZero():
		return ""
	}
	return r.Address.String()
}

// Source is where a resource was declared, for error messages.
type Source struct {
	File   string
	Line   int
	Column int
}

func (s Source) String() string {
	if s.File == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", s.File, s.Line, s.Column)
}

// Timeouts bound each kind of operation on one resource. Defaults follow the seed:
// create/update/delete 10 minutes, read 5 minutes.
type Timeouts struct {
	Create time.Duration
	Update time.Duration
	Read   time.Duration
	Delete time.Duration
}

// DefaultTimeouts are the seed's defaults.
var DefaultTimeouts = Timeouts{Create: 10 * time.Minute, Update: 10 * time.Minute, Read: 5 * time.Minute, Delete: 10 * time.Minute}

// Lifecycle holds per-resource safety switches.
type Lifecycle struct {
	// PreventDestroy makes any plan that deletes or replaces the resource fail.
	PreventDestroy bool
}

// Desired is one resource as the specs want it.
type Desired struct {
	Address Address
	Parent  Ref // the service of a conversation; zero for services
	// Values holds only the fields the spec sets, as canonical text (see
	// FieldType). A TypeRef field that names its target by SID is here; one
	// that names a resource of the specs is in Refs until the planner
	// resolves it.
	Values Values
	// Refs holds, by field name, the TypeRef fields that name a resource of
	// these specs (role: agent): its SID may be known only after apply.
	Refs      map[string]Ref
	Timeouts  Timeouts
	Lifecycle Lifecycle
	// WebhookEnabled sends X-Twilio-Webhook-Enabled: true with this resource's writes.
	WebhookEnabled bool
	Source         Source
}

// Observed is one resource as Twilio has it.
type Observed struct {
	Kind      Kind
	SID       string
	ParentSID string // the service SID of a conversation; "" for services
	// Values holds the readable fields; attributes in canonical JSON. Write-only
	// fields (timers) are never here.
	Values      Values
	DateCreated time.Time
	DateUpdated time.Time
	// Extra holds read-only facts worth showing (timers.date_inactive,
	// timers.date_closed, url); never compared.
	Extra Values
}

// MarshalText writes the address as "kind.name".
func (a Address) MarshalText() ([]byte, error) {
	if a.IsZero() {
		return []byte{}, nil
	}
	return []byte(a.String()), nil
}

// UnmarshalText reads "kind.name".
func (a *Address) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*a = Address{}
		return nil
	}
	parsed, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = parsed
	return nil
}

// deposedSuffix marks the state entry of a resource that a replace has
// superseded but not yet deleted (it created the successor first). No spec
// name can contain "~", so the entry never meets a spec.
const deposedSuffix = "~deposed"

// DeposedAddress is where the state keeps a superseded resource of a.
func DeposedAddress(a Address) Address { return Address{Kind: a.Kind, Name: a.Name + deposedSuffix} }

// IsDeposed reports whether a is a DeposedAddress.
func IsDeposed(a Address) bool { return strings.HasSuffix(a.Name, deposedSuffix) }
