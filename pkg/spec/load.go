package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/convsync/convsync/pkg/resource"
)

// Set is every resource of one spec folder.
type Set struct {
	Resources []resource.Desired // sorted by address
	Files     []string           // paths loaded, relative to the folder, with '/' separators, sorted
	// Hash is the sha256 (hex) of every loaded file's relative path and content,
	// in Files order, and of the values of the variables they reference:
	// unchanged specs give the same hash.
	Hash string
	// VarsUsed lists the variables the specs' ${var.NAME} references named,
	// sorted.
	VarsUsed []string
}

// Find returns the resource at addr.
func (s *Set) Find(addr resource.Address) (*resource.Desired, bool) {
	key := addr.String()
	i := sort.Search(len(s.Resources), func(i int) bool { return s.Resources[i].Address.String() >= key })
	if i < len(s.Resources) && s.Resources[i].Address == addr {
		return &s.Resources[i], true
	}
	return nil, false
}

// LoadDir loads every *.yaml and *.yml file under dir, recursively (see
// docs/spec-format.md for which files and folders are skipped).
//
// When the specs are invalid the error is Errors, holding every problem found.
// When a file or folder cannot be read, or dir itself is missing, the error is an
// ordinary error naming the path (it wraps the cause, so errors.Is(err,
// fs.ErrNotExist) and fs.ErrPermission work); the specs are then not checked
// at all, because checks over an incomplete set would report false problems
// (a reference to a service whose file could not be read, say).
func LoadDir(dir string) (*Set, error) { return loadDir(dir, nil, LoadOptions{}) }

// Cache keeps the parsed documents of spec files between loads, by path and
// content hash, so that a daemon reloading the whole folder on every change
// parses only the files that changed. The checks across files still run
// over the whole set each time. Use one Cache from one goroutine at a time.
type Cache struct {
	files map[string]cachedFile
}

type cachedFile struct {
	sum      [sha256.Size]byte // of the content and the values of the variables
	docs     []parsedDoc
	problems Errors
	used     []string
}

// NewCache returns an empty Cache.
func NewCache() *Cache { return &Cache{files: map[string]cachedFile{}} }

// LoadDir is the package's LoadDir, reusing what earlier loads parsed.
func (c *Cache) LoadDir(dir string) (*Set, error) { return loadDir(dir, c, LoadOptions{}) }

func loadDir(dir string, cache *Cache, o LoadOptions) (*Set, error) {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("spec folder %s does not exist: %w", dir, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("spec folder %s: cannot read: %w", dir, unwrapPath(err))
	case !info.IsDir():
		return nil, fmt.Errorf("spec folder %s is not a folder", dir)
	}
	w := &walker{}
	w.walk(dir, "", []ancestor{{".", info}})
	if len(w.ioErrors) > 0 {
		return nil, errors.Join(w.ioErrors...)
	}
	sort.Slice(w.files, func(i, j int) bool { return w.files[i].rel < w.files[j].rel })

	problems := w.problems
	var docs []parsedDoc
	var used []string
	hash := sha256.New()
	set := &Set{}
	for _, f := range w.files {
		data, err := readLimited(f.abs)
		if err != nil {
			w.ioErrors = append(w.ioErrors, fmt.Errorf("spec file %s: cannot read: %w", f.rel, unwrapPath(err)))
			continue
		}
		set.Files = append(set.Files, f.rel)
		// Length-prefixed, so no two different file sets hash alike.
		fmt.Fprintf(hash, "%d:%s\x00%d:", len(f.rel), f.rel, len(data))
		hash.Write(data)
		var d []parsedDoc
		var p Errors
		var u []string
		if cache == nil {
			d, p, u = parseFileWith(f.rel, data, o.Vars)
		} else {
			// Other values are another parse: the sum covers every variable.
			sum := sha256.Sum256(append(data, o.Vars.digest(o.Vars.Names())...))
			if cached, ok := cache.files[f.rel]; ok && cached.sum == sum {
				d, p, u = cached.docs, cached.problems, cached.used
			} else {
				d, p, u = parseFileWith(f.rel, data, o.Vars)
				cache.files[f.rel] = cachedFile{sum: sum, docs: d, problems: p, used: u}
			}
		}
		docs = append(docs, d...)
		problems = append(problems, p...)
		used = append(used, u...)
	}
	if cache != nil {
		keep := make(map[string]bool, len(set.Files))
		for _, rel := range set.Files {
			keep[rel] = true
		}
		for rel := range cache.files {
			if !keep[rel] {
				delete(cache.files, rel) // gone from the folder
			}
		}
	}
	if len(w.ioErrors) > 0 {
		return nil, errors.Join(w.ioErrors...)
	}
	problems = append(problems, checkSet(docs)...)
	if len(problems) > 0 {
		problems.sort()
		return nil, problems
	}
	set.Resources = make([]resource.Desired, len(docs))
	for i, d := range docs {
		set.Resources[i] = d.Desired
	}
	resolveSecretPaths(dir, set.Resources)
	sort.SliceStable(set.Resources, func(i, j int) bool {
		return set.Resources[i].Address.String() < set.Resources[j].Address.String()
	})
	if set.VarsUsed = sortedSet(setOf(used)); len(set.VarsUsed) > 0 {
		// Only the values that reached the specs: a folder without
		// references hashes alike whatever the variables.
		hash.Write(o.Vars.digest(set.VarsUsed))
	}
	set.Hash = hex.EncodeToString(hash.Sum(nil))
	return set, nil
}

// readLimited reads a file, but never more than one byte past MaxFileSize: the
// parser then reports the file as too large without the whole of it in memory.
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

// unwrapPath drops the absolute path an *fs.PathError carries: our messages
// name the path relative to the spec folder instead.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

type specFile struct{ abs, rel string }

type ancestor struct {
	rel  string
	info os.FileInfo
}

type walker struct {
	files    []specFile
	problems Errors
	ioErrors []error
}

// walk visits a folder. ancestors are the folders on the way down from the spec
// folder, so a symlink that leads back into one of them is reported as a loop
// instead of being followed forever.
func (w *walker) walk(abs, rel string, ancestors []ancestor) {
	entries, err := os.ReadDir(abs)
	if err != nil {
		w.ioErrors = append(w.ioErrors, fmt.Errorf("spec folder %s: cannot read: %w", displayRel(rel), unwrapPath(err)))
		return
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // hidden, and a ConfigMap mount's ..data and ..<timestamp> folders
		}
		childAbs := filepath.Join(abs, name)
		childRel := path.Join(rel, name)
		isSpec := isSpecName(name)
		info, err := os.Stat(childAbs) // follows symlinks
		if err != nil {
			if !isSpec && e.Type()&fs.ModeSymlink != 0 {
				continue // a dangling link that is not named like a spec file
			}
			w.ioErrors = append(w.ioErrors, fmt.Errorf("spec file %s: cannot read: %w", childRel, unwrapPath(err)))
			continue
		}
		switch {
		case info.IsDir():
			if loop := findAncestor(ancestors, info); loop != "" {
				w.problems = append(w.problems, Problem{File: childRel, Message: fmt.Sprintf("symlink loop: this leads back to the folder %s, which contains it; remove the link", loop)})
				continue
			}
			w.walk(childAbs, childRel, append(ancestors[:len(ancestors):len(ancestors)], ancestor{childRel, info}))
		case !isSpec:
		case info.Mode().IsRegular():
			w.files = append(w.files, specFile{childAbs, childRel})
		default:
			w.problems = append(w.problems, Problem{File: childRel, Message: "not a regular file (" + info.Mode().Type().String() + "); a spec file must be a file or a symlink to one"})
		}
	}
}

func displayRel(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

func findAncestor(ancestors []ancestor, info os.FileInfo) string {
	for _, a := range ancestors {
		if os.SameFile(a.info, info) {
			return a.rel
		}
	}
	return ""
}

func isSpecName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// checkSet applies the rules that span documents and files.
func checkSet(docs []parsedDoc) Errors {
	var problems Errors
	add := func(src resource.Source, pos position, field, format string, args ...any) {
		if pos.line == 0 {
			pos = position{src.Line, src.Column}
		}
		problems = append(problems, Problem{File: src.File, Line: pos.line, Column: pos.column, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	// Walk in file order so "first" means first in the sorted file list.
	ordered := append([]parsedDoc(nil), docs...)
	sort.SliceStable(ordered, func(i, j int) bool { return sourceLess(ordered[i].Source, ordered[j].Source) })

	declared := map[resource.Address]resource.Source{}
	for _, d := range ordered {
		if first, dup := declared[d.Address]; dup {
			add(d.Source, d.nameAt, "name", "%s is declared twice: also at %s; each KIND.NAME must be unique across all spec files", d.Address, first)
			continue
		}
		declared[d.Address] = d.Source
	}

	byAddr := map[resource.Address]parsedDoc{}
	for _, d := range ordered {
		if _, ok := byAddr[d.Address]; !ok {
			byAddr[d.Address] = d
		}
	}
	type keyed struct {
		kind   resource.Kind
		parent string
		value  string
	}
	keys := map[keyed]parsedDoc{}
	for _, d := range ordered {
		schema := resource.Schema(d.Address.Kind)
		if !d.Parent.Address.IsZero() {
			if _, ok := declared[d.Parent.Address]; !ok {
				byName, bySID := parentKeys(schema)
				add(d.Source, d.parentAt, byName, "no %s named %q in these specs (known: %s); to use a %s convsync does not manage, write %s: %s... instead", schema.Parent, d.Parent.Address.Name, knownOf(declared, schema.Parent), strings.ToLower(string(schema.Parent)), bySID, resource.Schema(schema.Parent).SIDPrefix)
			}
		}
		for _, field := range sortedRefs(d.Refs) {
			ref := d.Refs[field]
			f := schema.Field(field)
			target, ok := byAddr[ref.Address]
			if !ok {
				add(d.Source, d.refAt[field], f.RefName, "no %s named %q in these specs (known: %s); to use one convsync does not manage, write %s: %s... instead", ref.Address.Kind, ref.Address.Name, knownOf(declared, ref.Address.Kind), f.Name, resource.Schema(ref.Address.Kind).SIDPrefix)
				continue
			}
			scopeKind := resource.Schema(ref.Address.Kind).Parent
			if scope := ancestorRef(byAddr, d, scopeKind); !target.Parent.IsZero() && !scope.IsZero() && target.Parent != scope {
				add(d.Source, d.refAt[field], f.RefName, "%s is in %s %s, but this %s is in %s; it can only use a %s of its own %s", ref.Address, strings.ToLower(string(scopeKind)), target.Parent, strings.ToLower(string(d.Address.Kind)), scope, strings.ToLower(string(ref.Address.Kind)), strings.ToLower(string(scopeKind)))
				continue
			}
			for _, name := range sortedKeys(f.RefMust) {
				want := f.RefMust[name]
				if got, set := target.Values[name]; set && got != want {
					add(d.Source, d.refAt[field], f.RefName, "%s has %s %q, but %s must name a %s with %s %q (%s)", ref.Address, name, got, f.RefName, strings.ToLower(string(ref.Address.Kind)), name, want, target.Source)
				}
			}
		}
		if schema.Singleton && !d.Parent.IsZero() {
			k := keyed{d.Address.Kind, d.Parent.String(), ""}
			if first, dup := keys[k]; dup && first.Address != d.Address {
				add(d.Source, d.parentAt, "", "%s %s already has its %s in %s (%s); there is one per %s", strings.ToLower(string(schema.Parent)), d.Parent, d.Address.Kind, first.Address, first.Source, strings.ToLower(string(schema.Parent)))
			} else if !dup {
				keys[k] = d
			}
		}
		if schema.UniqueByContent && !d.Parent.IsZero() {
			k := keyed{d.Address.Kind, "content:" + d.Parent.String(), contentKey(schema, d.Values)}
			if first, dup := keys[k]; dup && first.Address != d.Address {
				add(d.Source, d.nameAt, "", "has the same fields as %s (%s) in the same %s; %s have no name in Twilio, so two identical ones could not be told apart: change or remove one", first.Address, first.Source, strings.ToLower(string(schema.Parent)), schema.Plural)
			} else if !dup {
				keys[k] = d
			}
		}
		value := schema.KeyOf(d.Values)
		if value == "" || d.Parent.IsZero() && schema.Parent != "" {
			continue
		}
		keyName := schema.KeyName(d.Values)
		k := keyed{d.Address.Kind, d.Parent.String() + "\x00" + keyName, value}
		if first, dup := keys[k]; dup {
			if first.Address != d.Address {
				scope := strings.ToLower(string(schema.Parent))
				if schema.Parent == "" {
					scope = "account"
				}
				add(d.Source, d.keyAt, keyName, "%q is already the %s of %s (%s) in the same %s; Twilio requires it to be unique per %s%s", value, keyName, first.Address, first.Source, scope, scope, uniquenessCode(d.Address.Kind))
			}
			continue
		}
		keys[k] = d
	}
	checkLimits(ordered, add)
	return problems
}

// ancestorRef is where d lives at the level of kind: its parent when that is
// of kind, or its parent's ancestor (a participant's service is its
// conversation's). Zero when unknown.
func ancestorRef(byAddr map[resource.Address]parsedDoc, d parsedDoc, kind resource.Kind) resource.Ref {
	parent := d.Parent
	parentKind := resource.Schema(d.Address.Kind).Parent
	for parentKind != "" && !parent.IsZero() {
		if parentKind == kind {
			return parent
		}
		if parent.SID != "" {
			// A key of SIDs, outermost first: drop the innermost.
			key, _ := resource.ParentOfKey(parent.SID)
			parent = resource.Ref{SID: key}
		} else {
			next, ok := byAddr[parent.Address]
			if !ok {
				return resource.Ref{}
			}
			parent = next.Parent
		}
		parentKind = resource.Schema(parentKind).Parent
	}
	return resource.Ref{}
}

// contentKey is the values of a resource that recognising a lost create
// compares (KindSchema.Recognisable), for UniqueByContent.
func contentKey(schema *resource.KindSchema, v resource.Values) string {
	var b strings.Builder
	for i := range schema.Fields {
		if f := &schema.Fields[i]; schema.Recognisable(f) {
			if x, ok := v[f.Name]; ok {
				b.WriteString(f.Name + "=" + x + "\x00")
			}
		}
	}
	return b.String()
}

// checkLimits refuses more resources of a kind in one parent than Twilio
// allows (five webhooks per conversation): the first one over the limit is
// reported, naming the limit's error code. The planner checks the same
// limits again with what Twilio already holds.
func checkLimits(ordered []parsedDoc, add func(src resource.Source, pos position, field, format string, args ...any)) {
	type counted struct {
		kind   resource.Kind
		parent string
		limit  int
	}
	counts := map[counted]int{}
	for _, d := range ordered {
		schema := resource.Schema(d.Address.Kind)
		if d.Parent.IsZero() {
			continue
		}
		for i := range schema.Limits {
			l := &schema.Limits[i]
			if !l.Applies(d.Values) {
				continue
			}
			k := counted{d.Address.Kind, d.Parent.String(), i}
			counts[k]++
			if counts[k] == l.Max+1 {
				code := ""
				if l.Code != "" {
					code = " (error " + l.Code + ")"
				}
				where := d.Parent.String()
				if d.Parent.SID != "" {
					where = strings.ToLower(string(schema.Parent)) + " " + d.Parent.SID
				}
				add(d.Source, d.nameAt, "", "%s would hold more than %d %s, Twilio's limit%s", where, l.Max, l.What, code)
			}
		}
	}
}

// uniquenessCode names the error Twilio answers a duplicate natural key with.
func uniquenessCode(k resource.Kind) string {
	if code := resource.Schema(k).NaturalKeyError; code != "" {
		return " (error " + code + ")"
	}
	return ""
}

func sortedRefs(m map[string]resource.Ref) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func knownOf(declared map[resource.Address]resource.Source, kind resource.Kind) string {
	var names []string
	for a := range declared {
		if a.Kind == kind {
			names = append(names, a.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func sourceLess(a, b resource.Source) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Column < b.Column
}

func setOf(list []string) map[string]bool {
	out := make(map[string]bool, len(list))
	for _, x := range list {
		out[x] = true
	}
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
