package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func encodeString(t *testing.T, s *State) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, s, "1.2.3"); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.String()
}

func TestEncodeMatchesGolden(t *testing.T) {
	got := encodeString(t, testState())
	golden := filepath.Join("testdata", "v2.golden.json")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("encoded state differs from %s (run with -update to accept):\n%s", golden, got)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := map[string]*State{
		"empty":      New(),
		"everything": testState(),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			text := encodeString(t, in)
			out, writtenBy, err := Decode([]byte(text))
			if err != nil {
				t.Fatalf("Decode: %v\n%s", err, text)
			}
			if !out.SameContent(in) || out.Serial != in.Serial || writtenBy != "1.2.3" {
				t.Errorf("round trip changed the state:\nin  %+v\nout %+v (written by %q)", in, out, writtenBy)
			}
			if again := encodeString(t, out); again != text {
				t.Errorf("re-encoding differs:\n%s\n---\n%s", text, again)
			}
		})
	}
}

// The state file must hold only what the model defines: no secrets, no stray data.
func TestEncodedStateHasOnlyExpectedKeys(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(encodeString(t, testState())), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				p := path + "." + k
				if strings.HasSuffix(path, ".applied") || strings.HasSuffix(path, ".values") {
					// Fields hold real JSON values, as their schema types say.
					p = path + ".<field>"
					got[p] = true
					continue
				}
				got[p] = true
				walk(p, x)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		}
	}
	walk("", doc)
	want := []string{
		".version", ".lineage", ".serial", ".convsync_version", ".resources", ".pending",
		".resources[].address", ".resources[].sid", ".resources[].parent_sid", ".resources[].created_at",
		".resources[].applied", ".resources[].applied.<field>",
		".pending[].address", ".pending[].kind", ".pending[].parent_sid", ".pending[].started_at",
		".pending[].values", ".pending[].values.<field>",
	}
	var extra []string
	for k := range got {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	sort.Strings(want)
	if strings.Join(extra, " ") != strings.Join(want, " ") {
		t.Errorf("keys in the state file:\n got  %v\n want %v", extra, want)
	}
}

func TestDecodeRefusesNewerFormat(t *testing.T) {
	for name, text := range map[string]string{
		"v3 with unknown layout": `{"version": 3, "convsync_version": "9.0.0", "things": {"x": [1]}}`,
		"version after the rest": `{"lineage": "x", "stuff": true, "version": 4}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := Decode([]byte(text))
			var verr *VersionError
			if !errors.As(err, &verr) {
				t.Fatalf("want a *VersionError, got %v", err)
			}
			if !strings.Contains(err.Error(), "this convsync reads format 2 at most: upgrade convsync") {
				t.Errorf("message %q does not say what to do", err)
			}
		})
	}
}

func TestDecodeErrorsSayWhere(t *testing.T) {
	valid := encodeString(t, testState())
	lines := strings.Split(valid, "\n")
	// Line 7 (lines[6]) is conversation.vip, line 8 service.support, line 11 the pending create.
	withLine := func(i int, from, to string) string {
		out := append([]string(nil), lines...)
		if !strings.Contains(out[i], from) {
			t.Fatalf("line %d %q does not contain %q", i+1, out[i], from)
		}
		out[i] = strings.Replace(out[i], from, to, 1)
		return strings.Join(out, "\n")
	}
	tests := []struct {
		name      string
		text      string
		line, col int
		problem   string
	}{
		{"empty", "", 1, 1, "the file is empty"},
		{"truncated", valid[:len(valid)/2], 7, 0, "truncated"},
		{"garbage", "{\n  \"version\": 1,\n  x\n}", 3, 3, "invalid character 'x'"},
		{"not an object", `[1, 2]`, 1, 1, "not a JSON object"},
		{"trailing data", valid + "{}", 14, 1, "after top-level value"},
		{"missing version", `{"lineage": "l", "serial": 1}`, 1, 1, `the "version" field is missing`},
		{"version zero", `{"version": 0}`, 1, 13, `"version" must be 1 to 2`},
		{"unknown top-level field", withLine(3, `"serial"`, `"serial_no"`), 4, 3, `unknown field "serial_no"`},
		{"repeated field", withLine(3, `"serial": 7`, `"lineage": "x"`), 4, 3, `field "lineage" appears twice`},
		{"unknown resource field", withLine(6, `"sid"`, `"sid2"`), 7, 35, `resources[0]: unknown field "sid2"`},
		{"wrong type", withLine(6, `"unique_name":"vip"`, `"unique_name":7`), 7, 5, `resources[0]: applied: field "unique_name": expected a string, found 7`},
		{"set that is not a list", withLine(6, `"friendly_name":"Conversation vip"`, `"friendly_name":["a"]`), 7, 5, `field "friendly_name": expected a string`},
		{"bad sid", withLine(6, `"CH0`, `"XX0`), 7, 5, `sid "XX0`},
		{"unknown kind", withLine(6, `"conversation.vip"`, `"room.vip"`), 7, 5, `unknown kind "room"`},
		{"unknown applied field", withLine(6, `"unique_name"`, `"colour"`), 7, 5, `field "colour" is not a Conversation field`},
		{"duplicate resource", withLine(7, `"service.support"`, `"conversation.vip"`), 8, 5, "conversation.vip appears twice"},
		{"bad time", withLine(6, `2024-05-06T07:08:09.123Z`, `yesterday`), 7, 5, `"yesterday" is not an RFC 3339 time`},
		{"pending kind mismatch", withLine(10, `"kind":"Conversation"`, `"kind":"Service"`), 11, 5, `kind "Service" does not match`},
		{"pending without start", withLine(10, `"started_at":"2024-05-06T08:08:09.123Z",`, ``), 11, 5, "started_at is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Decode([]byte(tt.text))
			var derr *DecodeError
			if !errors.As(err, &derr) {
				t.Fatalf("want a *DecodeError, got %v", err)
			}
			if derr.Line != tt.line || (tt.col != 0 && derr.Column != tt.col) || !strings.Contains(derr.Problem, tt.problem) {
				t.Errorf("got %v\nwant line %d, column %d, problem containing %q", err, tt.line, tt.col, tt.problem)
			}
		})
	}
}

// Typed fields are real JSON in the file: objects, arrays, booleans, nested
// groups; not JSON inside strings.
func TestEncodedValuesAreRealJSON(t *testing.T) {
	s := New()
	s.Lineage = "l"
	s.Put(&Resource{Address: resource.Address{Kind: resource.KindRole, Name: "agent"}, SID: "RL" + strings.Repeat("0", 32), ParentSID: testServiceSID,
		Applied: resource.Values{"permissions": `["editOwnMessage","sendMessage"]`, "type": "conversation", "friendly_name": "Agent"}})
	s.Put(&Resource{Address: resource.Address{Kind: resource.KindServiceNotifications, Name: "support"}, SID: resource.SingletonID(resource.KindServiceNotifications, testServiceSID), ParentSID: testServiceSID,
		Applied: resource.Values{"log_enabled": "true", "new_message.with_media.enabled": "false", "new_message.template": "hi"}})
	text := encodeString(t, s)
	for _, want := range []string{
		`"applied":{"friendly_name":"Agent","permissions":["editOwnMessage","sendMessage"],"type":"conversation"}`,
		`"applied":{"log_enabled":true,"new_message":{"template":"hi","with_media":{"enabled":false}}}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("state file lacks %s:\n%s", want, text)
		}
	}
	out, _, err := Decode([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if !out.SameContent(s) {
		t.Errorf("round trip changed the typed values: %+v", out.Resources)
	}
}

// A state file of format 1 (every value a string, flat dotted names) is read
// as it is, and written as format 2 on the first change; the backup keeps
// the format 1 file.
func TestFormat1FileIsMigratedOnFirstWrite(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "v1.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(old, []byte(`"version": 1`)) || !bytes.Contains(old, []byte(`"attributes":"{\"tier\"`)) {
		t.Fatalf("testdata/v1.state.json is not a format 1 file")
	}
	path := filepath.Join(t.TempDir(), "convsync.state.json")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("Open format 1: %v", err)
	}
	var got *Resource
	f.View(func(s *State) { got = s.Get(conversationAddr("vip")).Clone() })
	if got.Applied[resource.FieldAttributes] != `{"tier":"gold","url":"https://example.com/?a=1&b=<2>"}` || got.Applied[resource.FieldTimersInactive] != "PT1H" {
		t.Fatalf("format 1 values read as %v", got.Applied)
	}
	mustUpdate(t, f, func(s *State) error {
		s.Remove(conversationAddr("vip"))
		return nil
	})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	now, _ := os.ReadFile(path)
	if !bytes.Contains(now, []byte(`"version": 2`)) || !bytes.Contains(now, []byte(`"applied":{"friendly_name":"Support"}`)) {
		t.Errorf("after the first write the file is not format 2:\n%s", now)
	}
	backup, err := os.ReadFile(path + ".backup")
	if err != nil {
		t.Fatalf("no backup: %v", err)
	}
	if !bytes.Equal(backup, old) {
		t.Errorf("the backup is not the format 1 file as found:\n%s", backup)
	}
}
