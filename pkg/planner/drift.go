package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// DriftFormatVersion is the version of the JSON drift report (plan
// --refresh-only --json). Consumers should check the major number.
const DriftFormatVersion = "1.0"

// Drift statuses of a managed resource.
const (
	DriftNone    = "unchanged" // every checked field is as convsync applied it
	DriftChanged = "drifted"   // some field differs in Twilio
	DriftGone    = "gone"      // no longer in Twilio
)

// DriftField is one field whose Twilio value differs from what convsync
// last applied.
type DriftField struct {
	Name    string
	Type    resource.FieldType
	Applied string // what the state records convsync applied
	Twilio  string // what Twilio holds now
	Secret  bool
}

// ResourceDrift is what Twilio holds for one resource of the state,
// compared with what convsync last applied.
type ResourceDrift struct {
	Address   resource.Address
	SID       string
	ParentSID string
	Status    string
	Fields    []DriftField
	// Unchecked are the applied fields Twilio never returns (write-only,
	// secret): they cannot be checked for drift.
	Unchecked []string
}

// DriftReport is the drift of every resource the state holds.
type DriftReport struct {
	StateLineage string
	StateSerial  uint64
	Resources    []ResourceDrift
}

// DriftSummary counts the report's resources by status.
type DriftSummary struct {
	Managed   int `json:"managed"`
	Unchanged int `json:"unchanged"`
	Drifted   int `json:"drifted"`
	Gone      int `json:"gone"`
	// UncheckedFields counts the write-only fields that could not be checked.
	UncheckedFields int `json:"unchecked_fields"`
}

// Summary counts the report's resources by status.
func (r *DriftReport) Summary() DriftSummary {
	s := DriftSummary{Managed: len(r.Resources)}
	for _, d := range r.Resources {
		switch d.Status {
		case DriftChanged:
			s.Drifted++
		case DriftGone:
			s.Gone++
		default:
			s.Unchanged++
		}
		s.UncheckedFields += len(d.Unchecked)
	}
	return s
}

// HasDrift reports whether any resource drifted or is gone.
func (r *DriftReport) HasDrift() bool {
	s := r.Summary()
	return s.Drifted+s.Gone > 0
}

// RefreshState reads from Twilio what the state's resources need, and
// nothing else: the reads a plan whose specs want exactly what convsync last
// applied would make (no natural key to look up, no cascade to count).
func RefreshState(ctx context.Context, api Lister, st *state.State, opts RefreshOptions) (*Snapshot, error) {
	var as []resource.Desired
	for _, a := range st.Addresses() {
		r := st.Resources[a.String()]
		d := resource.Desired{Address: r.Address, Values: r.Applied}
		if r.ParentSID != "" {
			d.Parent = resource.Ref{SID: r.ParentSID}
		}
		as = append(as, d)
	}
	return Refresh(ctx, api, as, st, opts)
}

// ComputeDrift compares, for every resource the state holds, what Twilio
// holds (snap) with what convsync last applied (the state's Applied
// values), field by field and by the field's type, after the kind's own
// rules (a conversation's state moved by its own timers is not drift).
// Fields left out of the specs were never applied and are not compared.
func ComputeDrift(st *state.State, snap *Snapshot) *DriftReport {
	rep := &DriftReport{StateLineage: st.Lineage, StateSerial: st.Serial}
	for _, a := range st.Addresses() {
		r := st.Resources[a.String()]
		kind := resource.Schema(r.Address.Kind)
		rd := ResourceDrift{Address: r.Address, SID: r.SID, ParentSID: r.ParentSID, Status: DriftNone}
		obs := snap.Get(kind.Kind, parentKey(kind.Kind, r.ParentSID), r.SID)
		if obs == nil {
			rd.Status = DriftGone
			rep.Resources = append(rep.Resources, rd)
			continue
		}
		var differing []string
		byName := map[string]DriftField{}
		for i := range kind.Fields {
			f := &kind.Fields[i]
			applied, ok := r.Applied[f.Name]
			if !ok {
				continue
			}
			if f.WriteOnly || f.Secret {
				rd.Unchecked = append(rd.Unchecked, f.Name)
				continue
			}
			have, known := obs.Values[f.Name]
			if known && f.Equal(applied, have) || !known && f.Type == resource.TypeSet && applied == resource.EncodeSet(nil) {
				continue // Twilio shows an empty set as null
			}
			differing = append(differing, f.Name)
			byName[f.Name] = DriftField{Name: f.Name, Type: f.Type, Applied: canonical(f, applied), Twilio: canonical(f, have), Secret: f.Secret}
		}
		if kind.Rules != nil && kind.Rules.Explained != nil {
			differing = kind.Rules.Explained(r.Applied, obs.Values, differing)
		}
		if kind.Rules != nil && kind.Rules.Finished != nil && kind.Rules.Finished(r.Applied, obs.Values) {
			differing = nil // finished as applied (closed by its own timer)
		}
		for _, name := range differing {
			rd.Fields = append(rd.Fields, byName[name])
		}
		if len(rd.Fields) > 0 {
			rd.Status = DriftChanged
		}
		rep.Resources = append(rep.Resources, rd)
	}
	return rep
}

// canonical is v in the field's canonical text (sorted sets, compact JSON),
// or v as it is when it is not a valid value of the field.
func canonical(f *resource.FieldSchema, v string) string {
	if v == "" {
		return v
	}
	if c, err := f.Canonical(v); err == nil {
		return c
	}
	return v
}

// RenderDriftHuman writes the drift report for a person: one block per
// resource that drifted or is gone, then the write-only fields that could
// not be checked, then the summary line.
func RenderDriftHuman(w io.Writer, r *DriftReport) error {
	var b strings.Builder
	s := r.Summary()
	if !r.HasDrift() {
		fmt.Fprintf(&b, "No drift. Twilio holds what convsync last applied to the %d %s in the state.\n", s.Managed, plural(s.Managed, "resource", "resources"))
	} else {
		b.WriteString("Twilio differs from what convsync last applied (changes made outside convsync); each field shows what convsync applied -> what Twilio holds now:\n")
	}
	for _, d := range r.Resources {
		switch d.Status {
		case DriftGone:
			fmt.Fprintf(&b, "\n  # %s is gone from Twilio (%s no longer exists)\n", d.Address, d.SID)
			fmt.Fprintf(&b, "  - %s (%s)\n", driftHead(d.Address), d.SID)
		case DriftChanged:
			fmt.Fprintf(&b, "\n  # %s has changed in Twilio (%s)\n", d.Address, fieldNamesOf(d.Fields))
			fmt.Fprintf(&b, "  ~ %s (%s) {\n", driftHead(d.Address), d.SID)
			for _, f := range d.Fields {
				if f.Type == resource.TypeSet && f.Applied != "" && f.Twilio != "" && !f.Secret {
					// A set drifts by members: + in Twilio only, - applied only.
					added, removed := resource.SetDiff(f.Applied, f.Twilio)
					fmt.Fprintf(&b, "      ~ %s = [\n", f.Name)
					for _, m := range added {
						fmt.Fprintf(&b, "          + %s\n", m)
					}
					for _, m := range removed {
						fmt.Fprintf(&b, "          - %s\n", m)
					}
					b.WriteString("        ]\n")
					continue
				}
				applied, have := showValue(f.Type, f.Applied), showValue(f.Type, f.Twilio)
				if f.Twilio == "" {
					have = "(unset)"
				}
				if f.Secret {
					applied, have = "(sensitive)", "(sensitive)"
				}
				fmt.Fprintf(&b, "      ~ %s = %s -> %s\n", f.Name, applied, have)
			}
			b.WriteString("    }\n")
		}
	}
	var unchecked []string
	for _, d := range r.Resources {
		if len(d.Unchecked) > 0 && d.Status != DriftGone {
			unchecked = append(unchecked, fmt.Sprintf("%s (%s)", d.Address, strings.Join(d.Unchecked, ", ")))
		}
	}
	if len(unchecked) > 0 {
		fmt.Fprintf(&b, "\nNot checked: write-only fields, which Twilio never returns, cannot be checked for drift: %s.\n", strings.Join(unchecked, "; "))
	}
	fmt.Fprintf(&b, "\nDrift: %d changed, %d gone, %d unchanged.", s.Drifted, s.Gone, s.Unchanged)
	if r.HasDrift() {
		b.WriteString(" Nothing was changed; run convsync plan to see what apply would do about it.")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func fieldNamesOf(fs []DriftField) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

type jsonDriftField struct {
	Name    string             `json:"name"`
	Type    resource.FieldType `json:"type"`
	Applied json.RawMessage    `json:"applied"`
	Twilio  json.RawMessage    `json:"twilio"`
	Secret  bool               `json:"secret,omitempty"`
}

type jsonDriftResource struct {
	Address   string           `json:"address"`
	SID       string           `json:"sid"`
	ParentSID string           `json:"parent_sid,omitempty"`
	Status    string           `json:"status"`
	Fields    []jsonDriftField `json:"fields"`
	Unchecked []string         `json:"unchecked"`
}

type jsonDrift struct {
	FormatVersion string              `json:"format_version"`
	StateLineage  string              `json:"state_lineage,omitempty"`
	StateSerial   uint64              `json:"state_serial"`
	Resources     []jsonDriftResource `json:"resources"`
	Summary       DriftSummary        `json:"summary"`
	HasDrift      bool                `json:"has_drift"`
}

// RenderDriftJSON writes the machine-readable drift report
// (docs/planning.md, "Drift: plan --refresh-only").
func RenderDriftJSON(w io.Writer, r *DriftReport) error {
	out := jsonDrift{FormatVersion: DriftFormatVersion, StateLineage: r.StateLineage, StateSerial: r.StateSerial, Resources: []jsonDriftResource{}, Summary: r.Summary(), HasDrift: r.HasDrift()}
	for _, d := range r.Resources {
		jd := jsonDriftResource{Address: d.Address.String(), SID: d.SID, ParentSID: d.ParentSID, Status: d.Status, Fields: []jsonDriftField{}, Unchecked: []string{}}
		jd.Unchecked = append(jd.Unchecked, d.Unchecked...)
		for _, f := range d.Fields {
			jf := jsonDriftField{Name: f.Name, Type: f.Type, Applied: json.RawMessage("null"), Twilio: json.RawMessage("null"), Secret: f.Secret}
			if f.Applied != "" && !f.Secret {
				jf.Applied = jsonValue(f.Type, f.Applied)
			}
			if f.Twilio != "" && !f.Secret {
				jf.Twilio = jsonValue(f.Type, f.Twilio)
			}
			jd.Fields = append(jd.Fields, jf)
		}
		out.Resources = append(out.Resources, jd)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// driftHead names a resource as plans do: kind "name", or the kind alone
// for a singleton of the account.
func driftHead(a resource.Address) string {
	if a.Name == "" {
		return a.String()
	}
	return fmt.Sprintf("%s %q", resource.AddressPrefix(a.Kind), a.Name)
}
