package planner

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

// richPlan has every internal a change can carry, on every action.
func richPlan() *Plan {
	role := addr(resource.KindRole, "agent")
	user := addr(resource.KindUser, "alice")
	desiredRole := desiredIn(resource.KindRole, "agent", roleValues("service", perms))
	desiredRole.Source = resource.Source{File: "access.yaml", Line: 3, Column: 1}
	desiredUser := desiredIn(resource.KindUser, "alice", resource.Values{resource.FieldIdentity: "alice", resource.FieldAttributes: `{"a":[1,2.50,"<x>"],"b":{}}`})
	desiredUser.Refs = map[string]resource.Ref{resource.FieldRoleSID: {Address: role}}
	desiredUser.WebhookEnabled = true
	desiredUser.Lifecycle.PreventDestroy = true
	desiredUser.Timeouts = resource.Timeouts{Create: time.Minute, Update: 90 * time.Second, Read: time.Second, Delete: time.Hour}
	desiredConv := desiredConv("vip", svcSID, resource.Values{resource.FieldUniqueName: "vip", resource.FieldTimersClosed: "P30D", resource.FieldState: "closed"})
	desiredCfg := resource.Desired{Address: addr(resource.KindServiceConfiguration, "support"), Parent: resource.Ref{Address: svcAddr("support")}, Values: resource.Values{"reachability_enabled": "true"}, Timeouts: resource.DefaultTimeouts}
	obsRole := &resource.Observed{Kind: resource.KindRole, SID: roleSID, ParentSID: svcSID, Values: roleValues("conversation", permsOther), DateCreated: t0, DateUpdated: t0.Add(time.Hour)}
	obsConv := &resource.Observed{Kind: resource.KindConversation, SID: convSID, ParentSID: svcSID, Values: resource.Values{resource.FieldUniqueName: "vip", resource.FieldAttributes: "{}", resource.FieldState: "active"}, DateCreated: t0,
		Extra: resource.Values{"url": "https://conversations.twilio.com/v1/Services/" + svcSID + "/Conversations/" + convSID}}
	cfgID := resource.SingletonID(resource.KindServiceConfiguration, svcSID)
	return &Plan{
		StateLineage: "test-lineage", StateSerial: 7, SpecHash: "abc123",
		Changes: []Change{
			{Address: svcAddr("support"), Action: NoOp, SID: svcSID},
			{Address: role, Action: Replace, Reason: "type cannot be changed in place", SID: roleSID, ParentSID: svcSID, NewParent: resource.Ref{SID: svcSID},
				Desired: &desiredRole, Observed: obsRole, CreateFirst: true, AfterRelease: []resource.Address{user},
				Fields: []FieldChange{{Name: resource.FieldRoleType, Type: resource.TypeString, Before: "conversation", After: "service", ForcesReplace: true},
					{Name: resource.FieldPermissions, Type: resource.TypeSet, Before: permsOther, After: perms}}},
			{Address: user, Action: Create, Reason: "not yet created", NewParent: resource.Ref{Address: svcAddr("support")}, Desired: &desiredUser,
				DependsOn: []resource.Address{svcAddr("support"), role}, PendingRefs: map[string]resource.Address{resource.FieldRoleSID: role},
				Warnings: []string{"a warning"},
				Fields: []FieldChange{{Name: resource.FieldIdentity, Type: resource.TypeString, After: "alice", ForcesReplace: true},
					{Name: resource.FieldAttributes, Type: resource.TypeJSON, After: desiredUser.Values[resource.FieldAttributes]},
					{Name: resource.FieldRoleSID, Type: resource.TypeRef, AfterRef: role}}},
			{Address: convAddr("vip"), Action: Adopt, Reason: "an interrupted create", SID: convSID, ParentSID: svcSID, Desired: &desiredConv, Observed: obsConv, Deposes: convSID2,
				AfterFree: []resource.Address{convAddr("old")},
				Fields: []FieldChange{{Name: resource.FieldState, Type: resource.TypeString, Before: "active", After: "closed"},
					{Name: resource.FieldTimersClosed, Type: resource.TypeDuration, After: "P30D", WriteOnly: true}}},
			{Address: convAddr("old"), Action: Delete, Reason: "no longer in the specs", SID: convSID2, ParentSID: svcSID, Cascade: 2,
				Fields: []FieldChange{{Name: resource.FieldAttributes, Type: resource.TypeJSON, Before: "{}"}}},
			{Address: convAddr("moved"), Action: Move, MovedFrom: convAddr("before"), SID: strayCH, ParentSID: svcSID, Reason: "its spec was renamed"},
			{Address: convAddr("gone"), Action: Forget, SID: "CH0000000000000000000000000000000a", ParentSID: svcSID, Reason: "already deleted"},
			{Address: desiredCfg.Address, Action: Update, SID: cfgID, ParentSID: svcSID, Desired: &desiredCfg, Observed: &resource.Observed{Kind: resource.KindServiceConfiguration, SID: cfgID, ParentSID: svcSID, Values: resource.Values{"reachability_enabled": "false"}},
				Fields: []FieldChange{{Name: "reachability_enabled", Type: resource.TypeBool, Before: "false", After: "true"}}},
		},
		Suspects: []Suspect{{Kind: resource.KindConversation, SID: "CH0000000000000000000000000000000b", ParentSID: svcSID, LooksLike: convAddr("vip"), Message: "possibly created by convsync"}},
	}
}

// withoutNoOps is p as a saved plan holds it.
func withoutNoOps(p *Plan) *Plan {
	out := *p
	out.Changes = nil
	for _, c := range p.Changes {
		if c.Action != NoOp {
			out.Changes = append(out.Changes, c)
		}
	}
	return &out
}

func TestSavedPlanRoundTrips(t *testing.T) {
	plan := richPlan()
	data, err := Marshal(plan, SaveOptions{ConvsyncVersion: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/rich.planfile.json", data)
	loaded, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	want := withoutNoOps(plan)
	if !reflect.DeepEqual(loaded, want) {
		for i := range want.Changes {
			if i < len(loaded.Changes) && !reflect.DeepEqual(loaded.Changes[i], want.Changes[i]) {
				t.Errorf("change %d:\n got: %+v\nwant: %+v", i, loaded.Changes[i], want.Changes[i])
			}
		}
		t.Fatalf("the loaded plan differs from the saved one")
	}
	// What show renders from the file is what plan rendered.
	for name, render := range map[string]func(*bytes.Buffer, *Plan) error{
		"human": func(b *bytes.Buffer, p *Plan) error { return RenderHuman(b, p) },
		"json":  func(b *bytes.Buffer, p *Plan) error { return RenderJSON(b, p) },
	} {
		var a, b bytes.Buffer
		if err := render(&a, plan); err != nil {
			t.Fatal(err)
		}
		if err := render(&b, loaded); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Errorf("%s rendering of the loaded plan differs:\n got: %s\nwant: %s", name, b.String(), a.String())
		}
	}
}

// A saved plan is the JSON plan document plus plan-file keys: without them
// it is exactly what plan --json prints.
func TestSavedPlanIsTheJSONPlanPlusApplyKeys(t *testing.T) {
	plan := richPlan()
	data, err := Marshal(plan, SaveOptions{ConvsyncVersion: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if file["plan_file_version"] != float64(PlanFileVersion) || file["format_version"] != JSONFormatVersion || file["spec_hash"] != "abc123" || file["convsync_version"] != "dev" {
		t.Fatalf("plan-file keys: %v %v %v %v", file["plan_file_version"], file["format_version"], file["spec_hash"], file["convsync_version"])
	}
	for _, k := range []string{"plan_file_version", "spec_hash", "convsync_version"} {
		delete(file, k)
	}
	for _, c := range file["changes"].([]any) {
		ch := c.(map[string]any)
		if _, ok := ch["apply"]; !ok {
			t.Fatalf("change without apply: %v", ch)
		}
		delete(ch, "apply")
	}
	var rendered bytes.Buffer
	if err := RenderJSON(&rendered, plan); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(rendered.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(file, doc) {
		a, _ := json.MarshalIndent(file, "", "  ")
		b, _ := json.MarshalIndent(doc, "", "  ")
		t.Fatalf("the saved plan without its plan-file keys:\n%s\nplan --json:\n%s", a, b)
	}
}

// A field value Twilio sent in a form that does not read back as the same
// text keeps its exact text under apply.field_text; a secret's value is only
// in apply.desired.
func TestSavedPlanKeepsExactTextAndSecrets(t *testing.T) {
	d := desiredIn(resource.KindRole, "agent", resource.Values{"token": "s3cr3t"})
	plan := &Plan{StateLineage: "l", StateSerial: 1, Changes: []Change{{
		Address: addr(resource.KindRole, "agent"), Action: Update, SID: roleSID, ParentSID: svcSID, Desired: &d,
		Fields: []FieldChange{
			{Name: resource.FieldPermissions, Type: resource.TypeSet, Before: `["sendMessage","editOwnMessage"]`, After: perms},
			{Name: resource.FieldFriendlyName, Type: resource.TypeString, Before: "x", After: "s3cr3t", Secret: true},
		},
	}}}
	data, err := Marshal(plan, SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "s3cr3t"); n != 1 {
		t.Fatalf("the secret appears %d times in the saved plan, want once (in apply.desired):\n%s", n, data)
	}
	if !strings.Contains(string(data), `"field_text"`) {
		t.Fatalf("a set in Twilio's order should keep its exact text:\n%s", data)
	}
	// The secret field is named friendly_name here only to have a field
	// the role schema knows; the desired values hold its after.
	d.Values[resource.FieldFriendlyName] = "s3cr3t"
	data, err = Marshal(plan, SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	fs := loaded.Changes[0].Fields
	if fs[0].Before != `["sendMessage","editOwnMessage"]` || fs[0].After != perms {
		t.Fatalf("set field: %+v", fs[0])
	}
	if fs[1].After != "s3cr3t" || fs[1].Before != "" {
		t.Fatalf("secret field: %+v", fs[1])
	}
}

func TestLoadRefusesWhatIsNotAPlanFile(t *testing.T) {
	dir := t.TempDir()
	var jsonPlan bytes.Buffer
	if err := RenderJSON(&jsonPlan, richPlan()); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ content, want string }{
		"old":      {`{"convsync_plan_format": 1, "changes": []}`, "saved by an older convsync in plan file version 1; this convsync reads version 2: run convsync plan --out again"},
		"json":     {jsonPlan.String(), "is the output of plan --json, which cannot be applied"},
		"newer":    {`{"format_version": "2.0", "plan_file_version": 3}`, "has plan file version 3; this convsync reads version 2"},
		"major":    {`{"format_version": "3.0", "plan_file_version": 2, "changes": []}`, `holds a JSON plan of format "3.0"`},
		"garbage":  {"{\n  \"plan_file_version\": 2,\n  oops\n}", "not a convsync plan file (line 3, column 3"},
		"action":   {`{"format_version": "2.0", "plan_file_version": 2, "changes": [{"address": "service.x", "action": "explode", "apply": {}}]}`, `changes[0] (service.x): unknown action "explode"`},
		"field":    {`{"format_version": "2.0", "plan_file_version": 2, "changes": [{"address": "service.x", "action": "update", "fields": [{"name": "colour"}], "apply": {}}]}`, `field "colour" is not a Service field`},
		"no key":   {`{"changes": []}`, "no plan_file_version"},
		"bad type": {`{"format_version": "2.0", "plan_file_version": 2, "state_serial": "seven"}`, "not a valid plan file (line 1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".plan")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "plan file "+path+": ") {
				t.Fatalf("error %v; want one naming %s and saying %q", err, path, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}
