package planner

import (
	"slices"
	"strings"
)

// DetachOrphans gives a request of its own to every delete that was to go
// with its parent's delete (GoesWithParent) when the plan no longer deletes
// that parent: --target left it out, or the daemon held its delete back.
// Without this, the child's state entry would go while the child stays in
// Twilio, in a parent that stays too.
func DetachOrphans(plan *Plan) {
	destroying := map[string]*Change{}
	for i := range plan.Changes {
		if ch := &plan.Changes[i]; ch.SID != "" && ch.Action.Destroys() {
			destroying[ch.SID] = ch
		}
	}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if !ch.GoesWithParent || ch.Action != Delete || destroying[ParentOf(ch)] != nil {
			continue
		}
		ch.GoesWithParent = false
		deps := ch.DependsOn[:0:0]
		for _, d := range ch.DependsOn {
			// The parent's delete it waited for is not in the plan.
			if !slices.ContainsFunc(plan.Changes, func(c Change) bool { return c.Address == d }) {
				continue
			}
			deps = append(deps, d)
		}
		ch.DependsOn = deps
		if i := strings.Index(ch.Reason, "; it goes with "); i >= 0 {
			if j := strings.Index(ch.Reason[i:], "(no request of its own)"); j >= 0 {
				ch.Reason = ch.Reason[:i] + ch.Reason[i+j+len("(no request of its own)"):]
			}
		}
	}
}
