package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

const routeListServiceConversations = "GET " + patternServiceConversations

func TestListingTakesOneRequestPerPage(t *testing.T) {
	tests := []struct {
		name     string
		params   *conversations.ListServiceConversationParams
		requests int64
	}{
		{"PageSize 100", (&conversations.ListServiceConversationParams{}).SetPageSize(100), 3},
		{"default page size", nil, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu, hs := startEmulator(t, testOptions(newFakeClock()))
			svc, _ := emu.AddService("paging")
			seeded, err := emu.SeedConversations(svc.SID, 250, "c")
			if err != nil {
				t.Fatal(err)
			}
			got, err := twilioFor(t, hs).ListServiceConversation(svc.SID, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 250 {
				t.Fatalf("listed %d, want 250", len(got))
			}
			for i, c := range got { // in creation order
				if *c.Sid != seeded[i] {
					t.Fatalf("item %d is %s, want %s", i, *c.Sid, seeded[i])
				}
			}
			if n := emu.Stats().ByRoute[routeListServiceConversations]; n != tc.requests {
				t.Errorf("%d list requests, want %d", n, tc.requests)
			}
		})
	}
}

// getJSON does one raw GET, for checks on meta that twilio-go hides.
func getJSON(t *testing.T, rawURL string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	req.SetBasicAuth(testAccountSID, testAuthToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

type listBody struct {
	Conversations []struct {
		Sid string `json:"sid"`
	} `json:"conversations"`
	Meta metaJSON `json:"meta"`
}

func TestPageMeta(t *testing.T) {
	emu, hs := startEmulator(t, testOptions(newFakeClock()))
	if _, err := emu.SeedConversations("", 5, ""); err != nil {
		t.Fatal(err)
	}
	var first listBody
	if st := getJSON(t, hs.URL+"/v1/Conversations?PageSize=2", &first); st != 200 {
		t.Fatalf("status %d", st)
	}
	m := first.Meta
	wantFirst := hs.URL + "/v1/Conversations?PageSize=2&Page=0"
	if m.Key != "conversations" || m.Page != 0 || m.PageSize != 2 || m.FirstPageURL != wantFirst || m.URL != wantFirst ||
		m.PreviousPageURL != nil || m.NextPageURL == nil || !strings.HasPrefix(*m.NextPageURL, hs.URL+"/v1/Conversations?PageSize=2&Page=1&PageToken=PT") {
		t.Fatalf("first page meta = %+v", m)
	}
	var second, third, back listBody
	getJSON(t, *m.NextPageURL, &second)
	if second.Meta.Page != 1 || second.Meta.PreviousPageURL == nil || second.Meta.URL != *m.NextPageURL {
		t.Fatalf("second page meta = %+v", second.Meta)
	}
	getJSON(t, *second.Meta.NextPageURL, &third)
	if len(third.Conversations) != 1 || third.Meta.NextPageURL != nil {
		t.Fatalf("last page: %d items, next %v", len(third.Conversations), third.Meta.NextPageURL)
	}
	getJSON(t, *second.Meta.PreviousPageURL, &back)
	if len(back.Conversations) != 2 || back.Conversations[0].Sid != first.Conversations[0].Sid || back.Meta.PreviousPageURL != nil {
		t.Fatalf("previous page of page 1 = %+v", back)
	}
	var services struct {
		Meta metaJSON `json:"meta"`
	}
	getJSON(t, hs.URL+"/v1/Services", &services)
	if services.Meta.Key != "services" || services.Meta.PageSize != 50 || services.Meta.NextPageURL != nil {
		t.Errorf("services meta = %+v", services.Meta)
	}
}

// TestPageTokenSurvivesDeletes: items deleted between pages neither shift the
// next page nor make it skip anything still there.
func TestPageTokenSurvivesDeletes(t *testing.T) {
	emu, hs := startEmulator(t, testOptions(newFakeClock()))
	sids, _ := emu.SeedConversations("", 30, "")
	tw := twilioFor(t, hs)
	page1, err := tw.PageConversation((&conversations.ListConversationParams{}).SetPageSize(10), "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, sid := range append(sids[:10:10], sids[10], sids[12]) {
		if err := emu.DeleteConversationOOB("", sid); err != nil {
			t.Fatal(err)
		}
	}
	var page2 listBody
	getJSON(t, strings.Replace(*page1.Meta.NextPageUrl, twilioBase, hs.URL, 1), &page2)
	want := append([]string{sids[11]}, sids[13:22]...)
	if len(page2.Conversations) != len(want) {
		t.Fatalf("page 2 has %d items, want %d", len(page2.Conversations), len(want))
	}
	for i, c := range page2.Conversations {
		if c.Sid != want[i] {
			t.Errorf("page 2 item %d = %s, want %s", i, c.Sid, want[i])
		}
	}
}

func TestListFilters(t *testing.T) {
	clock := newFakeClock()
	emu, hs := startEmulator(t, testOptions(clock))
	tw := twilioFor(t, hs)
	day1, _ := emu.SeedConversations("", 3, "d1-")
	clock.Advance(24 * time.Hour)
	day2, _ := emu.SeedConversations("", 3, "d2-")
	if _, err := tw.UpdateConversation(day2[1], (&conversations.UpdateConversationParams{}).SetState("inactive")); err != nil {
		t.Fatal(err)
	}
	sids := func(cs []conversations.ConversationsV1Conversation) []string {
		var out []string
		for _, c := range cs {
			out = append(out, *c.Sid)
		}
		return out
	}
	tests := []struct {
		name   string
		params *conversations.ListConversationParams
		want   []string
	}{
		{"State", (&conversations.ListConversationParams{}).SetState("inactive"), []string{day2[1]}},
		{"StartDate, newest first", (&conversations.ListConversationParams{}).SetStartDate("2024-03-02T00:00:00Z").SetPageSize(2),
			[]string{day2[2], day2[1], day2[0]}},
		{"EndDate as a day", (&conversations.ListConversationParams{}).SetEndDate("2024-03-01").SetPageSize(1),
			[]string{day1[2], day1[1], day1[0]}},
		{"State and dates", (&conversations.ListConversationParams{}).SetState("active").SetStartDate("2024-03-02").SetEndDate("2024-03-02"),
			[]string{day2[2], day2[0]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tw.ListConversation(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(sids(got), ","); g != strings.Join(tc.want, ",") {
				t.Errorf("got %s\nwant %s", g, strings.Join(tc.want, ","))
			}
		})
	}
}

// BenchmarkListPage lists a page of 100 deep in a service of 100,000.
func BenchmarkListPage(b *testing.B) {
	emu, err := New(Options{AccountSID: testAccountSID, AuthToken: testAuthToken})
	if err != nil {
		b.Fatal(err)
	}
	svc, _ := emu.AddService("bench")
	sids, err := emu.SeedConversations(svc.SID, 100_000, "bench-")
	if err != nil {
		b.Fatal(err)
	}
	c, _ := emu.Conversation(svc.SID, sids[90_000])
	token := emu.encodeToken(listScope{key: "conversations", serviceSID: svc.SID}, false, pageToken{seq: c.Seq})
	target := "/v1/Services/" + svc.SID + "/Conversations?PageSize=100&Page=900&PageToken=" + token
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.SetBasicAuth(testAccountSID, testAuthToken)
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
