package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvBinDir overrides where the server binaries are looked for.
const EnvBinDir = "CONVSYNC_PG_BINDIR"

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
	baseDir      string
)

// Main runs the tests and then removes the template cluster. Call it from
// TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if baseDir != "" {
		_ = os.RemoveAll(baseDir)
	}
	return code
}

// BinDir returns the folder of the PostgreSQL server binaries, or "".
func BinDir() string {
	if d := os.Getenv(EnvBinDir); d != "" {
		return d
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		if p, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p)
		}
		return ""
	}
	return filepath.Dir(matches[len(matches)-1])
}

// Require skips the test (or fails it under CI=true) when what needs is
// missing.
func Require(t testing.TB, what, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (%s); CI must install it (.ci/run installs postgresql-15 and pgbouncer)", what, why)
	}
	t.Skipf("%s is missing (%s); install it to run this test", what, why)
}

// runAs is the credential servers run with: nil when not root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	// No such entry (a minimal /etc/passwd): the conventional nobody.
	return &syscall.Credential{Uid: 65534, Gid: 65534}, nil
}

func chownTree(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
}

func template(bin string) (string, error) {
	templateOnce.Do(func() {
		baseDir, templateErr = os.MkdirTemp(serverRoot(), "convsync-pgtest-")
		if templateErr != nil {
			return
		}
		// The unprivileged user must reach the clusters below it.
		if templateErr = os.Chmod(baseDir, 0o755); templateErr != nil {
			return
		}
		var cred *syscall.Credential
		if cred, templateErr = runAs(); templateErr != nil {
			return
		}
		templateDir = filepath.Join(baseDir, "template")
		if templateErr = os.Mkdir(templateDir, 0o700); templateErr != nil {
			return
		}
		if templateErr = chownTree(templateDir, cred); templateErr != nil {
			return
		}
		cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", templateDir, "-U", "postgres", "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = baseDir
		if out, err := cmd.CombinedOutput(); err != nil {
			templateErr = fmt.Errorf("initdb: %v\n%s", err, out)
		}
	})
	return templateDir, templateErr
}

// minShmFree is the room /dev/shm must have for the clusters: the 40 MB
// template and a copy per server, with several test binaries at once. A
// container's /dev/shm is often 64 MB, where the copies would fail.
const minShmFree = 1 << 30

// serverRoot is where clusters go: memory (/dev/shm) when there is one with
// room, because copying the 40 MB template costs about a second on a slow
// disk and nothing there needs to outlive the test binary; else the
// temporary folder.
func serverRoot() string {
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &fs); err != nil || fs.Bavail*uint64(fs.Bsize) < minShmFree {
		return ""
	}
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", "convsync-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return ""
}

// Server is one throwaway PostgreSQL.
type Server struct {
	t       testing.TB
	bin     string
	dir     string // holds data/ and the socket
	Port    int
	cred    *syscall.Credential
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// Start starts a fresh server for t, stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		Require(t, "the PostgreSQL server (postgres)", "no /usr/lib/postgresql/*/bin/postgres")
	}
	tmpl, err := template(bin)
	if err != nil {
		t.Fatalf("preparing the PostgreSQL template cluster: %v", err)
	}
	cred, _ := runAs()
	dir, err := os.MkdirTemp(baseDir, "server-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", tmpl, filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("copying the template cluster: %v: %s", err, out)
	}
	if err := chownTree(dir, cred); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: dir, Port: freePort(t), cred: cred, logPath: filepath.Join(dir, "server.log")}
	t.Cleanup(func() {
		// A clean (fast) shutdown removes the server's shared memory; a
		// SIGKILL leaves its System V segment behind, removed by hand.
		s.stopWithin(10 * time.Second)
		s.removeSharedMemory()
		_ = os.RemoveAll(dir)
	})
	s.Restart()
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// URL is a connection URL for database postgres as superuser postgres.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

// Restart starts the server on its data (after Kill9: with crash
// recovery) and waits until it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		s.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"), "-k", s.dir, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=60", "-c", "shared_buffers=16MB", "-c", "synchronous_commit=on",
		// Dynamic shared memory in files under the data folder, removed
		// with it, rather than in /dev/shm where a SIGKILL would leak it.
		"-c", "dynamic_shared_memory_type=mmap")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		logf.Close()
		s.t.Fatalf("starting postgres: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		select {
		case <-exited:
			log, _ := os.ReadFile(s.logPath)
			s.t.Fatalf("postgres exited at start: %s", log)
		case <-time.After(20 * time.Millisecond): // readiness poll
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.logPath)
			s.t.Fatalf("postgres did not accept connections within 30s: %v\n%s", err, log)
		}
	}
}

// Kill9 kills the postmaster and every backend with SIGKILL (backends
// call setsid, so killing the process group is not enough) and waits until
// they are gone.
func (s *Server) Kill9() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	children := childrenOf(cmd.Process.Pid)
	_ = cmd.Process.Kill()
	for _, pid := range children {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-exited
	for _, pid := range children {
		for alive(pid) {
			time.Sleep(2 * time.Millisecond) // waiting for the kernel to finish a SIGKILL
		}
	}
}

// stopWithin shuts the server down cleanly, or kills it after d.
func (s *Server) stopWithin(d time.Duration) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		s.mu.Lock()
		s.cmd = nil
		s.mu.Unlock()
	case <-time.After(d):
		s.Kill9()
	}
}

// removeSharedMemory removes the System V segment a killed server left
// (its id is on the seventh line of postmaster.pid).
func (s *Server) removeSharedMemory() {
	data, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		return // shut down cleanly: nothing left
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 7 {
		return
	}
	if fields := strings.Fields(lines[6]); len(fields) == 2 {
		_ = exec.Command("ipcrm", "-m", fields[1]).Run()
	}
}

// Stop shuts the server down cleanly (fast mode).
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	<-exited
}

func childrenOf(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		rest := string(data[strings.LastIndexByte(string(data), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) > 1 && fields[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	rest := string(data[strings.LastIndexByte(string(data), ')')+1:])
	fields := strings.Fields(rest)
	return len(fields) > 0 && fields[0] != "Z"
}

// Exec runs sql as the superuser.
func (s *Server) Exec(sql string, args ...any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		s.t.Fatalf("connecting to the test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// TerminateOthers ends every session of the server's databases except
// the caller's (pg_terminate_backend), as an administrator or a failover
// proxy would, and returns how many were ended.
func (s *Server) TerminateOthers() int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		s.t.Fatalf("connecting to the test server: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND backend_type = 'client backend') t`).Scan(&n)
	if err != nil {
		s.t.Fatalf("terminating sessions: %v", err)
	}
	return n
}

// Cleanup removes the template cluster; for a TestMain that cannot use Main.
func Cleanup() {
	if baseDir != "" {
		_ = os.RemoveAll(baseDir)
	}
}
