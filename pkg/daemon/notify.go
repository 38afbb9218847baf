package daemon

import (
	"net"
	"os"
	"strconv"
	"time"
)

// Notifier speaks systemd's sd_notify protocol: one datagram per message to
// the unix socket named by $NOTIFY_SOCKET. Outside systemd (no
// NOTIFY_SOCKET) every method does nothing, so the daemon can call it
// unconditionally.
type Notifier struct {
	socket   string
	watchdog time.Duration
}

// NotifierFromEnv reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID.
func NotifierFromEnv(getenv func(string) string) *Notifier {
	n := &Notifier{socket: getenv("NOTIFY_SOCKET")}
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err == nil && usec > 0 {
		// WATCHDOG_PID, when set, says which process the watchdog is for.
		if pid := getenv("WATCHDOG_PID"); pid == "" || pid == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(usec) * time.Microsecond
		}
	}
	return n
}

// Enabled reports whether systemd is listening.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// WatchdogInterval is WatchdogSec when systemd expects WATCHDOG=1 pings, else 0.
func (n *Notifier) WatchdogInterval() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog
}

// Notify sends one message, e.g. "READY=1" or "STATUS=...". Several lines
// may be sent at once, separated by newlines.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	// A leading '@' names an abstract socket; the net package maps it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}
