package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvPgBouncer overrides where the pgbouncer binary is looked for.
const EnvPgBouncer = "CONVSYNC_PGBOUNCER"

// EnvPgBouncerLibs is the library path of a pgbouncer unpacked outside the
// system (scripts/install-postgres.sh, where dpkg cannot install it).
const EnvPgBouncerLibs = "CONVSYNC_PGBOUNCER_LIBRARY_PATH"

// StartPgBouncer puts PgBouncer in transaction mode in front of s and
// returns the URL to reach s through it. Transaction pooling hands every
// transaction to whichever server connection is free: session state
// (advisory locks, prepared statements, SET) does not survive between
// transactions, which is what the state backend must cope with.
func StartPgBouncer(t testing.TB, s *Server) string {
	t.Helper()
	bin := os.Getenv(EnvPgBouncer)
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("pgbouncer"); err != nil {
			if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
				bin = "/usr/sbin/pgbouncer"
			}
		}
	}
	if bin == "" {
		Require(t, "pgbouncer", "not in PATH nor /usr/sbin")
	}
	dir, err := os.MkdirTemp(baseDir, "pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	ini := fmt.Sprintf(`[databases]
postgres = host=127.0.0.1 port=%d dbname=postgres user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
logfile = %s
`, s.Port, port, filepath.Join(dir, "users.txt"), filepath.Join(dir, "pgbouncer.log"))
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(`"postgres" ""`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chownTree(dir, s.cred); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	if libs := os.Getenv(EnvPgBouncerLibs); libs != "" {
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+libs)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	out, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pgbouncer: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = os.RemoveAll(dir)
	})
	url := "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, url+"&default_query_exec_mode=simple_protocol")
		if err == nil {
			conn.Close(ctx)
			cancel()
			return url
		}
		cancel()
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "stderr.log"))
			t.Fatalf("pgbouncer exited at start: %s", log)
		case <-time.After(20 * time.Millisecond): // readiness poll
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer did not accept connections: %v", err)
		}
	}
}
