package state

import (
	"fmt"

	"github.com/convsync/convsync/pkg/resource"
)

// The checks below are shared by Decode and File.Update, so that convsync never
// writes a state file it would refuse to read back.

func validateResource(key string, r *Resource) error {
	if r == nil {
		return fmt.Errorf("resource %s: no value", key)
	}
	schema := resource.Schema(r.Address.Kind)
	if schema == nil || r.Address.Name == "" && !resource.AccountSingleton(r.Address.Kind) {
		return fmt.Errorf("resource %q: address must look like KIND.NAME with a known kind", key)
	}
	if key != r.Address.String() {
		return fmt.Errorf("resource %s is recorded under the key %q", r.Address, key)
	}
	if schema.Singleton {
		// A singleton has no SID of its own: its ID is its path.
		if r.SID != resource.SingletonID(schema.Kind, r.ParentSID) {
			return fmt.Errorf("resource %s: id %q is not this %s's path (%s)", r.Address, r.SID, schema.Kind, resource.SingletonID(schema.Kind, r.ParentSID))
		}
	} else if !resource.IsSID(r.SID, schema.SIDPrefix) {
		return fmt.Errorf("resource %s: sid %q is not a %s SID (%s followed by 32 hex digits)", r.Address, r.SID, schema.Kind, schema.SIDPrefix)
	}
	if err := validateParentSID(schema, r.ParentSID); err != nil {
		return fmt.Errorf("resource %s: %v", r.Address, err)
	}
	if err := validateFields(schema, r.Applied); err != nil {
		return fmt.Errorf("resource %s: applied %v", r.Address, err)
	}
	return nil
}

func validatePending(key string, p *Pending) error {
	if p == nil {
		return fmt.Errorf("pending create %s: no value", key)
	}
	schema := resource.Schema(p.Address.Kind)
	if schema == nil || p.Address.Name == "" {
		return fmt.Errorf("pending create %q: address must look like KIND.NAME with a known kind", key)
	}
	if key != p.Address.String() {
		return fmt.Errorf("pending create %s is recorded under the key %q", p.Address, key)
	}
	if p.Kind != p.Address.Kind {
		return fmt.Errorf("pending create %s: kind %q does not match the address", p.Address, p.Kind)
	}
	if err := validateParentSID(schema, p.ParentSID); err != nil {
		return fmt.Errorf("pending create %s: %v", p.Address, err)
	}
	if p.StartedAt.IsZero() {
		return fmt.Errorf("pending create %s: started_at is missing (it bounds the search for the created resource)", p.Address)
	}
	if err := validateFields(schema, p.Values); err != nil {
		return fmt.Errorf("pending create %s: values %v", p.Address, err)
	}
	return nil
}

func validateParentSID(schema *resource.KindSchema, sid string) error {
	if sid == "" {
		return nil
	}
	if err := resource.CheckParentKey(schema.Kind, sid); err != nil {
		return fmt.Errorf("parent_sid: %v", err)
	}
	return nil
}

// validateFields refuses field names the kind does not have: a state written by
// a convsync that manages more fields must not be silently half-understood.
func validateFields(schema *resource.KindSchema, v resource.Values) error {
	for _, name := range v.Keys() {
		if schema.Field(name) == nil {
			return fmt.Errorf("field %q is not a %s field", name, schema.Kind)
		}
	}
	return nil
}

// changedAndValid reports whether next differs from prev in content, and checks
// every entry that differs. Entries equal to prev were checked when they entered.
func changedAndValid(prev, next *State) (bool, error) {
	if next.Lineage != prev.Lineage {
		return false, fmt.Errorf("the state's lineage cannot change (was %s, now %s)", prev.Lineage, next.Lineage)
	}
	if next.Serial != prev.Serial {
		return false, fmt.Errorf("the state's serial is managed by the state file; an update must not set it")
	}
	changed := len(prev.Resources) != len(next.Resources) || len(prev.Pending) != len(next.Pending)
	for k, r := range next.Resources {
		if r != nil && r.Equal(prev.Resources[k]) {
			continue
		}
		changed = true
		if err := validateResource(k, r); err != nil {
			return false, err
		}
	}
	for k, p := range next.Pending {
		if p != nil && p.Equal(prev.Pending[k]) {
			continue
		}
		changed = true
		if err := validatePending(k, p); err != nil {
			return false, err
		}
	}
	return changed, nil
}
