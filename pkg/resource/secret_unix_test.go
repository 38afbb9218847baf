//go:build unix

package resource

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A secret path naming a FIFO is refused at once: opening it would wait for
// a writer for ever and hang every plan.
func TestSecretFromAFIFOIsRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := SecretRef{File: fifo}.Read()
	if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Fatalf("err = %v", err)
	}
}
