package state

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

func TestMoveReKeysAndKeepsEverythingElse(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "state.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := testConversation("vip", 1)
	if err := f.Update(func(s *State) error { s.Put(old.Clone()); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.Update(func(s *State) error {
		_, err := s.Move(conversationAddr("vip"), conversationAddr("vip-support"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if f.Get(conversationAddr("vip")) != nil {
		t.Fatal("old address still recorded")
	}
	want := old.Clone()
	want.Address = conversationAddr("vip-support")
	if got := f.Get(conversationAddr("vip-support")); !got.Equal(want) {
		t.Fatalf("moved entry %+v, want %+v", got, want)
	}
}

func TestMoveRefuses(t *testing.T) {
	base := func() *State {
		s := New()
		s.Put(testConversation("a", 1))
		s.Put(testConversation("b", 2))
		s.AddPending(&Pending{Address: conversationAddr("p"), ParentSID: testServiceSID, StartedAt: testTime})
		return s
	}
	for _, tc := range []struct {
		from, to resource.Address
		want     string
	}{
		{conversationAddr("missing"), conversationAddr("new"), "conversation.missing is not in the state"},
		{conversationAddr("a"), conversationAddr("b"), "conversation.b is already in the state"},
		{conversationAddr("a"), conversationAddr("p"), "conversation.p has a create in flight"},
		{conversationAddr("a"), serviceAddr("a"), "a resource keeps its kind"},
		{conversationAddr("a"), conversationAddr("a"), "to itself"},
	} {
		s := base()
		if _, err := s.Move(tc.from, tc.to); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Move(%s, %s) = %v, want %q", tc.from, tc.to, err, tc.want)
		}
		if s.Resources["conversation.a"] == nil || s.Resources["conversation.b"] == nil {
			t.Errorf("Move(%s, %s) changed the state", tc.from, tc.to)
		}
	}
}
