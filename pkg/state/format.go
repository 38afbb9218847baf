package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

// FormatVersion is the state format this convsync writes, and the newest it reads.
const FormatVersion = 2

// Format 1 stored every value as a string (attributes as JSON inside a
// string) and flat dotted names; format 2 stores real JSON values, nested.
// A format 1 file is read as is and written as format 2 on its first
// change (the backup beside it keeps the format 1 copy).
const oldestFormatVersion = 1

// The on-disk form of format 1. Field order here is the order in the file.
type resourceJSON struct {
	Address   string    `json:"address"`
	SID       string    `json:"sid"`
	ParentSID string    `json:"parent_sid,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Applied holds real JSON values, nested as the kind's schema says
	// (format 1 held a flat map of strings; it is still read).
	Applied json.RawMessage `json:"applied"`
}

type pendingJSON struct {
	Address   string          `json:"address"`
	Kind      resource.Kind   `json:"kind"`
	ParentSID string          `json:"parent_sid,omitempty"`
	StartedAt time.Time       `json:"started_at"`
	Values    json.RawMessage `json:"values"`
}

// VersionError means the file was written in a newer state format than this
// convsync understands.
type VersionError struct {
	Version   uint64
	WrittenBy string // convsync_version of the writer, if the file says
}

func (e *VersionError) Error() string {
	var by string
	if e.WrittenBy != "" {
		by = "version " + e.WrittenBy + ", "
	}
	return fmt.Sprintf("was written by a newer convsync (%sstate format %d); this convsync reads format %d at most: upgrade convsync",
		by, e.Version, FormatVersion)
}

// DecodeError says where and why a state file's text cannot be read.
type DecodeError struct {
	Offset  int64 // bytes from the start of the file
	Line    int   // 1-based
	Column  int   // 1-based, in bytes
	Problem string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("line %d, column %d (byte %d): %s", e.Line, e.Column, e.Offset, e.Problem)
}

// Encode writes s in the current format: a small header, then one resource and
// one pending create per line, sorted by address, so that the file diffs well
// and a 100,000-resource file stays cheap to write. writtenBy is recorded as
// convsync_version.
func Encode(w io.Writer, s *State, writtenBy string) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false) // keep attributes like {"url":"a?b&c"} readable
	fmt.Fprintf(bw, "{\n  \"version\": %d,\n  \"lineage\": %s,\n  \"serial\": %d,\n  \"convsync_version\": %s,\n",
		FormatVersion, strconv.Quote(s.Lineage), s.Serial, strconv.Quote(writtenBy))

	writeList := func(name string, keys []string, item func(string) any) error {
		fmt.Fprintf(bw, "  %q: [", name)
		for i, k := range keys {
			line.Reset()
			if err := enc.Encode(item(k)); err != nil {
				return fmt.Errorf("encoding %s %s: %v", name, k, err)
			}
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString("\n    ")
			bw.Write(bytes.TrimSuffix(line.Bytes(), []byte("\n")))
		}
		if len(keys) > 0 {
			bw.WriteString("\n  ")
		}
		bw.WriteString("]")
		return nil
	}
	if err := writeList("resources", sortedKeys(s.Resources), func(k string) any {
		r := s.Resources[k]
		return toResourceJSON(r)
	}); err != nil {
		return err
	}
	bw.WriteString(",\n")
	if err := writeList("pending", sortedKeys(s.Pending), func(k string) any {
		p := s.Pending[k]
		return toPendingJSON(p)
	}); err != nil {
		return err
	}
	bw.WriteString("\n}\n")
	return bw.Flush()
}

// Decode reads a state file. It looks at "version" first: a newer format is
// refused with a *VersionError before anything else is interpreted. Anything
// unexpected (bad JSON, unknown or repeated fields, invalid SIDs, field names the
// kind does not have) is a *DecodeError that says where.
func Decode(data []byte) (s *State, writtenBy string, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, "", positioned(data, 0, "the file is empty")
	}
	// Sniff: the syntax check covers the whole text and reports absolute offsets.
	var head struct {
		Version         json.RawMessage `json:"version"`
		ConvsyncVersion json.RawMessage `json:"convsync_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			if syn.Offset >= int64(len(data)) {
				return nil, "", positioned(data, syn.Offset, "the file ends in the middle of the JSON (truncated?)")
			}
			return nil, "", positioned(data, syn.Offset-1, syn.Error()) // Offset counts the bad byte
		case errors.As(err, &typ):
			return nil, "", positioned(data, 0, "the file is not a JSON object")
		}
		return nil, "", positioned(data, 0, err.Error())
	}
	if v, err := strconv.ParseUint(string(head.Version), 10, 64); err == nil && v > FormatVersion {
		var by string
		_ = json.Unmarshal(head.ConvsyncVersion, &by)
		return nil, "", &VersionError{Version: v, WrittenBy: by}
	}
	d := &decoder{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	d.dec.DisallowUnknownFields()
	return d.decodeV1()
}

type decoder struct {
	data []byte
	dec  *json.Decoder
}

// start returns the offset of the next token at or after off, skipping the
// whitespace and separators json.Decoder.InputOffset leaves in front of it.
func (d *decoder) start(off int64) int64 {
	for off < int64(len(d.data)) {
		switch d.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

func (d *decoder) errorf(off int64, format string, args ...any) error {
	return positioned(d.data, off, fmt.Sprintf(format, args...))
}

// valueError places an error from decoding the value that starts at off.
func (d *decoder) valueError(off int64, what string, err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := typ.Field
		if field == "" {
			field = what
		} else {
			field = what + "." + field
		}
		return d.errorf(off+typ.Offset-1, "%s: expected %s, found a JSON %s", field, typ.Type, typ.Value)
	}
	const unknown = "json: unknown field "
	if msg := err.Error(); len(msg) > len(unknown) && msg[:len(unknown)] == unknown {
		name := msg[len(unknown):]
		end := d.dec.InputOffset() // the decoder has consumed the whole value
		if i := bytes.Index(d.data[off:end], []byte(name)); i >= 0 {
			off += int64(i)
		}
		return d.errorf(off, "%s: unknown field %s (this convsync does not know it; refusing rather than dropping it)", what, name)
	}
	var perr *time.ParseError
	if errors.As(err, &perr) {
		return d.errorf(off, "%s: %q is not an RFC 3339 time", what, perr.Value)
	}
	return d.errorf(off, "%s: %v", what, err)
}

func (d *decoder) expectDelim(want json.Delim) error {
	off := d.start(d.dec.InputOffset())
	tok, err := d.dec.Token()
	if err != nil || tok != want {
		return d.errorf(off, "expected %q", want.String())
	}
	return nil
}

func (d *decoder) decodeV1() (*State, string, error) {
	s := &State{Resources: map[string]*Resource{}, Pending: map[string]*Pending{}}
	var writtenBy string
	if err := d.expectDelim('{'); err != nil {
		return nil, "", err
	}
	seen := map[string]bool{}
	for d.dec.More() {
		keyOff := d.start(d.dec.InputOffset())
		tok, err := d.dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil, "", d.errorf(keyOff, "expected a field name")
		}
		if seen[key] {
			return nil, "", d.errorf(keyOff, "field %q appears twice", key)
		}
		seen[key] = true
		valOff := d.start(d.dec.InputOffset())
		switch key {
		case "version":
			var v uint64
			if err := d.dec.Decode(&v); err != nil || v < oldestFormatVersion || v > FormatVersion {
				return nil, "", d.errorf(valOff, "\"version\" must be %d to %d", oldestFormatVersion, FormatVersion)
			}
		case "lineage":
			if err := d.dec.Decode(&s.Lineage); err != nil {
				return nil, "", d.valueError(valOff, key, err)
			}
			if s.Lineage == "" {
				return nil, "", d.errorf(valOff, "\"lineage\" is empty")
			}
		case "serial":
			if err := d.dec.Decode(&s.Serial); err != nil {
				return nil, "", d.valueError(valOff, key, err)
			}
		case "convsync_version":
			if err := d.dec.Decode(&writtenBy); err != nil {
				return nil, "", d.valueError(valOff, key, err)
			}
		case "resources":
			if err := d.list(key, func(what string, off int64) error {
				var rj resourceJSON
				if err := d.dec.Decode(&rj); err != nil {
					return d.valueError(off, what, err)
				}
				addr, err := resource.ParseAddress(rj.Address)
				if err != nil {
					return d.errorf(off, "%s: %v", what, err)
				}
				applied, err := decodeValues(addr.Kind, rj.Applied)
				if err != nil {
					return d.errorf(off, "%s: applied: %v", what, err)
				}
				r := &Resource{Address: addr, SID: rj.SID, ParentSID: rj.ParentSID, Applied: applied, CreatedAt: rj.CreatedAt}
				k := addr.String()
				if s.Resources[k] != nil {
					return d.errorf(off, "%s: resource %s appears twice", what, k)
				}
				if err := validateResource(k, r); err != nil {
					return d.errorf(off, "%s: %v", what, err)
				}
				s.Resources[k] = r
				return nil
			}); err != nil {
				return nil, "", err
			}
		case "pending":
			if err := d.list(key, func(what string, off int64) error {
				var pj pendingJSON
				if err := d.dec.Decode(&pj); err != nil {
					return d.valueError(off, what, err)
				}
				addr, err := resource.ParseAddress(pj.Address)
				if err != nil {
					return d.errorf(off, "%s: %v", what, err)
				}
				values, err := decodeValues(addr.Kind, pj.Values)
				if err != nil {
					return d.errorf(off, "%s: values: %v", what, err)
				}
				p := &Pending{Address: addr, Kind: pj.Kind, ParentSID: pj.ParentSID, Values: values, StartedAt: pj.StartedAt}
				k := addr.String()
				if s.Pending[k] != nil {
					return d.errorf(off, "%s: pending create %s appears twice", what, k)
				}
				if err := validatePending(k, p); err != nil {
					return d.errorf(off, "%s: %v", what, err)
				}
				s.Pending[k] = p
				return nil
			}); err != nil {
				return nil, "", err
			}
		default:
			return nil, "", d.errorf(keyOff, "unknown field %q (this convsync does not know it; refusing rather than dropping it)", key)
		}
	}
	if err := d.expectDelim('}'); err != nil {
		return nil, "", err
	}
	for _, required := range []string{"version", "lineage", "serial"} {
		if !seen[required] {
			return nil, "", d.errorf(0, "the %q field is missing: this is not a convsync state file", required)
		}
	}
	return s, writtenBy, nil
}

// list walks a JSON array, calling item for each element with a name for
// messages ("resources[3]") and the element's offset.
func (d *decoder) list(name string, item func(what string, off int64) error) error {
	if err := d.expectDelim('['); err != nil {
		return err
	}
	for i := 0; d.dec.More(); i++ {
		off := d.start(d.dec.InputOffset())
		if err := item(fmt.Sprintf("%s[%d]", name, i), off); err != nil {
			return err
		}
	}
	return d.expectDelim(']')
}

// positioned turns a byte offset into a *DecodeError with line and column.
func positioned(data []byte, off int64, problem string) *DecodeError {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return &DecodeError{Offset: off, Line: line, Column: col, Problem: problem}
}
