package reliability

import (
	"bufio"
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

// TestSecretsNeverLeak runs every command at debug level, with the auth token
// and with an API key, on success and on error paths (bad credentials, an
// unreachable API, malformed secrets), and searches everything convsync
// printed and every file it wrote for the secrets.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		wrongToken  = "WrongSecretTokenLeakCheck42"
		badCharsTok = "Bad-Secret_Token!LeakCheck"
	)
	secrets := []string{authToken, apiSecret, wrongToken, badCharsTok}
	e := newEnv(t, emulator.Faults{Error500AfterWrite: 0.2, Seed: 3})
	extra, err := e.emu.AddService("Imported")
	if err != nil {
		t.Fatal(err)
	}
	e.writeSpec("specs.yaml", `kind: Service
name: support
friendly_name: Support
---
kind: Service
name: imported
friendly_name: Imported
---
kind: Conversation
name: vip
service: support
unique_name: vip
friendly_name: VIP
timers: {inactive: PT1H}
state: active
---
kind: Conversation
name: plain
service: support
friendly_name: Plain
`)
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
	apiKeyEnv := []string{"TWILIO_AUTH_TOKEN=", "TWILIO_API_KEY=" + apiKey, "TWILIO_API_SECRET=" + apiSecret}
	for _, creds := range [][]string{nil, apiKeyEnv} {
		runWith(creds, 0, "validate")
		runWith(creds, -1, "plan")
		runWith(creds, -1, "plan", "--json")
		runWith(creds, 0, "plan", "--out", planFile)
		runWith(creds, -1, "apply", planFile)
		runWith(creds, -1, "apply", "--auto-approve")
		runWith(creds, 0, "apply", "--auto-approve")
		runWith(creds, -1, "import", "service.imported", "/Services/"+extra.SID)
		runWith(creds, 0, "state", "list")
		runWith(creds, 0, "state", "show", "conversation.vip")
		runWith(creds, 0, "version")
	}
	runWith(nil, 0, "state", "rm", "conversation.plain")
	// Error paths: wrong secret (401), a secret twilio-go would refuse, an
	// API that does not answer, a secret file.
	for _, env := range [][]string{
		{"TWILIO_AUTH_TOKEN=" + wrongToken},
		{"TWILIO_AUTH_TOKEN=", "TWILIO_API_KEY=" + apiKey, "TWILIO_API_SECRET=" + wrongToken},
		{"TWILIO_AUTH_TOKEN=" + badCharsTok},
	} {
		for _, args := range [][]string{{"plan"}, {"apply", "--auto-approve"}, {"import", "service.imported", "/Services/" + extra.SID}} {
			r := runWith(env, 1, args...)
			if strings.TrimSpace(r.stderr) == "" {
				t.Errorf("convsync %v failed without saying why", args)
			}
		}
	}
	// Unreachable: retried with backoff until the attempts run out, so once.
	runWith([]string{"CONVSYNC_API_URL=http://127.0.0.1:1"}, 1, "plan")
	secretFile := filepath.Join(e.work, "token")
	write(t, secretFile, []byte(authToken+"\n"))
	runWith([]string{"TWILIO_AUTH_TOKEN=", "TWILIO_AUTH_TOKEN_FILE=" + secretFile}, 0, "plan")
	os.Remove(secretFile) // it holds the secret on purpose

	// The emulator command, given the secrets as flags and environment.
	outputs = append(outputs, runEmulator(t, e, []string{"--auth-token", authToken, "--api-key", apiKey, "--api-secret", apiSecret}, nil)...)
	outputs = append(outputs, runEmulator(t, e, nil, []string{"TWILIO_API_KEY=" + apiKey, "TWILIO_API_SECRET=" + apiSecret})...)
	runs += 2

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
	err = filepath.WalkDir(e.work, func(path string, d fs.DirEntry, err error) error {
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
	t.Logf("secrets: %d runs at --log-level debug (auth token and API key; 401, refused secret, unreachable API), %d bytes of output and %d files searched for %d secrets: %d hits",
		runs, totalLen(outputs), files, len(secrets), hits)
}

func totalLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n += len(s)
	}
	return n
}

// runEmulator starts `convsync emulator`, waits until it serves, stops it with
// SIGTERM and returns what it printed.
func runEmulator(t *testing.T, e *env, flags, env []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"emulator", "--listen", "127.0.0.1:0", "--account-sid", accountSID, "--log-level", "debug"}, flags...)
	e.extraEnv = env
	cmd := e.command(ctx, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "CONVSYNC_API_URL=") {
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("emulator: %v\n%s%s", err, printed.String(), stderr.String())
	}
	if !strings.Contains(printed.String(), "serving Twilio Conversations") {
		t.Fatalf("the emulator did not start:\n%s%s", printed.String(), stderr.String())
	}
	return []string{printed.String(), stderr.String()}
}
