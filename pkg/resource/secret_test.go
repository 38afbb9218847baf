package resource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretRefs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(file, []byte("value-one"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONVSYNC_SECRET_TEST", "value-one")
	t.Setenv("CONVSYNC_SECRET_EMPTY", "")
	key := SecretKey("lineage-a")
	fromFile, err := Seal(SecretRef{File: file}.String(), key)
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := Seal(SecretRef{Env: "CONVSYNC_SECRET_TEST"}.String(), key)
	if err != nil {
		t.Fatal(err)
	}
	f := FieldSchema{Type: TypeString, Secret: true, WriteOnly: true}
	if !f.Equal(fromFile, fromEnv) {
		t.Error("the same value from a file and a variable differs")
	}
	otherState, _ := Seal(SecretRef{File: file}.String(), SecretKey("lineage-b"))
	if f.Equal(fromFile, otherState) {
		t.Error("fingerprints of two states agree: the key is not per state")
	}
	if f.Equal(SecretRef{File: file}.String(), SecretRef{File: file}.String()) {
		t.Error("two unread references compare equal")
	}
	if strings.Contains(fromFile, "value-one") {
		t.Errorf("the sealed text holds the value: %s", fromFile)
	}
	for _, tt := range []struct{ text, wantErr string }{
		{SecretRef{File: filepath.Join(dir, "missing")}.String(), "cannot read file " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{SecretRef{File: empty}.String(), "is empty"},
		{SecretRef{File: dir}.String(), "is not a regular file"},
		{SecretRef{Env: "CONVSYNC_SECRET_UNSET"}.String(), "environment variable CONVSYNC_SECRET_UNSET is not set"},
		{SecretRef{Env: "CONVSYNC_SECRET_EMPTY"}.String(), "environment variable CONVSYNC_SECRET_EMPTY is empty"},
		{`"value-one"`, "not a secret reference"},
		{`{"file":"a","env":"B"}`, "exactly one of file or env"},
	} {
		_, err := Seal(tt.text, key)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Seal(%s): %v, want %q", tt.text, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "value-one") {
			t.Errorf("the error shows the value: %v", err)
		}
	}
}

func TestAccountAddressesAndIDs(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Address
	}{
		{"configuration", Address{Kind: KindConfiguration}},
		{"account_webhooks", Address{Kind: KindAccountWebhooks}},
		{"address_configuration.support-line", Address{Kind: KindAddressConfiguration, Name: "support-line"}},
		{"push_credential.ios", Address{Kind: KindPushCredential, Name: "ios"}},
	} {
		got, err := ParseAddress(tt.in)
		if err != nil || got != tt.want || got.String() != tt.in {
			t.Errorf("ParseAddress(%q) = %v (%q), %v", tt.in, got, got.String(), err)
		}
	}
	if _, err := ParseAddress("push_credential"); err == nil {
		t.Error("a collection kind without a name is accepted as an address")
	}
	for kind, want := range map[Kind]string{KindConfiguration: "/Configuration", KindAccountWebhooks: "/Configuration/Webhooks"} {
		if got := SingletonID(kind, ""); got != want {
			t.Errorf("SingletonID(%s) = %q, want %q", kind, got, want)
		}
	}
	if got := ImportID(KindAddressConfiguration, "", "IG1"); got != "/Configuration/Addresses/IG1" {
		t.Errorf("ImportID = %q", got)
	}
}
