package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/convsync/convsync/pkg/resource"
)

const dataFormat = "convsync-emulator/1"

// dataFileJSON is the on-disk form of the emulator's data.
type dataFileJSON struct {
	Format     string              `json:"format"`
	AccountSID string              `json:"account_sid"`
	NextSeq    uint64              `json:"next_seq"`
	Services   []serviceRecordJSON `json:"services"`
}

type serviceRecordJSON struct {
	Service
	Conversations []*Conversation `json:"conversations"`
}

// load reads s.dataFile. A missing file is an empty start; anything unreadable
// is an error, so a damaged file is never silently replaced by an empty one.
func (s *Server) load() error {
	raw, err := os.ReadFile(s.dataFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("emulator data %s: %w", s.dataFile, err)
	}
	var f dataFileJSON
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("emulator data %s is damaged (not valid JSON: %v); move it away to start empty", s.dataFile, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("emulator data %s is damaged: %s", s.dataFile, fmt.Sprintf(format, args...))
	}
	if f.Format != dataFormat {
		return bad("format is %q, expected %q", f.Format, dataFormat)
	}
	if f.AccountSID != s.accountSID {
		return fmt.Errorf("emulator data %s belongs to account %s, not %s", s.dataFile, f.AccountSID, s.accountSID)
	}
	var lastSvcSeq uint64
	for i, rec := range f.Services {
		if !resource.IsSID(rec.SID, "IS") {
			return bad("services[%d].sid %q is not a service SID", i, rec.SID)
		}
		if _, dup := s.services[rec.SID]; dup {
			return bad("services[%d].sid %s appears twice", i, rec.SID)
		}
		if rec.Seq <= lastSvcSeq || rec.Seq >= f.NextSeq {
			return bad("services[%d].seq %d is out of order", i, rec.Seq)
		}
		lastSvcSeq = rec.Seq
		d := newServiceData(rec.Service)
		var lastSeq uint64
		for j, c := range rec.Conversations {
			where := fmt.Sprintf("services[%d].conversations[%d]", i, j)
			switch {
			case c == nil || !resource.IsSID(c.SID, "CH"):
				return bad("%s has no conversation SID", where)
			case c.ServiceSID != rec.SID:
				return bad("%s.service_sid %q is not its service %s", where, c.ServiceSID, rec.SID)
			case c.Seq <= lastSeq || c.Seq >= f.NextSeq:
				return bad("%s.seq %d is out of order", where, c.Seq)
			case d.bySID[c.SID] != nil:
				return bad("%s.sid %s appears twice", where, c.SID)
			case c.UniqueName != nil && d.byUnique[*c.UniqueName] != nil:
				return bad("%s.unique_name %q appears twice", where, *c.UniqueName)
			case c.State != stateActive && c.State != stateInactive && c.State != stateClosed:
				return bad("%s.state %q is not a conversation state", where, c.State)
			}
			lastSeq = c.Seq
			d.insert(c)
		}
		s.services[rec.SID] = d
		s.svcOrder = append(s.svcOrder, d)
	}
	s.nextSeq = f.NextSeq
	return nil
}

// saveLocked writes every service and conversation to s.dataFile atomically:
// a temporary file in the same directory, fsync, rename, fsync of the directory.
// The caller holds s.mu.
func (s *Server) saveLocked() error {
	if s.dataFile == "" {
		return nil
	}
	f := dataFileJSON{Format: dataFormat, AccountSID: s.accountSID, NextSeq: s.nextSeq}
	for _, d := range s.svcOrder {
		f.Services = append(f.Services, serviceRecordJSON{Service: d.svc, Conversations: d.order})
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.dataFile)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.dataFile)+".tmp-*")
	if err != nil {
		return err
	}
	cleanup := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if _, err := tmp.Write(raw); err != nil {
		return cleanup(err)
	}
	if err := tmp.Sync(); err != nil {
		return cleanup(err)
	}
	if err := tmp.Close(); err != nil {
		return cleanup(err)
	}
	if err := os.Rename(tmp.Name(), s.dataFile); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		d.Close()
	}
	return nil
}
