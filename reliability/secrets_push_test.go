package reliability

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
)

// TestPushCredentialSecretsNeverLeak is TestSecretsNeverLeak for the
// secrets of the specs themselves (push credentials): every command at
// debug level, with secrets from a file and from the environment, through
// creates (with answers lost after the write), a changed secret, a saved
// plan, an import, a daemon pass and the error paths (a missing file, a
// missing variable); then everything convsync printed and every file it
// wrote (state, its backup, plan files, the JSON plan, logs) is searched
// for the recognisable values.
func TestPushCredentialSecretsNeverLeak(t *testing.T) {
	secrets := []string{
		"PUSH-CERT-LEAKCHECK-6f0c", "PUSH-KEY-ONE-LEAKCHECK-a1b2",
		"PUSH-KEY-TWO-LEAKCHECK-c3d4", "PUSH-FCM-LEAKCHECK-e5f6",
	}
	e := newEnv(t, emulator.Faults{Error500AfterWrite: 0.2, Seed: 5})
	// The secret files live outside the folders searched (they hold the
	// secrets on purpose).
	vault := t.TempDir()
	put := func(name, value string) string {
		t.Helper()
		path := filepath.Join(vault, name)
		write(t, path, []byte("-----BEGIN-----\n"+value+"\n-----END-----\n"))
		return path
	}
	cert := put("cert.pem", secrets[0])
	key := put("key.pem", secrets[1])
	e.writeSpec("push.yaml", `kind: PushCredential
name: ios
type: apn
friendly_name: iOS
sandbox: true
certificate: {file: `+cert+`}
private_key: {file: `+key+`}
---
kind: PushCredential
name: android
type: fcm
secret: {env: PUSH_FCM_SECRET}
---
kind: AddressConfiguration
name: line
type: sms
address: "+15550001111"
`)
	fcmEnv := []string{"PUSH_FCM_SECRET=" + secrets[3]}
	var outputs []string
	runs := 0
	runWith := func(env []string, want int, args ...string) result {
		t.Helper()
		e.extraEnv = env
		r := e.run(append(args, "--log-level", "debug")...)
		if want >= 0 && r.code != want {
			t.Fatalf("want exit %d: %s", want, r)
		}
		outputs = append(outputs, r.stdout, r.stderr)
		runs++
		return r
	}
	planFile := filepath.Join(e.work, "saved.plan")
	runWith(fcmEnv, 0, "validate")
	runWith(fcmEnv, 2, "plan", "--detailed-exitcode")
	runWith(fcmEnv, 0, "plan", "--json")
	runWith(fcmEnv, 0, "plan", "--out", planFile)
	runWith(nil, 0, "show", planFile)
	runWith(nil, 0, "show", "--json", planFile)
	runWith(fcmEnv, -1, "apply", planFile) // a 500 after a write may stop it
	for i := 0; i < 4; i++ {
		runWith(fcmEnv, -1, "apply", "--auto-approve")
	}
	runWith(fcmEnv, 0, "apply", "--auto-approve")
	runWith(fcmEnv, 0, "plan", "--detailed-exitcode")

	// A changed secret: planned, saved, applied.
	put("key.pem", secrets[2])
	runWith(fcmEnv, 2, "plan", "--detailed-exitcode")
	runWith(fcmEnv, 0, "plan", "--out", planFile)
	runWith(fcmEnv, -1, "apply", planFile)
	runWith(fcmEnv, 0, "apply", "--auto-approve")
	runWith(fcmEnv, 0, "plan", "--refresh-only")
	runWith(nil, 0, "state", "list")
	runWith(nil, 0, "state", "show", "push_credential.ios")

	// An import: the secrets are sent once.
	st := e.readState()
	ios := st.Resources["push_credential.ios"].SID
	runWith(nil, 0, "state", "rm", "push_credential.ios")
	runWith(fcmEnv, 0, "import", "push_credential.ios", "/Credentials/"+ios)
	runWith(fcmEnv, 0, "apply", "--auto-approve")

	// The error paths: a missing file, a missing variable.
	os.Rename(key, key+".away")
	runWith(fcmEnv, 1, "plan")
	runWith(fcmEnv, 1, "apply", "--auto-approve")
	os.Rename(key+".away", key)
	runWith(nil, 1, "plan")

	// A daemon pass that sends a changed secret.
	put("key.pem", secrets[1])
	outputs = append(outputs, runDaemonUntil(t, e, fcmEnv, func() bool {
		for _, c := range e.emu.Credentials() {
			if c.SID == ios && c.SecretDigests["PrivateKey"] == emulator.SecretDigest("-----BEGIN-----\n"+secrets[1]+"\n-----END-----\n") {
				return true
			}
		}
		return false
	}))
	runs++
	runWith(fcmEnv, 0, "destroy", "--auto-approve")

	// The runs did handle the secrets: a changed one was planned, a
	// missing one refused.
	all := strings.Join(outputs, "\n")
	for _, want := range []string{"~ private_key = (sensitive, changed)", "key.pem: no such file or directory", "environment variable PUSH_FCM_SECRET is not set", "twilio request"} {
		if !strings.Contains(all, want) {
			t.Errorf("no run printed %q: the test did not exercise what it claims", want)
		}
	}
	hits := 0
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				hits++
				t.Errorf("a secret appears in convsync's output:\n%s", out)
			}
		}
	}
	files := 0
	err := filepath.WalkDir(e.work, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if strings.Contains(string(data), s) {
				hits++
				t.Errorf("a secret appears in %s", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 { // specs, state, its backup and lock, the plan file
		t.Errorf("only %d files to search: the test did not see what convsync writes", files)
	}
	t.Logf("push credential secrets: %d runs at --log-level debug (file and environment; lost answers, a changed secret, a saved plan, an import, a daemon pass, a missing file and variable), %d bytes of output and %d files searched for %d secrets: %d hits",
		runs, totalLen(outputs), files, len(secrets), hits)
}

// runDaemonUntil runs `convsync run` at debug level until done reports true
// (checked on every tick), then stops it with SIGTERM and returns its output.
func runDaemonUntil(t *testing.T, e *env, env []string, done func() bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.extraEnv = env
	cmd := e.command(ctx, "run", "--log-level", "debug", "--listen", "127.0.0.1:0", "--resync", "1h")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the daemon did not send the changed secret:\n%s", out.String())
		case <-tick.C:
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	return out.String()
}
