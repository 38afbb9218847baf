package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

// A relative secret path is relative to the folder of the spec file that
// names it, wherever convsync runs from; an absolute one stays as written.
func TestSecretFilePathsAreRelativeToTheSpecFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "mobile"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := "kind: PushCredential\nname: ios\ntype: apn\ncertificate: {file: keys/cert.pem}\nprivate_key: {file: /run/key.pem}\n"
	if err := os.WriteFile(filepath.Join(dir, "mobile", "push.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := set.Find(resource.Address{Kind: resource.KindPushCredential, Name: "ios"})
	if !ok {
		t.Fatal("push_credential.ios not loaded")
	}
	for field, want := range map[string]string{
		"certificate": filepath.Join(dir, "mobile", "keys", "cert.pem"),
		"private_key": "/run/key.pem",
	} {
		ref, err := resource.ParseSecretRef(d.Values[field])
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		if ref.File != want {
			t.Errorf("%s: file %q, want %q", field, ref.File, want)
		}
	}
}

// A secret written as its value is refused, and the message never repeats
// the value.
func TestLiteralSecretIsRefusedWithoutRepeatingIt(t *testing.T) {
	const value = "-----BEGIN PRIVATE KEY-----literal-secret-value"
	spec := "kind: PushCredential\nname: ios\ntype: apn\ncertificate: {env: CERT}\nprivate_key: \"" + value + "\"\n"
	_, problems := Parse("push.yaml", []byte(spec))
	if len(problems) != 1 {
		t.Fatalf("want one problem, got %v", problems)
	}
	msg := problems.Error()
	if !strings.HasPrefix(msg, "push.yaml:5:14: private_key: is a secret") {
		t.Errorf("problem %q does not point at the value", msg)
	}
	if strings.Contains(msg, "literal-secret-value") {
		t.Errorf("problem repeats the secret: %q", msg)
	}
}
