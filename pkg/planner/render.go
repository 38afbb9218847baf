package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/convsync/convsync/pkg/resource"
)

// JSONFormatVersion is the version of the machine-readable plan (--json).
// Consumers should check the major number.
// 2.0: field values are real JSON values of their type (arrays, objects,
// booleans, numbers), no longer always strings; after_ref names a SID known
// only after apply.
const JSONFormatVersion = "2.0"

// actionPhrase says what happens to a resource, Terraform style.
func actionPhrase(a Action) string {
	switch a {
	case Create:
		return "will be created"
	case Update:
		return "will be updated in place"
	case Replace:
		return "must be replaced"
	case Delete:
		return "will be deleted"
	case Adopt:
		return "will be adopted into the state"
	case Forget:
		return "will be removed from the state"
	}
	return "has no changes"
}

// RenderHuman writes the plan for a person: one block per step with its
// field changes, then the summary line.
func RenderHuman(w io.Writer, p *Plan) error {
	var b strings.Builder
	if !p.HasChanges() {
		b.WriteString("No changes. Twilio matches the specs.\n")
		renderSuspects(&b, p)
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("convsync will perform the following actions:\n")
	for _, c := range p.Changes {
		if c.Action == NoOp {
			continue
		}
		b.WriteString("\n")
		symbol := c.Action.Symbol()
		if c.Action == Move {
			fmt.Fprintf(&b, "  # %s has moved to %s\n", c.MovedFrom, c.Address)
			if len(c.Fields) > 0 {
				symbol = Update.Symbol()
			}
		} else {
			fmt.Fprintf(&b, "  # %s %s\n", c.Address, actionPhrase(c.Action))
			if in := createdIn(c); in != "" {
				fmt.Fprintf(&b, "  # in %s\n", in)
			}
		}
		if c.Reason != "" {
			fmt.Fprintf(&b, "  # (%s)\n", c.Reason)
		}
		for _, warning := range c.Warnings {
			fmt.Fprintf(&b, "  # WARNING: %s\n", warning)
		}
		head := fmt.Sprintf("%s %s %q", symbol, resource.AddressPrefix(c.Address.Kind), c.Address.Name)
		if c.Address.Name == "" {
			head = symbol + " " + c.Address.String() // a singleton of the account
		}
		if c.SID != "" {
			head += " (" + c.SID + ")"
		}
		fmt.Fprintf(&b, "%s {\n", padSymbol(head, symbol))
		for _, f := range c.Fields {
			b.WriteString(renderField(c.Action, f))
		}
		b.WriteString("    }\n")
	}
	s := p.Summary()
	fmt.Fprintf(&b, "\nPlan: %d to create, %d to update, %d to replace, %d to delete", s.Create, s.Update, s.Replace, s.Delete)
	if s.Adopt > 0 {
		// Adoptions (<= steps) change nothing in Twilio, but they are steps.
		fmt.Fprintf(&b, ", %d to adopt", s.Adopt)
	}
	b.WriteString(".\n")
	if s.Move > 0 || s.Forget > 0 {
		moves := ""
		if s.Move > 0 {
			moves = fmt.Sprintf("%d to move, ", s.Move)
		}
		fmt.Fprintf(&b, "State only: %s%d to forget.\n", moves, s.Forget)
	}
	renderSuspects(&b, p)
	_, err := io.WriteString(w, b.String())
	return err
}

// createdIn names where a create puts its resource, from its NewParent:
// "service.support" (created by this plan), "service.support (IS…)" or
// "service IS…" (one not managed here); "" for other steps and top-level kinds.
func createdIn(c Change) string {
	if c.Action != Create || c.NewParent.IsZero() {
		return ""
	}
	if !c.NewParent.Address.IsZero() {
		return c.NewParent.Address.String()
	}
	if c.Desired != nil && !c.Desired.Parent.Address.IsZero() {
		return c.Desired.Parent.Address.String() + " (" + c.NewParent.SID + ")"
	}
	return resource.AddressPrefix(resource.Schema(c.Address.Kind).Parent) + " " + c.NewParent.SID
}

func renderSuspects(b *strings.Builder, p *Plan) {
	for _, s := range p.Suspects {
		fmt.Fprintf(b, "\nWARNING: %s\n", s.Message)
	}
}

// padSymbol right-aligns the symbol so that "+", "~" and "-/+" line up.
func padSymbol(head, symbol string) string {
	return strings.Repeat(" ", max(0, 3-len(symbol))) + head
}

func renderField(a Action, f FieldChange) string {
	before := showValue(f.Type, f.Before)
	if f.Before == "" && f.WriteOnly {
		before = "(not known: never applied by convsync)"
	} else if f.Before == "" {
		before = "(unset)"
	}
	after := showValue(f.Type, f.After)
	if !f.AfterRef.IsZero() {
		after = "(the SID of " + f.AfterRef.String() + ", known after apply)"
	}
	if f.Secret {
		return renderSecret(a, f)
	}
	suffix := ""
	if f.ForcesReplace {
		suffix = " # forces replacement"
	}
	if f.Type == resource.TypeSet && f.Before != "" && f.After != "" && a != Create && a != Delete && !f.Secret {
		// A set changes by members: + sendMessage / - editOwnMessage.
		added, removed := resource.SetDiff(f.Before, f.After)
		var b strings.Builder
		fmt.Fprintf(&b, "      ~ %s = [%s\n", f.Name, suffix)
		for _, m := range added {
			fmt.Fprintf(&b, "          + %s\n", m)
		}
		for _, m := range removed {
			fmt.Fprintf(&b, "          - %s\n", m)
		}
		b.WriteString("        ]\n")
		return b.String()
	}
	switch {
	case a == Create || ((a == Replace || a == Adopt) && !f.ForcesReplace && f.Before == ""):
		return fmt.Sprintf("      + %s = %s%s\n", f.Name, after, suffix)
	case a == Delete:
		return fmt.Sprintf("      - %s = %s\n", f.Name, before)
	default:
		return fmt.Sprintf("      ~ %s = %s -> %s%s\n", f.Name, before, after, suffix)
	}
}

// renderSecret shows a secret field's step without its value: only that
// it is sent, and why.
func renderSecret(a Action, f FieldChange) string {
	switch {
	case a == Delete:
		return fmt.Sprintf("      - %s = (sensitive)\n", f.Name)
	case a == Create || a == Replace:
		return fmt.Sprintf("      + %s = (sensitive)\n", f.Name)
	case f.Before == "":
		// Imported, or never sent by convsync: Twilio cannot show it.
		return fmt.Sprintf("      ~ %s = (sensitive, not known to convsync: sent once)\n", f.Name)
	}
	return fmt.Sprintf("      ~ %s = (sensitive, changed)\n", f.Name)
}

func quote(s string) string { return strconv.Quote(s) }

// showValue writes a value for a person: strings quoted; sets, objects,
// booleans and numbers as JSON.
func showValue(t resource.FieldType, s string) string {
	switch t {
	case resource.TypeJSON, resource.TypeSet, resource.TypeBool, resource.TypeInt:
		if json.Valid([]byte(s)) {
			return s
		}
	}
	return quote(s)
}

// jsonValue is a value as a real JSON value of its type.
func jsonValue(t resource.FieldType, s string) json.RawMessage {
	f := resource.FieldSchema{Type: t}
	return f.JSONValue(s)
}

type jsonField struct {
	Name          string             `json:"name"`
	Type          resource.FieldType `json:"type,omitempty"`
	Before        json.RawMessage    `json:"before"`
	After         json.RawMessage    `json:"after"`
	AfterRef      string             `json:"after_ref,omitempty"`
	ForcesReplace bool               `json:"forces_replace,omitempty"`
	WriteOnly     bool               `json:"write_only,omitempty"`
	Secret        bool               `json:"secret,omitempty"`
}

type jsonChange struct {
	Address string `json:"address"`
	// PreviousAddress is where a move takes the resource from, as
	// Terraform's JSON plan names it.
	PreviousAddress string      `json:"previous_address,omitempty"`
	Action          Action      `json:"action"`
	Actions         []string    `json:"actions"`
	SID             string      `json:"sid,omitempty"`
	Reason          string      `json:"reason,omitempty"`
	Warnings        []string    `json:"warnings,omitempty"`
	Fields          []jsonField `json:"fields"`
}

type jsonPlan struct {
	FormatVersion string        `json:"format_version"`
	StateLineage  string        `json:"state_lineage,omitempty"`
	StateSerial   uint64        `json:"state_serial"`
	Changes       []jsonChange  `json:"changes"`
	Summary       Summary       `json:"summary"`
	HasChanges    bool          `json:"has_changes"`
	Suspects      []jsonSuspect `json:"suspects,omitempty"`
}

type jsonSuspect struct {
	Kind      resource.Kind `json:"kind"`
	SID       string        `json:"sid"`
	ParentSID string        `json:"parent_sid,omitempty"`
	LooksLike string        `json:"looks_like"`
	Message   string        `json:"message"`
}

// RenderJSON writes the machine-readable plan: format_version, changes
// (address, action, actions as Terraform spells them, reason, changed fields)
// and the summary counts. No-op steps are left out. docs/formats.md
// documents it.
func RenderJSON(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonDocument(p))
}

// jsonDocument is the JSON plan of p; a saved plan file (planfile.go) is
// this document plus what apply needs.
func jsonDocument(p *Plan) jsonPlan {
	out := jsonPlan{FormatVersion: JSONFormatVersion, StateLineage: p.StateLineage, StateSerial: p.StateSerial, Summary: p.Summary(), HasChanges: p.HasChanges(), Changes: []jsonChange{}}
	for _, c := range p.Changes {
		if c.Action == NoOp {
			continue
		}
		out.Changes = append(out.Changes, jsonChangeOf(c))
	}
	for _, s := range p.Suspects {
		out.Suspects = append(out.Suspects, jsonSuspect{Kind: s.Kind, SID: s.SID, ParentSID: s.ParentSID, LooksLike: s.LooksLike.String(), Message: s.Message})
	}
	return out
}

func jsonChangeOf(c Change) jsonChange {
	jc := jsonChange{Address: c.Address.String(), Action: c.Action, Actions: terraformActions(c.Action, c.CreateFirst), SID: c.SID, Reason: c.Reason, Warnings: c.Warnings, Fields: []jsonField{}}
	if c.Action == Move {
		jc.PreviousAddress = c.MovedFrom.String()
		if len(c.Fields) > 0 {
			jc.Actions = []string{"update"}
		}
	}
	for _, f := range c.Fields {
		jf := jsonField{Name: f.Name, Type: f.Type, ForcesReplace: f.ForcesReplace, WriteOnly: f.WriteOnly, Secret: f.Secret, Before: json.RawMessage("null"), After: json.RawMessage("null")}
		if f.Before != "" && !f.Secret {
			jf.Before = jsonValue(f.Type, f.Before)
		}
		if f.After != "" && !f.Secret {
			jf.After = jsonValue(f.Type, f.After)
		}
		if !f.AfterRef.IsZero() {
			jf.AfterRef = f.AfterRef.String()
		}
		jc.Fields = append(jc.Fields, jf)
	}
	return jc
}

func terraformActions(a Action, createFirst bool) []string {
	switch {
	case a == Replace && createFirst:
		return []string{"create", "delete"}
	case a == Replace:
		return []string{"delete", "create"}
	case a == NoOp || a == Move:
		// A move is no API call (an update, if any, is said by the caller).
		return []string{"no-op"}
	}
	return []string{string(a)}
}
