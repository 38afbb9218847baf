package ha

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/state"
	"github.com/convsync/convsync/pkg/state/pgstate"
)

// The one-shot commands against a PostgreSQL state: apply takes and
// releases the lease, a second plan sees no change, import and state rm
// write under the lease, and state migrate moves the state to a file and
// into another workspace with its lineage and serial.
func TestCLIAgainstAPostgresState(t *testing.T) {
	c := newCluster(t)
	c.conversations(3, true)
	if out, errOut, code := c.cli(time.Minute, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := c.cli(time.Minute, "plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan after apply: exit %d, want 0 (no changes)\n%s%s", code, out, errOut)
	}
	if out, errOut, code := c.cli(time.Minute, "state", "rm", "conversation.c001"); code != 0 {
		t.Fatalf("state rm: exit %d\n%s%s", code, out, errOut)
	}
	sid := ""
	for _, cv := range mustConversations(t, c) {
		if cv.FriendlyName != nil && *cv.FriendlyName == "Conversation 001" {
			sid = cv.SID
		}
	}
	svc := c.readState().Resources["service.support"].SID
	if out, errOut, code := c.cli(time.Minute, "import", "conversation.c001", "/Services/"+svc+"/Conversations/"+sid); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	want := c.readState()
	file := filepath.Join(c.work, "moved.state.json")
	if out, errOut, code := c.cli(time.Minute, "state", "migrate", "--state", file, "--from", c.url); code != 0 || !strings.Contains(out, "Moved the state") {
		t.Fatalf("migrate --from: exit %d\n%s%s", code, out, errOut)
	}
	f, err := state.Open(file, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	got := f.State()
	f.Close()
	if !got.SameContent(want) || got.Serial != want.Serial {
		t.Fatalf("the file holds serial %d, %d resources; want the database's serial %d, %d resources", got.Serial, len(got.Resources), want.Serial, len(want.Resources))
	}
	if out, errOut, code := c.cli(time.Minute, "state", "migrate", "--state", file, "--to", c.url, "--workspace", "copy"); code != 0 {
		t.Fatalf("migrate --to: exit %d\n%s%s", code, out, errOut)
	}
	copied, err := pgstate.Open(context.Background(), c.url, pgstate.Options{Workspace: "copy", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	if st := copied.State(); !st.SameContent(want) || st.Serial != want.Serial {
		t.Fatal("migrate --to did not copy the state with its lineage and serial")
	}
	if _, errOut, code := c.cli(time.Minute, "state", "migrate", "--state", file, "--to", c.url, "--workspace", "copy"); code != 1 || !strings.Contains(errOut, "already holds a state") {
		t.Fatalf("migrate into a workspace that holds a state: exit %d\n%s", code, errOut)
	}
	c.mustAudit()
}
