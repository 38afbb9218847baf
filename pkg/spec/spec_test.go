package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{"a.yaml", 3, 7, "name", "bad"}, "a.yaml:3:7: name: bad"},
		{Problem{"a.yaml", 3, 0, "", "bad"}, "a.yaml:3: bad"},
		{Problem{"a.yaml", 0, 0, "", "too big"}, "a.yaml: too big"},
		{Problem{"", 2, 1, "kind", "missing"}, "2:1: kind: missing"},
		{Problem{Message: "only a message"}, "only a message"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestErrorsListsEveryProblemSorted(t *testing.T) {
	errs := Errors{
		{File: "b.yaml", Line: 1, Column: 1, Message: "third"},
		{File: "a.yaml", Line: 10, Column: 1, Message: "second"},
		{File: "a.yaml", Line: 2, Column: 5, Message: "first"},
	}
	want := "a.yaml:2:5: first\na.yaml:10:1: second\nb.yaml:1:1: third"
	if got := errs.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestParseISODuration(t *testing.T) {
	valid := []struct {
		in   string
		want time.Duration
	}{
		{"PT1M", time.Minute},
		{"PT1H", time.Hour},
		{"P30D", 30 * 24 * time.Hour},
		{"P1DT12H", 36 * time.Hour},
		{"PT90M", 90 * time.Minute},
		{"PT0.5S", 500 * time.Millisecond},
		{"PT1,25S", 1250 * time.Millisecond},
		{"pt10m", 10 * time.Minute},
		{"P0D", 0},
		{"P1DT1H1M1.000000001S", 25*time.Hour + time.Minute + time.Second + 1},
		{"P106751D", 106751 * 24 * time.Hour},
	}
	for _, tc := range valid {
		got, err := ParseISODuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseISODuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	invalid := []struct{ in, why string }{
		{"", "must start with P"},
		{"1h", "must start with P"},
		{"P", "no components"},
		{"PT", "T must be followed"},
		{"P1H", "H must come after T"},
		{"PT1D", `unexpected "D"`},
		{"P1Y", "Y (years) is not accepted"},
		{"P1M", "M (months) is not accepted"},
		{"P2W", "W (weeks) is not accepted"},
		{"PT1M1H", "in the order"},
		{"PT1H1H", "in the order"},
		{"P1DT", "T must be followed"},
		{"PTT1H", "T appears twice"},
		{"PT1.5M", "only seconds"},
		{"PT1.S", "followed by digits"},
		{"PT0.1234567891S", "at most 9 decimal places"},
		{"PT5", "has no designator"},
		{"PTH", "expected a number"},
		{"-PT1H", "negative"},
		{"P106752D", "too long"},
		{"PT99999999999999999999S", "too long"},
	}
	for _, tc := range invalid {
		_, err := ParseISODuration(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ParseISODuration(%q) error = %v; want one containing %q", tc.in, err, tc.why)
		}
	}
}

// A field left out of a spec is not managed: it must be absent from Values,
// never present with an empty value.
func TestAbsentFieldsAreUnmanaged(t *testing.T) {
	resources, problems := Parse("x.yaml", []byte("kind: Conversation\nname: bare\nservice_sid: IS0123456789abcdef0123456789abcdef\n"))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if len(resources) != 1 || len(resources[0].Values) != 0 {
		t.Fatalf("resources = %+v; want one with no values", resources)
	}
	if resources[0].Timeouts != resource.DefaultTimeouts {
		t.Errorf("Timeouts = %+v; want the defaults", resources[0].Timeouts)
	}
}

func TestParseKeepsAttributeIntegersExact(t *testing.T) {
	resources, problems := Parse("x.yaml", []byte("kind: Conversation\nname: n\nservice_sid: IS0123456789abcdef0123456789abcdef\nattributes: {id: 9007199254740993, big: 123456789012345678901234567890, neg: -18446744073709551617}\n"))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want := `{"big":123456789012345678901234567890,"id":9007199254740993,"neg":-18446744073709551617}`
	if got := resources[0].Values[resource.FieldAttributes]; got != want {
		t.Errorf("attributes = %s, want %s", got, want)
	}
}

// A number too large for a float64 is a string to YAML but a number to JSON:
// the mapping form and the JSON-string form of attributes must agree.
func TestLargeAttributeNumbersAgreeInBothForms(t *testing.T) {
	tests := []struct {
		name string
		yaml string // the attributes as a YAML mapping
		json string // the same attributes as a JSON string
		want string
	}{
		{"huge exponent", "{n: 1e400}", `'{"n":1e400}'`, `{"n":1e400}`},
		{"negative", "{n: -1.5E+999}", `'{"n":-1.5E+999}'`, `{"n":-1.5E+999}`},
		{"nested", "{a: [1e309, {b: 2e500}]}", `'{"a":[1e309,{"b":2e500}]}'`, `{"a":[1e309,{"b":2e500}]}`},
		{"tiny stays as written", "{n: 1e-400}", `'{"n":1e-400}'`, `{"n":1e-400}`},
		{"quoted stays a string", `{n: "1e400"}`, `'{"n":"1e400"}'`, `{"n":"1e400"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, form := range []string{tt.yaml, tt.json} {
				src := "kind: Conversation\nname: n\nservice_sid: IS0123456789abcdef0123456789abcdef\nattributes: " + form + "\n"
				resources, problems := Parse("x.yaml", []byte(src))
				if len(problems) > 0 {
					t.Fatalf("%s: %v", form, problems)
				}
				if got := resources[0].Values[resource.FieldAttributes]; got != tt.want {
					t.Errorf("attributes: %s sent as %s, want %s", form, got, tt.want)
				}
			}
		})
	}
}
