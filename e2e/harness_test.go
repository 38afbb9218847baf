package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/twilioapi"
)

const (
	accountSID = "AC11111111111111111111111111111111"
	// authToken is recognisable so that the secrets test can look for it.
	authToken = "SeCrEtToKeN0123456789abcdefXYZ"
)

var binary string

func TestMain(m *testing.M) { os.Exit(testenv.MainWithBinary(m, &binary)) }

// env is one emulator, one spec folder and one state file.
type env struct {
	t     *testing.T
	emu   *emulator.Server
	url   string
	dir   string // specs
	state string // state file
	work  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	emu, url := testenv.Emulator(t, accountSID, authToken)
	work := t.TempDir()
	e := &env{t: t, emu: emu, url: url, dir: filepath.Join(work, "specs"), state: filepath.Join(work, "convsync.state.json"), work: work}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// client is a Twilio client for the emulator, for changes made by "someone
// else" through the API.
func (e *env) client() *twilioapi.Client {
	e.t.Helper()
	c, err := twilioapi.New(twilioapi.Config{AccountSID: accountSID, AuthToken: authToken, BaseURL: e.url, ActionsPerSecondPerService: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s", r.code, r.stdout, r.stderr)
}

// run runs convsync with the emulator's credentials and URL, in the work dir.
func (e *env) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{args[0], "--dir", e.dir, "--state", e.state}, args[1:]...)
	if args[0] == "state" || args[0] == "version" {
		full = args
		if args[0] == "state" {
			full = append(append([]string{}, args...), "--state", e.state)
		}
	}
	cmd := exec.CommandContext(ctx, binary, full...)
	cmd.Dir = e.work
	cmd.Env = append(os.Environ(),
		"TWILIO_ACCOUNT_SID="+accountSID,
		"TWILIO_AUTH_TOKEN="+authToken,
		"CONVSYNC_API_URL="+e.url,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running convsync %v: %v", args, err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// must runs convsync and fails the test unless it exits with want.
func (e *env) must(want int, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != want {
		e.t.Fatalf("convsync %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

func (e *env) writeSpec(name, content string) {
	e.t.Helper()
	path := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) removeSpec(name string) {
	e.t.Helper()
	if err := os.Remove(filepath.Join(e.dir, name)); err != nil {
		e.t.Fatal(err)
	}
}

// jsonPlan is the part of plan --json the tests read.
type jsonPlan struct {
	FormatVersion string `json:"format_version"`
	Changes       []struct {
		Address string `json:"address"`
		Action  string `json:"action"`
		Reason  string `json:"reason"`
		Fields  []struct {
			Name   string          `json:"name"`
			Before json.RawMessage `json:"before"`
			After  json.RawMessage `json:"after"`
		} `json:"fields"`
	} `json:"changes"`
	Summary struct {
		Create, Update, Replace, Delete int
	} `json:"summary"`
}

func (e *env) planJSON() jsonPlan {
	e.t.Helper()
	r := e.run("plan", "--json")
	if r.code != 0 {
		e.t.Fatalf("plan --json: %s", r)
	}
	var p jsonPlan
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		e.t.Fatalf("plan --json output is not JSON: %v\n%s", err, r.stdout)
	}
	return p
}

// actions returns "address:action" for every change, in order.
func (p jsonPlan) actions() []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Address+":"+c.Action)
	}
	return out
}

// stateSID reads one SID from the state file through the CLI.
func (e *env) stateSID(addr string) string {
	e.t.Helper()
	r := e.must(0, "state", "show", addr)
	var shown struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		e.t.Fatalf("state show: %v\n%s", err, r.stdout)
	}
	return shown.SID
}
