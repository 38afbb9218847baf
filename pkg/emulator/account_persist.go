package emulator

import (
	"fmt"

	"github.com/convsync/convsync/pkg/resource"
)

// accountRecordJSON is the account's part of the data file. Credentials
// carry digests of their secrets, never the secrets.
type accountRecordJSON struct {
	Configuration AccountConfiguration    `json:"configuration"`
	Webhooks      AccountWebhooks         `json:"webhooks"`
	Addresses     []*AddressConfiguration `json:"addresses,omitempty"`
	Credentials   []*Credential           `json:"credentials,omitempty"`
}

func (a *accountData) record() *accountRecordJSON {
	return &accountRecordJSON{
		Configuration: a.config, Webhooks: a.webhooks,
		Addresses: a.addresses.all(), Credentials: a.credentials.all(),
	}
}

// load checks and loads the account's record.
func (a *accountData) load(rec *accountRecordJSON, nextSeq uint64, bad func(string, ...any) error) error {
	if t := rec.Webhooks.Target; t != "webhook" && t != "flex" {
		return bad("account webhooks target %q is not webhook or flex", t)
	}
	a.config, a.webhooks = rec.Configuration, rec.Webhooks
	var lastSeq uint64
	for i, x := range rec.Addresses {
		where := fmt.Sprintf("account addresses[%d]", i)
		switch {
		case x == nil || !resource.IsSID(x.SID, "IG"):
			return bad("%s has no address configuration SID", where)
		case x.Seq <= lastSeq || x.Seq >= nextSeq:
			return bad("%s.seq %d is out of order", where, x.Seq)
		case a.addresses.get(x.SID) != nil || a.addresses.byNaturalKey(x.Address) != nil:
			return bad("%s (%s, %s) appears twice", where, x.SID, x.Address)
		case !addressTypes[x.Type]:
			return bad("%s.type %q is not an address type", where, x.Type)
		}
		lastSeq = x.Seq
		a.addresses.insert(x)
	}
	lastSeq = 0
	for i, x := range rec.Credentials {
		where := fmt.Sprintf("account credentials[%d]", i)
		switch {
		case x == nil || !resource.IsSID(x.SID, "CR"):
			return bad("%s has no credential SID", where)
		case x.Seq <= lastSeq || x.Seq >= nextSeq:
			return bad("%s.seq %d is out of order", where, x.Seq)
		case a.credentials.get(x.SID) != nil:
			return bad("%s.sid %s appears twice", where, x.SID)
		case !credentialTypes[x.Type]:
			return bad("%s.type %q is not a credential type", where, x.Type)
		}
		lastSeq = x.Seq
		a.credentials.insert(x)
	}
	return nil
}
