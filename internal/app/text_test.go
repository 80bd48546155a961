package app

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/httpapi"
)

// Text that PostgreSQL refuses (NUL, a lone surrogate's escape, bytes that are not UTF-8) once made it answer
// 500 for a whole batch, which an SDK then sends again forever, and for admin requests. Now a tracked event
// keeps it as U+FFFD, on both engines alike, and is processed like any other; the admin API refuses it with
// a 400 that says why; a write key or a WeChat callback address holding it is simply not found.
func TestUnstorableText(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := startApp(t, e2eConfig(t, engine))
			bg := context.Background()
			src, err := s.app.sources.Create(bg, "Website", collect.KindWebsite)
			if err != nil {
				t.Fatal(err)
			}
			key, _, err := s.app.auth.CreateAPIKey(bg, "ops", hearth.RoleAdmin)
			if err != nil {
				t.Fatal(err)
			}
			send := func(method, path, auth, body string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
				req.Header.Set("Authorization", auth)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", browserUserAgent)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			writer := "Basic " + base64.StdEncoding.EncodeToString([]byte(src.WriteKey+":"))
			admin := "Bearer " + key

			// One batch: the hostile events, one without an identity and a long Chinese text (its stored copy
			// is cut at 4 KiB, between two characters), one with a number PostgreSQL's numeric refuses (refused
			// alone, with its reason), and an ordinary one.
			batch := `{"batch":[` +
				`{"type":"identify","userId":"u\u0000x","traits":{"name":"Li\u0000 Lei","note":"\ud800","emoji":"\ud83d\ude00"}},` +
				"{\"type\":\"track\",\"userId\":\"u\\u0000x\",\"event\":\"Bought\xff\",\"properties\":{\"sku\":\"\xfe1\",\"k\\u0000\":\"\\udc00\"}}," +
				`{"type":"track","event":"x","properties":{"text":"` + strings.Repeat("中", 2000) + `"}},` +
				`{"type":"identify","userId":"u3","traits":{"score":1e1000000}},` +
				`{"type":"track","userId":"u2","event":"Ordinary"}]}`
			if code, body := send("POST", "/v1/batch", writer, batch); code != http.StatusOK || !strings.Contains(body, `"accepted":3`) {
				t.Fatalf("POST /v1/batch: %d %s, want 200 with 3 accepted", code, body)
			}
			var events struct{ Items []map[string]any }
			if code := s.call(t, key, "GET", "/api/v1/sources/"+src.ID+"/events?limit=10", nil, &events); code != http.StatusOK || len(events.Items) != 3 {
				t.Fatalf("the debugger's events: %d, %d events", code, len(events.Items))
			}
			for _, e := range events.Items {
				if e["name"] == "Bought\uFFFD" {
					props := e["payload"].(map[string]any)["properties"].(map[string]any)
					if e["user_id"] != "u\uFFFDx" || props["sku"] != "\uFFFD1" || props["k\uFFFD"] != "\uFFFD" {
						t.Errorf("stored track event %v, want U+FFFD where text could not be stored", e)
					}
				}
			}
			var rejected struct {
				Items []struct{ Reason, Payload string }
			}
			s.call(t, key, "GET", "/api/v1/sources/"+src.ID+"/rejections", nil, &rejected)
			if len(rejected.Items) != 2 {
				t.Fatalf("rejections %+v, want 2", rejected.Items)
			}
			for _, r := range rejected.Items {
				switch {
				case strings.Contains(r.Reason, "userId or anonymousId"):
					if !utf8.ValidString(r.Payload) || !strings.HasSuffix(r.Payload, "中…") {
						t.Errorf("rejected %+v, want it cut between characters", r)
					}
				case !strings.Contains(r.Reason, "traits holds the number 1e1000000, out of range"):
					t.Errorf("rejected %+v, want the number out of range", r)
				}
			}

			// The processor reads them like any others: the person has the trait, with U+FFFD.
			var p struct {
				Traits map[string]struct{ Value any }
			}
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
				if s.call(t, key, "GET", "/api/v1/profiles/lookup?type=user_id&value=u%EF%BF%BDx", nil, &p) == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the person with the hostile user id never appeared")
				}
			}
			if got := p.Traits["name"].Value; got != "Li\uFFFD Lei" {
				t.Errorf("name = %v, want Li\uFFFD Lei", got)
			}
			var status httpapi.Processing
			s.call(t, key, "GET", "/api/v1/system/processing", nil, &status)
			if people := partNamed(t, status, "people"); people.State == httpapi.Stalled {
				t.Errorf("people: %+v", people)
			}

			// The admin API says what is wrong.
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/api/v1/campaigns", `{"name":"Spring\u0000"}`},
				{"POST", "/api/v1/touchpoints", `{"name":"Poster","channel":"qr_poster","destination_url":"https://brand.example/\ud800"}`},
				{"POST", "/api/v1/sources", "{\"name\":\"Shop\xff\",\"kind\":\"website\"}"},
				{"GET", "/api/v1/profiles/p%00", ""},
				{"GET", "/api/v1/profiles?q=%FF", ""},
				{"GET", "/api/v1/profiles/lookup?type=user_id&value=%00", ""},
			} {
				code, body := send(req.method, req.path, admin, req.body)
				if code != http.StatusBadRequest || !strings.Contains(body, "NUL") {
					t.Errorf("%s %s: %d %s, want 400 naming NUL", req.method, req.path, code, body)
				}
			}
			// Keys and callback addresses that hold it are not found.
			bad := "Basic " + base64.StdEncoding.EncodeToString([]byte("k\xff:"))
			if code, body := send("POST", "/v1/track", bad, `{"userId":"u","event":"e"}`); code != http.StatusUnauthorized {
				t.Errorf("a write key of invalid UTF-8: %d %s, want 401", code, body)
			}
			if code, body := send("POST", "/v1/batch", "", `{"writeKey":"k\u0000","batch":[{"type":"track","userId":"u","event":"e"}]}`); code != http.StatusUnauthorized {
				t.Errorf("a write key with NUL: %d %s, want 401", code, body)
			}
			if code, body := send("GET", "/wechat/shop%00?signature=x&timestamp=1&nonce=2&echostr=3", "", ""); code != http.StatusNotFound {
				t.Errorf("a WeChat callback address with NUL: %d %s, want 404", code, body)
			}
		})
	}
}
