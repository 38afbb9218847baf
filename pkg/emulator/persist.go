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

// dataFormat is written; dataFormatV1 (services and conversations only) is
// still read: its services get the default roles and configuration on load.
// Participants and conversation webhooks were added to format 2 as optional
// keys (a file without them has none).
const (
	dataFormat   = "convsync-emulator/2"
	dataFormatV1 = "convsync-emulator/1"
)

// dataFileJSON is the on-disk form of the emulator's data.
type dataFileJSON struct {
	Format     string              `json:"format"`
	AccountSID string              `json:"account_sid"`
	NextSeq    uint64              `json:"next_seq"`
	Services   []serviceRecordJSON `json:"services"`
	// Account holds the account's own kinds (an optional key of format 2:
	// a file without it has the defaults).
	Account *accountRecordJSON `json:"account,omitempty"`
}

type serviceRecordJSON struct {
	Service
	Conversations []*Conversation       `json:"conversations"`
	Roles         []*Role               `json:"roles,omitempty"`
	Users         []*User               `json:"users,omitempty"`
	Configuration *ServiceConfiguration `json:"configuration,omitempty"`
	Notifications *ServiceNotifications `json:"notifications,omitempty"`
	Webhooks      *ServiceWebhooks      `json:"webhooks,omitempty"`
	// Participants and ConversationWebhooks are every conversation's, in
	// conversation order, then creation order.
	Participants         []*Participant         `json:"participants,omitempty"`
	ConversationWebhooks []*ConversationWebhook `json:"conversation_webhooks,omitempty"`
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
	if f.Format != dataFormat && f.Format != dataFormatV1 {
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
		if s.services.get(rec.SID) != nil {
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
			case d.conversations.get(c.SID) != nil:
				return bad("%s.sid %s appears twice", where, c.SID)
			case c.UniqueName != nil && d.conversations.byNaturalKey(*c.UniqueName) != nil:
				return bad("%s.unique_name %q appears twice", where, *c.UniqueName)
			case c.State != stateActive && c.State != stateInactive && c.State != stateClosed:
				return bad("%s.state %q is not a conversation state", where, c.State)
			}
			lastSeq = c.Seq
			d.insert(c)
		}
		if err := loadServiceKinds(d, rec, f.NextSeq, bad); err != nil {
			return err
		}
		s.services.insert(d)
	}
	if f.Account != nil {
		if err := s.account.load(f.Account, f.NextSeq, bad); err != nil {
			return err
		}
	}
	s.nextSeq = f.NextSeq
	if f.Format == dataFormatV1 {
		for _, d := range s.services.all() {
			s.addDefaultRolesLocked(d)
		}
	}
	return nil
}

// loadServiceKinds checks and loads a service record's roles, users and
// singletons into d.
func loadServiceKinds(d *serviceData, rec serviceRecordJSON, nextSeq uint64, bad func(string, ...any) error) error {
	var lastSeq uint64
	for j, r := range rec.Roles {
		where := fmt.Sprintf("services %s roles[%d]", rec.SID, j)
		switch {
		case r == nil || !resource.IsSID(r.SID, "RL"):
			return bad("%s has no role SID", where)
		case r.ServiceSID != rec.SID:
			return bad("%s.service_sid %q is not its service", where, r.ServiceSID)
		case r.Seq <= lastSeq || r.Seq >= nextSeq:
			return bad("%s.seq %d is out of order", where, r.Seq)
		case d.roles.get(r.SID) != nil:
			return bad("%s.sid %s appears twice", where, r.SID)
		case r.Type != roleTypeConversation && r.Type != roleTypeService:
			return bad("%s.type %q is not a role type", where, r.Type)
		}
		lastSeq = r.Seq
		d.roles.insert(r)
	}
	lastSeq = 0
	for j, u := range rec.Users {
		where := fmt.Sprintf("services %s users[%d]", rec.SID, j)
		switch {
		case u == nil || !resource.IsSID(u.SID, "US"):
			return bad("%s has no user SID", where)
		case u.ServiceSID != rec.SID:
			return bad("%s.service_sid %q is not its service", where, u.ServiceSID)
		case u.Seq <= lastSeq || u.Seq >= nextSeq:
			return bad("%s.seq %d is out of order", where, u.Seq)
		case d.users.get(u.SID) != nil:
			return bad("%s.sid %s appears twice", where, u.SID)
		case u.Identity == "" || d.users.byNaturalKey(u.Identity) != nil:
			return bad("%s.identity %q is empty or appears twice", where, u.Identity)
		}
		lastSeq = u.Seq
		d.users.insert(u)
	}
	if err := loadConversationKinds(d, rec, nextSeq, bad); err != nil {
		return err
	}
	if rec.Configuration != nil {
		d.config = *rec.Configuration
	}
	if rec.Notifications != nil {
		d.notifications = *rec.Notifications
	}
	if rec.Webhooks != nil {
		d.webhooks = *rec.Webhooks
	}
	return nil
}

// loadConversationKinds checks and loads a service record's participants and
// conversation-scoped webhooks into d, whose conversations are loaded.
func loadConversationKinds(d *serviceData, rec serviceRecordJSON, nextSeq uint64, bad func(string, ...any) error) error {
	for j, p := range rec.Participants {
		where := fmt.Sprintf("services %s participants[%d]", rec.SID, j)
		if p == nil || !resource.IsSID(p.SID, "MB") {
			return bad("%s has no participant SID", where)
		}
		c := d.conversations.get(p.ConversationSID)
		switch {
		case p.ServiceSID != rec.SID:
			return bad("%s.service_sid %q is not its service", where, p.ServiceSID)
		case c == nil:
			return bad("%s.conversation_sid %q is not a conversation of its service", where, p.ConversationSID)
		case (p.Identity == "") == (p.Address == ""):
			return bad("%s needs exactly one of identity and address", where)
		}
		col := d.participantsOf(c)
		switch {
		case p.Seq >= nextSeq || (col.len() > 0 && p.Seq <= col.all()[col.len()-1].Seq):
			return bad("%s.seq %d is out of order", where, p.Seq)
		case col.get(p.SID) != nil:
			return bad("%s.sid %s appears twice", where, p.SID)
		case p.Identity != "" && col.byNaturalKey(p.Identity) != nil:
			return bad("%s.identity %q appears twice in its conversation", where, p.Identity)
		}
		col.insert(p)
	}
	for j, w := range rec.ConversationWebhooks {
		where := fmt.Sprintf("services %s conversation_webhooks[%d]", rec.SID, j)
		if w == nil || !resource.IsSID(w.SID, "WH") {
			return bad("%s has no webhook SID", where)
		}
		c := d.conversations.get(w.ConversationSID)
		switch {
		case w.ServiceSID != rec.SID:
			return bad("%s.service_sid %q is not its service", where, w.ServiceSID)
		case c == nil:
			return bad("%s.conversation_sid %q is not a conversation of its service", where, w.ConversationSID)
		case w.Target != webhookTargetWebhook && w.Target != webhookTargetTrigger && w.Target != webhookTargetStudio:
			return bad("%s.target %q is not a webhook target", where, w.Target)
		}
		col := d.webhooksOf(c)
		switch {
		case w.Seq >= nextSeq || (col.len() > 0 && w.Seq <= col.all()[col.len()-1].Seq):
			return bad("%s.seq %d is out of order", where, w.Seq)
		case col.get(w.SID) != nil:
			return bad("%s.sid %s appears twice", where, w.SID)
		}
		col.insert(w)
	}
	return nil
}

// saveLocked writes every service and conversation to s.dataFile atomically:
// a temporary file in the same directory, fsync, rename, fsync of the directory.
// The caller holds s.mu.
func (s *Server) saveLocked() error {
	if s.dataFile == "" {
		return nil
	}
	f := dataFileJSON{Format: dataFormat, AccountSID: s.accountSID, NextSeq: s.nextSeq, Account: s.account.record()}
	for _, d := range s.services.all() {
		config, notifications, webhooks := d.config, d.notifications, d.webhooks
		rec := serviceRecordJSON{
			Service: d.svc, Conversations: d.conversations.all(), Roles: d.roles.all(), Users: d.users.all(),
			Configuration: &config, Notifications: &notifications, Webhooks: &webhooks,
		}
		for _, c := range d.conversations.all() {
			if col := d.participants[c.SID]; col != nil {
				rec.Participants = append(rec.Participants, col.all()...)
			}
			if col := d.convWebhooks[c.SID]; col != nil {
				rec.ConversationWebhooks = append(rec.ConversationWebhooks, col.all()...)
			}
		}
		f.Services = append(f.Services, rec)
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
