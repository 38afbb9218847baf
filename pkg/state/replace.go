package state

import "fmt"

// Replace makes s the whole state of a file that holds none yet, lineage
// and serial included, and writes it at once (convsync state migrate
// --from: a state moved out of a database keeps its history).
func (f *File) Replace(s *State) error {
	if f.opts.ReadOnly {
		return fmt.Errorf("state file %s was opened read-only; it cannot be changed", f.path)
	}
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	f.mu.Lock()
	if f.onDisk || len(f.state.Resources) > 0 || len(f.state.Pending) > 0 {
		f.mu.Unlock()
		return fmt.Errorf("state file %s already holds a state (lineage %s, serial %d); nothing was written: migrate into a new file", f.path, f.state.Lineage, f.state.Serial)
	}
	if err := validateState(s); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("refusing to write state file %s: %w", f.path, err)
	}
	f.state = s.Clone()
	f.mu.Unlock()
	return f.compact(false)
}

func validateState(s *State) error {
	for k, r := range s.Resources {
		if err := validateResource(k, r); err != nil {
			return err
		}
	}
	for k, p := range s.Pending {
		if err := validatePending(k, p); err != nil {
			return err
		}
	}
	return nil
}
