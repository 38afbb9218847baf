package engine_test

import (
	"context"
	"strings"
	"testing"

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
