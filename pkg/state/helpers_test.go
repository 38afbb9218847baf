package state

import (
	"fmt"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

func conversationAddr(name string) resource.Address {
	return resource.Address{Kind: resource.KindConversation, Name: name}
}

func serviceAddr(name string) resource.Address {
	return resource.Address{Kind: resource.KindService, Name: name}
}

// sid makes a valid SID of the given prefix from n.
func sid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

var (
	testServiceSID = sid("IS", 1)
	testTime       = time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.UTC)
)

func testConversation(name string, n int) *Resource {
	return &Resource{
		Address:   conversationAddr(name),
		SID:       sid("CH", n),
		ParentSID: testServiceSID,
		Applied: resource.Values{
			resource.FieldUniqueName:     name,
			resource.FieldFriendlyName:   "Conversation " + name,
			resource.FieldAttributes:     `{"tier":"gold","url":"https://example.com/?a=1&b=<2>"}`,
			resource.FieldState:          resource.StateActive,
			resource.FieldTimersInactive: "PT1H",
			resource.FieldTimersClosed:   "P1D",
		},
		CreatedAt: testTime,
	}
}

// testState is a small state with one of everything, and a fixed lineage.
func testState() *State {
	s := New()
	s.Lineage = "0b9e2c1a-7d3f-4e55-9a61-2f8c0d4b7e10"
	s.Serial = 7
	s.Put(&Resource{
		Address:   serviceAddr("support"),
		SID:       testServiceSID,
		Applied:   resource.Values{resource.FieldFriendlyName: "Support"},
		CreatedAt: testTime,
	})
	s.Put(testConversation("vip", 2))
	s.AddPending(&Pending{
		Address:   conversationAddr("new-customer"),
		ParentSID: testServiceSID,
		Values: resource.Values{
			resource.FieldUniqueName:   "new-customer",
			resource.FieldFriendlyName: "New customer",
			resource.FieldAttributes:   `{}`,
		},
		StartedAt: testTime.Add(time.Hour),
	})
	return s
}

func mustUpdate(t *testing.T, f *File, fn func(*State) error) {
	t.Helper()
	if err := f.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}
