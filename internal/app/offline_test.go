package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
)

// Offline touches, reported one at a time and as a CSV file, land in the event log once each and count as the
// touchpoint's touches.
func TestOfflineTouches(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := startApp(t, e2eConfig(t, engine))
			key, _, err := s.app.auth.CreateAPIKey(context.Background(), "store staff", hearth.RoleMarketer)
			if err != nil {
				t.Fatal(err)
			}
			var tp struct {
				ID, Token string
				Stats     struct{ Touches int64 }
			}
			if st := s.call(t, key, "POST", "/api/v1/touchpoints", map[string]any{"name": "Counter card", "channel": "business_card",
				"destination_url": "https://shop.example/"}, &tp); st != http.StatusCreated {
				t.Fatalf("create touchpoint: %d", st)
			}

			// One at a time; sent twice, stored once.
			at := time.Now().Add(-time.Hour).Truncate(time.Second)
			report := map[string]any{"token": tp.Token, "phone": "13800138000", "at": at.Format(time.RFC3339)}
			for i, wantDup := range []bool{false, true} {
				var got struct {
					Touch struct {
						TouchpointID string `json:"touchpoint_id"`
						MessageID    string `json:"message_id"`
					}
					Duplicate bool
				}
				if st := s.call(t, key, "POST", "/api/v1/touches", report, &got); st != http.StatusCreated || got.Touch.TouchpointID != tp.ID || got.Duplicate != wantDup {
					t.Errorf("report %d: %d %+v", i, st, got)
				}
			}

			// A file from the store, in Shanghai time: twice, stored once.
			local := time.Now().In(time.FixedZone("CST", 8*3600)).Add(-24 * time.Hour).Format("2006-01-02 15:04")
			file := "\ufefftouchpoint_id,手机号,邮箱,时间\r\n" +
				tp.ID + ",13800138001,," + local + "\r\n" +
				tp.ID + ",,li@example.com," + local + "\r\n" +
				tp.ID + ",,," + local + "\r\n"
			for i, want := range []struct{ imported, duplicates int }{{2, 0}, {0, 2}} {
				req, _ := http.NewRequest("POST", s.base+"/api/v1/touches/import", strings.NewReader(file))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "text/csv")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var got struct {
					Imported, Duplicates int
					Rejected             []struct{ Line int }
				}
				json.Unmarshal(b, &got)
				if resp.StatusCode != http.StatusOK || got.Imported != want.imported || got.Duplicates != want.duplicates ||
					len(got.Rejected) != 1 || got.Rejected[0].Line != 4 {
					t.Errorf("import %d: %s %s", i, resp.Status, b)
				}
			}

			evs := touchEvents(t, s.app)
			if len(evs) != 3 {
				t.Fatalf("%d touch events, want 3", len(evs))
			}
			for _, e := range evs {
				var p struct{ Properties map[string]any }
				json.Unmarshal(e.Payload, &p)
				if e.Name != "Touch" || p.Properties["via"] != "offline" || p.Properties["touchpoint_id"] != tp.ID || e.Bot {
					t.Errorf("touch event %s", e.Payload)
				}
			}
			if !evs[0].Timestamp.Equal(at) {
				t.Errorf("first touch at %s, want %s", evs[0].Timestamp, at)
			}

			// Counted.
			deadline := time.Now().Add(10 * time.Second)
			for tp.Stats.Touches != 3 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				s.call(t, key, "GET", "/api/v1/touchpoints/"+tp.ID, nil, &tp)
			}
			if tp.Stats.Touches != 3 {
				t.Errorf("touches counted %d, want 3", tp.Stats.Touches)
			}
		})
	}
}
