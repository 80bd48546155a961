package collect_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
	analytics "gopkg.in/segmentio/analytics-go.v3"
)

type ingestEnv struct {
	t       *testing.T
	url     string
	db      *store.DB
	sources *collect.Sources
	ingest  *collect.Ingest
	web     collect.Source // a website source
	server  collect.Source // a server source
}

// newIngest runs the real tracking API on a real store, on each engine.
func forEachEngine(t *testing.T, opts collect.IngestOptions, fn func(t *testing.T, e *ingestEnv)) {
	for _, eng := range storetest.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			t.Parallel()
			clock := hearth.SystemClock{}
			db := eng.Open(t, clock)
			w := store.NewEventWriter(db, store.EventWriterOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			bots, err := collect.NewBotDetector()
			if err != nil {
				t.Fatal(err)
			}
			sources := collect.NewSources(db, clock)
			in := collect.NewIngest(sources, w, clock, bots, opts, func(r *http.Request, err error) { t.Errorf("internal failure: %v", err) })
			mux := http.NewServeMux()
			for p, h := range in.Routes() {
				mux.Handle(p, h)
			}
			ts := httptest.NewServer(mux)
			t.Cleanup(ts.Close)
			web, err := sources.Create(ctx, "Website", collect.KindWebsite)
			if err != nil {
				t.Fatal(err)
			}
			server, err := sources.Create(ctx, "Backend", collect.KindServer)
			if err != nil {
				t.Fatal(err)
			}
			fn(t, &ingestEnv{t: t, url: ts.URL, db: db, sources: sources, ingest: in, web: web, server: server})
		})
	}
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *ingestEnv) post(path, writeKey string, body []byte, header map[string]string) reply {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, bytes.NewReader(body))
	if writeKey != "" {
		req.SetBasicAuth(writeKey, "")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return reply{resp.StatusCode, resp.Header, m}
}

func (r reply) code() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		return fmt.Sprint(e["code"])
	}
	return ""
}

func (r reply) message() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		return fmt.Sprint(e["message"])
	}
	return ""
}

func (e *ingestEnv) events() []collect.Event {
	e.t.Helper()
	evs, err := e.db.ReadEvents(context.Background(), 0, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func payload(t *testing.T, ev collect.Event) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(ev.Payload, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTrackingAPI(t *testing.T) {
	forEachEngine(t, collect.IngestOptions{}, func(t *testing.T, e *ingestEnv) {
		r := e.post("/v1/track", e.web.WriteKey, []byte(`{"userId":"u1","event":"Order Completed","messageId":"m1","properties":{"total":20}}`),
			map[string]string{"User-Agent": "Mozilla/5.0 (iPhone)"})
		if r.status != 200 || r.body["success"] != true || r.body["accepted"] != 1.0 {
			t.Fatalf("track: %d %v", r.status, r.body)
		}
		// writeKey in the body, as sendBeacon sends it; text/plain.
		r = e.post("/v1/page", "", []byte(`{"writeKey":"`+e.web.WriteKey+`","anonymousId":"a1","name":"Home"}`), map[string]string{"Content-Type": "text/plain"})
		if r.status != 200 {
			t.Fatalf("page with writeKey in body: %d %v", r.status, r.body)
		}
		evs := e.events()
		if len(evs) != 2 || evs[0].MessageID != "m1" || evs[0].SourceID != e.web.ID || evs[1].Type != "page" || evs[1].Name != "Home" {
			t.Fatalf("stored %+v", evs)
		}
		ctx := payload(t, evs[0])["context"].(map[string]any)
		if ctx["ip"] != "127.0.0.1" || ctx["userAgent"] != "Mozilla/5.0 (iPhone)" {
			t.Errorf("context = %v", ctx)
		}
	})
}

func TestTrackingAPIRefusals(t *testing.T) {
	forEachEngine(t, collect.IngestOptions{MaxEventBytes: 2048, MaxRequestBytes: 8192}, func(t *testing.T, e *ingestEnv) {
		ok := []byte(`{"userId":"u1","event":"x"}`)
		disabled, err := e.sources.Create(context.Background(), "Old app", collect.KindApp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.sources.SetEnabled(context.Background(), disabled.ID, false); err != nil {
			t.Fatal(err)
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(`{"batch":[` + strings.Repeat(`{"type":"track","userId":"u","event":"x"},`, 1000) + `{}]}`))
		zw.Close()
		tests := []struct {
			name, path, key string
			body            []byte
			header          map[string]string
			status          int
			code            string
		}{
			{"no write key", "/v1/track", "", ok, nil, 401, "unauthenticated"},
			{"wrong write key", "/v1/track", "nope", ok, nil, 401, "unauthenticated"},
			{"disabled source", "/v1/track", disabled.WriteKey, ok, nil, 401, "unauthenticated"},
			{"malformed JSON", "/v1/track", e.web.WriteKey, []byte(`{"userId":`), nil, 400, "invalid"},
			{"malformed batch", "/v1/batch", e.web.WriteKey, []byte(`{"batch":{}}`), nil, 400, "invalid"},
			{"invalid single event", "/v1/identify", e.web.WriteKey, []byte(`{"traits":{}}`), nil, 400, "invalid"},
			{"body over the limit", "/v1/batch", e.web.WriteKey, []byte(`{"batch":[` + strings.Repeat(" ", 9000) + `]}`), nil, 413, "too_large"},
			{"gzip bomb", "/v1/batch", e.web.WriteKey, gz.Bytes(), map[string]string{"Content-Encoding": "gzip"}, 413, "too_large"},
			{"bad gzip", "/v1/batch", e.web.WriteKey, []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}, 400, "invalid"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.post(tt.path, tt.key, tt.body, tt.header)
				if r.status != tt.status || r.code() != tt.code {
					t.Errorf("%d %v, want %d %s", r.status, r.body, tt.status, tt.code)
				}
			})
		}
		if n := len(e.events()); n != 0 {
			t.Errorf("%d events stored from refused requests", n)
		}
	})
}

// A bad event in a batch costs only itself; a retried batch is stored once.
func TestBatchPartialAndRetry(t *testing.T) {
	forEachEngine(t, collect.IngestOptions{MaxEventBytes: 2048}, func(t *testing.T, e *ingestEnv) {
		big := `{"type":"track","userId":"u","event":"big","properties":{"x":"` + strings.Repeat("x", 3000) + `"}}`
		body := []byte(`{"sentAt":"2026-01-01T00:00:10Z","context":{"library":{"name":"test"}},"batch":[
			{"type":"identify","userId":"u1","traits":{"email":"A@Example.com"},"messageId":"b1","timestamp":"2026-01-01T00:00:00Z"},
			{"type":"track","event":"no identity","messageId":"b2"},
			` + big + `,
			{"type":"track","anonymousId":"a1","event":"Viewed","messageId":"b4"},
			{"type":"bogus","userId":"u1","messageId":"b5"}]}`)
		r := e.post("/v1/batch", e.web.WriteKey, body, nil)
		if r.status != 200 || r.body["accepted"] != 2.0 {
			t.Fatalf("batch: %d %v", r.status, r.body)
		}
		rej := r.body["rejected"].([]any)
		if len(rej) != 3 {
			t.Fatalf("rejected = %v", rej)
		}
		want := map[float64]string{1: "userId or anonymousId is required", 2: "larger than 2048 bytes", 4: "is not one of"}
		for _, x := range rej {
			m := x.(map[string]any)
			if !strings.Contains(m["reason"].(string), want[m["index"].(float64)]) {
				t.Errorf("rejection %v, want reason with %q", m, want[m["index"].(float64)])
			}
		}
		r = e.post("/v1/batch", e.web.WriteKey, body, nil) // the SDK retries after a timeout
		if r.status != 200 || r.body["accepted"] != 0.0 || r.body["duplicates"] != 2.0 {
			t.Errorf("retry: %v", r.body)
		}
		evs := e.events()
		if len(evs) != 2 {
			t.Fatalf("stored %d events, want 2", len(evs))
		}
		p := payload(t, evs[0])
		if p["context"].(map[string]any)["library"] == nil {
			t.Errorf("batch context not applied: %v", p["context"])
		}
		// Clock skew: sentAt − timestamp = 10 s, so the event happened 10 s before it was received.
		if d := evs[0].ReceivedAt.Sub(evs[0].Timestamp); d != 10*time.Second {
			t.Errorf("receivedAt − timestamp = %v, want 10s", d)
		}
		stats, err := e.db.AllSourceStats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s := stats[e.web.ID]; s.Accepted != 2 || s.Duplicates != 2 || s.Rejected != 6 {
			t.Errorf("stats = %+v", s)
		}
		rejections, err := e.db.SourceRejections(context.Background(), e.web.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(rejections) != 6 {
			t.Errorf("%d rejections kept for the debugger, want 6", len(rejections))
		}
	})
}

func TestBotsFlaggedNotDropped(t *testing.T) {
	forEachEngine(t, collect.IngestOptions{}, func(t *testing.T, e *ingestEnv) {
		googlebot := map[string]string{"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}
		e.post("/v1/page", e.web.WriteKey, []byte(`{"anonymousId":"a","messageId":"w"}`), googlebot)
		// A server SDK's own user agent says nothing about the person: not a bot, and not their userAgent.
		e.post("/v1/track", e.server.WriteKey, []byte(`{"userId":"u","event":"Paid","messageId":"s"}`), map[string]string{"User-Agent": "Go-http-client/1.1"})
		evs := e.events()
		if len(evs) != 2 || !evs[0].Bot || evs[1].Bot {
			t.Fatalf("bot flags: %+v", evs)
		}
		if ua := payload(t, evs[1])["context"].(map[string]any)["userAgent"]; ua != nil {
			t.Errorf("server event got the SDK's user agent %v", ua)
		}
	})
}

func TestSourceRateLimit(t *testing.T) {
	forEachEngine(t, collect.IngestOptions{SourceRate: 1}, func(t *testing.T, e *ingestEnv) {
		ctx := context.Background()
		batch := func(n int) []byte {
			var evs []string
			for i := 0; i < n; i++ {
				evs = append(evs, `{"type":"track","userId":"u","event":"x"}`)
			}
			return []byte(`{"batch":[` + strings.Join(evs, ",") + `]}`)
		}
		retryAfter := func(r reply, least, most int) bool { // seconds: the clock runs on between requests
			s, err := strconv.Atoi(r.header.Get("Retry-After"))
			return err == nil && least <= s && s <= most
		}
		// The server's default: 1 a second, 1,000 at once.
		if r := e.post("/v1/batch", e.web.WriteKey, batch(1000), nil); r.status != 200 {
			t.Fatalf("within the burst: %d %v", r.status, r.body)
		}
		r := e.post("/v1/batch", e.web.WriteKey, batch(3), nil)
		if r.status != 429 || r.code() != "rate_limited" || r.header.Get("Retry-After") == "" {
			t.Errorf("over the rate: %d %v Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
		}
		if r := e.post("/v1/batch", e.server.WriteKey, batch(5), nil); r.status != 200 {
			t.Errorf("another source is not limited by the first: %d", r.status)
		}
		// More than may come at once waits for a full bucket (SDKs retry a refused request as it is), and
		// then goes through, the requests after it paying for its excess.
		if r := e.post("/v1/batch", e.server.WriteKey, batch(1001), nil); r.status != 429 || !retryAfter(r, 3, 5) {
			t.Errorf("more than the burst, on a bucket short of 5: %d %v Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
		}

		// A source's own limit replaces the default at once on this node, and 0 gives the default back.
		for _, bad := range []float64{-1, math.NaN(), math.Inf(1), collect.MaxRateLimit + 1} {
			if _, err := e.sources.Edit(ctx, e.server.ID, collect.SourceEdit{RateLimit: &bad}); hearth.KindOf(err) != hearth.Invalid {
				t.Errorf("rate limit %v: %v, want Invalid", bad, err)
			}
		}
		setLimit := func(limit float64) {
			t.Helper()
			if src, err := e.sources.Edit(ctx, e.server.ID, collect.SourceEdit{RateLimit: &limit}); err != nil || src.RateLimit != limit {
				t.Fatalf("set the rate limit %g: %+v %v", limit, src, err)
			}
		}
		setLimit(2000)
		if r := e.post("/v1/batch", e.server.WriteKey, batch(1001), nil); r.status != 200 {
			t.Errorf("under the source's own limit: %d %v", r.status, r.body)
		}
		setLimit(50) // 1,000 at once, a full bucket
		if r := e.post("/v1/batch", e.server.WriteKey, batch(1999), nil); r.status != 200 {
			t.Errorf("more than the burst on a full bucket: %d %v", r.status, r.body)
		}
		if r := e.post("/v1/batch", e.server.WriteKey, batch(1), nil); r.status != 429 || !retryAfter(r, 15, 20) { // 999 events owed
			t.Errorf("after more than the burst, the excess unpaid: %d %v", r.status, r.body)
		}
		setLimit(0)
		if r := e.post("/v1/batch", e.server.WriteKey, batch(1000), nil); r.status != 200 {
			t.Errorf("back on the default, a full bucket: %d %v", r.status, r.body)
		}
		if r := e.post("/v1/batch", e.server.WriteKey, batch(2), nil); r.status != 429 || !retryAfter(r, 1, 2) {
			t.Errorf("back on the default: %d %v Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
		}

		// What the limits refused is counted per source once flushed, and renaming a source meanwhile loses
		// none of it.
		before := time.Now().Add(-time.Second)
		if _, err := e.sources.Rename(ctx, e.web.ID, "Website (shop)"); err != nil {
			t.Fatal(err)
		}
		if err := e.ingest.FlushThrottled(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.ingest.FlushThrottled(ctx); err != nil { // nothing more to add
			t.Fatal(err)
		}
		for id, want := range map[string]int64{e.web.ID: 3, e.server.ID: 1004} {
			src, err := e.sources.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if src.Throttled != want || src.LastThrottledAt == nil || src.LastThrottledAt.Before(before) {
				t.Errorf("%s: throttled %d at %v, want %d now", src.Name, src.Throttled, src.LastThrottledAt, want)
			}
		}
	})
}

// Segment's analytics.js loads its settings as from its CDN, which point it at the public URL, and posts to
// the one-letter paths; a write key that no enabled source has gets no settings.
func TestAnalyticsJSSettings(t *testing.T) {
	forEachEngine(t, collect.IngestOptions{PublicURL: "https://go.brand.example/hearth/"}, func(t *testing.T, e *ingestEnv) {
		get := func(writeKey string) (int, http.Header, map[string]any) {
			resp, err := http.Get(e.url + "/v1/projects/" + writeKey + "/settings")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			return resp.StatusCode, resp.Header, m
		}
		status, header, settings := get(e.web.WriteKey)
		seg, _ := settings["integrations"].(map[string]any)["Segment.io"].(map[string]any)
		if status != 200 || header.Get("Access-Control-Allow-Origin") != "*" || seg["apiKey"] != e.web.WriteKey ||
			seg["apiHost"] != "go.brand.example/hearth/v1" || seg["protocol"] != "https" {
			t.Errorf("settings: %d %v %v", status, header, settings)
		}
		if status, _, _ := get("not-a-key"); status != 404 {
			t.Errorf("an unknown write key's settings: %d, want 404", status)
		}
		if _, err := e.sources.SetEnabled(context.Background(), e.server.ID, false); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := get(e.server.WriteKey); status != 404 {
			t.Errorf("a disabled source's settings: %d, want 404", status)
		}

		// analytics.js's own request: the type's first letter, text/plain, the write key in the body too.
		r := e.post("/v1/t", e.web.WriteKey, []byte(`{"type":"track","event":"Clicked","anonymousId":"a-1","writeKey":"`+e.web.WriteKey+`"}`),
			map[string]string{"Content-Type": "text/plain", "X-Retry-Count": "1"})
		if r.status != 200 || len(e.events()) != 1 || e.events()[0].Name != "Clicked" {
			t.Errorf("POST /v1/t: %d %v, events %v", r.status, r.body, e.events())
		}
	})
}

func TestCORSPreflight(t *testing.T) {
	forEachEngine(t, collect.IngestOptions{}, func(t *testing.T, e *ingestEnv) {
		preflight := func(path, headers string) *http.Response {
			req, _ := http.NewRequest("OPTIONS", e.url+path, nil)
			req.Header.Set("Origin", "https://shop.example")
			req.Header.Set("Access-Control-Request-Method", "POST")
			if headers != "" {
				req.Header.Set("Access-Control-Request-Headers", headers)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		resp := preflight("/v1/batch", "")
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		// The headers SDKs send of their own are allowed: analytics.js's retry count, RudderStack's times.
		for _, path := range []string{"/v1/t", "/v1/track", "/sourceConfig/"} {
			if resp := preflight(path, "authorization,content-type,sentat,rsa-since-last-attempt,x-retry-count"); resp.StatusCode != 204 ||
				resp.Header.Get("Access-Control-Allow-Headers") != "authorization,content-type,sentat,rsa-since-last-attempt,x-retry-count" {
				t.Errorf("preflight of %s with an SDK's headers: %d %v", path, resp.StatusCode, resp.Header)
			}
		}
	})
}

// RudderStack's JavaScript SDK loads its source's config as from its control plane; a write key that no
// enabled source has gets none.
func TestRudderStackSourceConfig(t *testing.T) {
	forEachEngine(t, collect.IngestOptions{}, func(t *testing.T, e *ingestEnv) {
		get := func(query, basic string) (int, map[string]any) {
			req, _ := http.NewRequest("GET", e.url+"/sourceConfig/"+query, nil)
			if basic != "" {
				req.SetBasicAuth(basic, "")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			return resp.StatusCode, m
		}
		for _, c := range []struct{ query, basic string }{{"?p=npm&v=3.34.1&writeKey=" + e.web.WriteKey, ""}, {"?p=npm", e.web.WriteKey}} {
			status, cfg := get(c.query, c.basic)
			src, _ := cfg["source"].(map[string]any)
			if status != 200 || src["id"] != e.web.ID || src["writeKey"] != e.web.WriteKey || src["enabled"] != true ||
				len(src["destinations"].([]any)) != 0 || src["config"] == nil {
				t.Errorf("source config %+v: %d %v", c, status, cfg)
			}
		}
		if status, _ := get("?writeKey=nope", ""); status != 404 {
			t.Errorf("an unknown write key's config: %d, want 404", status)
		}

		// Its beacon mode: navigator.sendBeacon cannot set a header, so the write key is in the query.
		r := e.post("/beacon/v1/batch?writeKey="+e.web.WriteKey, "", []byte(`{"batch":[{"type":"track","event":"Left","anonymousId":"a-1"}],"sentAt":"2026-06-01T08:00:00Z"}`),
			map[string]string{"Content-Type": "text/plain;charset=UTF-8"})
		if r.status != 200 || len(e.events()) != 1 || e.events()[0].Name != "Left" {
			t.Errorf("POST /beacon/v1/batch: %d %v, events %v", r.status, r.body, e.events())
		}
	})
}

// Segment's own Go SDK works unchanged against Hearth.
func TestSegmentGoSDK(t *testing.T) {
	forEachEngine(t, collect.IngestOptions{}, func(t *testing.T, e *ingestEnv) {
		var mu sync.Mutex
		var failures []error
		client, err := analytics.NewWithConfig(e.server.WriteKey, analytics.Config{
			Endpoint: e.url, Interval: 50 * time.Millisecond, BatchSize: 3,
			Callback: callback{failure: func(err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() }},
		})
		if err != nil {
			t.Fatal(err)
		}
		when := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
		msgs := []analytics.Message{
			analytics.Identify{UserId: "u-1", Traits: analytics.NewTraits().SetEmail("li.na@example.com").SetName("李娜")},
			analytics.Track{UserId: "u-1", Event: "Order Completed", Properties: analytics.NewProperties().SetRevenue(199.5).SetCurrency("CNY"), Timestamp: when},
			analytics.Page{AnonymousId: "anon-1", Name: "Pricing", Properties: analytics.NewProperties().SetURL("https://shop.example/pricing")},
			analytics.Screen{UserId: "u-1", Name: "Cart"},
			analytics.Group{UserId: "u-1", GroupId: "acme", Traits: analytics.NewTraits().SetName("Acme")},
			analytics.Alias{PreviousId: "anon-1", UserId: "u-1"},
		}
		for _, m := range msgs {
			if err := client.Enqueue(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := client.Close(); err != nil {
			t.Fatal(err)
		}
		if len(failures) > 0 {
			t.Fatalf("SDK failures: %v", failures)
		}
		evs := e.events()
		if len(evs) != len(msgs) {
			t.Fatalf("stored %d events, want %d", len(evs), len(msgs))
		}
		byType := map[string]collect.Event{}
		for _, ev := range evs {
			byType[ev.Type] = ev
		}
		track := byType["track"]
		if track.Name != "Order Completed" || track.UserID != "u-1" {
			t.Errorf("track = %+v", track)
		}
		if d := track.Timestamp.Sub(when); d < 0 || d > time.Minute {
			t.Errorf("track happened at %v, want about %v (skew-corrected)", track.Timestamp, when)
		}
		if p := payload(t, track)["properties"].(map[string]any); p["revenue"] != 199.5 || p["currency"] != "CNY" {
			t.Errorf("track properties = %v", p)
		}
		if traits := payload(t, byType["identify"])["traits"].(map[string]any); traits["name"] != "李娜" {
			t.Errorf("identify traits = %v", traits)
		}
		if lib := payload(t, track)["context"].(map[string]any)["library"].(map[string]any); lib["name"] != "analytics-go" {
			t.Errorf("context.library = %v", lib)
		}
		if byType["alias"].UserID != "u-1" || byType["group"].Type != "group" || byType["page"].Name != "Pricing" || byType["screen"].Name != "Cart" {
			t.Errorf("events = %+v", byType)
		}
	})
}

type callback struct{ failure func(error) }

func (callback) Success(analytics.Message)                {}
func (c callback) Failure(_ analytics.Message, err error) { c.failure(err) }
