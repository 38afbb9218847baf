package apply

import (
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
)

type op int

const (
	opDelete op = iota
	opCreate
	opUpdate
	opAdopt
	opForget
	opMove
)

// node is one API-level operation; a replace is two nodes (delete, then
// create) so that a parent's delete can wait for its children's deletes
// while the children's creates wait for the parent's create.
type node struct {
	change      *planner.Change
	op          op
	first, last bool // first and last node of its step (for events)
	dependents  []*node
	waiting     int
	failedDep   resource.Address
	done        bool // finished, failed or skipped
}

type stepState struct {
	sid      string
	err      error
	observed *resource.Observed
	gone     bool
}

type graph struct {
	changes []*planner.Change
	nodes   []*node
	steps   map[resource.Address]*stepState
	// deleteNode and mainNode of each step, when it has one.
	deleteNode map[resource.Address]*node
	mainNode   map[resource.Address]*node
}

func (g *graph) edge(from, to *node) {
	if from == nil || to == nil || from == to {
		return
	}
	from.dependents = append(from.dependents, to)
	to.waiting++
}

// buildGraph turns the plan's steps (no-ops left out) into nodes and edges.
func buildGraph(plan *planner.Plan) *graph {
	g := &graph{steps: map[resource.Address]*stepState{}, deleteNode: map[resource.Address]*node{}, mainNode: map[resource.Address]*node{}}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if ch.Action == planner.NoOp {
			continue
		}
		g.changes = append(g.changes, ch)
		g.steps[ch.Address] = &stepState{sid: ch.SID}
		add := func(o op, first, last bool) *node {
			n := &node{change: ch, op: o, first: first, last: last}
			g.nodes = append(g.nodes, n)
			return n
		}
		switch ch.Action {
		case planner.Delete:
			g.deleteNode[ch.Address] = add(opDelete, true, true)
		case planner.Replace:
			if ch.CreateFirst {
				// The new one first, so that what refers to the old one
				// can move over before it is deleted.
				create := add(opCreate, true, false)
				del := add(opDelete, false, true)
				g.edge(create, del)
				g.deleteNode[ch.Address], g.mainNode[ch.Address] = del, create
				break
			}
			del := add(opDelete, true, false)
			create := add(opCreate, false, true)
			g.edge(del, create)
			g.deleteNode[ch.Address], g.mainNode[ch.Address] = del, create
		case planner.Create:
			g.mainNode[ch.Address] = add(opCreate, true, true)
		case planner.Update:
			g.mainNode[ch.Address] = add(opUpdate, true, true)
		case planner.Adopt:
			g.mainNode[ch.Address] = add(opAdopt, true, true)
		case planner.Forget:
			g.mainNode[ch.Address] = add(opForget, true, true)
		case planner.Move:
			// Re-key, then update what differs: one node.
			g.mainNode[ch.Address] = add(opMove, true, true)
		}
	}
	for _, ch := range g.changes {
		for _, dep := range ch.DependsOn {
			if d := g.deleteNode[dep]; d != nil && g.deleteNode[ch.Address] != nil && ch.SID != "" && planner.ParentOf(d.change) == ch.SID {
				// A child's delete before its parent's delete.
				g.edge(d, g.deleteNode[ch.Address])
				continue
			}
			if p := g.deleteNode[dep]; p != nil && ch.GoesWithParent && g.deleteNode[ch.Address] != nil && planner.ParentOf(ch) == p.change.SID {
				// Its parent's delete deletes it: the state entry goes
				// after that, and a re-create waits for the new parent.
				g.edge(p, g.deleteNode[ch.Address])
			}
			// A parent's create before its child's create.
			g.edge(g.mainNode[dep], g.mainNode[ch.Address])
		}
		for _, dep := range ch.AfterRelease {
			// What stops referring to it (an update, or its own delete)
			// before it is deleted.
			from := g.deleteNode[dep]
			if from == nil {
				from = g.mainNode[dep]
			}
			g.edge(from, g.deleteNode[ch.Address])
		}
		for _, dep := range ch.AfterFree {
			// Whatever frees the unique_name before whatever takes it: the
			// holder's delete, or its rename.
			from := g.deleteNode[dep]
			if from == nil {
				from = g.mainNode[dep]
			}
			g.edge(from, g.mainNode[ch.Address])
		}
	}
	return g
}

// stuck returns the steps whose nodes could never become ready because they
// wait for each other in a cycle (or for such steps). The planner refuses
// plans with a cycle; this is the applier's own check, so that a plan that
// slipped through (or was edited) fails instead of hanging.
func (g *graph) stuck() []resource.Address {
	waiting := make(map[*node]int, len(g.nodes))
	var ready []*node
	for _, n := range g.nodes {
		waiting[n] = n.waiting
		if n.waiting == 0 {
			ready = append(ready, n)
		}
	}
	for len(ready) > 0 {
		n := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		for _, d := range n.dependents {
			if waiting[d]--; waiting[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	seen := map[resource.Address]bool{}
	var out []resource.Address
	for _, n := range g.nodes {
		if waiting[n] > 0 && !seen[n.change.Address] {
			seen[n.change.Address] = true
			out = append(out, n.change.Address)
		}
	}
	return out
}
