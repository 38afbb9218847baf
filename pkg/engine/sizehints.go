package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// SizeHintsPath is where the one-shot CLI keeps the sizes it saw (per kind
// and parent, planner.SizeKey; a file of the older per-service form under
// "service_sizes" is ignored),
// beside the state file. It is a cache, not state: a missing, stale or
// damaged file only costs requests (Refresh then lists), never correctness,
// because a fetched conversation that is gone is still seen as gone and new
// unique_names are still checked.
func SizeHintsPath(statePath string) string { return statePath + ".sizes" }

// ReadSizeHints reads the hints, or returns nil when there are none usable.
func ReadSizeHints(path string) map[string]int {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var hints struct {
		Sizes map[string]int `json:"sizes"`
	}
	if json.Unmarshal(data, &hints) != nil {
		return nil
	}
	return hints.Sizes
}

// WriteSizeHints replaces the hints atomically (temp file and rename).
func WriteSizeHints(path string, sizes map[string]int) error {
	data, err := json.Marshal(struct {
		Sizes map[string]int `json:"sizes"`
	}{sizes})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
