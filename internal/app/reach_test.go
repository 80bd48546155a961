package app

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
)

// The people a touchpoint and a campaign reached: each person once, bots never, with how far they went, from
// touch links, offline touches and the person's own events.
func TestPeopleReached(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := startApp(t, e2eConfig(t, engine))
			key, _, err := s.app.auth.CreateAPIKey(context.Background(), "marketer", hearth.RoleMarketer)
			if err != nil {
				t.Fatal(err)
			}
			var campaign struct{ ID string }
			if st := s.call(t, key, "POST", "/api/v1/campaigns", map[string]any{"name": "Spring"}, &campaign); st != http.StatusCreated {
				t.Fatalf("create campaign: %d", st)
			}
			type tp struct{ ID, Token, URL string }
			var poster, card, other tp
			for _, c := range []struct {
				name, channel string
				campaign      string
				out           *tp
			}{{"Poster", "qr_poster", campaign.ID, &poster}, {"Card", "business_card", campaign.ID, &card}, {"Elsewhere", "ad", "", &other}} {
				body := map[string]any{"name": c.name, "channel": c.channel, "destination_url": "https://shop.example/"}
				if c.campaign != "" {
					body["campaign_id"] = c.campaign
				}
				if st := s.call(t, key, "POST", "/api/v1/touchpoints", body, c.out); st != http.StatusCreated {
					t.Fatalf("create touchpoint %s: %d", c.name, st)
				}
			}

			// Xu scans the poster and is handed the card; Li scans the poster and later buys; Wang, who bought
			// two hours ago, is handed the card an hour ago; someone scans the poster without leaving a name; a
			// crawler follows the link. Another touchpoint, outside the campaign, is touched by Xu.
			now := time.Now().UTC()
			hourAgo, twoHoursAgo := now.Add(-time.Hour).Format(time.RFC3339), now.Add(-2*time.Hour).Format(time.RFC3339)
			for _, r := range []map[string]any{
				{"token": poster.Token, "phone": "13912345678"},
				{"token": card.Token, "phone": "13912345678"},
				{"token": poster.Token, "email": "li@example.com", "at": hourAgo},
				{"token": other.Token, "phone": "13912345678"},
				{"token": card.Token, "email": "wang@example.com", "at": hourAgo},
				{"token": other.Token, "wechat_openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"},
			} {
				if st := s.call(t, key, "POST", "/api/v1/touches", r, nil); st != http.StatusCreated {
					t.Fatalf("report %v: %d", r, st)
				}
			}
			if resp, _ := s.visit(t, "GET", poster.URL, nil); resp.StatusCode != http.StatusFound {
				t.Fatalf("visit: %s", resp.Status)
			}
			if resp, _ := s.visit(t, "GET", poster.URL, http.Header{"User-Agent": {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}}); resp.StatusCode != http.StatusFound {
				t.Fatalf("crawler: %s", resp.Status)
			}
			admin, _, err := s.app.auth.CreateAPIKey(context.Background(), "admin", hearth.RoleAdmin)
			if err != nil {
				t.Fatal(err)
			}
			var src struct {
				WriteKey string `json:"write_key"`
			}
			if st := s.call(t, admin, "POST", "/api/v1/sources", map[string]any{"name": "Shop", "kind": "website"}, &src); st != http.StatusCreated {
				t.Fatalf("create source: %d", st)
			}
			for _, order := range []string{
				`{"anonymousId": "a-li", "event": "Order Completed", "context": {"traits": {"email": "LI@example.com"}}}`,
				`{"anonymousId": "a-wang", "event": "Order Completed", "timestamp": "` + twoHoursAgo + `", "context": {"traits": {"email": "wang@example.com"}}}`,
			} {
				req, _ := http.NewRequest("POST", s.base+"/v1/track", bytes.NewReader([]byte(order)))
				req.SetBasicAuth(src.WriteKey, "")
				req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36") // not a bot
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("track: %s", resp.Status)
				}
			}

			type reach struct {
				Profiles int64
				Steps    []struct {
					Step     string
					Profiles int64
				}
				ConvertedAfterTouch int64 `json:"converted_after_touch"`
				Sample              []struct {
					ID, Name, Stage string
					Email, Phone    *string
					Identifier      *struct{ Type, Value string }
				}
			}
			steps := func(identified, connected, activated, converted int64) []struct {
				Step     string
				Profiles int64
			} {
				return []struct {
					Step     string
					Profiles int64
				}{{"identified", identified}, {"connected", connected}, {"activated", activated}, {"converted", converted}}
			}
			read := func(path string) reach {
				var r reach
				if st := s.call(t, key, "GET", path, nil, &r); st != http.StatusOK {
					t.Fatalf("GET %s: %d", path, st)
				}
				return r
			}
			// The processor and the segments' reads catch up within a few seconds. Li and Wang converted; only
			// Li after her touch.
			want := reach{Profiles: 4, Steps: steps(3, 3, 0, 2), ConvertedAfterTouch: 1}
			var got reach
			for deadline := time.Now().Add(15 * time.Second); ; {
				got = read("/api/v1/campaigns/" + campaign.ID + "/people")
				sample := got.Sample
				got.Sample = nil
				if cmp.Equal(want, got) || time.Now().After(deadline) {
					got.Sample = sample
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Sample" }, cmp.Ignore())); diff != "" {
				t.Fatalf("the campaign's people (-want +got):\n%s", diff)
			}
			// The sample is of the people counted, those with a name or an address first, each part newest
			// first: Wang, Li (merged into the profile of her touch), Xu, then the visitor who left no name.
			if len(got.Sample) != 4 || got.Sample[0].Email == nil || *got.Sample[0].Email != "wang@example.com" ||
				got.Sample[1].Email == nil || *got.Sample[1].Email != "li@example.com" || got.Sample[1].Stage != "converted" ||
				got.Sample[2].Phone == nil || *got.Sample[2].Phone != "+8613912345678" || got.Sample[3].Stage != "anonymous" {
				t.Errorf("the sample: %+v", got.Sample)
			}

			for _, tt := range []struct {
				path string
				want reach
			}{
				{"/api/v1/touchpoints/" + poster.ID + "/people", reach{Profiles: 3, Steps: steps(2, 2, 0, 1), ConvertedAfterTouch: 1}},
				{"/api/v1/touchpoints/" + card.ID + "/people", reach{Profiles: 2, Steps: steps(2, 2, 0, 1)}},
				{"/api/v1/touchpoints/" + other.ID + "/people", reach{Profiles: 2, Steps: steps(2, 2, 0, 0)}},
			} {
				got := read(tt.path)
				got.Sample = nil
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", tt.path, diff)
				}
			}
			// A person with neither an email nor a phone is shown by another identifier: here the openid, newest
			// first, before Xu (who is shown by his phone, and no other).
			if got := read("/api/v1/touchpoints/" + other.ID + "/people").Sample; len(got) != 2 || got[0].Identifier == nil ||
				*got[0].Identifier != (struct{ Type, Value string }{"wechat_openid", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}) || got[0].Email != nil ||
				got[1].Phone == nil || got[1].Identifier != nil {
				t.Errorf("the people of the ad: %+v", got)
			}
			for _, path := range []string{"/api/v1/touchpoints/nope/people", "/api/v1/campaigns/nope/people"} {
				if st := s.call(t, key, "GET", path, nil, nil); st != http.StatusNotFound {
					t.Errorf("GET %s: %d, want 404", path, st)
				}
			}
		})
	}
}
