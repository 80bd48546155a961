package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// offlineTouches is the offline touch service of the test server, on its store, with an event writer of its
// own. The app wires the same through its adapters; these are their ten-line twins.
func offlineTouches(t *testing.T, db *store.DB, tps *touchpoint.Service, clock hearth.Clock) *collect.OfflineTouches {
	w := store.NewEventWriter(db, store.EventWriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return collect.NewOfflineTouches(touchAdapter{tps}, touchAdapter{tps}, w, clock, collect.OfflineOptions{})
}

type touchAdapter struct{ tps *touchpoint.Service }

func (a touchAdapter) ResolveTouch(ctx context.Context, token string, at time.Time) (collect.ResolvedTouch, error) {
	res, err := a.tps.Resolve(ctx, token, at)
	out := collect.ResolvedTouch{TouchpointID: res.Touchpoint.ID, TouchpointName: res.Touchpoint.Name, Channel: string(res.Touchpoint.Channel),
		Serial: res.Token.Serial, Destination: res.Destination, Refused: string(res.Refused)}
	if res.Campaign != nil {
		out.CampaignID = res.Campaign.ID
	}
	return out, err
}

func (a touchAdapter) IssueTouchToken(ctx context.Context, id string, serial int64) (string, error) {
	t, err := a.tps.Touchpoint(ctx, id)
	if err != nil {
		return "", err
	}
	return a.tps.IssueToken(t, serial, time.Time{})
}

// touchEvents reads the touch events in the log.
func (e *env) touchEvents(t *testing.T) []collect.Event {
	t.Helper()
	evs, err := e.db.ReadEvents(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []collect.Event
	for _, ev := range evs {
		if ev.SourceID == collect.TouchSourceID {
			out = append(out, ev)
		}
	}
	return out
}

type recordedTouch struct {
	Touch struct {
		TouchpointID string    `json:"touchpoint_id"`
		CampaignID   *string   `json:"campaign_id"`
		Channel      string    `json:"channel"`
		Serial       int64     `json:"serial"`
		At           time.Time `json:"at"`
		MessageID    string    `json:"message_id"`
	} `json:"touch"`
	Duplicate bool `json:"duplicate"`
}

func TestRecordTouch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.as(hearth.RoleMarketer)
		var cp struct{ ID string }
		c.do("POST", "/api/v1/campaigns", map[string]string{"name": "Store week"}).decode(t, &cp)
		var tp struct{ ID, Token string }
		r := c.do("POST", "/api/v1/touchpoints", map[string]any{"name": "Counter card", "channel": "business_card",
			"destination_url": "https://shop.example/", "campaign_id": cp.ID})
		wantStatus(t, r, http.StatusCreated)
		r.decode(t, &tp)

		body := map[string]any{"token": tp.Token, "phone": " 13800138000 ", "wechat_openid": "oAbCdEf123456", "user_id": "M001",
			"at": "2026-05-01T10:30:00+08:00", "properties": map[string]string{"staff": "Wang"}}
		r = c.do("POST", "/api/v1/touches", body)
		wantStatus(t, r, http.StatusCreated)
		var got recordedTouch
		r.decode(t, &got)
		if got.Touch.TouchpointID != tp.ID || got.Touch.CampaignID == nil || *got.Touch.CampaignID != cp.ID || got.Touch.Channel != "business_card" ||
			!got.Touch.At.Equal(time.Date(2026, 5, 1, 2, 30, 0, 0, time.UTC)) || got.Touch.MessageID == "" || got.Duplicate {
			t.Errorf("recorded %s", r.body)
		}
		// Sent again: stored once.
		r = e.as(hearth.RoleAdmin).do("POST", "/api/v1/touches", body)
		wantStatus(t, r, http.StatusCreated)
		var again recordedTouch
		r.decode(t, &again)
		if !again.Duplicate || again.Touch.MessageID != got.Touch.MessageID {
			t.Errorf("sent again: %s", r.body)
		}
		// By touchpoint id, now, with the caller's message id.
		r = c.do("POST", "/api/v1/touches", map[string]any{"touchpoint_id": tp.ID, "email": "li@example.com", "message_id": "kiosk-3-17"})
		wantStatus(t, r, http.StatusCreated)
		var byID recordedTouch
		r.decode(t, &byID)
		if byID.Touch.MessageID != "kiosk-3-17" || !byID.Touch.At.Equal(e.clock.Now()) || byID.Duplicate {
			t.Errorf("by touchpoint id: %s", r.body)
		}

		evs := e.touchEvents(t)
		if len(evs) != 2 {
			t.Fatalf("%d touch events, want 2", len(evs))
		}
		var p struct {
			UserID     string         `json:"userId"`
			Properties map[string]any `json:"properties"`
			Context    struct {
				Traits      map[string]string    `json:"traits"`
				ExternalIDs []collect.ExternalID `json:"externalIds"`
			} `json:"context"`
		}
		if err := json.Unmarshal(evs[0].Payload, &p); err != nil {
			t.Fatal(err)
		}
		if evs[0].Name != "Touch" || evs[0].UserID != "M001" || p.Properties["via"] != "offline" || p.Properties["token"] != tp.Token ||
			p.Properties["staff"] != "Wang" || p.Context.Traits["phone"] != "13800138000" ||
			len(p.Context.ExternalIDs) != 1 || p.Context.ExternalIDs[0] != (collect.ExternalID{Type: "wechat_openid", ID: "oAbCdEf123456"}) {
			t.Errorf("event %s", evs[0].Payload)
		}

		// Refused.
		c.do("POST", "/api/v1/touchpoints/"+tp.ID+"/pause", nil)
		tests := []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"paused", map[string]any{"token": tp.Token, "phone": "13800138000"}, 400, "token_paused"},
			{"not a token", map[string]any{"token": "not-a-token", "phone": "13800138000"}, 400, "token_malformed"},
			{"unknown touchpoint", map[string]any{"touchpoint_id": "nope", "phone": "13800138000"}, 400, "unknown_touchpoint"},
			{"serial never issued", map[string]any{"touchpoint_id": tp.ID, "serial": 3, "phone": "13800138000"}, 400, "invalid"},
			{"nobody", map[string]any{"token": tp.Token}, 400, "invalid"},
			{"junk phone", map[string]any{"token": tp.Token, "phone": "ask at the till"}, 400, "invalid"},
			{"bad time", map[string]any{"token": tp.Token, "phone": "13800138000", "at": "yesterday"}, 400, "invalid"},
			{"properties not an object", map[string]any{"token": tp.Token, "phone": "13800138000", "properties": "x"}, 400, "invalid"},
			{"unknown field", map[string]any{"token": tp.Token, "mobile": "13800138000"}, 400, "invalid"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := c.do("POST", "/api/v1/touches", tt.body)
				if r.status != tt.status || r.errCode() != tt.code {
					t.Errorf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
				}
			})
		}
		if n := len(e.touchEvents(t)); n != 2 {
			t.Errorf("%d touch events after refusals, want 2", n)
		}
	})
}

// An offline touch is reported after it happened: its token's expiry and its campaign's dates are judged at
// the touch's time, not the report's.
func TestRecordTouchJudgedAtItsTime(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.as(hearth.RoleMarketer)
		now := e.clock.Now()
		var cp struct{ ID string }
		r := c.do("POST", "/api/v1/campaigns", map[string]any{"name": "Spring fair", "starts_at": now.Add(-10 * 24 * time.Hour), "ends_at": now.Add(24 * time.Hour)})
		wantStatus(t, r, http.StatusCreated)
		r.decode(t, &cp)
		var tp struct{ ID, Token string }
		c.do("POST", "/api/v1/touchpoints", map[string]any{"name": "Fair stand", "channel": "store",
			"destination_url": "https://shop.example/", "campaign_id": cp.ID}).decode(t, &tp)
		var short struct{ Token string }
		r = c.do("POST", "/api/v1/touchpoints/"+tp.ID+"/tokens", map[string]any{"expires_at": now.Add(2 * time.Hour)})
		wantStatus(t, r, http.StatusCreated)
		r.decode(t, &short)

		e.clock.Advance(3 * 24 * time.Hour) // the campaign ended two days ago, the short token two days before
		at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
		tests := []struct {
			name, token, at string
			status          int
			code            string
		}{
			{"during the campaign", tp.Token, at(-5 * 24 * time.Hour), 201, ""},
			{"before the campaign", tp.Token, at(-11 * 24 * time.Hour), 400, "token_campaign_ended"},
			{"after the campaign", tp.Token, at(36 * time.Hour), 400, "token_campaign_ended"},
			{"reported now", tp.Token, "", 400, "token_campaign_ended"},
			{"before the token expired", short.Token, at(time.Hour), 201, ""},
			{"after the token expired", short.Token, at(3 * time.Hour), 400, "token_expired"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				body := map[string]any{"token": tt.token, "phone": "13800138000"}
				if tt.at != "" {
					body["at"] = tt.at
				}
				r := c.do("POST", "/api/v1/touches", body)
				if r.status != tt.status || tt.code != "" && r.errCode() != tt.code {
					t.Errorf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
				}
			})
		}
		// A pause counts as it stands now, whenever the touch was.
		c.do("POST", "/api/v1/touchpoints/"+tp.ID+"/pause", nil)
		r = c.do("POST", "/api/v1/touches", map[string]any{"token": tp.Token, "phone": "13800138001", "at": at(-4 * 24 * time.Hour)})
		if r.status != 400 || r.errCode() != "token_paused" {
			t.Errorf("paused: %d %s", r.status, r.body)
		}
	})
}

type importAnswer struct {
	Rows       int `json:"rows"`
	Imported   int `json:"imported"`
	Duplicates int `json:"duplicates"`
	Rejected   []struct {
		Line   int    `json:"line"`
		Reason string `json:"reason"`
	} `json:"rejected"`
	MoreRejected   int      `json:"more_rejected"`
	IgnoredColumns []string `json:"ignored_columns"`
}

func TestImportTouches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.as(hearth.RoleMarketer)
		var tp struct{ ID, Token string }
		c.do("POST", "/api/v1/touchpoints", map[string]any{"name": "Shelf code", "channel": "qr_poster", "destination_url": "https://shop.example/"}).decode(t, &tp)
		file := "\ufeff手机号,token,时间,备注\r\n" +
			"13800138000," + tp.Token + ",2026-04-30 14:30,VIP\r\n" +
			"13800138001," + tp.Token + ",2026-04-30 15:00,\r\n" +
			"," + tp.Token + ",2026-04-30 15:00,\r\n" +
			"13800138002,forged,2026-04-30 15:00,\r\n"

		csvClient := e.as(hearth.RoleMarketer)
		csvClient.header.Set("Content-Type", "text/csv; charset=utf-8")
		r := csvClient.do("POST", "/api/v1/touches/import", file)
		wantStatus(t, r, http.StatusOK)
		var got importAnswer
		r.decode(t, &got)
		if got.Rows != 4 || got.Imported != 2 || got.Duplicates != 0 || len(got.Rejected) != 2 || got.Rejected[0].Line != 4 || got.Rejected[1].Line != 5 ||
			len(got.IgnoredColumns) != 1 || got.IgnoredColumns[0] != "备注" {
			t.Errorf("import: %s", r.body)
		}
		evs := e.touchEvents(t)
		if len(evs) != 2 || !evs[0].Timestamp.Equal(time.Date(2026, 4, 30, 6, 30, 0, 0, time.UTC)) {
			t.Fatalf("touch events %+v", evs)
		}

		// The same file again, as a form upload, read in UTC: 14:30 is another time, so the first two rows are
		// new touches; again in Shanghai time, nothing is new.
		upload := func(query string) importAnswer {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			mw.WriteField("note", "from the store")
			fw, _ := mw.CreateFormFile("file", "touches.csv")
			fw.Write([]byte(file))
			mw.Close()
			fc := e.as(hearth.RoleAdmin)
			fc.header.Set("Content-Type", mw.FormDataContentType())
			r := fc.do("POST", "/api/v1/touches/import"+query, body.String())
			wantStatus(t, r, http.StatusOK)
			var a importAnswer
			r.decode(t, &a)
			return a
		}
		if a := upload("?timezone=UTC"); a.Imported != 2 || a.Duplicates != 0 {
			t.Errorf("in UTC: %+v", a)
		}
		if a := upload(""); a.Imported != 0 || a.Duplicates != 2 {
			t.Errorf("again: %+v", a)
		}
		if a := upload("?timezone=%2B08:00"); a.Imported != 0 || a.Duplicates != 2 {
			t.Errorf("again at +08:00: %+v", a)
		}
		if n := len(e.touchEvents(t)); n != 4 {
			t.Errorf("%d touch events, want 4", n)
		}

		tests := []struct {
			name, contentType, path, body string
			status                        int
		}{
			{"JSON", "application/json", "/api/v1/touches/import", `{"rows":[]}`, 400},
			{"no content type", "", "/api/v1/touches/import", file, 400},
			{"unknown time zone", "text/csv", "/api/v1/touches/import?timezone=Mars/Olympus", file, 400},
			{"no usable header", "text/csv", "/api/v1/touches/import", "name,city\nLi,Shanghai\n", 400},
			{"form without the file", "multipart/form-data; boundary=x", "/api/v1/touches/import", "--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--x--\r\n", 400},
			{"broken form", "multipart/form-data", "/api/v1/touches/import", "--x\r\n", 400},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cc := e.as(hearth.RoleMarketer)
				cc.header.Set("Content-Type", tt.contentType)
				r := cc.do("POST", tt.path, tt.body)
				if r.status != tt.status || !strings.Contains(string(r.body), `"message"`) {
					t.Errorf("%d %s, want %d", r.status, r.body, tt.status)
				}
			})
		}
		if n := len(e.touchEvents(t)); n != 4 {
			t.Errorf("%d touch events after refusals, want 4", n)
		}
	})
}
