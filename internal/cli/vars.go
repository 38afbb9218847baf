package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/convsync/convsync/pkg/spec"
)

// varArg is one --var or --var-file, kept in command-line order: a later one
// overrides an earlier one, as Terraform's -var and -var-file do.
type varArg struct {
	file  bool
	value string // NAME=VALUE, or the file's path
}

// varFlag is a pflag.Value appending to the shared ordered list.
type varFlag struct {
	list *[]varArg
	file bool
}

func (f varFlag) String() string { return "" }
func (f varFlag) Type() string {
	if f.file {
		return "FILE"
	}
	return "NAME=VALUE"
}

func (f varFlag) Set(s string) error {
	*f.list = append(*f.list, varArg{file: f.file, value: s})
	return nil
}

// addVarFlags gives a command that loads the specs --var and --var-file.
func (c *CLI) addVarFlags(fs *pflag.FlagSet) {
	fs.Var(varFlag{list: &c.global.vars}, "var", "set ${var.NAME} in the specs: NAME=VALUE; repeatable, later wins (docs/variables.md)")
	fs.Var(varFlag{list: &c.global.vars, file: true}, "var-file", "read ${var.NAME} values from a YAML file of NAME: value; repeatable, later wins")
}

// specVars gathers the variables: the environment's CONVSYNC_VAR_NAME
// first, then every --var-file and --var in command-line order, each
// overriding what came before. Var files are read anew on every call (the
// daemon calls it on every load).
func (c *CLI) specVars() (*spec.Vars, error) {
	environ := c.environ
	if environ == nil {
		environ = os.Environ
	}
	vars := &spec.Vars{}
	if err := vars.SetFromEnviron(environ()); err != nil {
		return nil, err
	}
	for _, a := range c.global.vars {
		var err error
		if a.file {
			err = vars.ReadVarFile(a.value)
		} else {
			err = vars.SetFlag(a.value)
		}
		if err != nil {
			return nil, err
		}
	}
	return vars, nil
}

// loadSpecSet loads the specs with the variables. Problems of a var file
// are spec.Errors naming the var file as given (not relative to --dir):
// varErr tells them apart.
func (c *CLI) loadSpecSet() (set *spec.Set, varErr bool, err error) {
	vars, err := c.specVars()
	if err != nil {
		return nil, true, err
	}
	set, err = spec.LoadDirWith(c.global.dir, spec.LoadOptions{Vars: vars})
	if err != nil {
		return nil, false, err
	}
	return set, false, c.checkVarsUsed(set)
}

// checkVarsUsed refuses a --var that no spec references: most likely a
// misspelt name, which would silently leave the intended value (from a var
// file or the environment) in place. Var files and the environment may
// hold values for other folders, and are not checked.
func (c *CLI) checkVarsUsed(set *spec.Set) error {
	var unused []string
	for _, a := range c.global.vars {
		name, _, _ := strings.Cut(a.value, "=")
		if !a.file && !slices.Contains(set.VarsUsed, name) && !slices.Contains(unused, name) {
			unused = append(unused, name)
		}
	}
	if len(unused) == 0 {
		return nil
	}
	used := "none"
	if len(set.VarsUsed) > 0 {
		used = strings.Join(set.VarsUsed, ", ")
	}
	return fmt.Errorf("--var %s: no spec in %s references ${var.%s} (the specs reference: %s); check the name", strings.Join(unused, ", --var "), c.global.dir, unused[0], used)
}

// printSpecProblems prints the problems of the specs or of a var file, one
// per line, named as the user would open the file.
func (c *CLI) printSpecProblems(problems spec.Errors, varFile bool) {
	for _, p := range problems {
		if !varFile {
			p.File = filepath.Join(c.global.dir, p.File)
		}
		fmt.Fprintln(c.stderr, p.String())
	}
}

// varFlagHint is the --var and --var-file flags given, for pasted commands.
func (c *CLI) varFlagHint() []string {
	var parts []string
	for _, a := range c.global.vars {
		if a.file {
			parts = append(parts, "--var-file", shellQuote(a.value))
		} else {
			parts = append(parts, "--var", shellQuote(a.value))
		}
	}
	return parts
}

// specsInvalid is the error after the problems are printed.
func (c *CLI) specsInvalid(problems spec.Errors, varFile bool) error {
	n := len(problems)
	if varFile {
		return fmt.Errorf("the var file %s is not valid (%d %s); nothing was changed", problems[0].File, n, plural(n, "problem", "problems"))
	}
	return fmt.Errorf("the specs in %s are not valid (%d %s); nothing was changed", c.global.dir, n, plural(n, "problem", "problems"))
}

// daemonLoad is the daemon's load: the var files are read again on every
// load (a change, SIGHUP, each resync), so an edited var file takes effect
// at the next pass; the environment is the process's, fixed at start. A
// --var no spec references is not refused here: specs change under a
// running daemon, and a load must not fail for a flag.
func (c *CLI) daemonLoad(cache *spec.Cache) func(string) (*spec.Set, error) {
	return func(dir string) (*spec.Set, error) {
		vars, err := c.specVars()
		if err != nil {
			return nil, err
		}
		return cache.LoadDirWith(dir, spec.LoadOptions{Vars: vars})
	}
}
