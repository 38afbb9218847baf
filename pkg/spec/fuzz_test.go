package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

// FuzzParse: no input makes Parse panic, every problem is located in the file
// with a line, and every resource from a clean parse holds values the rest of
// convsync can rely on.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resources, problems := Parse("fuzz.yaml", data)
		for _, p := range problems {
			if p.File != "fuzz.yaml" || p.Message == "" {
				t.Errorf("problem without file or message: %#v", p)
			}
			if p.Line < 1 && len(data) <= MaxFileSize {
				t.Errorf("problem without a line: %#v", p)
			}
		}
		if len(problems) > 0 {
			if problems.Error() == "" {
				t.Error("Errors.Error() is empty")
			}
			return
		}
		for _, r := range resources {
			accountSingleton := r.Address.Name == "" && resource.AccountSingleton(r.Address.Kind)
			if !accountSingleton && !namePattern.MatchString(r.Address.Name) || resource.Schema(r.Address.Kind) == nil {
				t.Errorf("bad address %v", r.Address)
			}
			if r.Source.File != "fuzz.yaml" || r.Source.Line < 1 {
				t.Errorf("bad source %v", r.Source)
			}
			if a, ok := r.Values[resource.FieldAttributes]; ok {
				if c, err := resource.CanonicalJSON(a); err != nil || c != a || !strings.HasPrefix(a, "{") {
					t.Errorf("attributes %q are not a canonical JSON object (%q, %v)", a, c, err)
				}
			}
		}
	})
}

// FuzzParseISODuration: no panic, no negative result, case does not matter.
func FuzzParseISODuration(f *testing.F) {
	for _, s := range []string{"PT1M", "P30D", "P1DT12H30M0.5S", "pt10m", "P", "PT", "P1Y", "-PT1H", "PT1,5S", "P99999999999999999999D", "PT0.000000001S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseISODuration(s)
		if err != nil {
			if !strings.Contains(err.Error(), "is not an ISO 8601 duration") {
				t.Errorf("error %q does not say what is wrong", err)
			}
			return
		}
		if d < 0 {
			t.Errorf("ParseISODuration(%q) = %v, negative", s, d)
		}
		for _, variant := range []string{strings.ToUpper(s), strings.ToLower(s)} {
			if d2, err := ParseISODuration(variant); err != nil || d2 != d {
				t.Errorf("ParseISODuration(%q) = %v, %v; but %q gives %v", variant, d2, err, s, d)
			}
		}
	})
}

// FuzzCanonicalJSON: attributes reach Values through resource.CanonicalJSON,
// and the planner compares them as text, so canonicalising twice must change
// nothing and must keep the meaning.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{``, `{}`, ` { "b" : 1, "a" : [1.50, 1e3, -0, null, true] } `, `{"big":123456789012345678901234567890}`,
		`"<&>"`, `{"a":"\u2028\ud83d\ude00"}`, `[1, {"z": {}, "a": []}]`, `{"a":1}{}`, `{"a":"\xff"}`, `1E+2`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := resource.CanonicalJSON(s)
		if err != nil {
			return
		}
		c2, err := resource.CanonicalJSON(c)
		if err != nil || c2 != c {
			t.Errorf("CanonicalJSON is not idempotent: %q → %q → %q (%v)", s, c, c2, err)
		}
		if !resource.JSONEqual(s, c) {
			t.Errorf("JSONEqual(%q, %q) = false", s, c)
		}
	})
}
