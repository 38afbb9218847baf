package emulator

import "fmt"

// Out-of-band access to the account's kinds, for tests: what Twilio holds,
// and what Twilio (or a person in the console) does outside convsync.

// AccountSettings are the account's two singletons.
type AccountSettings struct {
	Configuration AccountConfiguration `json:"configuration"`
	Webhooks      AccountWebhooks      `json:"webhooks"`
}

// AccountSettings returns the account's configuration and webhook settings.
func (s *Server) AccountSettings() AccountSettings {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w := s.account.webhooks
	w.PreWebhookURL, w.PostWebhookURL = clonePtr(w.PreWebhookURL), clonePtr(w.PostWebhookURL)
	w.Filters = append([]string(nil), w.Filters...)
	return AccountSettings{Configuration: s.account.config, Webhooks: w}
}

// AddressConfigurations returns the account's address configurations in
// creation order.
func (s *Server) AddressConfigurations() []AddressConfiguration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]AddressConfiguration, 0, s.account.addresses.len())
	for _, a := range s.account.addresses.all() {
		out = append(out, a.clone())
	}
	return out
}

// ReleaseAddress deletes the configuration of address as Twilio does when
// the number is released or ported out (warning 50610).
func (s *Server) ReleaseAddress(address string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.account.addresses.lookup(address)
	if a == nil {
		return fmt.Errorf("address %s: %w", address, ErrNotFound)
	}
	s.account.addresses.remove(a)
	return s.saveLocked()
}

// AddAddressConfiguration configures an address outside convsync (as in
// Twilio's console) and returns its SID.
func (s *Server) AddAddressConfiguration(typ, address string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.account.addresses.byNaturalKey(address) != nil {
		return "", fmt.Errorf("address %s is configured already", address)
	}
	now := s.clock()
	a := &AddressConfiguration{
		SID:  s.unusedSIDLocked("IG", func(sid string) bool { return s.account.addresses.get(sid) != nil }),
		Type: typ, Address: address, AutoCreation: AutoCreation{Type: "default"},
		DateCreated: now, DateUpdated: now, Seq: s.nextSeq,
	}
	s.nextSeq++
	s.account.addresses.insert(a)
	return a.SID, s.saveLocked()
}

// Credentials returns the account's push credentials in creation order,
// with the digests of the secrets last received.
func (s *Server) Credentials() []Credential {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Credential, 0, s.account.credentials.len())
	for _, c := range s.account.credentials.all() {
		out = append(out, c.clone())
	}
	return out
}
