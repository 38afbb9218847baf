//go:build convsync_testhooks

package cli

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/convsync/convsync/pkg/twilioapi"
)

// Built only with -tags convsync_testhooks (reliability/ha builds such a
// binary): CONVSYNC_TEST_STOP_BEFORE_CREATE=N makes the process SIGSTOP
// itself right before its Nth create request is sent, after the lease
// guard allowed it: the moment a GC pause or a VM freeze is most
// dangerous.
func testHooks(cfg *twilioapi.Config, getenv func(string) string) {
	n, err := strconv.Atoi(getenv("CONVSYNC_TEST_STOP_BEFORE_CREATE"))
	if err != nil || n < 1 {
		return
	}
	var creates atomic.Int64
	cfg.BeforeSend = func(method, route string) {
		if method == "POST" && strings.HasSuffix(route, "/Conversations") && creates.Add(1) == int64(n) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		}
	}
}
