package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Credential is a push credential, /v1/Credentials/{CR} (§3.11). Twilio
// never returns the secret fields (Certificate, PrivateKey, ApiKey,
// Secret); the emulator does not even keep them: it keeps the SHA-256 of
// each value received (SecretDigests), so that tests can tell which value
// was sent last without any copy of it in the emulator's data file.
type Credential struct {
	SID          string  `json:"sid"`
	Type         string  `json:"type"` // apn | gcm | fcm
	FriendlyName *string `json:"friendly_name,omitempty"`
	Sandbox      *bool   `json:"sandbox,omitempty"`
	// SecretDigests: form parameter (Certificate, PrivateKey, ApiKey,
	// Secret) → hex SHA-256 of the value last received.
	SecretDigests map[string]string `json:"secret_digests,omitempty"`
	DateCreated   time.Time         `json:"date_created"`
	DateUpdated   time.Time         `json:"date_updated"`
	Seq           uint64            `json:"seq"`
}

func (c *Credential) clone() Credential {
	out := *c
	out.FriendlyName, out.Sandbox = clonePtr(c.FriendlyName), clonePtr(c.Sandbox)
	out.SecretDigests = make(map[string]string, len(c.SecretDigests))
	for k, v := range c.SecretDigests {
		out.SecretDigests[k] = v
	}
	return out
}

const (
	maxCredentialFriendlyNameChars = 64
	maxCredentialPageSize          = 100
)

var credentialTypes = setOf("apn", "gcm", "fcm")

// credentialSecrets are the write-only parameters.
var credentialSecrets = []string{"Certificate", "PrivateKey", "ApiKey", "Secret"}

// SecretDigest is how the emulator records a secret it received.
func SecretDigest(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])
}

type credentialJSON struct {
	SID          string  `json:"sid"`
	AccountSID   string  `json:"account_sid"`
	FriendlyName *string `json:"friendly_name"`
	Type         string  `json:"type"`
	Sandbox      *string `json:"sandbox"`
	DateCreated  string  `json:"date_created"`
	DateUpdated  string  `json:"date_updated"`
	URL          string  `json:"url"`
}

var credentialKind = &kind[Credential]{
	key:   "credentials",
	rules: listRules{maxPageSize: maxCredentialPageSize},
	seq:   func(c *Credential) uint64 { return c.Seq },
	sid:   func(c *Credential) string { return c.SID },
	render: func(s *Server, itemURL string, c *Credential) any {
		out := credentialJSON{
			SID: c.SID, AccountSID: s.accountSID, FriendlyName: clonePtr(c.FriendlyName), Type: c.Type,
			DateCreated: formatDate(c.DateCreated), DateUpdated: formatDate(c.DateUpdated), URL: itemURL,
		}
		if c.Sandbox != nil {
			// Sent as a boolean, answered as the string Twilio's examples show.
			v := "False"
			if *c.Sandbox {
				v = "True"
			}
			out.Sandbox = &v
		}
		return out
	},
}

func credentialsURL(r *http.Request) string { return baseURL(r) + "/v1/Credentials" }

// applyCredential reads the parameters a create and an update share.
func applyCredential(form map[string][]string, c *Credential) *apiError {
	get := func(k string) (string, bool) {
		v, ok := form[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	if v, ok := get("Type"); ok {
		t := strings.ToLower(v)
		if !credentialTypes[t] {
			return errInvalidParam("Type %q must be apn, gcm or fcm", v)
		}
		c.Type = t
	}
	if v, ok := get("FriendlyName"); ok {
		if utf8.RuneCountInString(v) > maxCredentialFriendlyNameChars {
			return newError(http.StatusBadRequest, CodeFriendlyNameTooLong, "FriendlyName must be at most %d characters", maxCredentialFriendlyNameChars)
		}
		c.FriendlyName = &v
	}
	if v, ok := get("Sandbox"); ok {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return errInvalidParam("Sandbox must be true or false")
		}
		c.Sandbox = &b
	}
	for _, k := range credentialSecrets {
		v, ok := get(k)
		if !ok {
			continue
		}
		if v == "" {
			// The message never names a value: it may be a secret.
			return errInvalidParam("%s must not be empty", k)
		}
		if c.SecretDigests == nil {
			c.SecretDigests = map[string]string{}
		}
		c.SecretDigests[k] = SecretDigest(v)
	}
	return nil
}

func errCredentialNotFound(r *http.Request) *apiError { return errNotFound(r.URL.Path[len("/v1"):]) }

func (s *Server) createCredential(r *http.Request, _ routeParams) result {
	if r.PostForm.Get("Type") == "" {
		return failed(errInvalidParam("Missing required parameter Type in the post body"))
	}
	c := &Credential{}
	if perr := applyCredential(r.PostForm, c); perr != nil {
		return failed(perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	c.SID = s.unusedSIDLocked("CR", func(sid string) bool { return s.account.credentials.get(sid) != nil })
	c.DateCreated, c.DateUpdated, c.Seq = now, now, s.nextSeq
	s.nextSeq++
	s.account.credentials.insert(c)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusCreated, body: credentialKind.render(s, credentialsURL(r)+"/"+c.SID, c)}
}

func (s *Server) listCredentials(r *http.Request, _ routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.account.credentials.list(s, r, "", credentialsURL(r))
}

func (s *Server) fetchCredential(r *http.Request, p routeParams) result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.account.credentials.get(p.sid)
	if c == nil {
		return failed(errCredentialNotFound(r))
	}
	return result{status: http.StatusOK, body: credentialKind.render(s, credentialsURL(r)+"/"+c.SID, c)}
}

// updateCredential changes what is sent. Type is accepted, as Twilio's
// contract allows; whether Twilio honours a change of type is UNVERIFIED
// (convsync replaces the credential instead).
func (s *Server) updateCredential(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.account.credentials.get(p.sid)
	if c == nil {
		return failed(errCredentialNotFound(r))
	}
	next := c.clone()
	if perr := applyCredential(r.PostForm, &next); perr != nil {
		return failed(perr)
	}
	next.DateUpdated = s.clock()
	*c = next
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusOK, body: credentialKind.render(s, credentialsURL(r)+"/"+c.SID, c)}
}

func (s *Server) deleteCredential(r *http.Request, p routeParams) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.account.credentials.get(p.sid)
	if c == nil {
		return failed(errCredentialNotFound(r))
	}
	s.account.credentials.remove(c)
	if err := s.saveLocked(); err != nil {
		return failed(errInternal())
	}
	return result{status: http.StatusNoContent}
}
