package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
)

// An incremental pass (the daemon after a spec edit) looks a new address
// configuration up by its address, and a new account singleton by its
// path: an address configured outside convsync fails its step with the
// import command instead of being created a second time, and deleting an
// address configuration does not force a full read.
func TestIncrementalPassLooksUpTheAccountsKinds(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	if _, err := f.rec.Pass(ctx, []resource.Desired{svc("s", "S")}, "h1", true, -1); err != nil {
		t.Fatal(err)
	}
	taken, err := f.emu.AddAddressConfiguration("sms", "+15550001234")
	if err != nil {
		t.Fatal(err)
	}
	line := resource.Desired{Address: resource.Address{Kind: resource.KindAddressConfiguration, Name: "line"}, Timeouts: resource.DefaultTimeouts,
		Values: resource.Values{"type": "sms", "address": "+15550001234"}}
	hooks := resource.Desired{Address: resource.Address{Kind: resource.KindAccountWebhooks}, Timeouts: resource.DefaultTimeouts,
		Values: resource.Values{"method": "GET"}}
	res, err := f.rec.Pass(ctx, []resource.Desired{svc("s", "S"), line, hooks}, "h2", false, -1)
	if err != nil || res.Full {
		t.Fatalf("want an incremental pass: %+v, %v", res, err)
	}
	if msg := res.HeldBack[line.Address]; !strings.Contains(msg, "convsync import address_configuration.line /Configuration/Addresses/"+taken) {
		t.Fatalf("held back: %v; want the import command for %s", res.HeldBack, line.Address)
	}
	if n := len(f.emu.AddressConfigurations()); n != 1 {
		t.Fatalf("%d address configurations, want the one made outside convsync", n)
	}
	if got := f.store.Get(hooks.Address); got == nil || got.SID != "/Configuration/Webhooks" {
		t.Fatalf("account_webhooks in the state: %+v", got)
	}
}

// A daemon pass holds back only the resource whose secret cannot be read,
// with the reason, and converges the rest; once the file is there, the next
// pass creates it.
func TestPassHoldsBackAnUnreadableSecret(t *testing.T) {
	f := newFixture(t, 5)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fcm.key")
	cred := resource.Desired{Address: resource.Address{Kind: resource.KindPushCredential, Name: "android"}, Timeouts: resource.DefaultTimeouts,
		Values: resource.Values{"type": "fcm", "secret": resource.SecretRef{File: path}.String()}, Source: resource.Source{File: "push.yaml", Line: 1, Column: 1}}
	desired := []resource.Desired{svc("s", "S"), cred}
	res, err := f.rec.Pass(ctx, desired, "h1", true, -1)
	if err != nil {
		t.Fatal(err)
	}
	if msg := res.HeldBack[cred.Address]; !strings.Contains(msg, "the secret cannot be read (push.yaml:1:1)") {
		t.Fatalf("held back: %v", res.HeldBack)
	}
	if f.store.Get(resource.Address{Kind: resource.KindService, Name: "s"}) == nil || len(f.emu.Credentials()) != 0 {
		t.Fatalf("the service was not created, or a credential was: %d", len(f.emu.Credentials()))
	}
	if err := os.WriteFile(path, []byte("server-key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rec.Pass(ctx, desired, "h1", true, -1); err != nil {
		t.Fatal(err)
	}
	if creds := f.emu.Credentials(); len(creds) != 1 || creds[0].SecretDigests["Secret"] != emulator.SecretDigest("server-key") {
		t.Fatalf("credentials after the file appeared: %+v", creds)
	}
}
