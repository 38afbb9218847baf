package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

// PlanFileVersion is the version of saved plan files (plan --out), written
// as plan_file_version. A saved plan is the JSON plan document (format
// JSONFormatVersion) plus, per change, an "apply" object with what apply
// needs to run it, and the spec hash. docs/formats.md documents both.
//
// 1: Go field names, no JSON plan (convsync before issue 13).
// 2: the JSON plan 2.0 document plus "apply" objects.
const PlanFileVersion = 2

// fileDoc is a saved plan: the keys of jsonPlan, in its order, with
// plan_file_version, convsync_version and spec_hash added and each change
// carrying its apply internals.
type fileDoc struct {
	FormatVersion   string        `json:"format_version"`
	PlanFileVersion int           `json:"plan_file_version"`
	ConvsyncVersion string        `json:"convsync_version,omitempty"`
	StateLineage    string        `json:"state_lineage,omitempty"`
	StateSerial     uint64        `json:"state_serial"`
	SpecHash        string        `json:"spec_hash"`
	Changes         []fileChange  `json:"changes"`
	Summary         Summary       `json:"summary"`
	HasChanges      bool          `json:"has_changes"`
	Suspects        []jsonSuspect `json:"suspects,omitempty"`
}

type fileChange struct {
	jsonChange
	Apply fileInternals `json:"apply"`
}

// fileInternals is what apply needs of a change beyond the JSON plan's view
// of it. Values are canonical text (as inside convsync), flat by dotted field
// name, so that they come back exactly.
type fileInternals struct {
	ParentSID    string            `json:"parent_sid,omitempty"`
	NewParent    *fileRef          `json:"new_parent,omitempty"`
	Desired      *fileDesired      `json:"desired,omitempty"`
	Observed     *fileObserved     `json:"observed,omitempty"`
	DependsOn    []string          `json:"depends_on,omitempty"`
	AfterFree    []string          `json:"after_free,omitempty"`
	AfterRelease []string          `json:"after_release,omitempty"`
	PendingRefs  map[string]string `json:"pending_refs,omitempty"`
	CreateFirst  bool              `json:"create_first,omitempty"`
	WithParent   bool              `json:"goes_with_parent,omitempty"`
	Deposes      string            `json:"deposes,omitempty"`
	Cascade      int               `json:"cascade,omitempty"`
	// Text holds, by field, the exact before/after text of a field whose
	// typed JSON value does not read back as the same text (rare: a value
	// Twilio sent that is not in canonical form).
	Text map[string]fileFieldText `json:"field_text,omitempty"`
}

type fileFieldText struct {
	Before string `json:"before"`
	After  string `json:"after"`
}

type fileRef struct {
	Address string `json:"address,omitempty"`
	SID     string `json:"sid,omitempty"`
}

type fileDesired struct {
	Address        string            `json:"address"`
	Parent         *fileRef          `json:"parent,omitempty"`
	Values         map[string]string `json:"values"`
	Refs           map[string]string `json:"refs,omitempty"`
	Timeouts       fileTimeouts      `json:"timeouts"`
	PreventDestroy bool              `json:"prevent_destroy,omitempty"`
	WebhookEnabled bool              `json:"webhook_enabled,omitempty"`
	Source         *fileSource       `json:"source,omitempty"`
}

type fileTimeouts struct {
	Create string `json:"create"`
	Update string `json:"update"`
	Read   string `json:"read"`
	Delete string `json:"delete"`
}

type fileSource struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

type fileObserved struct {
	Kind        resource.Kind     `json:"kind"`
	SID         string            `json:"sid"`
	ParentSID   string            `json:"parent_sid,omitempty"`
	Values      map[string]string `json:"values"`
	DateCreated *time.Time        `json:"date_created,omitempty"`
	DateUpdated *time.Time        `json:"date_updated,omitempty"`
	Extra       map[string]string `json:"extra,omitempty"`
}

// SaveOptions add facts to a saved plan that the plan does not hold.
type SaveOptions struct {
	// ConvsyncVersion is written as convsync_version (informational).
	ConvsyncVersion string
}

// Save writes p to path (mode 0600) for a later `convsync apply PLANFILE`
// or `convsync show PLANFILE`. It holds the resources' field values (a
// secret field's value only in its change's apply.desired), never
// credentials.
func Save(path string, p *Plan) error { return SaveWith(path, p, SaveOptions{}) }

// SaveWith is Save with options.
func SaveWith(path string, p *Plan, o SaveOptions) error {
	data, err := Marshal(p, o)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("saving plan: %w", err)
	}
	return nil
}

// Marshal is the saved-plan document of p, as Save writes it.
func Marshal(p *Plan, o SaveOptions) ([]byte, error) {
	doc := jsonDocument(p)
	f := fileDoc{
		FormatVersion: doc.FormatVersion, PlanFileVersion: PlanFileVersion, ConvsyncVersion: o.ConvsyncVersion,
		StateLineage: p.StateLineage, StateSerial: p.StateSerial, SpecHash: p.SpecHash,
		Changes: []fileChange{}, Summary: doc.Summary, HasChanges: doc.HasChanges, Suspects: doc.Suspects,
	}
	i := 0
	for _, c := range p.Changes {
		if c.Action == NoOp {
			continue // the JSON plan leaves them out, and apply skips them
		}
		jc := doc.Changes[i]
		i++
		f.Changes = append(f.Changes, fileChange{jsonChange: jc, Apply: internalsOf(c, jc)})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("saving plan: %w", err)
	}
	return buf.Bytes(), nil
}

func internalsOf(c Change, jc jsonChange) fileInternals {
	in := fileInternals{
		ParentSID: c.ParentSID, NewParent: refOf(c.NewParent), CreateFirst: c.CreateFirst, WithParent: c.GoesWithParent,
		Deposes: c.Deposes, Cascade: c.Cascade,
		DependsOn: addrStrings(c.DependsOn), AfterFree: addrStrings(c.AfterFree), AfterRelease: addrStrings(c.AfterRelease),
	}
	if len(c.PendingRefs) > 0 {
		in.PendingRefs = map[string]string{}
		for field, a := range c.PendingRefs {
			in.PendingRefs[field] = a.String()
		}
	}
	if d := c.Desired; d != nil {
		fd := &fileDesired{
			Address: d.Address.String(), Parent: refOf(d.Parent), Values: map[string]string(d.Values.Clone()),
			Timeouts:       fileTimeouts{Create: d.Timeouts.Create.String(), Update: d.Timeouts.Update.String(), Read: d.Timeouts.Read.String(), Delete: d.Timeouts.Delete.String()},
			PreventDestroy: d.Lifecycle.PreventDestroy, WebhookEnabled: d.WebhookEnabled,
		}
		if fd.Values == nil {
			fd.Values = map[string]string{}
		}
		if len(d.Refs) > 0 {
			fd.Refs = map[string]string{}
			for field, r := range d.Refs {
				fd.Refs[field] = r.String()
			}
		}
		if d.Source.File != "" {
			fd.Source = &fileSource{File: d.Source.File, Line: d.Source.Line, Column: d.Source.Column}
		}
		in.Desired = fd
	}
	if o := c.Observed; o != nil {
		fo := &fileObserved{Kind: o.Kind, SID: o.SID, ParentSID: o.ParentSID, Values: map[string]string(o.Values.Clone()), Extra: map[string]string(o.Extra.Clone())}
		if fo.Values == nil {
			fo.Values = map[string]string{}
		}
		if !o.DateCreated.IsZero() {
			t := o.DateCreated
			fo.DateCreated = &t
		}
		if !o.DateUpdated.IsZero() {
			t := o.DateUpdated
			fo.DateUpdated = &t
		}
		in.Observed = fo
	}
	for i, f := range c.Fields {
		if f.Secret {
			continue // its after is the desired value; its before is never kept
		}
		before, after := fieldText(f, jc.Fields[i], c.Desired)
		if before != f.Before || after != f.After {
			if in.Text == nil {
				in.Text = map[string]fileFieldText{}
			}
			in.Text[f.Name] = fileFieldText{Before: f.Before, After: f.After}
		}
	}
	return in
}

// fieldText reads a field's before and after back from the JSON plan's typed
// values. A secret's after is the desired value (the JSON plan shows null);
// its before is never kept.
func fieldText(f FieldChange, jf jsonField, d *resource.Desired) (before, after string) {
	if f.Secret {
		// Not kept: apply never sends a before, and plans show (sensitive).
		if d != nil {
			after = d.Values[f.Name]
		}
		return "", after
	}
	return textOf(f.Type, jf.Before), textOf(f.Type, jf.After)
}

// textOf turns a JSON plan value back into canonical text.
func textOf(t resource.FieldType, raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	fs := resource.FieldSchema{Type: t}
	if s, err := fs.FromJSON(raw); err == nil {
		return s
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

func refOf(r resource.Ref) *fileRef {
	if r.IsZero() {
		return nil
	}
	if r.SID != "" {
		return &fileRef{SID: r.SID}
	}
	return &fileRef{Address: r.Address.String()}
}

func addrStrings(as []resource.Address) []string {
	if len(as) == 0 {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// Load reads a plan saved by Save.
func Load(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading plan file: %w", err)
	}
	p, err := Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("plan file %s: %w", path, err)
	}
	return p, nil
}

// Unmarshal reads a saved-plan document (see Marshal).
func Unmarshal(data []byte) (*Plan, error) {
	var probe struct {
		FormatVersion   *string `json:"format_version"`
		PlanFileVersion *int    `json:"plan_file_version"`
		OldFormat       *int    `json:"convsync_plan_format"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not a convsync plan file (%s)", jsonErrorAt(data, err))
	}
	switch {
	case probe.OldFormat != nil:
		return nil, fmt.Errorf("saved by an older convsync in plan file version %d; this convsync reads version %d: run convsync plan --out again", *probe.OldFormat, PlanFileVersion)
	case probe.PlanFileVersion == nil && probe.FormatVersion != nil:
		return nil, fmt.Errorf("is the output of plan --json, which cannot be applied: save a plan with convsync plan --out FILE")
	case probe.PlanFileVersion == nil:
		return nil, fmt.Errorf("not a convsync plan file (no plan_file_version)")
	case *probe.PlanFileVersion != PlanFileVersion:
		return nil, fmt.Errorf("has plan file version %d; this convsync reads version %d: run convsync plan --out again with this version", *probe.PlanFileVersion, PlanFileVersion)
	}
	var f fileDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a valid plan file (%s)", jsonErrorAt(data, err))
	}
	if major, _, _ := strings.Cut(f.FormatVersion, "."); major != strings.Split(JSONFormatVersion, ".")[0] {
		return nil, fmt.Errorf("holds a JSON plan of format %q; this convsync writes and reads %s", f.FormatVersion, JSONFormatVersion)
	}
	p := &Plan{StateLineage: f.StateLineage, StateSerial: f.StateSerial, SpecHash: f.SpecHash}
	for i, fc := range f.Changes {
		c, err := changeOf(fc)
		if err != nil {
			return nil, fmt.Errorf("changes[%d] (%s): %w", i, fc.Address, err)
		}
		p.Changes = append(p.Changes, c)
	}
	for i, s := range f.Suspects {
		var looks resource.Address
		if s.LooksLike != "" {
			a, err := resource.ParseAddress(s.LooksLike)
			if err != nil {
				return nil, fmt.Errorf("suspects[%d]: %w", i, err)
			}
			looks = a
		}
		p.Suspects = append(p.Suspects, Suspect{Kind: s.Kind, SID: s.SID, ParentSID: s.ParentSID, LooksLike: looks, Message: s.Message})
	}
	return p, nil
}

// jsonErrorAt places a JSON decoding error at its line and column.
func jsonErrorAt(data []byte, err error) string {
	var offset int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset - 1 // the offending byte was read
	case errors.As(err, &typ):
		offset = typ.Offset
	}
	if offset < 0 || offset > int64(len(data)) {
		return err.Error()
	}
	line, col := 1, 1
	for _, b := range data[:offset] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

func changeOf(fc fileChange) (Change, error) {
	addr, err := resource.ParseAddress(fc.Address)
	if err != nil {
		return Change{}, err
	}
	schema := resource.Schema(addr.Kind)
	switch fc.Action {
	case Create, Update, Replace, Delete, Adopt, Forget, Move:
	default:
		return Change{}, fmt.Errorf("unknown action %q", fc.Action)
	}
	in := fc.Apply
	c := Change{Address: addr, Action: fc.Action, Reason: fc.Reason, Warnings: fc.Warnings, SID: fc.SID,
		ParentSID: in.ParentSID, CreateFirst: in.CreateFirst, GoesWithParent: in.WithParent, Deposes: in.Deposes, Cascade: in.Cascade}
	if fc.PreviousAddress != "" {
		if c.MovedFrom, err = resource.ParseAddress(fc.PreviousAddress); err != nil {
			return Change{}, fmt.Errorf("previous_address: %w", err)
		}
	}
	if c.NewParent, err = readRef(in.NewParent); err != nil {
		return Change{}, fmt.Errorf("apply.new_parent: %w", err)
	}
	for _, l := range []struct {
		name string
		from []string
		to   *[]resource.Address
	}{{"depends_on", in.DependsOn, &c.DependsOn}, {"after_free", in.AfterFree, &c.AfterFree}, {"after_release", in.AfterRelease, &c.AfterRelease}} {
		for _, s := range l.from {
			a, err := resource.ParseAddress(s)
			if err != nil {
				return Change{}, fmt.Errorf("apply.%s: %w", l.name, err)
			}
			*l.to = append(*l.to, a)
		}
	}
	for field, s := range in.PendingRefs {
		a, err := resource.ParseAddress(s)
		if err != nil {
			return Change{}, fmt.Errorf("apply.pending_refs.%s: %w", field, err)
		}
		if c.PendingRefs == nil {
			c.PendingRefs = map[string]resource.Address{}
		}
		c.PendingRefs[field] = a
	}
	if fd := in.Desired; fd != nil {
		d, err := desiredOf(fd)
		if err != nil {
			return Change{}, fmt.Errorf("apply.desired: %w", err)
		}
		c.Desired = d
	}
	if fo := in.Observed; fo != nil {
		o := &resource.Observed{Kind: fo.Kind, SID: fo.SID, ParentSID: fo.ParentSID, Values: resource.Values(fo.Values), Extra: resource.Values(fo.Extra)}
		if o.Values == nil {
			o.Values = resource.Values{}
		}
		if fo.DateCreated != nil {
			o.DateCreated = *fo.DateCreated
		}
		if fo.DateUpdated != nil {
			o.DateUpdated = *fo.DateUpdated
		}
		c.Observed = o
	}
	for _, jf := range fc.Fields {
		// A move to another parent shows the parent as a field
		// ("conversation": old SID -> new), forcing the replacement.
		parentField := schema.Parent != "" && jf.Name == lower(schema.Parent)
		if schema.Field(jf.Name) == nil && !parentField {
			return Change{}, fmt.Errorf("field %q is not a %s field", jf.Name, addr.Kind)
		}
		f := FieldChange{Name: jf.Name, Type: jf.Type, ForcesReplace: jf.ForcesReplace, WriteOnly: jf.WriteOnly, Secret: jf.Secret}
		if jf.AfterRef != "" {
			if f.AfterRef, err = resource.ParseAddress(jf.AfterRef); err != nil {
				return Change{}, fmt.Errorf("field %s: after_ref: %w", jf.Name, err)
			}
		}
		f.Before, f.After = fieldText(f, jf, c.Desired)
		if t, ok := in.Text[jf.Name]; ok {
			f.Before, f.After = t.Before, t.After
		}
		c.Fields = append(c.Fields, f)
	}
	return c, nil
}

func readRef(r *fileRef) (resource.Ref, error) {
	if r == nil {
		return resource.Ref{}, nil
	}
	if r.SID != "" {
		return resource.Ref{SID: r.SID}, nil
	}
	a, err := resource.ParseAddress(r.Address)
	if err != nil {
		return resource.Ref{}, err
	}
	return resource.Ref{Address: a}, nil
}

func desiredOf(fd *fileDesired) (*resource.Desired, error) {
	addr, err := resource.ParseAddress(fd.Address)
	if err != nil {
		return nil, err
	}
	d := &resource.Desired{Address: addr, Values: resource.Values(fd.Values), WebhookEnabled: fd.WebhookEnabled}
	if d.Values == nil {
		d.Values = resource.Values{}
	}
	d.Lifecycle.PreventDestroy = fd.PreventDestroy
	if d.Parent, err = readRef(fd.Parent); err != nil {
		return nil, fmt.Errorf("parent: %w", err)
	}
	for field, s := range fd.Refs {
		a, err := resource.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("refs.%s: %w", field, err)
		}
		if d.Refs == nil {
			d.Refs = map[string]resource.Ref{}
		}
		d.Refs[field] = resource.Ref{Address: a}
	}
	for _, t := range []struct {
		name string
		text string
		to   *time.Duration
	}{{"create", fd.Timeouts.Create, &d.Timeouts.Create}, {"update", fd.Timeouts.Update, &d.Timeouts.Update}, {"read", fd.Timeouts.Read, &d.Timeouts.Read}, {"delete", fd.Timeouts.Delete, &d.Timeouts.Delete}} {
		if t.text == "" {
			continue
		}
		if *t.to, err = time.ParseDuration(t.text); err != nil {
			return nil, fmt.Errorf("timeouts.%s: %w", t.name, err)
		}
	}
	if fd.Source != nil {
		d.Source = resource.Source{File: fd.Source.File, Line: fd.Source.Line, Column: fd.Source.Column}
	}
	return d, nil
}

// CheckFresh refuses a saved plan when the state moved on since it was made.
func (p *Plan) CheckFresh(lineage string, serial uint64) error {
	if p.StateSerial == 0 && serial == 0 {
		// No state file existed at plan time, and none has been written
		// since: each open of a missing file makes up a new lineage.
		return nil
	}
	if p.StateLineage != lineage {
		return fmt.Errorf("the saved plan was made for a different state (lineage %s, this state is %s): plan again", p.StateLineage, lineage)
	}
	if p.StateSerial != serial {
		return fmt.Errorf("the saved plan is stale: it was made from state serial %d, but the state is now at serial %d (something was applied since). Run convsync plan again", p.StateSerial, serial)
	}
	return nil
}
