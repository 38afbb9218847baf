package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"

	"github.com/convsync/convsync/pkg/resource"
)

// The checked-in schema is the one in the repository root's schema/ folder.
const schemaFile = "../../schema/convsync.schema.json"

// TestJSONSchemaFileIsCurrent: the shipped schema is what `convsync schema`
// prints. After a kind or field changes (or a merge brings one), regenerate.
func TestJSONSchemaFileIsCurrent(t *testing.T) {
	want, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(schemaFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("schema/convsync.schema.json is stale: the kind schemas changed since it was written.\nRegenerate it from the repository root with\n\n\tgo run ./cmd/convsync schema > schema/convsync.schema.json\n\n(or go test ./pkg/spec -run TestJSONSchemaFileIsCurrent -update) and commit it.")
	}
}

// The schema of each kind has exactly the top-level keys the parser
// accepts for it: an editor never flags a key validate takes, and never
// offers one it refuses.
func TestJSONSchemaHasExactlyTheParsersKeys(t *testing.T) {
	var root struct {
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	data, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	for _, k := range resource.Kinds() {
		def, ok := root.Defs[string(k.Kind)]
		if !ok {
			t.Errorf("no schema for %s", k.Kind)
			continue
		}
		var keys []string
		for key := range def.Properties {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		want := slices.Clone(allowedFields(k))
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("%s: schema keys %v, parser keys %v", k.Kind, keys, want)
		}
	}
}

// drafts are the dialects the schema is read in: its own (2020-12), and
// draft-07, which yaml-language-server validates with whatever $schema says.
// The schema uses only keywords that mean the same in both.
var drafts = []struct {
	name  string
	draft *jsonschema.Draft
}{{"2020-12", nil}, {"draft-07", jsonschema.Draft7}}

func compileSchema(t *testing.T, draft *jsonschema.Draft) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if draft != nil {
		delete(doc.(map[string]any), "$schema")
		c.DefaultDraft(draft)
	}
	if err := c.AddResource("convsync.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("convsync.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// yamlDocuments reads a spec file as editors do (YAML 1.2 to JSON values):
// one value per document.
func yamlDocuments(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []any
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		v := jsonValue(&n)
		// Through JSON, so numbers are what the validator expects.
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, inst)
	}
}

func jsonValue(n *yaml.Node) any {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return jsonValue(n.Content[0])
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = jsonValue(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			l = append(l, jsonValue(c))
		}
		return l
	case yaml.AliasNode:
		return jsonValue(n.Alias)
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		return strings.EqualFold(n.Value, "true")
	case "!!int":
		var v int64
		if err := n.Decode(&v); err == nil {
			return v
		}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	}
	return n.Value
}

func specFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && isSpecName(d.Name()) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no spec files under %s: %v", root, err)
	}
	return files
}

// Every example and every good fixture is valid for the schema, document by
// document, as an editor would check it.
func TestExamplesAndGoodSpecsMatchTheJSONSchema(t *testing.T) {
	files := append(specFiles(t, "../../examples"), specFiles(t, "testdata/good")...)
	for _, d := range drafts {
		s := compileSchema(t, d.draft)
		for _, file := range files {
			for i, doc := range yamlDocuments(t, file) {
				if err := s.Validate(doc); err != nil {
					t.Errorf("%s: %s, document %d: %v", d.name, file, i+1, err)
				}
			}
		}
	}
}

// The bad fixtures whose mistakes one document shows (unknown fields,
// wrong types, bad enums, SID, name and duration shapes, missing and
// conflicting keys) fail the schema: each listed document is rejected and
// the others pass. The other bad fixtures need validate: rules across
// documents (duplicates, unknown services), JSON strictness, file-level
// problems (binary, syntax, aliases).
func TestSchemaRejectsSchemaLevelMistakes(t *testing.T) {
	tests := []struct {
		fixture  string
		rejected []int // documents, from 1
	}{
		{"unknown-field.yaml", []int{1, 2}},
		{"wrong-type.yaml", []int{1}},
		{"bad-state.yaml", []int{1, 2}},
		{"bad-name.yaml", []int{1, 2, 3, 4}}, // the fifth is the 63-character name, valid
		{"invalid-sid.yaml", []int{1, 2, 3}},
		{"api-version.yaml", []int{1}},
		{"missing-kind-name.yaml", []int{1, 2, 3, 4, 5}},
		{"service-both-neither.yaml", []int{2, 3}},
		{"friendly-name.yaml", []int{1, 2, 3}},
		{"roles-users.yaml", []int{2, 3, 7, 8}}, // 5 and 6 break rules across documents
		{"singletons.yaml", []int{2, 4, 5, 6}},  // 3 is a second configuration of one service
		{"timers.yaml", []int{1, 3, 4}},         // the second is under Twilio's minimums: validate's check
	}
	for _, d := range drafts {
		s := compileSchema(t, d.draft)
		for _, tt := range tests {
			t.Run(d.name+"/"+tt.fixture, func(t *testing.T) {
				var rejected []int
				var why []string
				for i, doc := range yamlDocuments(t, filepath.Join("testdata/bad", tt.fixture)) {
					if err := s.Validate(doc); err != nil {
						rejected = append(rejected, i+1)
						why = append(why, strconv.Itoa(i+1)+": "+err.Error())
					}
				}
				if !slices.Equal(rejected, tt.rejected) {
					t.Errorf("documents rejected: %v, want %v\n%s", rejected, tt.rejected, strings.Join(why, "\n"))
				}
			})
		}
	}
}

// Every example names the schema on its first line, by a path that reaches
// the shipped file, so an editor opening it checks it at once.
func TestExamplesCarryTheSchemaModeline(t *testing.T) {
	const modeline = "# yaml-language-server: $schema="
	for _, file := range specFiles(t, "../../examples") {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		target, ok := strings.CutPrefix(first, modeline)
		if !ok {
			t.Errorf("%s: the first line is %q, want %s<path to schema/convsync.schema.json>", file, first, modeline)
			continue
		}
		resolved := filepath.Join(filepath.Dir(file), target)
		if filepath.Clean(resolved) != filepath.Clean(schemaFile) {
			t.Errorf("%s: the modeline points at %s, not at %s", file, resolved, schemaFile)
		}
	}
}

// The schema's duration patterns accept what the parser accepts, so an
// editor never flags a timer or timeout that validate takes (and flags the
// shapes it refuses; minimums stay validate's).
func TestDurationPatternsAgreeWithTheParsers(t *testing.T) {
	iso := regexp.MustCompile(isoDurationPattern)
	for _, s := range []string{"PT1H", "P30D", "P1DT12H", "PT90M", "PT0.5S", "pt90m", "P1D", "PT1H30M15S", "PT1,5S", "PT0.123456789S", "P0D",
		"", "P", "PT", "1h", "P1W", "P1M", "P1Y", "-PT1H", "PT1H30", "PT1S1M", "PT0.1234567890S", "P1DT", "PT.5S", "P1.5D", "PT1.5H"} {
		_, err := resource.ParseISODuration(s)
		if got, want := iso.MatchString(s), err == nil; got != want {
			t.Errorf("ISO %q: pattern says %v, ParseISODuration says %v (%v)", s, got, want, err)
		}
	}
	goDur := regexp.MustCompile(goDurationPattern)
	for _, s := range []string{"30s", "10m", "1h30m", "1.5h", "500ms", "2us", "+5m", ".5s", "1h0m0s", "", "10", "-5m", "5 m", "1d", "m"} {
		d, err := time.ParseDuration(s)
		if got, want := goDur.MatchString(s), err == nil && d >= 0; got != want {
			t.Errorf("Go duration %q: pattern says %v, time.ParseDuration says %v, %v", s, got, d, err)
		}
	}
}
