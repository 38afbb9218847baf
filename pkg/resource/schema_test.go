package resource

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEqualComparesByMeaningOfTheType(t *testing.T) {
	tests := []struct {
		name       string
		field      FieldSchema
		a, b       string
		wantsEqual bool
	}{
		{"json: key order", FieldSchema{Type: TypeJSON}, `{"a":1,"b":2}`, `{"b":2,"a":1}`, true},
		{"json: different value", FieldSchema{Type: TypeJSON}, `{"a":1}`, `{"a":2}`, false},
		{"set: order", FieldSchema{Type: TypeSet}, `["a","b"]`, `["b","a"]`, true},
		{"set: repetition", FieldSchema{Type: TypeSet}, `["a","a","b"]`, `["b","a"]`, true},
		{"set: a member more", FieldSchema{Type: TypeSet}, `["a"]`, `["a","b"]`, false},
		{"duration: same length", FieldSchema{Type: TypeDuration}, "PT60M", "PT1H", true},
		{"duration: other length", FieldSchema{Type: TypeDuration}, "PT1H", "PT2H", false},
		{"string: case folded enum", FieldSchema{Type: TypeString, FoldCase: true}, "post", "POST", true},
		{"string: case matters", FieldSchema{Type: TypeString}, "vip", "VIP", false},
		{"bool", FieldSchema{Type: TypeBool}, "true", "false", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.field.Equal(tt.a, tt.b); got != tt.wantsEqual {
				t.Errorf("Equal(%s, %s) = %v", tt.a, tt.b, got)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	method := FieldSchema{Type: TypeString, Enum: []string{"GET", "POST"}, FoldCase: true}
	perms := FieldSchema{Type: TypeSet, Enum: []string{"a", "b"}}
	tests := []struct {
		field   FieldSchema
		in      string
		want    string
		wantErr string
	}{
		{method, "post", "POST", ""},
		{method, "PUT", "", "not allowed"},
		{perms, `["b","a","b"]`, `["a","b"]`, ""},
		{perms, `["c"]`, "", `"c" is not allowed`},
		{FieldSchema{Type: TypeBool}, "True", "true", ""},
		{FieldSchema{Type: TypeBool}, "yes", "", "not true or false"},
		{FieldSchema{Type: TypeInt}, "007", "7", ""},
		{FieldSchema{Type: TypeDuration}, "pt1h", "PT1H", ""},
		{FieldSchema{Type: TypeJSON}, `{ "b": 1, "a": [2] }`, `{"a":[2],"b":1}`, ""},
	}
	for _, tt := range tests {
		got, err := tt.field.Canonical(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Canonical(%q): err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// The state file and the JSON plan carry real JSON values, nested; reading
// them back gives the same canonical text, and format 1's flat strings read
// the same way.
func TestNestAndFlattenRoundTrip(t *testing.T) {
	k := Schema(KindServiceNotifications)
	v := Values{"log_enabled": "true", "new_message.enabled": "false", "new_message.with_media.template": "x", "added_to_conversation.sound": "ding"}
	raw, err := json.Marshal(k.NestValues(v))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"added_to_conversation":{"sound":"ding"},"log_enabled":true,"new_message":{"enabled":false,"with_media":{"template":"x"}}}`
	if string(raw) != want {
		t.Fatalf("nested:\n got %s\nwant %s", raw, want)
	}
	back, err := k.FlattenValues(raw)
	if err != nil || len(back) != len(v) {
		t.Fatalf("flatten: %v %v", back, err)
	}
	for name, x := range v {
		if back[name] != x {
			t.Errorf("%s: %q, want %q", name, back[name], x)
		}
	}
	role := Schema(KindRole)
	old, err := role.FlattenValues(json.RawMessage(`{"permissions":"[\"sendMessage\",\"a-later-permission\"]","type":"service"}`))
	if err != nil || old[FieldPermissions] != `["a-later-permission","sendMessage"]` {
		t.Errorf("format 1 string form: %v %v", old, err)
	}
	if _, err := role.FlattenValues(json.RawMessage(`{"colour":"red"}`)); err == nil || !strings.Contains(err.Error(), `field "colour" is not a Role field`) {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := role.FlattenValues(json.RawMessage(`{"permissions":[1]}`)); err == nil {
		t.Error("a set of numbers was accepted")
	}
}

func TestAddressesAndPaths(t *testing.T) {
	const is = "IS0123456789abcdef0123456789abcdef"
	if got := (Address{Kind: KindServiceConfiguration, Name: "support"}).String(); got != "service_configuration.support" {
		t.Errorf("address = %s", got)
	}
	for _, s := range []string{"service_webhooks.support", "ServiceWebhooks.support", "role.agent", "Conversation.vip"} {
		if _, err := ParseAddress(s); err != nil {
			t.Errorf("ParseAddress(%q): %v", s, err)
		}
	}
	if _, err := ParseAddress("widget.x"); err == nil || !strings.Contains(err.Error(), "service_configuration") {
		t.Errorf("unknown kind: %v", err)
	}
	paths := map[string]string{
		ImportID(KindService, "", is):                          "/Services/" + is,
		ImportID(KindRole, is, "RL1"):                          "/Services/" + is + "/Roles/RL1",
		ImportID(KindServiceWebhooks, is, ""):                  "/Services/" + is + "/Configuration/Webhooks",
		SingletonID(KindServiceConfiguration, is):              "/Services/" + is + "/Configuration",
		DeposedAddress(Address{KindRole, "agent"}).String():    "role.agent~deposed",
		AddressPrefix(KindServiceNotifications) + "|" + "done": "service_notifications|done",
	}
	for got, want := range paths {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	if !IsDeposed(DeposedAddress(Address{KindRole, "agent"})) || IsDeposed(Address{KindRole, "agent"}) {
		t.Error("IsDeposed")
	}
}

func TestSetDiff(t *testing.T) {
	added, removed := SetDiff(`["a","b","c"]`, `["b","d","a"]`)
	if strings.Join(added, ",") != "d" || strings.Join(removed, ",") != "c" {
		t.Errorf("added %v removed %v", added, removed)
	}
}

// Every kind's schema is consistent: parents exist and come first,
// references point at kinds, natural keys and enums are fields, singletons
// have no SID prefix and collections have one.
func TestSchemasAreConsistent(t *testing.T) {
	seen := map[Kind]bool{}
	for _, k := range Kinds() {
		if k.Parent != "" && !seen[k.Parent] {
			t.Errorf("%s: parent %s is not listed before it", k.Kind, k.Parent)
		}
		seen[k.Kind] = true
		if k.Singleton != (k.SIDPrefix == "") {
			t.Errorf("%s: singleton %v with SID prefix %q", k.Kind, k.Singleton, k.SIDPrefix)
		}
		if k.NaturalKey != "" && k.Field(k.NaturalKey) == nil {
			t.Errorf("%s: natural key %s is not a field", k.Kind, k.NaturalKey)
		}
		if k.Plural == "" || k.Collection == "" {
			t.Errorf("%s: plural %q, collection %q", k.Kind, k.Plural, k.Collection)
		}
		for _, f := range k.References() {
			if Schema(f.Ref) == nil || f.RefName == "" || !seen[f.Ref] {
				t.Errorf("%s.%s: reference to %q (named %q) must be a kind listed before it", k.Kind, f.Name, f.Ref, f.RefName)
			}
		}
	}
}
