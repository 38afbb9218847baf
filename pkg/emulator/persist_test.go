package emulator

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

func TestRestartKeepsEverything(t *testing.T) {
	clock := newFakeClock()
	opts := testOptions(clock)
	opts.DataFile = filepath.Join(t.TempDir(), "emulator.json")
	emu, hs := startEmulator(t, opts)
	tw := twilioFor(t, hs)
	svc, err := tw.CreateService(&conversations.CreateServiceParams{FriendlyName: ptr("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tw.CreateServiceConversation(*svc.Sid, (&conversations.CreateServiceConversationParams{}).
		SetUniqueName("a").SetFriendlyName("A").SetAttributes(`{"x": 1}`).SetState("active").SetTimersClosed("PT1H")); err != nil {
		t.Fatal(err)
	}
	gone, _ := tw.CreateConversation(nil)
	if _, err := tw.CreateConversation((&conversations.CreateConversationParams{}).SetUniqueName("b")); err != nil {
		t.Fatal(err)
	}
	if err := tw.DeleteConversation(*gone.Sid, nil); err != nil {
		t.Fatal(err)
	}
	wantServices := emu.Services()
	wantA, _ := emu.Conversations(*svc.Sid)
	wantDefault, _ := emu.Conversations("")

	again, err := New(opts)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got := again.Services(); !reflect.DeepEqual(got, wantServices) {
		t.Errorf("services after restart:\n%+v\nwant\n%+v", got, wantServices)
	}
	gotA, _ := again.Conversations(*svc.Sid)
	gotDefault, _ := again.Conversations("")
	if !reflect.DeepEqual(gotA, wantA) || !reflect.DeepEqual(gotDefault, wantDefault) {
		t.Errorf("conversations after restart differ")
	}
	// New conversations still sort after the old ones and unique names still bind.
	hs2 := startServer(t, again)
	_, err = twilioFor(t, hs2).CreateServiceConversation(*svc.Sid, (&conversations.CreateServiceConversationParams{}).SetUniqueName("a"))
	wantRestError(t, err, 409, CodeUniqueNameTaken)
}

func TestDamagedDataFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(newFakeClock())
	tests := []struct{ name, content, want string }{
		{"not JSON", `{"format": "convsync-emulator/1", "services": [`, "not valid JSON"},
		{"wrong format", `{"format": "other"}`, "format"},
		{"other account", `{"format": "convsync-emulator/1", "account_sid": "AC00000000000000000000000000000000", "next_seq": 1}`, "belongs to account"},
		{"duplicate unique name", `{"format": "convsync-emulator/1", "account_sid": "` + testAccountSID + `", "next_seq": 9, "services": [
			{"sid": "IS00000000000000000000000000000001", "seq": 1, "conversations": [
				{"sid": "CH00000000000000000000000000000001", "service_sid": "IS00000000000000000000000000000001", "unique_name": "u", "state": "active", "seq": 2},
				{"sid": "CH00000000000000000000000000000002", "service_sid": "IS00000000000000000000000000000001", "unique_name": "u", "state": "active", "seq": 3}]}]}`,
			"appears twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts.DataFile = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".json")
			if err := os.WriteFile(opts.DataFile, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), opts.DataFile) {
				t.Fatalf("New = %v, want an error naming the file and %q", err, tc.want)
			}
			if got, _ := os.ReadFile(opts.DataFile); string(got) != tc.content {
				t.Errorf("the damaged file was changed")
			}
		})
	}
}
