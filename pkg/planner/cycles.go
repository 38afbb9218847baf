package planner

import (
	"fmt"
	"sort"
	"strings"

	"github.com/convsync/convsync/pkg/resource"
)

// The steps of a plan run as operations: a replace is a delete then a
// create, every other step one operation. checkCycles builds the same
// operations and edges as the applier (pkg/apply's buildGraph) and refuses a
// plan whose operations wait for each other in a cycle: applied, such a plan
// could never start the steps involved.

type opKey struct {
	addr resource.Address
	del  bool // the delete half of a replace, or a delete
}

type opEdge struct {
	to       opKey
	freeName string // for an AfterFree edge: the unique_name freed
}

type stepGraph struct {
	ops   []opKey
	edges map[opKey][]opEdge
}

func buildStepGraph(plan *Plan) *stepGraph {
	g := &stepGraph{edges: map[opKey][]opEdge{}}
	delOp, mainOp := map[resource.Address]*opKey{}, map[resource.Address]*opKey{}
	byAddr := map[resource.Address]*Change{}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if ch.Action == NoOp {
			continue
		}
		byAddr[ch.Address] = ch
		add := func(del bool) *opKey {
			k := opKey{ch.Address, del}
			g.ops = append(g.ops, k)
			return &k
		}
		switch ch.Action {
		case Delete:
			delOp[ch.Address] = add(true)
		case Replace:
			delOp[ch.Address], mainOp[ch.Address] = add(true), add(false)
			if ch.CreateFirst {
				g.edge(mainOp[ch.Address], delOp[ch.Address], "")
			} else {
				g.edge(delOp[ch.Address], mainOp[ch.Address], "")
			}
		default:
			mainOp[ch.Address] = add(false)
		}
	}
	for i := range plan.Changes {
		ch := &plan.Changes[i]
		if ch.Action == NoOp {
			continue
		}
		for _, dep := range ch.DependsOn {
			if d := delOp[dep]; d != nil && delOp[ch.Address] != nil && ParentOf(byAddr[dep]) == ch.SID && ch.SID != "" {
				g.edge(d, delOp[ch.Address], "")
				continue
			}
			if p := delOp[dep]; p != nil && ch.GoesWithParent && delOp[ch.Address] != nil && ParentOf(ch) == byAddr[dep].SID {
				g.edge(p, delOp[ch.Address], "")
			}
			g.edge(mainOp[dep], mainOp[ch.Address], "")
		}
		for _, dep := range ch.AfterRelease {
			from := delOp[dep]
			if from == nil {
				from = mainOp[dep]
			}
			g.edge(from, delOp[ch.Address], "")
		}
		for _, dep := range ch.AfterFree {
			from := delOp[dep]
			if from == nil {
				from = mainOp[dep]
			}
			name := ""
			if ch.Desired != nil {
				name = resource.Schema(ch.Address.Kind).KeyOf(ch.Desired.Values)
			}
			g.edge(from, mainOp[ch.Address], name)
		}
	}
	return g
}

func (g *stepGraph) edge(from, to *opKey, freeName string) {
	if from == nil || to == nil || *from == *to {
		return
	}
	g.edges[*from] = append(g.edges[*from], opEdge{to: *to, freeName: freeName})
}

// cycles returns one cycle (as the edges taken, from its first operation)
// per strongly connected group of operations that wait for each other.
func (g *stepGraph) cycles() [][]opEdge {
	// Tarjan's algorithm. The recursion goes as deep as the longest chain of
	// waiting steps, which Go's growing stacks take in their stride.
	index, low := map[opKey]int{}, map[opKey]int{}
	onStack := map[opKey]bool{}
	var stack []opKey
	var out [][]opEdge
	next := 0
	var strong func(v opKey)
	strong = func(v opKey) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, e := range g.edges[v] {
			if _, seen := index[e.to]; !seen {
				strong(e.to)
				low[v] = min(low[v], low[e.to])
			} else if onStack[e.to] {
				low[v] = min(low[v], index[e.to])
			}
		}
		if low[v] != index[v] {
			return
		}
		group := map[opKey]bool{}
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			group[w] = true
			if w == v {
				break
			}
		}
		if len(group) > 1 {
			out = append(out, g.cycleIn(group))
		}
	}
	for _, v := range g.ops {
		if _, seen := index[v]; !seen {
			strong(v)
		}
	}
	return out
}

// cycleIn returns a cycle through the group's smallest operation, staying
// inside the group (breadth first, so the cycle is a shortest one).
func (g *stepGraph) cycleIn(group map[opKey]bool) []opEdge {
	members := make([]opKey, 0, len(group))
	for k := range group {
		members = append(members, k)
	}
	sort.Slice(members, func(i, j int) bool {
		if members[i].addr != members[j].addr {
			return members[i].addr.String() < members[j].addr.String()
		}
		return members[i].del && !members[j].del
	})
	start := members[0]
	type via struct {
		from opKey
		edge opEdge
	}
	prev := map[opKey]via{}
	queue := []opKey{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, e := range g.edges[v] {
			if !group[e.to] {
				continue
			}
			if e.to == start {
				path := []opEdge{e}
				for w := v; w != start; w = prev[w].from {
					path = append([]opEdge{prev[w].edge}, path...)
				}
				return path
			}
			if _, seen := prev[e.to]; !seen {
				prev[e.to] = via{v, e}
				queue = append(queue, e.to)
			}
		}
	}
	return nil // not reached: the group is strongly connected
}

// checkCycles fails the plan for every group of steps that wait for each
// other, naming the steps (see Error.Others).
func (c *computer) checkCycles(plan *Plan) {
	for _, cyc := range buildStepGraph(plan).cycles() {
		var addrs []resource.Address
		seen := map[resource.Address]bool{}
		for _, e := range cyc {
			if !seen[e.to.addr] {
				seen[e.to.addr] = true
				addrs = append(addrs, e.to.addr)
			}
		}
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].String() < addrs[j].String() })
		c.errs = append(c.errs, Error{Address: addrs[0], Others: addrs[1:], Message: cycleMessage(cyc, wantedName(plan))})
	}
}

// wantedName maps each step to the unique_name its spec asks for.
func wantedName(plan *Plan) map[resource.Address]string {
	out := map[resource.Address]string{}
	for _, ch := range plan.Changes {
		if ch.Desired != nil {
			out[ch.Address] = resource.Schema(ch.Address.Kind).KeyOf(ch.Desired.Values)
		}
	}
	return out
}

func cycleMessage(cyc []opEdge, wanted map[resource.Address]string) string {
	names := true
	var steps []string
	var holder resource.Address // gives up a name first in the suggested way out
	for i, e := range cyc {
		from := cyc[(i+len(cyc)-1)%len(cyc)].to
		switch {
		case from.addr == e.to.addr:
			continue // a replace's delete before its own create
		case e.freeName != "":
			steps = append(steps, fmt.Sprintf("%s takes unique_name %q from %s", e.to.addr, e.freeName, from.addr))
			if holder.IsZero() {
				holder = from.addr
			}
		default:
			names = false
			steps = append(steps, fmt.Sprintf("%s waits for %s", e.to.addr, from.addr))
		}
	}
	if names && !holder.IsZero() {
		return fmt.Sprintf("these unique_names move in a cycle (%s): Twilio lets only one conversation hold a unique_name at a time, so no order of changes can apply them in one go, and nothing is applied. "+
			"Do it in two applies: first give one of them a temporary unique_name that nothing holds (for example unique_name %q for %s, the others as wanted) and apply, then set its final unique_name and apply again",
			strings.Join(steps, "; "), wanted[holder]+"-tmp", holder)
	}
	return fmt.Sprintf("the plan's steps wait for each other in a cycle (%s), so none of them could ever start; nothing is applied. "+
		"This is a bug in convsync: please report it with the output of convsync plan --json", strings.Join(steps, "; "))
}
