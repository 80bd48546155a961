package app

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/hearth-cdp/hearth/internal/collect"
)

// The browser snippet's tests: a customer's site on its own origin loads hearth.js from the app, and its
// events arrive in the app's event log.

// startSnippetApp starts the whole app, with an admin, and creates a website source.
func startSnippetApp(t *testing.T) (*App, string, collect.Source) {
	t.Helper()
	ctx := context.Background()
	cfg := browserConfig(t, "sqlite")
	cfg.Admin = AdminConfig{Email: "admin@example.com", Password: "a long admin password"}
	started := startApp(t, cfg)
	a, base := started.app, started.base
	res, err := http.Get(base + "/hearth.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("GET /hearth.js: %s %s; the app must serve collect.SnippetHandler() there", res.Status, res.Header.Get("Content-Type"))
	}
	src, err := a.sources.Create(ctx, "Shop website", collect.KindWebsite)
	if err != nil {
		t.Fatal(err)
	}
	return a, base, src
}

// snippetStub is the optional stub of docs/snippet.md: calls made before hearth.js has loaded are queued.
const snippetStub = `<script>
window.hearth = window.hearth || [];
['identify', 'track', 'page', 'reset', 'ready'].forEach(function (m) {
  hearth[m] = hearth[m] || function () { hearth.push([m].concat([].slice.call(arguments))); };
});
</script>`

// shopPage is a customer's page that installs the snippet from appBase, with head before it and body after.
func shopPage(appBase, writeKey, apiHost, head, body string) string {
	tag := `<script src="` + appBase + `/hearth.js" data-write-key="` + html.EscapeString(writeKey) + `"`
	if apiHost != "" {
		tag += ` data-api-host="` + html.EscapeString(apiHost) + `"`
	}
	tag += ` async></script>`
	return "<!doctype html><html><head><meta charset=utf-8><title>Shop</title>" + head + snippetStub + tag +
		"</head><body><h1 id=title>Shop</h1>" + body + "</body></html>"
}

func servePages(t *testing.T, pages map[string]string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for path, page := range pages {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// snippetEvent is the part of a stored event's payload that the tests look at.
type snippetEvent struct {
	Type        string         `json:"type"`
	MessageID   string         `json:"messageId"`
	Event       string         `json:"event"`
	Name        string         `json:"name"`
	UserID      string         `json:"userId"`
	AnonymousID string         `json:"anonymousId"`
	Properties  map[string]any `json:"properties"`
	Traits      map[string]any `json:"traits"`
	SentAt      *time.Time     `json:"sentAt"`
	Context     struct {
		Library struct{ Name, Version string } `json:"library"`
		Page    struct {
			Path, Referrer, Search, Title, URL string
		} `json:"page"`
		UserAgent string         `json:"userAgent"`
		Traits    map[string]any `json:"traits"`
		Locale    string         `json:"locale"`
		Timezone  string         `json:"timezone"`
		Screen    struct{ Width, Height int }
		Touch     *struct {
			Token string `json:"token"`
		} `json:"touch"`
	} `json:"context"`
}

func (e snippetEvent) String() string {
	return fmt.Sprintf("%s %q%q user %q anon %q", e.Type, e.Event, e.Name, e.UserID, e.AnonymousID)
}

// sourceEvents returns a source's stored events, oldest first.
func sourceEvents(t *testing.T, a *App, sourceID string) []snippetEvent {
	t.Helper()
	evs, _, err := a.db.SourceEvents(context.Background(), sourceID, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]snippetEvent, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- { // newest first
		var e snippetEvent
		if err := json.Unmarshal(evs[i].Payload, &e); err != nil {
			t.Fatalf("stored payload: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// waitForEvents polls the event log until found picks what the test waits for from a source's events.
func waitForEvents(t *testing.T, a *App, sourceID, what string, found func([]snippetEvent) bool) []snippetEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs := sourceEvents(t, a, sourceID)
		if found(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s; the source has %d events: %v", what, len(evs), evs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// find returns the events of a type with a name (the track event or the page path), and whether there are n.
func find(evs []snippetEvent, typ, name string) []snippetEvent {
	var out []snippetEvent
	for _, e := range evs {
		if e.Type == typ && (name == "" || e.Event == name || (typ == "page" && e.Context.Page.Path == name)) {
			out = append(out, e)
		}
	}
	return out
}

func cookieValue(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	for _, c := range strings.Split(read(t, ctx, "cookies", chromedp.Evaluate[string](`document.cookie`)), ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(c), "="); ok && k == name {
			return v
		}
	}
	return ""
}

type snippetUser struct {
	AnonymousID string  `json:"anonymousId"`
	UserID      *string `json:"userId"`
}

// A customer's site installs the snippet with one tag. The landing page, reached with a touch token in its
// URL, sends a page view carrying the token, then the identify and track calls it made before the snippet
// loaded, all with the anonymous id of the first-party cookie. A track queued as the person leaves goes with
// sendBeacon. The next page of the visit remembers the user and the token; reset forgets them.
func TestSnippetBrowser(t *testing.T) {
	a, base, src := startSnippetApp(t)
	const token = "SOMETOKEN.v1-abc_DEF"
	// The landing page counts sendBeacon calls in sessionStorage, which the next page of the tab can read.
	beaconSpy := `<script>
const realBeacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = function (url, data) {
  sessionStorage.setItem('test_beacons', String(Number(sessionStorage.getItem('test_beacons') || 0) + 1));
  return realBeacon(url, data);
};
</script>`
	shop := servePages(t, map[string]string{
		"/landing": shopPage(base, src.WriteKey, "", beaconSpy, `<script>
hearth.identify('user-42', {email: 'x@example.com'});
hearth.track('Added to Cart', {sku: 'A1'});
</script>`),
		"/next":  `<!doctype html><title>Next</title><h1 id=next>A page without the snippet</h1>`,
		"/again": shopPage(base, src.WriteKey, "", "", ""),
	})
	if strings.HasPrefix(shop.URL, base) {
		t.Fatal("the shop must be on another origin than the app")
	}
	ctx := browser(t)

	do(t, ctx, "open the landing page", chromedp.Navigate(shop.URL+"/landing?ht="+url.QueryEscape(token)))
	evs := waitForEvents(t, a, src.ID, "the page view, identify and track", func(evs []snippetEvent) bool {
		return len(find(evs, "page", "/landing")) == 1 && len(find(evs, "identify", "")) == 1 && len(find(evs, "track", "Added to Cart")) == 1
	})
	page, identify, track := find(evs, "page", "/landing")[0], find(evs, "identify", "")[0], find(evs, "track", "Added to Cart")[0]

	aid := cookieValue(t, ctx, "hearth_aid")
	if id, err := uuid.Parse(aid); err != nil || id.Version() != 7 || time.Since(time.Unix(id.Time().UnixTime())) > time.Minute {
		t.Fatalf("hearth_aid cookie = %q, want a version 7 UUID of now (%v)", aid, err)
	}
	for _, e := range []snippetEvent{page, identify, track} {
		if e.AnonymousID != aid {
			t.Errorf("%s: anonymousId %q, want the cookie's %q", e, e.AnonymousID, aid)
		}
		if e.Context.Touch == nil || e.Context.Touch.Token != token {
			t.Errorf("%s: context.touch = %+v, want token %q", e, e.Context.Touch, token)
		}
		if e.Context.Library.Name != "hearth.js" || e.Context.Library.Version == "" || e.Context.UserAgent == "" ||
			e.Context.Locale == "" || e.Context.Timezone == "" || e.Context.Screen.Width == 0 || e.Context.Page.Path != "/landing" {
			t.Errorf("%s: context lacks the library, user agent, locale, timezone, screen or page: %+v", e, e.Context)
		}
		if e.SentAt == nil || len(e.MessageID) != 36 {
			t.Errorf("%s: sentAt %v, messageId %q: want both set by the snippet", e, e.SentAt, e.MessageID)
		}
	}
	if page.UserID != "" {
		t.Errorf("the automatic page view, sent before identify, has userId %q", page.UserID)
	}
	wantProps := map[string]any{"path": "/landing", "search": "?ht=" + url.QueryEscape(token), "title": "Shop", "referrer": "", "url": shop.URL + "/landing?ht=" + url.QueryEscape(token)}
	for k, want := range wantProps {
		if page.Properties[k] != want {
			t.Errorf("page property %s = %v, want %v", k, page.Properties[k], want)
		}
	}
	if identify.UserID != "user-42" || identify.Traits["email"] != "x@example.com" {
		t.Errorf("identify: userId %q, traits %v", identify.UserID, identify.Traits)
	}
	if track.UserID != "user-42" || track.Properties["sku"] != "A1" {
		t.Errorf("track after identify: userId %q, properties %v", track.UserID, track.Properties)
	}
	user := read(t, ctx, "hearth.user()", chromedp.Evaluate[snippetUser](`hearth.user()`))
	if user.AnonymousID != aid || user.UserID == nil || *user.UserID != "user-42" {
		t.Errorf("hearth.user() = %+v, want %s and user-42", user, aid)
	}

	// The person leaves right after a track, while the network hangs: the track goes with sendBeacon as the
	// page unloads. The next page has no snippet, so nothing else could send it.
	do(t, ctx, "track and leave",
		chromedp.Evaluate[chromedp.Void](`window.fetch = () => new Promise(() => {});
hearth.track('Checkout Started', {step: 2});
location.href = '/next';`),
		chromedp.WaitVisible(chromedp.CSS(`#next`)),
	)
	if n := read(t, ctx, "beacons", chromedp.Evaluate[string](`sessionStorage.getItem('test_beacons') || '0'`)); n == "0" {
		t.Error("leaving the page sent no beacon")
	}
	evs = waitForEvents(t, a, src.ID, "the track sent on leaving", func(evs []snippetEvent) bool {
		return len(find(evs, "track", "Checkout Started")) == 1
	})
	if e := find(evs, "track", "Checkout Started")[0]; e.UserID != "user-42" || e.AnonymousID != aid || e.Properties["step"] != 2.0 {
		t.Errorf("the track sent on leaving: %s, properties %v", e, e.Properties)
	}

	// Another page of the visit: the user id (localStorage) and the touch token (sessionStorage) carry over.
	do(t, ctx, "open another page", chromedp.Navigate(shop.URL+"/again"))
	evs = waitForEvents(t, a, src.ID, "the second page view", func(evs []snippetEvent) bool {
		return len(find(evs, "page", "/again")) == 1
	})
	if e := find(evs, "page", "/again")[0]; e.UserID != "user-42" || e.AnonymousID != aid || e.Context.Touch == nil || e.Context.Touch.Token != token {
		t.Errorf("the visit's next page view: %s, touch %+v; want user-42, %s and the token", e, e.Context.Touch, aid)
	}

	user = read(t, ctx, "hearth.user() after reset", chromedp.Evaluate[snippetUser](`hearth.reset(); hearth.user()`))
	if user.AnonymousID == aid || len(user.AnonymousID) != 36 || user.UserID != nil {
		t.Errorf("after reset, hearth.user() = %+v: want a new anonymous id and no user id", user)
	}
	if got := cookieValue(t, ctx, "hearth_aid"); got != user.AnonymousID {
		t.Errorf("after reset, the cookie holds %q, want the new anonymous id %q", got, user.AnonymousID)
	}

	rejected, err := a.db.SourceRejections(context.Background(), src.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) > 0 {
		t.Errorf("the server refused events of the snippet: %+v", rejected)
	}
}

// flakyAPI stands between the snippet and the app: while down it answers 503, as an overloaded Hearth would.
type flakyAPI struct {
	mu       sync.Mutex
	down     bool
	attempts int // requests answered 503
	beacons  int // of them, sent by sendBeacon (which the browser sends in no-cors mode)
	proxy    *httputil.ReverseProxy
}

func (f *flakyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down := f.down
	if down && r.Method == http.MethodPost {
		f.attempts++
		if r.Header.Get("Sec-Fetch-Mode") == "no-cors" {
			f.beacons++
		}
	}
	f.mu.Unlock()
	if !down {
		f.proxy.ServeHTTP(w, r)
		return
	}
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, `{"error":{"code":"unavailable","message":"Try again."}}`)
}

func (f *flakyAPI) counts() (attempts, beacons int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts, f.beacons
}

// While the tracking API is unavailable, the snippet keeps its events, retries with backoff, and keeps them
// over a reload (in localStorage); once the API is back, every event arrives, once.
func TestSnippetBrowserRetry(t *testing.T) {
	a, base, src := startSnippetApp(t)
	target, _ := url.Parse(base)
	api := &flakyAPI{down: true, proxy: httputil.NewSingleHostReverseProxy(target)}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	shop := servePages(t, map[string]string{
		"/shop": shopPage(base, src.WriteKey, apiSrv.URL, "", `<script>
if (!sessionStorage.getItem('tracked')) {
  sessionStorage.setItem('tracked', '1');
  hearth.track('Queued While Down');
}
</script>`),
	})
	ctx := browser(t)

	do(t, ctx, "open the page while the API is down", chromedp.Navigate(shop.URL+"/shop"))
	waitFor(t, "a retry", func() bool { n, _ := api.counts(); return n >= 2 })
	before, _ := api.counts()
	do(t, ctx, "reload while the API is down", chromedp.Reload())
	waitFor(t, "the reloaded page's request", func() bool { n, _ := api.counts(); return n > before+1 })
	if _, beacons := api.counts(); beacons == 0 {
		t.Error("the page sent no beacon as it unloaded")
	}
	queued := read(t, ctx, "the stored queue", chromedp.Evaluate[string](
		`Object.keys(localStorage).filter(k => k.startsWith('hearth_q_')).map(k => localStorage.getItem(k)).join('\n')`))
	if !strings.Contains(queued, "Queued While Down") || strings.Count(queued, `\"type\":\"page\"`) != 2 {
		t.Errorf("after the reload, localStorage holds:\n%s\nwant the track and both page views", queued)
	}
	if evs := sourceEvents(t, a, src.ID); len(evs) > 0 {
		t.Fatalf("events arrived while the API was down: %v", evs)
	}

	api.mu.Lock()
	api.down = false
	api.mu.Unlock()
	evs := waitForEvents(t, a, src.ID, "the events sent while the API was down", func(evs []snippetEvent) bool {
		return len(find(evs, "page", "/shop")) == 2 && len(find(evs, "track", "Queued While Down")) == 1
	})
	if len(evs) != 3 {
		t.Errorf("the source has %d events, want 3: %v", len(evs), evs)
	}
	waitFor(t, "the stored queue to empty", func() bool {
		return read(t, ctx, "the stored queue", chromedp.Evaluate[int](
			`Object.keys(localStorage).filter(k => k.startsWith('hearth_q_')).length`)) == 0
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
