package daemon

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/apply"
	"github.com/convsync/convsync/pkg/engine"
	"github.com/convsync/convsync/pkg/planner"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/spec"
)

// fakeSpecs is a spec folder whose content the test sets.
type fakeSpecs struct {
	mu  sync.Mutex
	set *spec.Set
	err error
}

func conversations(names ...string) []resource.Desired {
	var out []resource.Desired
	for _, n := range names {
		out = append(out, resource.Desired{Address: resource.Address{Kind: resource.KindConversation, Name: n}})
	}
	return out
}

// write makes the folder hold these resources; hash stands for the content.
func (f *fakeSpecs) write(hash string, names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set, f.err = &spec.Set{Resources: conversations(names...), Files: []string{"specs.yaml"}, Hash: hash}, nil
}

// breakSyntax makes the folder fail to load, as a half-written file would.
func (f *fakeSpecs) breakSyntax() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set, f.err = nil, spec.Errors{{File: "specs.yaml", Line: 3, Message: "invalid YAML: did not find expected node content"}}
}

func (f *fakeSpecs) load(string) (*spec.Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set, f.err
}

// passCall records one Reconciler.Pass call.
type passCall struct {
	names        []string
	hash         string
	full         bool
	allowDestroy int
}

// fakeReconciler records passes. By default a pass succeeds with no
// changes; refuseAbove makes it act as the deletion guard would.
type fakeReconciler struct {
	mu    sync.Mutex
	calls []passCall
	// block, if set, is received from before a pass returns.
	block chan struct{}
	// deaf makes a blocked pass ignore its context (a stuck pass).
	deaf bool
	// heldBack is what the pass reports held back by plan problems.
	heldBack map[resource.Address]string
	// err is returned by the next passes (wholesale failure).
	err error
	// destroys is how many deletions the pass would make; maxDestroy the guard.
	destroys, maxDestroy int
	retryAt              time.Time
	failing              map[resource.Address]error
	// ctxErrs is the pass context's error as each pass ended.
	ctxErrs []error
	// plan, if set, is the plan a successful pass returns; applied, what
	// it applied.
	plan    *planner.Plan
	applied *apply.Result
	// during, if set, runs inside each pass before it blocks (as the real
	// reconciler calls its BeforeApply and apply's events).
	during func()
}

func (r *fakeReconciler) Pass(ctx context.Context, desired []resource.Desired, hash string, full bool, allowDestroy int) (*engine.PassResult, error) {
	call := passCall{hash: hash, full: full, allowDestroy: allowDestroy}
	for _, d := range desired {
		call.names = append(call.names, d.Address.Name)
	}
	r.mu.Lock()
	r.calls = append(r.calls, call)
	block, err, destroys, limit, deaf, during := r.block, r.err, r.destroys, r.maxDestroy, r.deaf, r.during
	r.mu.Unlock()
	if during != nil {
		during()
	}
	if block != nil && deaf {
		<-block
	} else if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
		}
	}
	r.mu.Lock()
	r.ctxErrs = append(r.ctxErrs, ctx.Err())
	r.mu.Unlock()
	if err != nil {
		return &engine.PassResult{Full: full}, err
	}
	if allowDestroy > limit {
		limit = allowDestroy
	}
	if destroys > limit {
		return &engine.PassResult{Full: full}, &engine.TooManyDestroysError{Count: destroys, Limit: limit,
			Addresses: []resource.Address{{Kind: resource.KindConversation, Name: "gone"}}}
	}
	res := &engine.PassResult{Full: full, Plan: &planner.Plan{}}
	r.mu.Lock()
	if r.plan != nil {
		res.Plan = r.plan
	}
	res.Applied = r.applied
	res.HeldBack = r.heldBack
	r.mu.Unlock()
	if destroys > 0 {
		res.Applied = &apply.Result{}
		for i := 0; i < destroys; i++ {
			res.Applied.Steps = append(res.Applied.Steps, apply.StepResult{Address: resource.Address{Kind: resource.KindConversation, Name: "gone"}, Action: planner.Delete})
		}
		r.mu.Lock()
		r.destroys = 0
		r.mu.Unlock()
	}
	return res, nil
}

func (r *fakeReconciler) NextRetry() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retryAt, !r.retryAt.IsZero()
}

func (r *fakeReconciler) Failing() map[resource.Address]error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failing
}

func (r *fakeReconciler) set(f func(r *fakeReconciler)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func (r *fakeReconciler) passes() []passCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]passCall(nil), r.calls...)
}

var errTwilioDown = errors.New("GET /v1/Services: connection refused")

// metric reads a counter or gauge from the registry: the sum over the
// series whose labels include want.
func metric(t *testing.T, m *Metrics, name string, want map[string]string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case s.GetCounter() != nil:
				total += s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				total += s.GetGauge().GetValue()
			}
		}
	}
	return total
}
