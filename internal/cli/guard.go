package cli

import (
	"fmt"
	"strings"

	"github.com/convsync/convsync/pkg/state"
)

// deleteEverythingHint tells an operator how to delete everything on purpose.
const deleteEverythingHint = "to delete everything on purpose, run convsync destroy (it shows what it deletes and asks for yes)"

// checkNotEmptied refuses specs that hold no resource while the state holds
// some: that is almost always a wrong or empty --dir (or an unmounted
// ConfigMap), and planning it would delete everything convsync manages.
func checkNotEmptied(dir string, specResources, stateResources int, statePath string) error {
	if specResources > 0 || stateResources == 0 {
		return nil
	}
	return fmt.Errorf("refusing to plan: the specs in %s hold no resource, but the state %s holds %d %s, so every one would be deleted. Check --dir; %s",
		dir, statePath, stateResources, plural(stateResources, "resource", "resources"), deleteEverythingHint)
}

// stateSize is how many resources the state holds.
func stateSize(sf state.Backend) int {
	n := 0
	sf.View(func(st *state.State) { n = len(st.Resources) })
	return n
}

// flagHint is the --dir, --state and --api-url flags this invocation was
// given (those that differ from their defaults), for the commands convsync
// prints for the user to paste; "" when there are none.
func (c *CLI) flagHint() string {
	var parts []string
	if c.global.dir != "" && c.global.dir != "." {
		parts = append(parts, "--dir", shellQuote(c.global.dir))
	}
	if c.global.statePath != "" && c.global.statePath != state.DefaultPath && !c.global.stateFromEnv {
		parts = append(parts, "--state", shellQuote(c.global.statePath))
	}
	if c.global.apiURL != "" {
		parts = append(parts, "--api-url", shellQuote(c.global.apiURL))
	}
	parts = append(parts, c.varFlagHint()...)
	return strings.Join(parts, " ")
}

// withFlags rewrites the "convsync import …", "convsync apply …" and
// "convsync plan …" commands in text so that they carry this invocation's
// --dir, --state and --api-url and work when pasted.
func (c *CLI) withFlags(text string) string {
	flags := c.flagHint()
	if flags == "" {
		return text
	}
	for _, cmd := range []string{"convsync import ", "convsync apply ", "convsync plan "} {
		text = strings.ReplaceAll(text, cmd, cmd+flags+" ")
	}
	return text
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var errNotYet = errorString("this command is not available yet")

type errorString string

func (e errorString) Error() string { return string(e) }
