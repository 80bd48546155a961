package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
)

type sourceOut struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	WriteKey string `json:"write_key"`
	Enabled  bool   `json:"enabled"`
}

func createSource(t *testing.T, c *client, name, kind string) sourceOut {
	t.Helper()
	r := c.do("POST", "/api/v1/sources", map[string]string{"name": name, "kind": kind})
	wantStatus(t, r, http.StatusCreated)
	var s sourceOut
	r.decode(t, &s)
	return s
}

func TestSources(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.as(hearth.RoleMarketer)
		web := createSource(t, c, "  Website  ", "website")
		if web.ID == "" || web.Name != "Website" || web.Kind != "website" || !web.Enabled || len(web.WriteKey) < 24 {
			t.Fatalf("created %+v", web)
		}
		wechat := createSource(t, c, "微信服务号", "wechat")

		var list struct{ Items []sourceOut }
		c.do("GET", "/api/v1/sources", nil).decode(t, &list)
		if len(list.Items) != 2 || list.Items[0].ID != wechat.ID || list.Items[1].ID != web.ID {
			t.Errorf("list = %+v, want newest first", list.Items)
		}

		r := c.do("POST", "/api/v1/sources", map[string]string{"name": "website", "kind": "website"})
		if r.status != http.StatusCreated {
			t.Errorf("names differing in case are distinct sources: %d %s", r.status, r.body)
		}
		r = c.do("POST", "/api/v1/sources", map[string]string{"name": "Website", "kind": "app"})
		if r.status != http.StatusConflict || r.errCode() != "conflict" {
			t.Errorf("duplicate name: %d %s", r.status, r.body)
		}

		var got sourceOut
		r = c.do("PATCH", "/api/v1/sources/"+web.ID, map[string]string{"name": "Main website"})
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &got)
		if got.Name != "Main website" || got.WriteKey != web.WriteKey {
			t.Errorf("renamed: %+v", got)
		}
		c.do("POST", "/api/v1/sources/"+web.ID+"/disable", nil).decode(t, &got)
		if got.Enabled {
			t.Error("disable left the source enabled")
		}
		c.do("POST", "/api/v1/sources/"+web.ID+"/enable", nil).decode(t, &got)
		if !got.Enabled {
			t.Error("enable left the source disabled")
		}
		c.do("POST", "/api/v1/sources/"+web.ID+"/write-key", nil).decode(t, &got)
		if got.WriteKey == web.WriteKey || len(got.WriteKey) < 24 {
			t.Errorf("write key not regenerated: %q", got.WriteKey)
		}
		c.do("GET", "/api/v1/sources/"+web.ID, nil).decode(t, &got)
		if got.Name != "Main website" {
			t.Errorf("get = %+v", got)
		}
		wantStatus(t, c.do("GET", "/api/v1/sources/nope", nil), http.StatusNotFound)
		wantStatus(t, c.do("POST", "/api/v1/sources/nope/disable", nil), http.StatusNotFound)
	})
}

// A source's own rate limit replaces the server's default (100 a second here), and its answers say which
// applies and what it refused.
func TestSourceRateLimitSetting(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.as(hearth.RoleMarketer)
		web := createSource(t, c, "Website", "website")
		type limits struct {
			Name      string   `json:"name"`
			Own       *float64 `json:"rate_limit"`
			Effective *float64 `json:"effective_rate_limit"`
			Stats     struct {
				Throttled       int64   `json:"throttled"`
				LastThrottledAt *string `json:"last_throttled_at"`
			} `json:"stats"`
		}
		show := func(v *float64) string {
			if v == nil {
				return "null"
			}
			return fmt.Sprint(*v)
		}
		check := func(r response, own, effective string) {
			t.Helper()
			wantStatus(t, r, http.StatusOK)
			var got limits
			r.decode(t, &got)
			if show(got.Own) != own || show(got.Effective) != effective {
				t.Errorf("rate_limit %s, effective_rate_limit %s; want %s, %s", show(got.Own), show(got.Effective), own, effective)
			}
		}
		check(c.do("GET", "/api/v1/sources/"+web.ID, nil), "null", "100")
		check(c.do("PATCH", "/api/v1/sources/"+web.ID, `{"rate_limit":2.5}`), "2.5", "2.5")
		check(c.do("PATCH", "/api/v1/sources/"+web.ID, `{"name":"Shop"}`), "2.5", "2.5")
		for _, body := range []string{`{}`, `{"rate_limit":-1}`, `{"rate_limit":1000001}`, `{"rate_limit":"fast"}`, `{"rate_limit":1e400}`, `{"name":"","rate_limit":7}`} {
			if r := c.do("PATCH", "/api/v1/sources/"+web.ID, body); r.status != http.StatusBadRequest || r.errCode() != "invalid" {
				t.Errorf("%s: %d %s, want 400 invalid", body, r.status, r.body)
			}
		}
		check(c.do("GET", "/api/v1/sources/"+web.ID, nil), "2.5", "2.5") // all or nothing
		check(c.do("PATCH", "/api/v1/sources/"+web.ID, `{"rate_limit":null}`), "null", "100")
		check(c.do("PATCH", "/api/v1/sources/"+web.ID, `{"rate_limit":0}`), "null", "100")

		if err := e.db.AddThrottled(context.Background(), map[string]int64{web.ID: 42}, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		var got struct{ Items []limits }
		c.do("GET", "/api/v1/sources", nil).decode(t, &got)
		if len(got.Items) != 1 || got.Items[0].Stats.Throttled != 42 || got.Items[0].Stats.LastThrottledAt == nil {
			t.Errorf("sources %+v, want 42 throttled", got.Items)
		}
		if r := e.as(hearth.RoleAnalyst).do("PATCH", "/api/v1/sources/"+web.ID, `{"rate_limit":5}`); r.status != http.StatusForbidden {
			t.Errorf("an analyst set a rate limit: %d", r.status)
		}
	})
}

func TestSourceValidation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.as(hearth.RoleAdmin)
		tests := []struct {
			name   string
			body   string
			status int
			code   string
		}{
			{"bad kind", `{"name":"x","kind":"fax"}`, 400, "invalid"},
			{"empty name", `{"name":"  ","kind":"app"}`, 400, "invalid"},
			{"long name", `{"name":"` + strings.Repeat("名", 101) + `","kind":"app"}`, 400, "invalid"},
			{"malformed JSON", `{"name":`, 400, "invalid"},
			{"not an object", `[1,2]`, 400, "invalid"},
			{"wrong type", `{"name":5,"kind":"app"}`, 400, "invalid"},
			{"unknown field", `{"name":"x","kind":"app","colour":"red"}`, 400, "invalid"},
			{"two objects", `{"name":"x","kind":"app"}{}`, 400, "invalid"},
			{"empty body", ``, 400, "invalid"},
			{"too large", `{"name":"` + strings.Repeat("x", 2<<20) + `","kind":"app"}`, 413, "too_large"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := c.do("POST", "/api/v1/sources", tt.body)
				if r.status != tt.status || r.errCode() != tt.code {
					t.Errorf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
				}
			})
		}
	})
}

func TestEventDebugger(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		c := e.as(hearth.RoleAnalyst)
		src := createSource(t, e.as(hearth.RoleMarketer), "Website", "website")
		w := store.NewEventWriter(e.db, store.EventWriterOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		appendEvent := func(id string) {
			now := e.clock.Now()
			_, err := w.Append(ctx, &collect.Batch{SourceID: src.ID, ReceivedAt: now,
				Events:   []collect.Event{{MessageID: id, Type: "track", Name: "Signed Up", UserID: "u1", Timestamp: now, ReceivedAt: now, Payload: []byte(`{"type":"track","event":"Signed Up"}`)}},
				Rejected: []collect.Rejected{{Reason: "userId or anonymousId is required", Payload: []byte(`{"event":"x"}`)}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		appendEvent("m1")
		appendEvent("m2")

		var page struct {
			Items []struct {
				MessageID string          `json:"message_id"`
				Payload   json.RawMessage `json:"payload"`
			}
			Cursor int64
		}
		r := c.do("GET", "/api/v1/sources/"+src.ID+"/events", nil)
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &page)
		if len(page.Items) != 2 || page.Items[0].MessageID != "m2" || string(page.Items[0].Payload) != `{"type":"track","event":"Signed Up"}` || page.Cursor == 0 {
			t.Fatalf("latest = %+v", page)
		}
		appendEvent("m3")
		cursor := page.Cursor
		c.do("GET", fmt.Sprintf("/api/v1/sources/%s/events?cursor=%d", src.ID, cursor), nil).decode(t, &page)
		if len(page.Items) != 1 || page.Items[0].MessageID != "m3" || page.Cursor <= cursor {
			t.Errorf("after the cursor = %+v", page)
		}
		var rej struct {
			Items []struct {
				ID     int64
				Reason string
			}
		}
		c.do("GET", "/api/v1/sources/"+src.ID+"/rejections?limit=2", nil).decode(t, &rej)
		if len(rej.Items) != 2 || rej.Items[0].Reason != "userId or anonymousId is required" {
			t.Errorf("rejections = %+v", rej)
		}
		var s sourceOut
		var stats struct {
			Stats struct{ Accepted, Rejected int64 }
		}
		r = c.do("GET", "/api/v1/sources/"+src.ID, nil)
		r.decode(t, &s)
		r.decode(t, &stats)
		if stats.Stats.Accepted != 3 || stats.Stats.Rejected != 3 {
			t.Errorf("stats = %+v", stats)
		}
		wantStatus(t, c.do("GET", "/api/v1/sources/"+src.ID+"/events?limit=-1", nil), http.StatusBadRequest)
		wantStatus(t, c.do("GET", "/api/v1/sources/"+src.ID+"/rejections?after=x", nil), http.StatusBadRequest)
		wantStatus(t, c.do("GET", "/api/v1/sources/nope/events", nil), http.StatusNotFound)
	})
}
