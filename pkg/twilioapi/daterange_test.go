package twilioapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/convsync/convsync/internal/testenv"
	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
	"github.com/convsync/convsync/pkg/twilioapi"
)

func TestListCreatedBetweenAgainstTheEmulator(t *testing.T) {
	const account, token = "AC44444444444444444444444444444444", "daterangetoken"
	emu, url := testenv.Emulator(t, account, token)
	c, err := twilioapi.New(twilioapi.Config{AccountSID: account, AuthToken: token, BaseURL: url, ActionsPerSecondPerService: -1})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := emu.AddService("Days")
	if err != nil {
		t.Fatal(err)
	}
	sids, err := emu.SeedConversations(svc.SID, 3, "day-")
	if err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }
	for i, sid := range sids {
		created := day(10 + i).Add(13*time.Hour + 500*time.Millisecond) // 10th, 11th, 12th, early afternoon
		if err := emu.EditConversation(svc.SID, sid, func(c *emulator.Conversation) { c.DateCreated = created }); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name        string
		first, last time.Time
		want        int
	}{
		{"one whole day", day(11), day(11), 1},
		{"open end", day(11), time.Time{}, 2},
		{"open start", time.Time{}, day(10), 1},
		{"all time", time.Time{}, time.Time{}, 3},
		{"a day with nothing", day(20), day(21), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ListCreatedBetween(context.Background(), resource.KindConversation, svc.SID, tc.first, tc.last)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("listed %d conversations, want %d", len(got), tc.want)
			}
		})
	}
	if _, err := c.ListCreatedBetween(context.Background(), resource.KindService, "", day(1), day(2)); err == nil {
		t.Fatal("services have no date filter; want an error")
	}
}
