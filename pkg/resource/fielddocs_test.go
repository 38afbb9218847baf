package resource

import "testing"

// Every entry of the field docs names a field that exists (a renamed field
// would silently lose its description in the editors' schema), and every
// SID prefix agrees with the field's own check.
func TestFieldDocsNameExistingFields(t *testing.T) {
	if err := applyFieldDocs(); err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds() {
		for i := range k.Fields {
			f := &k.Fields[i]
			if f.SIDPrefix == "" {
				continue
			}
			good := f.SIDPrefix + "0123456789abcdef0123456789abcdef"
			if f.Check == nil || f.Check(good) != nil || f.Check("XX0123456789abcdef0123456789abcdef") == nil {
				t.Errorf("%s.%s: SIDPrefix %s disagrees with the field's Check", k.Kind, f.Name, f.SIDPrefix)
			}
		}
	}
}
