package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/convsync/convsync/pkg/resource"
)

// The journal (path+".journal") holds the changes made since the state file
// was last written in full, one JSON line per change, each fsynced before the
// Update that made it returns. Opening replays it over the state file;
// compaction writes the whole state file again and empties it.
//
// A line is one change: the serial it produced, the lineage (so a journal
// never lands on another state's file), and the entries it put or removed:
//
//	{"lineage":"…","serial":8,"put":[{resource}],"remove_pending":["conversation.vip"]}
//
// Entries use the state file's own JSON form, and are checked as strictly.
type journalRecord struct {
	Lineage       string         `json:"lineage"`
	Serial        uint64         `json:"serial"`
	Put           []resourceJSON `json:"put,omitempty"`
	Remove        []string       `json:"remove,omitempty"`
	PutPending    []pendingJSON  `json:"put_pending,omitempty"`
	RemovePending []string       `json:"remove_pending,omitempty"`
}

// record is one journal line waiting to be written, with the serial it carries.
type record struct {
	serial uint64
	line   []byte // ends in '\n'
}

func toResourceJSON(r *Resource) resourceJSON {
	return resourceJSON{Address: r.Address.String(), SID: r.SID, ParentSID: r.ParentSID, CreatedAt: r.CreatedAt.UTC(), Applied: encodeValues(r.Address.Kind, r.Applied)}
}

func toPendingJSON(p *Pending) pendingJSON {
	return pendingJSON{Address: p.Address.String(), Kind: p.Kind, ParentSID: p.ParentSID, StartedAt: p.StartedAt.UTC(), Values: encodeValues(p.Address.Kind, p.Values)}
}

// encodeValues writes values as real JSON, nested by the kind's schema.
func encodeValues(kind resource.Kind, v resource.Values) json.RawMessage {
	schema := resource.Schema(kind)
	var obj any = map[string]any{}
	if schema != nil {
		obj = schema.NestValues(v)
	} else if v != nil {
		obj = v
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(obj) // maps of strings and raw JSON always encode
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// decodeValues reads what encodeValues wrote, or format 1's flat strings.
func decodeValues(kind resource.Kind, raw json.RawMessage) (resource.Values, error) {
	schema := resource.Schema(kind)
	if schema == nil {
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	return schema.FlattenValues(raw)
}

// encodeRecord makes the journal line for a change of s: the entries whose
// keys are listed, as they are in s now (absent means removed).
func encodeRecord(s *State, resourceKeys, pendingKeys []string) ([]byte, error) {
	rec := journalRecord{Lineage: s.Lineage, Serial: s.Serial}
	sort.Strings(resourceKeys)
	sort.Strings(pendingKeys)
	for _, k := range resourceKeys {
		if r := s.Resources[k]; r != nil {
			rec.Put = append(rec.Put, toResourceJSON(r))
		} else {
			rec.Remove = append(rec.Remove, k)
		}
	}
	for _, k := range pendingKeys {
		if p := s.Pending[k]; p != nil {
			rec.PutPending = append(rec.PutPending, toPendingJSON(p))
		} else {
			rec.RemovePending = append(rec.RemovePending, k)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil { // Encode ends the line with '\n'
		return nil, fmt.Errorf("encoding journal line for serial %d: %v", rec.Serial, err)
	}
	return buf.Bytes(), nil
}

// JournalError says which line of a journal cannot be replayed, and why.
type JournalError struct {
	Line    int // 1-based
	Problem string
}

func (e *JournalError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Problem) }

// replay is what replayJournal found.
type replay struct {
	applied int   // lines applied on top of the state file
	skipped int   // lines the state file already holds (a crash after compaction)
	good    int64 // bytes of complete lines
	torn    int   // bytes of an incomplete last line (a write a crash cut short), 0 if none
}

// replayJournal applies the journal's lines to s in order. Lines with a
// serial the state file already includes are skipped (a compaction wrote the
// state file but a crash came before the journal was emptied). The others
// must continue s's serial one by one and carry its lineage. A last line
// without its newline is a write a crash cut short: its Update never
// returned, so it is left out (the caller says so). Anything else that is
// wrong is a *JournalError: the journal holds changes convsync made and must
// not forget.
func replayJournal(s *State, data []byte) (replay, error) {
	var out replay
	var prev uint64
	for lineNo := 1; len(data) > 0; lineNo++ {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			out.torn = len(data)
			return out, nil
		}
		line := data[:nl]
		data = data[nl+1:]
		if err := replayLine(s, line, lineNo, &prev, &out); err != nil {
			return out, err
		}
		out.good += int64(nl + 1)
	}
	return out, nil
}

func replayLine(s *State, line []byte, lineNo int, prev *uint64, out *replay) error {
	fail := func(format string, args ...any) error {
		return &JournalError{Line: lineNo, Problem: fmt.Sprintf(format, args...)}
	}
	var rec journalRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn):
			return fail("not a complete JSON line (byte %d of the line: %v)", syn.Offset, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fail("not a complete JSON line (it ends in the middle of the JSON)")
		}
		return fail("%v", err)
	}
	if dec.More() {
		return fail("more than one JSON value on the line")
	}
	if rec.Lineage != s.Lineage {
		return fail("the change belongs to state lineage %q, but the state file has lineage %q: this journal belongs to another state", rec.Lineage, s.Lineage)
	}
	if *prev != 0 && rec.Serial != *prev+1 {
		return fail("serial %d follows serial %d: lines are missing", rec.Serial, *prev)
	}
	*prev = rec.Serial
	if rec.Serial <= s.Serial {
		out.skipped++
		return nil
	}
	if rec.Serial != s.Serial+1 {
		return fail("the journal continues from serial %d, but the state file is at serial %d: changes %d to %d are missing (was the state file replaced by an older copy? then the journal belongs to the newer one)",
			rec.Serial, s.Serial, s.Serial+1, rec.Serial-1)
	}
	// Check the whole line before applying any of it.
	puts := make([]*Resource, len(rec.Put))
	for i, rj := range rec.Put {
		addr, err := resource.ParseAddress(rj.Address)
		if err != nil {
			return fail("put[%d]: %v", i, err)
		}
		applied, err := decodeValues(addr.Kind, rj.Applied)
		if err != nil {
			return fail("put[%d]: applied: %v", i, err)
		}
		r := &Resource{Address: addr, SID: rj.SID, ParentSID: rj.ParentSID, Applied: applied, CreatedAt: rj.CreatedAt}
		if err := validateResource(addr.String(), r); err != nil {
			return fail("put[%d]: %v", i, err)
		}
		puts[i] = r
	}
	pendings := make([]*Pending, len(rec.PutPending))
	for i, pj := range rec.PutPending {
		addr, err := resource.ParseAddress(pj.Address)
		if err != nil {
			return fail("put_pending[%d]: %v", i, err)
		}
		values, err := decodeValues(addr.Kind, pj.Values)
		if err != nil {
			return fail("put_pending[%d]: values: %v", i, err)
		}
		p := &Pending{Address: addr, Kind: pj.Kind, ParentSID: pj.ParentSID, Values: values, StartedAt: pj.StartedAt}
		if err := validatePending(addr.String(), p); err != nil {
			return fail("put_pending[%d]: %v", i, err)
		}
		pendings[i] = p
	}
	var removes, removePendings []string
	for i, a := range rec.Remove {
		addr, err := resource.ParseAddress(a)
		if err != nil {
			return fail("remove[%d]: %v", i, err)
		}
		removes = append(removes, addr.String())
	}
	for i, a := range rec.RemovePending {
		addr, err := resource.ParseAddress(a)
		if err != nil {
			return fail("remove_pending[%d]: %v", i, err)
		}
		removePendings = append(removePendings, addr.String())
	}
	for _, r := range puts {
		s.Resources[r.Address.String()] = r
	}
	for _, k := range removes {
		delete(s.Resources, k)
	}
	for _, p := range pendings {
		s.Pending[p.Address.String()] = p
	}
	for _, k := range removePendings {
		delete(s.Pending, k)
	}
	s.Serial = rec.Serial
	out.applied++
	return nil
}
