package e2e

import (
	"net"
	"strings"
	"testing"
	"time"
)

// pasted is a command convsync prints for the user to paste, as it prints it
// for e.run: carrying the --dir and --state e.run passes.
func (e *env) pasted(cmd string) string {
	name, args, _ := strings.Cut(cmd, " ")
	sub, rest, _ := strings.Cut(args, " ")
	return name + " " + sub + " --dir " + e.dir + " --state " + e.state + " " + rest
}

// TestDaemonRefusesAnEmptiedSpecFolder: when every spec disappears (a wrong
// mount, an emptied ConfigMap) the daemon keeps the last good specs instead of
// deleting everything, even with no --max-destroy limit.
func TestDaemonRefusesAnEmptiedSpecFolder(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	e.writeSpec("vip.yaml", conversationSpec("vip", "VIP"))
	d := e.startDaemon("--max-destroy", "-1")
	var support string
	e.eventually("vip exists in Twilio", func() bool {
		support = e.serviceSID("Customer support")
		_, ok := e.conversation(support, "vip")
		return support != "" && ok
	})
	e.eventually("the state records both", func() bool {
		_, body := d.get("/readyz")
		return strings.Contains(body, `"conversation": 1`) && strings.Contains(body, `"service": 1`)
	})

	e.removeSpec("vip.yaml")
	e.removeSpec("services.yaml")
	e.eventually("the refusal is logged", func() bool {
		return strings.Contains(d.log(), "hold no resource, but the state") && strings.Contains(d.log(), "holds 2 resources")
	})
	if _, ok := e.conversation(support, "vip"); !ok || e.serviceSID("Customer support") == "" {
		t.Fatalf("an emptied spec folder deleted something:\n%s", d.log())
	}
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d:\n%s", code, d.log())
	}
	if _, ok := e.conversation(support, "vip"); !ok {
		t.Fatalf("the conversation is gone after the daemon stopped:\n%s", d.log())
	}
}

// TestUnreachableAPIFailsFast: a wrong --api-url gives one clear line within
// a second or two, not after minutes of retries.
func TestUnreachableAPIFailsFast(t *testing.T) {
	e := newEnv(t)
	e.writeSpec("services.yaml", daemonServices)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	tlsToPlain := strings.Replace(e.url, "http://", "https://", 1)
	tests := []struct {
		name, url, want string
	}{
		{"connection refused", closed, "connection refused: nothing listens at " + closed},
		{"TLS to a plain-HTTP port", tlsToPlain, "the server at " + tlsToPlain + " does not speak TLS; use http:// for the emulator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := e.run("plan", "--api-url", tt.url)
			took := time.Since(start)
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("want exit 1 and %q, got %s", tt.want, r)
			}
			if n := strings.Count(r.stderr, "retrying Twilio request"); n > 1 {
				t.Errorf("%d retries, want at most 1:\n%s", n, r.stderr)
			}
			if took > 5*time.Second {
				t.Errorf("took %s, want a fast failure", took)
			}
		})
	}
}
