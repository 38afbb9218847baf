package resource

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// A secret field's value never travels through convsync. What travels (in
// Values, plans, plan files and the state) is a SecretRef: where the value
// is read from ({file: PATH} or {env: NAME}, as the spec says) and, once a
// plan or an apply has read it, a salted fingerprint of the value. The
// value itself is read only to fingerprint it and, by the Twilio adapter,
// at the moment it is sent; it is never stored, logged or shown.

// SecretRef is a secret field's canonical text, decoded.
type SecretRef struct {
	// File is the path the value is read from (the whole file, as is).
	File string `json:"file,omitempty"`
	// Env is the environment variable the value is read from.
	Env string `json:"env,omitempty"`
	// Fingerprint is SecretFingerprintPrefix + hex(HMAC-SHA256(key, value))
	// of the value read, "" when not read yet.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// SecretFingerprintPrefix marks the fingerprint's algorithm.
const SecretFingerprintPrefix = "hmac-sha256:"

// MaxSecretSize bounds a secret read from a file (a PEM certificate chain
// is a few KB; this refuses a path that names something else by mistake).
const MaxSecretSize = 1 << 20

// ParseSecretRef reads a secret field's canonical text.
func ParseSecretRef(text string) (SecretRef, error) {
	var r SecretRef
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return SecretRef{}, errors.New("not a secret reference: write {file: PATH} or {env: NAME}")
	}
	if (r.File == "") == (r.Env == "") {
		return SecretRef{}, errors.New("a secret reference names exactly one of file or env")
	}
	return r, nil
}

// String is the canonical text.
func (r SecretRef) String() string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(r) // a struct of strings always encodes
	return strings.TrimRight(buf.String(), "\n")
}

// Source says where the value comes from, for messages: "file /run/x.pem",
// "environment variable APN_KEY".
func (r SecretRef) Source() string {
	if r.File != "" {
		return "file " + r.File
	}
	return "environment variable " + r.Env
}

// Read returns the secret's value. Errors name the source, never a value.
// A file's value is its content as is; an empty file or variable is
// refused (Twilio would store an empty credential).
func (r SecretRef) Read() ([]byte, error) {
	if r.Env != "" {
		v, ok := os.LookupEnv(r.Env)
		switch {
		case !ok:
			return nil, fmt.Errorf("environment variable %s is not set", r.Env)
		case v == "":
			return nil, fmt.Errorf("environment variable %s is empty", r.Env)
		}
		return []byte(v), nil
	}
	// Only a regular file (or a link to one, as Kubernetes mounts Secrets):
	// opening a FIFO would wait for a writer for ever.
	if info, err := os.Stat(r.File); err != nil {
		return nil, fmt.Errorf("cannot read file %s: %w", r.File, unwrapPathError(err))
	} else if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s); a secret file holds one key or certificate", r.File, info.Mode().Type())
	}
	f, err := os.Open(r.File)
	if err != nil {
		return nil, fmt.Errorf("cannot read file %s: %w", r.File, unwrapPathError(err))
	}
	defer f.Close()
	value, err := io.ReadAll(io.LimitReader(f, MaxSecretSize+1))
	n := len(value)
	if err != nil {
		return nil, fmt.Errorf("cannot read file %s: %w", r.File, unwrapPathError(err))
	}
	switch {
	case n > MaxSecretSize:
		return nil, fmt.Errorf("file %s is larger than %d bytes; a secret file holds one key or certificate", r.File, MaxSecretSize)
	case n == 0:
		return nil, fmt.Errorf("file %s is empty", r.File)
	}
	return value, nil
}

// unwrapPathError drops the *os.PathError wrapper (the message names the
// path already).
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// SecretKey is the fingerprint key of a state: derived from its lineage, a
// random value created with the state and kept in it. Fingerprints of one
// state therefore say nothing about another's, and no table of fingerprints
// of likely values can be computed ahead of time.
func SecretKey(lineage string) []byte {
	sum := sha256.Sum256([]byte("convsync secret fingerprint key\x00" + lineage))
	return sum[:]
}

// WithFingerprint returns r with the fingerprint of value under key.
func (r SecretRef) WithFingerprint(key, value []byte) SecretRef {
	mac := hmac.New(sha256.New, key)
	mac.Write(value)
	r.Fingerprint = SecretFingerprintPrefix + hex.EncodeToString(mac.Sum(nil))
	return r
}

// Seal reads the secret of canonical text and returns the text with the
// value's fingerprint under key.
func Seal(text string, key []byte) (string, error) {
	r, err := ParseSecretRef(text)
	if err != nil {
		return "", err
	}
	value, err := r.Read()
	if err != nil {
		return "", err
	}
	return r.WithFingerprint(key, value).String(), nil
}

// ReadSecret returns the value a secret field's canonical text points at:
// what the Twilio adapter sends.
func ReadSecret(text string) ([]byte, error) {
	r, err := ParseSecretRef(text)
	if err != nil {
		return nil, err
	}
	return r.Read()
}

// secretsEqual: two secret values are the same when both were fingerprinted
// and the fingerprints agree (where they are read from does not matter).
func secretsEqual(a, b string) bool {
	ra, errA := ParseSecretRef(a)
	rb, errB := ParseSecretRef(b)
	return errA == nil && errB == nil && ra.Fingerprint != "" && hmac.Equal([]byte(ra.Fingerprint), []byte(rb.Fingerprint))
}
