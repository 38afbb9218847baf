package ha

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// dbLink is a TCP proxy between one replica and PostgreSQL that can cut
// the network silently: bytes stop flowing both ways, but no connection is
// closed or reset, as when a cable, a switch or a firewall drops packets.
// The replica learns nothing from TCP (keepalive would take minutes): only
// its own deadlines can tell it.
type dbLink struct {
	l   net.Listener
	cut atomic.Bool
	mu  sync.Mutex
	cs  []net.Conn
}

func newDBLink(t *testing.T, target string) *dbLink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dbLink{l: l}
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			d.mu.Lock()
			d.cs = append(d.cs, client, server)
			d.mu.Unlock()
			go d.pipe(client, server)
			go d.pipe(server, client)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		d.mu.Lock()
		for _, c := range d.cs {
			c.Close()
		}
		d.mu.Unlock()
	})
	return d
}

// pipe copies until the link is cut; then it holds what it read (never
// delivered) and keeps both ends open.
func (d *dbLink) pipe(from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 && !d.cut.Load() {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

func (d *dbLink) port() int { return d.l.Addr().(*net.TCPAddr).Port }

// Matrix 12: the leader's network to PostgreSQL is silently cut. Its
// renewals hang and time out; its watchdog steps down at its local lease
// deadline (no dependence on TCP keepalive), it sends nothing to Twilio
// after that, and exits 1; the stand-by, whose link works, leads once the
// lease has expired.
func TestLeaderCutOffFromTheDatabaseStepsDown(t *testing.T) {
	c := newCluster(t)
	c.conversations(2, false)
	target := "127.0.0.1:" + strconv.Itoa(c.pg.Port)
	links := map[string]*dbLink{}
	var rs []*replica
	for _, name := range []string{"a", "b"} {
		links[name] = newDBLink(t, target)
		rs = append(rs, c.startWithState(name, strings.Replace(c.pg.URL(), ":"+strconv.Itoa(c.pg.Port)+"/", ":"+strconv.Itoa(links[name].port())+"/", 1)))
	}
	l := leader(t, 20*time.Second, rs...)
	c.converged(l, 30*time.Second)
	other := rs[0]
	if l == rs[0] {
		other = rs[1]
	}
	cut := time.Now()
	links[l.name].cut.Store(true)
	select {
	case <-l.done:
	case <-time.After(leaseDuration + 5*time.Second):
		signal(t, l, syscall.SIGQUIT) // its goroutines, in the log
		<-l.done
		t.Fatal("the leader cut off from the database did not step down")
	}
	steppedDown := time.Since(cut)
	if code := exitCode(l); code != 1 || !strings.Contains(l.log(), "local lease deadline passed") {
		t.Fatalf("leader exited %d; want 1 after its local lease deadline", code)
	}
	waitFor(t, failoverBound, "the stand-by leads", other.leading)
	t.Logf("cut-off leader exited %s after the cut; the stand-by led %s after it", steppedDown.Round(time.Millisecond), time.Since(cut).Round(time.Millisecond))
	if reqs := l.requestsSince(cut.Add(leaseDuration * 2 / 3)); len(reqs) > 0 {
		t.Fatalf("the cut-off leader sent %d Twilio requests after its lease deadline", len(reqs))
	}
	c.conversations(4, false)
	c.converged(other, 30*time.Second)
	c.mustAudit()
}

// Matrix 13: the network to PostgreSQL is cut while a create is in flight
// (its intent committed, the request at Twilio): the result cannot be
// recorded, the leader steps down, and the new leader adopts what Twilio
// created from the intent: no duplicate, nothing pending.
func TestNetworkCutWithACreateInFlight(t *testing.T) {
	c := newCluster(t)
	c.extra = []string{"--parallelism", "1"}
	c.writeSpec("specs.yaml", "kind: Service\nname: support\nfriendly_name: Support\n")
	target := "127.0.0.1:" + strconv.Itoa(c.pg.Port)
	links := map[string]*dbLink{}
	var rs []*replica
	for _, name := range []string{"a", "b"} {
		links[name] = newDBLink(t, target)
		rs = append(rs, c.startWithState(name, strings.Replace(c.pg.URL(), ":"+strconv.Itoa(c.pg.Port)+"/", ":"+strconv.Itoa(links[name].port())+"/", 1)))
	}
	l := leader(t, 20*time.Second, rs...)
	c.converged(l, 30*time.Second)
	other := rs[0]
	if l == rs[0] {
		other = rs[1]
	}
	var once sync.Once
	l.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !isCreate(r) {
			return false
		}
		handled := false
		once.Do(func() {
			links[l.name].cut.Store(true) // the intent is committed; the result will not be
			c.emu.ServeHTTP(w, r)
			handled = true
		})
		return handled
	})
	c.conversations(3, true)
	select {
	case <-l.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the leader cut off with a create in flight did not step down")
	}
	if code := exitCode(l); code != 1 {
		t.Fatalf("leader exited %d, want 1", code)
	}
	waitFor(t, failoverBound+quarantine, "the stand-by leads", other.leading)
	c.converged(other, 30*time.Second)
	c.mustAudit()
}
