package pgstate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/pgtest"
	"github.com/convsync/convsync/pkg/leader"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/state/pgstate"
)

func open(t *testing.T, url, workspace string) *pgstate.Store {
	t.Helper()
	s, err := pgstate.Open(context.Background(), url, pgstate.Options{Workspace: workspace})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var svc = &state.Resource{Address: resource.Address{Kind: resource.KindService, Name: "support"}, SID: "IS00000000000000000000000000000001",
	Applied: resource.Values{resource.FieldFriendlyName: "Support"}}

func putService(s state.Backend, name string, n int) error {
	r := svc.Clone()
	r.Address.Name = name
	r.SID = "IS" + strings.Repeat("0", 31) + string(rune('0'+n))
	return s.Update(func(st *state.State) error { st.Put(r); return nil })
}

// acquireWhenFree takes the lease as soon as it lapses (polling: the lease
// runs on the server's clock).
func acquireWhenFree(t *testing.T, s *pgstate.Store, holder string, ttl time.Duration) leader.Grant {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, err := s.Acquire(context.Background(), holder, ttl)
		var held *leader.HeldError
		if err == nil {
			return g
		}
		if !errors.As(err, &held) || time.Now().After(deadline) {
			t.Fatalf("Acquire: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the server's clock
	}
}

func TestTwoReplicasStartingAtOnceGetOneLease(t *testing.T) {
	srv := pgtest.Start(t)
	const n = 5
	stores := make([]*pgstate.Store, n)
	for i := range stores {
		stores[i] = open(t, srv.URL(), "default")
	}
	var wg sync.WaitGroup
	grants := make([]leader.Grant, n)
	errs := make([]error, n)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			grants[i], errs[i] = stores[i].Acquire(context.Background(), "replica-"+string(rune('a'+i)), 15*time.Second)
		}()
	}
	wg.Wait()
	leaders := 0
	for i := range stores {
		var held *leader.HeldError
		switch {
		case errs[i] == nil:
			leaders++
			if grants[i].Epoch != 1 {
				t.Errorf("the leader got epoch %d, want 1", grants[i].Epoch)
			}
		case !errors.As(errs[i], &held):
			t.Errorf("replica %d: %v", i, errs[i])
		}
	}
	if leaders != 1 {
		t.Fatalf("%d replicas lead, want exactly 1", leaders)
	}
}

func TestAWriteAfterATakeoverIsFenced(t *testing.T) {
	srv := pgtest.Start(t)
	a, b := open(t, srv.URL(), "default"), open(t, srv.URL(), "default")
	if _, err := a.Acquire(context.Background(), "a", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := putService(a, "one", 1); err != nil {
		t.Fatal(err)
	}
	g := acquireWhenFree(t, b, "b", 15*time.Second)
	if g.Epoch != 2 || g.PreviousReleased {
		t.Fatalf("takeover grant %+v, want epoch 2 and not released", g)
	}
	err := putService(a, "two", 2)
	if !errors.Is(err, pgstate.ErrFenced) {
		t.Fatalf("old leader's write: %v, want ErrFenced", err)
	}
	if a.Get(resource.Address{Kind: resource.KindService, Name: "two"}) != nil {
		t.Fatal("the refused write stayed in the old leader's memory")
	}
	if err := a.Renew(context.Background(), "a", 1, time.Second); !errors.Is(err, leader.ErrLost) {
		t.Fatalf("old leader's renewal: %v, want ErrLost", err)
	}
	if err := b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.Get(resource.Address{Kind: resource.KindService, Name: "one"}) == nil || b.Get(resource.Address{Kind: resource.KindService, Name: "two"}) != nil {
		t.Fatal("the new leader does not see exactly the old leader's fenced writes")
	}
}

func TestForceUnlockFencesALivingHolder(t *testing.T) {
	srv := pgtest.Start(t)
	a, op := open(t, srv.URL(), "default"), open(t, srv.URL(), "default")
	g, err := a.Acquire(context.Background(), "a", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	prev, epoch, err := op.ForceUnlock(context.Background(), "operator")
	if err != nil || prev == nil || prev.Holder != "a" || epoch != g.Epoch+1 {
		t.Fatalf("ForceUnlock = %+v, %d, %v", prev, epoch, err)
	}
	if err := putService(a, "one", 1); !errors.Is(err, pgstate.ErrFenced) {
		t.Fatalf("write after force-unlock: %v, want ErrFenced", err)
	}
	if err := a.Renew(context.Background(), "a", g.Epoch, time.Second); !errors.Is(err, leader.ErrLost) {
		t.Fatalf("renewal after force-unlock: %v, want ErrLost", err)
	}
	b := open(t, srv.URL(), "default")
	g2, err := b.Acquire(context.Background(), "b", time.Second)
	if err != nil || g2.Epoch != epoch+1 || g2.PreviousReleased {
		t.Fatalf("acquire after force-unlock: %+v, %v; want epoch %d needing quarantine", g2, err, epoch+1)
	}
}

func TestWorkspacesAreSeparateStates(t *testing.T) {
	srv := pgtest.Start(t)
	a, b := open(t, srv.URL(), "staging"), open(t, srv.URL(), "production")
	for _, s := range []*pgstate.Store{a, b} {
		if _, err := s.Acquire(context.Background(), "me", 15*time.Second); err != nil {
			t.Fatalf("each workspace has its own lease: %v", err)
		}
	}
	if err := putService(a, "one", 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(b.State().Resources) != 0 || a.Lineage() == b.Lineage() {
		t.Fatal("a write to one workspace shows in another")
	}
}

func TestTheStateSurvivesADatabaseRestartAndTerminatedSessions(t *testing.T) {
	srv := pgtest.Start(t)
	a := open(t, srv.URL(), "default")
	g, err := a.Acquire(context.Background(), "a", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := putService(a, "one", 1); err != nil {
		t.Fatal(err)
	}
	srv.Kill9()
	srv.Restart()
	if err := a.Renew(context.Background(), "a", g.Epoch, 15*time.Second); err != nil {
		// The pool may hand out a dead connection once.
		if err := a.Renew(context.Background(), "a", g.Epoch, 15*time.Second); err != nil {
			t.Fatalf("renewal after a restart: %v", err)
		}
	}
	if err := putService(a, "two", 2); err != nil {
		t.Fatalf("write after a restart: %v", err)
	}
	if n := srv.TerminateOthers(); n == 0 {
		t.Fatal("no session was terminated")
	}
	if err := putService(a, "three", 3); err != nil {
		t.Fatalf("write after the sessions were terminated: %v", err)
	}
	again := open(t, srv.URL(), "default")
	if got := len(again.State().Resources); got != 3 || again.Serial() != 3 {
		t.Fatalf("after restart and terminations: %d resources at serial %d, want 3 at 3", got, again.Serial())
	}
	if l, _ := again.Lease(context.Background()); l == nil || l.Epoch != g.Epoch {
		t.Fatalf("lease after restart: %+v, want the same epoch %d", l, g.Epoch)
	}
}

func TestPasswordsNeverShowInMessages(t *testing.T) {
	const secret = "hunter2-Sup3rSecret"
	url := "postgres://postgres:" + secret + "@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=1"
	_, err := pgstate.Open(context.Background(), url, pgstate.Options{})
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the password is in the error: %v", err)
	}
	if r := pgstate.Redact(url); strings.Contains(r, secret) || !strings.Contains(r, "REDACTED") {
		t.Fatalf("Redact = %s", r)
	}
	if err := pgstate.CheckFlagURL(url); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("CheckFlagURL = %v, want a refusal without the password", err)
	}
	if err := pgstate.CheckFlagURL("postgres://u@h/db?password=" + secret); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("CheckFlagURL (password= parameter) = %v", err)
	}
}

func TestANewerSchemaIsRefused(t *testing.T) {
	srv := pgtest.Start(t)
	open(t, srv.URL(), "default")
	srv.Exec(`UPDATE convsync.schema_version SET version = 99`)
	_, err := pgstate.Open(context.Background(), srv.URL(), pgstate.Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99") || !strings.Contains(err.Error(), "upgrade convsync") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

// Through PgBouncer in transaction mode every transaction may run on a
// different server connection: the lease, the fencing and the state must
// not depend on session state.
func TestThroughPgBouncerInTransactionMode(t *testing.T) {
	srv := pgtest.Start(t)
	url := pgtest.StartPgBouncer(t, srv)
	statetestThroughBouncer(t, url)
	a, b := open(t, url, "default"), open(t, url, "default")
	if _, err := a.Acquire(context.Background(), "a", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(context.Background(), "b", time.Second); !isHeldErr(err) {
		t.Fatalf("second acquire through PgBouncer: %v, want held", err)
	}
	if err := putService(a, "one", 1); err != nil {
		t.Fatal(err)
	}
	g := acquireWhenFree(t, b, "b", 15*time.Second)
	if g.Epoch != 2 {
		t.Fatalf("takeover epoch %d, want 2", g.Epoch)
	}
	if err := putService(a, "two", 2); !errors.Is(err, pgstate.ErrFenced) {
		t.Fatalf("stale write through PgBouncer: %v, want ErrFenced", err)
	}
}

func isHeldErr(err error) bool {
	var held *leader.HeldError
	return errors.As(err, &held)
}

func statetestThroughBouncer(t *testing.T, url string) {
	s := openLeased(t, url, "contract", "x")
	for i := 1; i <= 5; i++ {
		if err := putService(s, "s"+string(rune('0'+i)), i); err != nil {
			t.Fatalf("write %d through PgBouncer: %v", i, err)
		}
	}
	s.Close()
	again := open(t, url, "contract")
	if again.Serial() != 5 || len(again.State().Resources) != 5 {
		t.Fatalf("through PgBouncer: serial %d, %d resources", again.Serial(), len(again.State().Resources))
	}
}

// Matrix 20: an epoch is durable the moment Acquire returns: the database
// killed with SIGKILL right after and restarted (crash recovery) still has
// it, so the next acquisition gets a new epoch, never the same one again.
func TestAnEpochSurvivesADatabaseCrashRightAfterAcquiring(t *testing.T) {
	srv := pgtest.Start(t)
	a := open(t, srv.URL(), "default")
	g, err := a.Acquire(context.Background(), "a", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill9()
	srv.Restart()
	b := open(t, srv.URL(), "default")
	g2 := acquireWhenFree(t, b, "b", time.Second)
	if g2.Epoch != g.Epoch+1 {
		t.Fatalf("after a crash right after epoch %d was granted, the next grant is epoch %d", g.Epoch, g2.Epoch)
	}
}
