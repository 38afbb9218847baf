package reliability

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/twilioapi"
)

// TestSpecMovedAfterInterruptedCreate: an apply dies after Twilio created a
// conversation but before convsync recorded it, and before the next run the
// spec is moved to another service. The next apply must neither forget the
// conversation in the old service nor leave it there: it is deleted, and the
// spec is created in its new service.
func TestSpecMovedAfterInterruptedCreate(t *testing.T) {
	e := newEnv(t, emulator.Faults{})
	services := "kind: Service\nname: a\nfriendly_name: A\n---\nkind: Service\nname: b\nfriendly_name: B\n"
	e.writeSpec("services.yaml", services)
	e.must(0, "apply", "--auto-approve")
	st := e.readState()
	serviceA := st.Get(resource.Address{Kind: resource.KindService, Name: "a"}).SID

	// What a kill between the create and its record leaves behind: the
	// intent in the state, the conversation in Twilio.
	values := resource.Values{resource.FieldFriendlyName: "Moved", resource.FieldAttributes: `{"k":1}`}
	addr := resource.Address{Kind: resource.KindConversation, Name: "moved"}
	sf, err := state.Open(e.state, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.Update(func(s *state.State) error {
		s.AddPending(&state.Pending{Address: addr, ParentSID: serviceA, Values: values, StartedAt: time.Now().UTC()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := sf.Close(); err != nil {
		t.Fatal(err)
	}
	client, err := twilioapi.New(twilioapi.Config{AccountSID: accountSID, AuthToken: authToken, BaseURL: e.url})
	if err != nil {
		t.Fatal(err)
	}
	created, err := client.Create(context.Background(), resource.KindConversation, serviceA, values, twilioapi.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}

	e.writeSpec("moved.yaml", "kind: Conversation\nname: moved\nservice: b\nfriendly_name: Moved\nattributes: {k: 1}\n")
	r := e.must(0, "apply", "--auto-approve")
	if !strings.Contains(r.stdout, created.SID) {
		t.Errorf("the plan does not name the conversation it found (%s): %s", created.SID, r)
	}
	if _, err := e.emu.Conversation(serviceA, created.SID); err == nil {
		t.Errorf("%s is still in service a", created.SID)
	}
	e.mustConverge(e.check(desired(t, e)))
}
