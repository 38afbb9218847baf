package daemon

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// fakeSystemd listens where NOTIFY_SOCKET points and returns the messages.
func fakeSystemd(t *testing.T) (socket string, messages <-chan string) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	out := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			out <- string(buf[:n])
		}
	}()
	return socket, out
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestNotifierSpeaksSdNotify(t *testing.T) {
	socket, messages := fakeSystemd(t)
	n := NotifierFromEnv(envOf(map[string]string{"NOTIFY_SOCKET": socket}))
	if err := n.Notify("READY=1\nSTATUS=ok"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-messages:
		if m != "READY=1\nSTATUS=ok" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram")
	}
}

func TestNotifierIsSilentOutsideSystemdAndReadsTheWatchdog(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		name         string
		env          map[string]string
		wantEnabled  bool
		wantWatchdog time.Duration
	}{
		{"outside systemd", map[string]string{}, false, 0},
		{"watchdog without a socket is off", map[string]string{"WATCHDOG_USEC": "30000000"}, false, 0},
		{"notify only", map[string]string{"NOTIFY_SOCKET": "/run/x"}, true, 0},
		{"watchdog for us", map[string]string{"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}, true, 30 * time.Second},
		{"watchdog for another process", map[string]string{"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, true, 0},
		{"garbage watchdog", map[string]string{"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "soon"}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := NotifierFromEnv(envOf(tt.env))
			if n.Enabled() != tt.wantEnabled || n.WatchdogInterval() != tt.wantWatchdog {
				t.Fatalf("enabled %v watchdog %v, want %v %v", n.Enabled(), n.WatchdogInterval(), tt.wantEnabled, tt.wantWatchdog)
			}
			if !tt.wantEnabled {
				if err := n.Notify("READY=1"); err != nil {
					t.Fatalf("outside systemd Notify must do nothing, got %v", err)
				}
			}
		})
	}
	var none *Notifier
	if none.Enabled() || none.Notify("READY=1") != nil || none.WatchdogInterval() != 0 {
		t.Fatal("a nil Notifier must be silent")
	}
}
