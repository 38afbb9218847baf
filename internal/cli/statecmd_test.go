package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/state"
)

func TestStateMv(t *testing.T) {
	const (
		svc   = "IS00000000000000000000000000000001"
		conv  = "CH00000000000000000000000000000001"
		conv2 = "CH00000000000000000000000000000002"
		role  = "RL00000000000000000000000000000001"
	)
	addr := func(s string) resource.Address {
		a, err := resource.ParseAddress(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	setup := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "state.json")
		sf, err := state.Open(path, state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer sf.Close()
		if err := sf.Update(func(s *state.State) error {
			s.Put(&state.Resource{Address: addr("service.support"), SID: svc, Applied: resource.Values{resource.FieldFriendlyName: "S"}})
			s.Put(&state.Resource{Address: addr("conversation.vip"), SID: conv, ParentSID: svc, Applied: resource.Values{resource.FieldTimersClosed: "P30D"}})
			s.Put(&state.Resource{Address: addr("conversation.other"), SID: conv2, ParentSID: svc})
			s.Put(&state.Resource{Address: addr("role.agent"), SID: role, ParentSID: svc})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(path string, args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := New(strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }).
			RunContext(context.Background(), append(append([]string{"state", "mv"}, args...), "--state", path))
		return code, stdout.String(), stderr.String()
	}

	t.Run("moves", func(t *testing.T) {
		path := setup(t)
		code, stdout, stderr := run(path, "conversation.vip", "conversation.vip-support")
		if code != ExitOK || !strings.Contains(stdout, "Moved conversation.vip to conversation.vip-support ("+conv+")") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		sf, err := state.Open(path, state.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sf.Close()
		st := sf.State()
		if st.Get(addr("conversation.vip")) != nil {
			t.Fatal("old address still recorded")
		}
		if r := st.Get(addr("conversation.vip-support")); r == nil || r.SID != conv || r.ParentSID != svc || r.Applied[resource.FieldTimersClosed] != "P30D" {
			t.Fatalf("moved entry: %+v", r)
		}
	})
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"new exists", "conversation.vip", "conversation.other", "conversation.other is already in the state (" + conv2 + ")"},
		{"same address", "service.support", "service.support", "to itself"},
		{"old missing", "conversation.nope", "conversation.vip-support", "conversation.nope is not in the state"},
		{"kinds differ", "role.agent", "conversation.agent", "a resource keeps its kind"},
		{"deposed", "role.agent~deposed", "role.other", "deposed entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := setup(t)
			code, stdout, stderr := run(path, tc.from, tc.to)
			if code != ExitError || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, ExitError, tc.want, stdout, stderr)
			}
		})
	}
}
