package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// call sends an admin API request with an API key and decodes the answer into out (when not nil).
func (s *started) call(t *testing.T, key, method, path string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+path, r)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// visit requests a touch link as a browser would, without following the redirect.
func (s *started) visit(t *testing.T, method, link string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, link, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.40")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// touchEvents reads the touch events in the log.
func touchEvents(t *testing.T, a *App) []collect.Event {
	t.Helper()
	var out []collect.Event
	for after := int64(0); ; {
		evs, err := a.db.ReadEvents(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		for _, e := range evs {
			if e.SourceID == collect.TouchSourceID {
				out = append(out, e)
			}
		}
		after = evs[len(evs)-1].Seq
	}
}

func TestTouchRedirect(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			cfg := e2eConfig(t, engine)
			s := startApp(t, cfg)
			key, _, err := s.app.auth.CreateAPIKey(context.Background(), "test", hearth.RoleMarketer)
			if err != nil {
				t.Fatal(err)
			}
			var c struct{ ID string }
			s.call(t, key, "POST", "/api/v1/campaigns", map[string]any{"name": "Spring", "utm_source": "poster", "utm_medium": "offline",
				"fallback_url": "https://shop.example/spring-is-over"}, &c)
			var tp struct {
				ID, Token, URL string
				Stats          struct {
					Touches    int64
					BotTouches int64 `json:"bot_touches"`
				}
			}
			if st := s.call(t, key, "POST", "/api/v1/touchpoints", map[string]any{"name": "Window poster", "channel": "qr_poster",
				"destination_url": "https://shop.example/spring?utm_source=window", "campaign_id": c.ID}, &tp); st != http.StatusCreated {
				t.Fatalf("create touchpoint: %d", st)
			}
			link := s.base + "/t/" + tp.Token
			if tp.URL != link {
				t.Errorf("the touchpoint's link is %s, want %s: on the port the server listens on", tp.URL, link)
			}

			// A person: redirected with the token and the campaign's UTM parameters (keeping the destination's
			// own), given the anonymous-id cookie, and the touch is in the log before the answer.
			resp, _ := s.visit(t, "GET", link, nil)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("GET %s: %s", link, resp.Status)
			}
			dest, _ := url.Parse(resp.Header.Get("Location"))
			q := dest.Query()
			if dest.Host != "shop.example" || q.Get("ht") != tp.Token || q.Get("utm_source") != "window" || q.Get("utm_medium") != "offline" {
				t.Errorf("redirected to %s", dest)
			}
			var anon string
			for _, ck := range resp.Cookies() {
				if ck.Name == "hearth_aid" {
					anon = ck.Value
				}
			}
			evs := touchEvents(t, s.app)
			if anon == "" || len(evs) != 1 || evs[0].AnonymousID != anon || evs[0].Bot || evs[0].Name != "Touch" {
				t.Fatalf("cookie %q, touch events %+v", anon, evs)
			}
			// A new visitor's id is a version 7 UUID of now: new visitors' ids follow one another.
			if id, err := uuid.Parse(anon); err != nil || id.Version() != 7 || time.Since(time.Unix(id.Time().UnixTime())) > time.Minute {
				t.Errorf("the cookie's anonymous id %q is not a version 7 UUID of now (%v)", anon, err)
			}
			var payload struct {
				Properties map[string]any
				Context    map[string]any
			}
			json.Unmarshal(evs[0].Payload, &payload)
			if payload.Properties["touchpoint_id"] != tp.ID || payload.Properties["campaign_id"] != c.ID || payload.Properties["channel"] != "qr_poster" {
				t.Errorf("touch properties %v", payload.Properties)
			}

			// The same browser again: the same anonymous id.
			s.visit(t, "GET", link, http.Header{"Cookie": {"hearth_aid=" + anon}})
			// A link scanner and a HEAD request are recorded as bots, and get no cookie.
			resp, _ = s.visit(t, "GET", link, http.Header{"User-Agent": {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}})
			if len(resp.Cookies()) != 0 {
				t.Error("a bot was given the cookie")
			}
			if resp, _ := s.visit(t, "HEAD", link, nil); resp.StatusCode != http.StatusFound {
				t.Errorf("HEAD: %s", resp.Status)
			}
			evs = touchEvents(t, s.app)
			if len(evs) != 4 || evs[1].AnonymousID != anon || evs[1].Bot || !evs[2].Bot || !evs[3].Bot {
				t.Errorf("touch events after a return visit, a bot and a HEAD: %+v", evs)
			}

			// Counted: people apart from bots.
			deadline := time.Now().Add(10 * time.Second)
			for tp.Stats.Touches+tp.Stats.BotTouches != 4 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				s.call(t, key, "GET", "/api/v1/touchpoints/"+tp.ID, nil, &tp)
			}
			if tp.Stats.Touches != 2 || tp.Stats.BotTouches != 2 {
				t.Errorf("stats %+v, want 2 people and 2 bots", tp.Stats)
			}
			// And by the hour, for the touchpoint's chart: this hour's, counted with the totals.
			var hours struct {
				Hours []struct {
					Hour       time.Time
					Touches    int64
					BotTouches int64 `json:"bot_touches"`
				}
			}
			if st := s.call(t, key, "GET", "/api/v1/touchpoints/"+tp.ID+"/touches?days=7", nil, &hours); st != http.StatusOK {
				t.Fatalf("touches by the hour: %d", st)
			}
			var people, bots int64
			for _, h := range hours.Hours {
				people, bots = people+h.Touches, bots+h.BotTouches
				if h.Hour.Minute() != 0 || h.Hour.After(time.Now()) || time.Since(h.Hour) > 2*time.Hour {
					t.Errorf("an hour at %s", h.Hour)
				}
			}
			if people != 2 || bots != 2 {
				t.Errorf("touches by the hour %+v, want 2 people and 2 bots", hours.Hours)
			}
			// The same for its campaign, summed over the campaign's touchpoints (this one).
			hours.Hours = nil
			if st := s.call(t, key, "GET", "/api/v1/campaigns/"+c.ID+"/touches", nil, &hours); st != http.StatusOK || len(hours.Hours) == 0 {
				t.Fatalf("the campaign's touches by the hour: %d, %+v", st, hours.Hours)
			}
			people, bots = 0, 0
			for _, h := range hours.Hours {
				people, bots = people+h.Touches, bots+h.BotTouches
			}
			if people != 2 || bots != 2 {
				t.Errorf("the campaign's touches by the hour %+v, want 2 people and 2 bots", hours.Hours)
			}
			// And for the whole brand, summed over every touchpoint (this one is the only one touched).
			hours.Hours = nil
			if st := s.call(t, key, "GET", "/api/v1/touches?days=1", nil, &hours); st != http.StatusOK || len(hours.Hours) == 0 {
				t.Fatalf("every touchpoint's touches by the hour: %d, %+v", st, hours.Hours)
			}
			people, bots = 0, 0
			for _, h := range hours.Hours {
				people, bots = people+h.Touches, bots+h.BotTouches
			}
			if people != 2 || bots != 2 {
				t.Errorf("every touchpoint's touches by the hour %+v, want 2 people and 2 bots", hours.Hours)
			}
			if st := s.call(t, key, "GET", "/api/v1/touches?days=-1", nil, nil); st != http.StatusBadRequest {
				t.Errorf("days=-1: %d, want 400", st)
			}
			if st := s.call(t, key, "GET", "/api/v1/touchpoints/"+tp.ID+"/touches?days=soon", nil, nil); st != http.StatusBadRequest {
				t.Errorf("days=soon: %d, want 400", st)
			}
			if st := s.call(t, key, "GET", "/api/v1/touchpoints/no-such/touches", nil, nil); st != http.StatusNotFound {
				t.Errorf("an unknown touchpoint's touches: %d, want 404", st)
			}

			// A forged token: a friendly page in the browser's language, no redirect, nothing recorded.
			forged := tp.Token[:len(tp.Token)-2] + "AA"
			if forged == tp.Token {
				forged = tp.Token[:len(tp.Token)-2] + "BB"
			}
			resp, body := s.visit(t, "GET", s.base+"/t/"+forged, http.Header{"Accept-Language": {"zh-CN,zh;q=0.9,en;q=0.8"}})
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" || !strings.Contains(body, "链接无效") {
				t.Errorf("forged token: %s %q", resp.Status, body)
			}
			// No open redirect: whatever follows the token, the destination is the saved one.
			resp, _ = s.visit(t, "GET", link+"?next=https://evil.example/&url=https://evil.example/", nil)
			if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "https://shop.example/") {
				t.Errorf("redirected to %s", loc)
			}

			// Paused: the campaign's fallback page.
			s.call(t, key, "POST", "/api/v1/touchpoints/"+tp.ID+"/pause", nil, nil)
			resp, _ = s.visit(t, "GET", link, nil)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://shop.example/spring-is-over" {
				t.Errorf("paused: %s to %s", resp.Status, resp.Header.Get("Location"))
			}
			s.call(t, key, "POST", "/api/v1/touchpoints/"+tp.ID+"/resume", nil, nil)
			// Nobody sends events as the built-in touch source.
			var sources struct {
				Items []struct{ ID, WriteKey string }
			}
			s.call(t, key, "GET", "/api/v1/sources", nil, &sources)
			for _, src := range sources.Items {
				if src.ID != collect.TouchSourceID {
					continue
				}
				req, _ := http.NewRequest("POST", s.base+"/v1/track", strings.NewReader(`{"anonymousId":"a","event":"Touch","properties":{"token":"x"}}`))
				req.SetBasicAuth(src.WriteKey, "")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("an event sent with the touch source's write key: %s, want 401", resp.Status)
				}
			}
			// Revoked: the same.
			s.call(t, key, "POST", "/api/v1/touchpoints/"+tp.ID+"/revocations", map[string]any{"kind": "touchpoint", "reason": "poster taken down"}, nil)
			if resp, _ := s.visit(t, "GET", link, nil); resp.Header.Get("Location") != "https://shop.example/spring-is-over" {
				t.Errorf("revoked: %s to %s", resp.Status, resp.Header.Get("Location"))
			}

			// The profile processor reads the log to its end: touches are attributed to people.
			for deadline := time.Now().Add(10 * time.Second); ; {
				head, _ := s.app.db.LogHead(context.Background())
				pos, _ := s.app.db.ConsumerOffset(context.Background(), profile.Consumer)
				if pos == head {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the profile processor stopped at %d of %d", pos, head)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if _, err := s.app.db.ProfileByIdentifier(context.Background(), "anonymous_id", anon); err != nil {
				t.Errorf("the visitor's profile: %v", err)
			}

			// The operator sees every outcome counted.
			_, metrics := s.do(t, "GET", "/metrics", nil)
			for _, want := range []string{`outcome="person"} 3`, `outcome="bot"} 2`, `outcome="forged"} 1`, `outcome="paused"} 1`, `outcome="revoked"} 1`} {
				if !strings.Contains(string(metrics), "hearth_touch_requests_total{"+want) {
					t.Errorf("/metrics lacks hearth_touch_requests_total{%s", want)
				}
			}
		})
	}
}

// A client that keeps presenting tokens that are not Hearth's is slowed down; genuine ones are not.
func TestTouchBadTokenLimit(t *testing.T) {
	s := startApp(t, e2eConfig(t, "sqlite"))
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		resp, _ := s.visit(t, "GET", s.base+"/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAA"+string(rune('A'+i%26)), nil)
		limited = resp.StatusCode == http.StatusTooManyRequests
	}
	if !limited {
		t.Error("40 forged tokens from one address in a row were never refused with 429")
	}
}
