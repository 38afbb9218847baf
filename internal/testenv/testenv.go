// Package testenv builds the real convsync binary for the tests and
// benchmarks that run it as a user would (e2e, reliability, bench).
package testenv

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/convsync/convsync/pkg/emulator"
)

// RepoRoot is the module's root folder.
func RepoRoot() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..")
}

// Build compiles ./cmd/convsync into dir and returns the binary's path.
func Build(dir string) (string, error) {
	binary := filepath.Join(dir, "convsync")
	build := exec.Command("go", "build", "-o", binary, "./cmd/convsync")
	build.Dir = RepoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building convsync: %w", err)
	}
	return binary, nil
}

// MainWithBinary is a TestMain body: it builds convsync once into a
// temporary folder, sets *binary to its path, runs the tests, removes the
// folder and returns the exit code.
func MainWithBinary(m *testing.M, binary *string) int {
	dir, err := os.MkdirTemp("", "convsync-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *binary, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Emulator serves a new emulator over real HTTP on loopback for the test's
// duration, accepting account and token, and returns it with its base URL.
func Emulator(t testing.TB, account, token string) (*emulator.Server, string) {
	t.Helper()
	emu, err := emulator.New(emulator.Options{AccountSID: account, AuthToken: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv.URL
}

// Golden compares got with the golden file at path, or rewrites the file
// when update is set (each package's -update flag).
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update and review the diff)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}
