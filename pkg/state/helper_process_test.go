package state

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// startLockHelper runs TestLockHelperProcess in a child process that opens path
// and holds its lock until tell is closed. It returns once the child says it
// holds the lock.
func startLockHelper(t *testing.T, path string) (cmd *exec.Cmd, tell io.WriteCloser) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CONVSYNC_STATE_LOCK_HELPER="+path)
	cmd.Stderr = os.Stderr
	tell, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tell.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("lock helper said %q (%v)", line, err)
	}
	return cmd, tell
}
