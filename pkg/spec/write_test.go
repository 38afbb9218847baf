package spec

import (
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

// What Write renders, the loader reads back to the same resources.
func TestWriteReadsBackTheSame(t *testing.T) {
	svc := resource.Address{Kind: resource.KindService, Name: "support"}
	in := []Document{
		{Address: svc, Values: resource.Values{resource.FieldFriendlyName: "Support: 24/7"}},
		{Address: resource.Address{Kind: resource.KindRole, Name: "agent"}, Parent: resource.Ref{Address: svc},
			Values: resource.Values{resource.FieldFriendlyName: "Agent", resource.FieldRoleType: "service", resource.FieldPermissions: `["joinConversation","sendMessage"]`}},
		{Address: resource.Address{Kind: resource.KindUser, Name: "alice"}, Parent: resource.Ref{Address: svc}, Comment: "exported from US…",
			Values: resource.Values{resource.FieldIdentity: "alice@example.com", resource.FieldAttributes: `{"big":1e400,"n":[1,2]}`},
			Refs:   map[string]resource.Ref{resource.FieldRoleSID: {Address: resource.Address{Kind: resource.KindRole, Name: "agent"}}}},
		{Address: resource.Address{Kind: resource.KindServiceNotifications, Name: "support"}, Parent: resource.Ref{Address: svc},
			Values: resource.Values{"log_enabled": "true", "new_message.with_media.enabled": "false", "new_message.template": "${PARTICIPANT}: ${MESSAGE}"}},
		{Address: resource.Address{Kind: resource.KindConversation, Name: "elsewhere"}, Parent: resource.Ref{SID: "IS0123456789abcdef0123456789abcdef"},
			Values: resource.Values{resource.FieldUniqueName: "yes", resource.FieldState: "closed"}},
	}
	text, err := Write(in)
	if err != nil {
		t.Fatal(err)
	}
	docs, problems := parseFile("export.yaml", text)
	problems = append(problems, checkSet(docs)...)
	if len(problems) > 0 {
		t.Fatalf("written specs do not load:\n%v\n%s", problems, text)
	}
	if len(docs) != len(in) {
		t.Fatalf("%d documents read back, want %d:\n%s", len(docs), len(in), text)
	}
	for i, d := range docs {
		want := in[i]
		if d.Address != want.Address || d.Parent != want.Parent || len(d.Values) != len(want.Values) {
			t.Errorf("document %d: %s %v %v, want %s %v %v", i, d.Address, d.Parent, d.Values, want.Address, want.Parent, want.Values)
			continue
		}
		for name, v := range want.Values {
			if d.Values[name] != v {
				t.Errorf("%s.%s = %q, want %q", d.Address, name, d.Values[name], v)
			}
		}
		for name, r := range want.Refs {
			if d.Refs[name] != r {
				t.Errorf("%s ref %s = %v, want %v", d.Address, name, d.Refs[name], r)
			}
		}
	}
	if !strings.Contains(string(text), "permissions: [joinConversation, sendMessage]") || !strings.Contains(string(text), "# exported from US…") {
		t.Errorf("layout:\n%s", text)
	}
}
