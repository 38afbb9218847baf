package reliability

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
)

// accountFleet writes the specs of the account tests: a service, the
// account's configuration pointing at it, address configurations (natural
// key: the address) auto-creating into it, and push credentials (no
// natural key: a lost create is recognised by type, friendly_name and
// sandbox) with secrets from files.
func accountFleet(t *testing.T, e *env, addresses, credentials int, title string) {
	accountFleetAt(t, e, addresses, credentials, title, 0)
}

// accountFleetAt is accountFleet with the addresses' numbers moved by
// shift (a new address replaces the configuration).
func accountFleetAt(t *testing.T, e *env, addresses, credentials int, title string, shift int) {
	t.Helper()
	vault := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "kind: Service\nname: desk\nfriendly_name: %s\n---\nkind: Configuration\ndefault_service: desk\ndefault_inactive_timer: PT1H\n", title)
	for i := 0; i < addresses; i++ {
		fmt.Fprintf(&b, "---\nkind: AddressConfiguration\nname: line-%03d\ntype: sms\naddress: \"+1555000%04d\"\nfriendly_name: Line %d\nauto_creation: {enabled: true, type: webhook, service: desk, webhook_url: https://bot.example.com/%d}\n", i, i+shift, i, i)
	}
	for i := 0; i < credentials; i++ {
		key := filepath.Join(vault, fmt.Sprintf("key-%d.pem", i))
		write(t, key, []byte(fmt.Sprintf("-----BEGIN KEY-----\nkill-test-key-%d\n-----END KEY-----\n", i)))
		fmt.Fprintf(&b, "---\nkind: PushCredential\nname: app-%03d\ntype: fcm\nfriendly_name: App %d\nsecret: {file: %s}\n", i, i, key)
	}
	e.writeSpec("account.yaml", b.String())
}

// checkAccount audits the account's collections against the state and the
// specs: one address configuration and one credential per spec, each with
// the spec's fields and the service it must point at, none unowned, no
// intent left.
func (e *env) checkAccount(desired []resource.Desired) audit {
	e.t.Helper()
	st := e.readState()
	var a audit
	if len(st.Pending) > 0 {
		a.problemf("%d pending intents left in the state", len(st.Pending))
	}
	owned := map[string]string{}
	for key, r := range st.Resources {
		owned[r.SID] = key
	}
	addresses := map[string]emulator.AddressConfiguration{}
	for _, x := range e.emu.AddressConfigurations() {
		addresses[x.SID] = x
		if _, ok := owned[x.SID]; !ok {
			a.orphans++
			a.problemf("address configuration %s (%s) is in Twilio but not in the state", x.SID, x.Address)
		}
	}
	credentials := map[string]emulator.Credential{}
	for _, c := range e.emu.Credentials() {
		credentials[c.SID] = c
		if _, ok := owned[c.SID]; !ok {
			a.orphans++
			a.problemf("credential %s (%s) is in Twilio but not in the state", c.SID, deref(c.FriendlyName))
		}
	}
	wantAddresses, wantCredentials := 0, 0
	svc := ""
	if r := st.Get(resource.Address{Kind: resource.KindService, Name: "desk"}); r != nil {
		svc = r.SID
	}
	for _, d := range desired {
		r := st.Get(d.Address)
		switch d.Address.Kind {
		case resource.KindAddressConfiguration:
			wantAddresses++
			a.resources++
			if r == nil {
				a.problemf("%s is not in the state", d.Address)
				continue
			}
			x, ok := addresses[r.SID]
			switch {
			case !ok:
				a.problemf("%s: %s is not in Twilio", d.Address, r.SID)
			case x.Address != d.Values[resource.FieldAddress] || deref(x.FriendlyName) != d.Values[resource.FieldFriendlyName]:
				a.problemf("%s: %s holds %s %q, the spec %s %q", d.Address, r.SID, x.Address, deref(x.FriendlyName), d.Values[resource.FieldAddress], d.Values[resource.FieldFriendlyName])
			case deref(x.AutoCreation.ConversationServiceSID) != svc:
				a.problemf("%s: auto-creates into %s, not the service %s", d.Address, deref(x.AutoCreation.ConversationServiceSID), svc)
			}
		case resource.KindPushCredential:
			wantCredentials++
			a.resources++
			if r == nil {
				a.problemf("%s is not in the state", d.Address)
				continue
			}
			c, ok := credentials[r.SID]
			if !ok {
				a.problemf("%s: %s is not in Twilio", d.Address, r.SID)
				continue
			}
			value, err := resource.ReadSecret(d.Values["secret"])
			if err != nil {
				e.t.Fatal(err)
			}
			if deref(c.FriendlyName) != d.Values[resource.FieldFriendlyName] || c.SecretDigests["Secret"] != emulator.SecretDigest(string(value)) {
				a.problemf("%s: %s is not the spec's credential (%q, secret digest %s)", d.Address, r.SID, deref(c.FriendlyName), c.SecretDigests["Secret"])
			}
		case resource.KindConfiguration:
			a.resources++
			if got := e.emu.AccountSettings().Configuration.DefaultChatServiceSID; got != svc {
				a.problemf("configuration: default service %s, not %s", got, svc)
			}
		}
	}
	a.duplicates += max(0, len(addresses)-wantAddresses) + max(0, len(credentials)-wantCredentials)
	return a
}

func (e *env) mustConvergeAccount(a audit) {
	e.t.Helper()
	if len(a.problems) > 0 || a.duplicates > 0 || a.orphans > 0 {
		e.t.Fatalf("Twilio does not match the specs and the state (%d duplicates, %d orphans):\n  %s", a.duplicates, a.orphans, strings.Join(a.problems, "\n  "))
	}
	if r := e.run("plan", "--detailed-exitcode"); r.code != 0 {
		e.t.Fatalf("after convergence the plan still has changes: %s", r)
	}
}

// TestKillDuringAccountApply SIGKILLs applies of the account's kinds at
// random moments (creates, then a service replace that re-points every
// address and the configuration, and address replaces), and checks through
// the emulator's own data: 0 duplicates, 0 orphans.
func TestKillDuringAccountApply(t *testing.T) {
	rnd := rand.New(rand.NewPCG(seed(t), 7))
	e := newEnv(t, emulator.Faults{Latency: 20 * time.Millisecond})
	accountFleet(t, e, 40, 20, "Desk")
	k := newKiller(e, rnd)
	kills := k.killUntilDone(t, 10, 20)
	finish(t, e)
	created := e.checkAccount(desired(t, e))
	e.mustConvergeAccount(created)

	// Then, each while being killed: a service replace (re-points 40
	// addresses and the configuration), every address moved to another
	// number (40 replaces), half the addresses and credentials removed.
	kills2 := 0
	var changed audit
	for _, phase := range []func(){
		func() { accountFleetAt(t, e, 40, 20, "Desk renamed", 0) },
		func() { accountFleetAt(t, e, 40, 20, "Desk renamed", 5000) },
		func() { accountFleetAt(t, e, 20, 10, "Desk renamed", 5000) },
	} {
		phase()
		modes := k.byMode
		k = newKiller(e, rnd)
		k.byMode = modes
		kills2 += k.killUntilDone(t, 8, 20)
		finish(t, e)
		a := e.checkAccount(desired(t, e))
		e.mustConvergeAccount(a)
		changed.resources += a.resources
		changed.duplicates += a.duplicates
		changed.orphans += a.orphans
	}

	t.Logf("kill moments: %s", k.summary())
	t.Logf("account kill summary: kills performed %d (creates %d, replaces and deletes %d); resources checked %d; duplicates found %d; orphans found %d",
		kills+kills2, kills, kills2, created.resources+changed.resources, created.duplicates+changed.duplicates, created.orphans+changed.orphans)
	if kills+kills2 < 8 {
		t.Errorf("only %d kills landed during applies; the test did not exercise what it claims", kills+kills2)
	}
}

// TestAccountKindsUnderFaults applies the account's kinds with lost answers
// and refused writes: each converges in a few applies with one resource per
// spec.
func TestAccountKindsUnderFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		faults  emulator.Faults
		applies int
	}{
		{"500 after write (lost answers)", emulator.Faults{Error500AfterWrite: 0.3, Seed: 13}, 3},
		{"500 before write", emulator.Faults{Error500BeforeWrite: 0.3, Seed: 17}, 4},
		{"429 bursts", emulator.Faults{MaxInFlight: 2, Latency: 10 * time.Millisecond}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.faults)
			accountFleet(t, e, 15, 10, "Desk")
			applies := 0
			for ; applies < tc.applies; applies++ {
				if r := e.run("apply", "--auto-approve", "--rate-limit", "0"); r.code == 0 {
					applies++
					break
				}
			}
			if err := e.emu.SetFaults(emulator.Faults{}); err != nil {
				t.Fatal(err)
			}
			a := e.checkAccount(desired(t, e))
			e.mustConvergeAccount(a)
			stats := e.emu.Stats()
			if stats.ByStatus["500"]+stats.ByStatus["429"] == 0 {
				t.Fatal("no fault was injected: the case tests nothing")
			}
			t.Logf("%s: %d applies, faults 500: %d, 429: %d; resources %d, duplicates %d, orphans %d",
				tc.name, applies, stats.ByStatus["500"], stats.ByStatus["429"], a.resources, a.duplicates, a.orphans)
		})
	}
}
