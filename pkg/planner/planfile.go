package planner

import (
	"encoding/json"
	"fmt"
	"os"
)

// PlanFileFormat is the version of saved plan files (plan --out). A plan
// file is only meant for the same convsync version that wrote it.
const PlanFileFormat = 1

type planFile struct {
	Format       int      `json:"convsync_plan_format"`
	StateLineage string   `json:"state_lineage"`
	StateSerial  uint64   `json:"state_serial"`
	SpecHash     string   `json:"spec_hash"`
	Changes      []Change `json:"changes"`
}

// Save writes p to path (mode 0600) for a later `convsync apply PLANFILE`.
// A plan holds no secrets; it does hold the resources' field values.
func Save(path string, p *Plan) error {
	data, err := json.MarshalIndent(planFile{Format: PlanFileFormat, StateLineage: p.StateLineage, StateSerial: p.StateSerial, SpecHash: p.SpecHash, Changes: p.Changes}, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving plan: %w", err)
	}
	return nil
}

// Load reads a plan saved by Save.
func Load(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading plan file: %w", err)
	}
	var f planFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("plan file %s is not a convsync plan: %v", path, err)
	}
	if f.Format != PlanFileFormat {
		return nil, fmt.Errorf("plan file %s has format %d; this convsync reads format %d: plan again with this version", path, f.Format, PlanFileFormat)
	}
	return &Plan{StateLineage: f.StateLineage, StateSerial: f.StateSerial, SpecHash: f.SpecHash, Changes: f.Changes}, nil
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
