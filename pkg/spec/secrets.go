package spec

import (
	"path/filepath"
	"sort"

	"github.com/convsync/convsync/pkg/resource"
	yaml "go.yaml.in/yaml/v3"
)

// secret reads a secret field: a mapping naming where the value is, never
// the value itself. {file: PATH} reads the whole file (a relative path is
// relative to the spec file's folder); {env: NAME} reads an environment
// variable. Neither is read here: plan reads them to see whether they
// changed, and the Twilio adapter when it sends them.
func (p *parser) secret(field string, v *yaml.Node) (string, bool) {
	switch v.Kind {
	case yaml.AliasNode:
		return "", false
	case yaml.MappingNode:
	case yaml.ScalarNode:
		// The message never repeats what was written: it may be the secret.
		p.add(at(v), field, "is a secret: write where convsync reads it from, {file: PATH} or {env: NAME}, never the value itself (and if this was a real secret, consider it exposed)")
		return "", false
	default:
		p.add(at(v), field, "is a secret: write {file: PATH} or {env: NAME}; found %s", describe(v))
		return "", false
	}
	entries, ok := p.mapping(v, field, "file", "env")
	if !ok {
		return "", false
	}
	if len(entries) != 1 {
		p.add(at(v), field, "names where the secret is read from: exactly one of {file: PATH} or {env: NAME}")
		return "", false
	}
	e := entries[0]
	s, ok := p.str(e.value, field+"."+e.key)
	if !ok {
		return "", false
	}
	var ref resource.SecretRef
	switch e.key {
	case "file":
		if s == "" {
			p.add(at(e.value), field+".file", "empty; give the path of the file holding the secret")
			return "", false
		}
		ref.File = s
	case "env":
		if !envName(s) {
			// Not repeated: what is here instead of a name may be the secret.
			p.add(at(e.value), field+".env", "is not an environment variable name (letters, digits and _, not starting with a digit); if the secret itself was written here, consider it exposed")
			return "", false
		}
		ref.Env = s
	}
	return ref.String(), true
}

func envName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// resolveSecretPaths makes every relative secret file path of resources
// relative to the folder of its spec file (dir is the spec folder the
// files are relative to). Values are copied, never changed in place: a
// Cache shares them between loads.
func resolveSecretPaths(dir string, resources []resource.Desired) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	for i := range resources {
		d := &resources[i]
		k := resource.Schema(d.Address.Kind)
		var names []string
		for name := range d.Values {
			if f := k.Field(name); f != nil && f.Secret {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		cloned := false
		for _, name := range names {
			ref, err := resource.ParseSecretRef(d.Values[name])
			if err != nil || ref.File == "" || filepath.IsAbs(ref.File) {
				continue
			}
			if !cloned {
				d.Values, cloned = d.Values.Clone(), true
			}
			ref.File = filepath.Join(abs, filepath.Dir(filepath.FromSlash(d.Source.File)), ref.File)
			d.Values[name] = ref.String()
		}
	}
}
