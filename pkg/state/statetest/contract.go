package statetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

// Opener opens the backend under test. Each call of Open within one test
// opens the same stored state again (a new process would), and the caller
// closes what it returns. NewStore is called once per test for a fresh,
// empty state.
type Opener interface {
	NewStore(t *testing.T) func(t *testing.T) state.Backend
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(t *testing.T) func(t *testing.T) state.Backend

func (f OpenerFunc) NewStore(t *testing.T) func(t *testing.T) state.Backend { return f(t) }

func sid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

var (
	serviceSID = sid("IS", 1)
	when       = time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.UTC)
)

func service(name string, n int) *state.Resource {
	return &state.Resource{Address: resource.Address{Kind: resource.KindService, Name: name}, SID: sid("IS", n),
		Applied: resource.Values{resource.FieldFriendlyName: "Service " + name}, CreatedAt: when}
}

func conversation(name string, n int) *state.Resource {
	return &state.Resource{
		Address: resource.Address{Kind: resource.KindConversation, Name: name}, SID: sid("CH", n), ParentSID: serviceSID,
		Applied: resource.Values{
			resource.FieldUniqueName:   name,
			resource.FieldFriendlyName: "Conversation " + name,
			// Exact JSON text must survive: a big number, key order, escapes.
			resource.FieldAttributes:     `{"a":"x<&>y","n":[1.50,2],"z":1e400}`,
			resource.FieldTimersInactive: "PT1H",
		},
		CreatedAt: when,
	}
}

func pending(name string) *state.Pending {
	return &state.Pending{Address: resource.Address{Kind: resource.KindConversation, Name: name}, ParentSID: serviceSID,
		Values:    resource.Values{resource.FieldUniqueName: name, resource.FieldFriendlyName: "New " + name},
		StartedAt: when.Add(time.Hour)}
}

func update(t *testing.T, b state.Backend, fn func(*state.State) error) {
	t.Helper()
	if err := b.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// Run runs the contract against o.
func Run(t *testing.T, o Opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open func(*testing.T) state.Backend)
	}{
		{"a new state is empty with a lineage", func(t *testing.T, open func(*testing.T) state.Backend) {
			b := open(t)
			if b.Lineage() == "" || b.Serial() != 0 || len(b.State().Resources) != 0 || len(b.State().Pending) != 0 {
				t.Fatalf("new state: lineage %q serial %d, %d resources", b.Lineage(), b.Serial(), len(b.State().Resources))
			}
		}},
		{"changes survive reopening, with lineage and serial", func(t *testing.T, open func(*testing.T) state.Backend) {
			b := open(t)
			update(t, b, func(s *state.State) error { s.Put(service("support", 1)); return nil })
			update(t, b, func(s *state.State) error { s.Put(conversation("vip", 2)); s.AddPending(pending("new")); return nil })
			want := b.State()
			if want.Serial != 2 {
				t.Fatalf("serial after two changes = %d, want 2", want.Serial)
			}
			b.Close()
			again := open(t)
			got := again.State()
			if !got.SameContent(want) || got.Serial != want.Serial {
				t.Fatalf("reopened state differs: serial %d (want %d), resources %v, pending %v", got.Serial, want.Serial, got.Addresses(), got.PendingAddresses())
			}
			if v := got.Resources["conversation.vip"].Applied[resource.FieldAttributes]; v != `{"a":"x<&>y","n":[1.50,2],"z":1e400}` {
				t.Errorf("attributes came back as %s", v)
			}
			if got.Pending["conversation.new"] == nil || !got.Pending["conversation.new"].StartedAt.Equal(when.Add(time.Hour)) {
				t.Errorf("pending create came back as %+v", got.Pending["conversation.new"])
			}
		}},
		{"an update that changes nothing keeps the serial", func(t *testing.T, open func(*testing.T) state.Backend) {
			b := open(t)
			update(t, b, func(s *state.State) error { s.Put(service("support", 1)); return nil })
			update(t, b, func(s *state.State) error { s.Put(service("support", 1)); return nil })
			if b.Serial() != 1 {
				t.Fatalf("serial = %d, want 1", b.Serial())
			}
		}},
		{"a failing update changes nothing", func(t *testing.T, open func(*testing.T) state.Backend) {
			b := open(t)
			update(t, b, func(s *state.State) error { s.Put(service("support", 1)); return nil })
			boom := errors.New("boom")
			err := b.Update(func(s *state.State) error {
				s.Remove(resource.Address{Kind: resource.KindService, Name: "support"})
				s.Put(service("other", 3))
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Update error = %v, want boom", err)
			}
			b.Close()
			got := open(t).State()
			if got.Serial != 1 || got.Resources["service.support"] == nil || got.Resources["service.other"] != nil {
				t.Fatalf("after a failed update: serial %d, resources %v", got.Serial, got.Addresses())
			}
		}},
		{"an entry that would not read back is refused", func(t *testing.T, open func(*testing.T) state.Backend) {
			b := open(t)
			bad := service("support", 1)
			bad.SID = "not-a-sid"
			err := b.Update(func(s *state.State) error { s.Put(bad); return nil })
			if err == nil || !strings.Contains(err.Error(), "not a Service SID") {
				t.Fatalf("Update error = %v, want a refusal naming the SID", err)
			}
			if b.Serial() != 0 || b.Get(bad.Address) != nil {
				t.Fatalf("refused change was kept: serial %d", b.Serial())
			}
		}},
		{"the serial cannot be set by an update", func(t *testing.T, open func(*testing.T) state.Backend) {
			b := open(t)
			err := b.Update(func(s *state.State) error { s.Put(service("support", 1)); s.Serial = 99; return nil })
			if err == nil || !strings.Contains(err.Error(), "serial is managed") {
				t.Fatalf("Update error = %v", err)
			}
		}},
		{"removing and moving entries survive reopening", func(t *testing.T, open func(*testing.T) state.Backend) {
			b := open(t)
			update(t, b, func(s *state.State) error {
				s.Put(service("support", 1))
				s.Put(conversation("vip", 2))
				s.AddPending(pending("new"))
				return nil
			})
			update(t, b, func(s *state.State) error {
				_, err := s.Move(resource.Address{Kind: resource.KindConversation, Name: "vip"}, resource.Address{Kind: resource.KindConversation, Name: "vip-support"})
				s.RemovePending(resource.Address{Kind: resource.KindConversation, Name: "new"})
				return err
			})
			b.Close()
			got := open(t).State()
			if got.Resources["conversation.vip"] != nil || got.Resources["conversation.vip-support"] == nil || got.Resources["conversation.vip-support"].SID != sid("CH", 2) || len(got.Pending) != 0 {
				t.Fatalf("after move and remove: resources %v, pending %v", got.Addresses(), got.PendingAddresses())
			}
		}},
		{"get returns copies", func(t *testing.T, open func(*testing.T) state.Backend) {
			b := open(t)
			update(t, b, func(s *state.State) error { s.Put(service("support", 1)); s.AddPending(pending("new")); return nil })
			r := b.Get(resource.Address{Kind: resource.KindService, Name: "support"})
			r.SID = sid("IS", 9)
			p := b.GetPending(resource.Address{Kind: resource.KindConversation, Name: "new"})
			p.ParentSID = ""
			if b.Get(r.Address).SID != sid("IS", 1) || b.GetPending(p.Address).ParentSID != serviceSID {
				t.Fatal("changing a returned entry changed the state")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			open := o.NewStore(t)
			tc.run(t, open)
		})
	}
}
