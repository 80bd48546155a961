package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A site that already sends its events with Segment's browser SDK (analytics.js, as @segment/analytics-next
// from npm) changes one setting, its cdnURL, to Hearth's address: analytics.js loads its settings from Hearth,
// which point its Segment.io destination at Hearth's tracking API, and every call arrives in the source.
func TestBrowserSegmentAnalyticsJS(t *testing.T) {
	bundle := sdkBundle(t, "segment-browser", "@segment/analytics-next")
	a, base, src := startSnippetApp(t)
	page := `<!doctype html><html><head><title>Checkout</title><script src="/sdk.js"></script></head><body>
<script>
const analytics = AnalyticsBrowser.load({ writeKey: ` + strconv.Quote(src.WriteKey) + `, cdnURL: ` + strconv.Quote(base) + ` });
analytics.identify('ajs-user-7', { email: 'ajs@example.com', plan: 'gold' });
analytics.track('Checkout Started', { total: 42, currency: 'CNY' });
analytics.page('Checkout');
</script></body></html>`
	shop := serveSDKPage(t, page, bundle)
	ctx := browser(t)
	do(t, ctx, "open the page", chromedp.Navigate(shop.URL+"/checkout"), chromedp.WaitReady("body"))
	evs := waitForEvents(t, a, src.ID, "analytics.js's identify, track and page", func(evs []snippetEvent) bool {
		return len(find(evs, "identify", "")) == 1 && len(find(evs, "track", "Checkout Started")) == 1 && len(find(evs, "page", "")) == 1
	})
	for _, e := range evs {
		if e.Context.Library.Name != "analytics.js" || !strings.HasPrefix(e.Context.Library.Version, "npm:next-") {
			t.Errorf("%s: context.library %+v, want analytics.js from npm", e, e.Context.Library)
		}
		if e.UserID != "ajs-user-7" || e.AnonymousID == "" {
			t.Errorf("%s: userId %q anonymousId %q, want the identified user and analytics.js's anonymous id", e, e.UserID, e.AnonymousID)
		}
		if e.Context.Page.Path != "/checkout" || e.Context.UserAgent == "" {
			t.Errorf("%s: context.page %+v, userAgent %q", e, e.Context.Page, e.Context.UserAgent)
		}
	}
	if id := find(evs, "identify", "")[0]; id.Traits["email"] != "ajs@example.com" || id.Traits["plan"] != "gold" {
		t.Errorf("identify traits %v", id.Traits)
	}
	if tr := find(evs, "track", "Checkout Started")[0]; tr.Properties["total"] != 42.0 || tr.Properties["currency"] != "CNY" {
		t.Errorf("track properties %v", tr.Properties)
	}
	if pg := find(evs, "page", "")[0]; pg.Name != "Checkout" {
		t.Errorf("page name %q, want Checkout", pg.Name)
	}
}

// A site with Segment's classic snippet changes its CDN host to Hearth's: Hearth serves analytics.js itself, the
// bundles it loads later and its settings, and the calls the snippet queued before it loaded arrive.
func TestBrowserSegmentSnippet(t *testing.T) {
	a, base, src := startSnippetApp(t)
	// Segment's snippet (5.2.0), with cdn.segment.com replaced by Hearth's address. On plain HTTP analytics.js
	// does not recognise its CDN in its script's address (it looks for https://), so the page names it.
	snippet := `!function(){var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)if(analytics.invoked)window.console&&console.error&&console.error("Segment snippet included twice.");else{analytics.invoked=!0;analytics.methods=["trackSubmit","trackClick","trackLink","trackForm","pageview","identify","reset","group","track","ready","alias","debug","page","screen","once","off","on","addSourceMiddleware","addIntegrationMiddleware","setAnonymousId","addDestinationMiddleware","register"];analytics.factory=function(e){return function(){if(window[i].initialized)return window[i][e].apply(window[i],arguments);var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page","identify"].indexOf(e)>-1){var c=document.querySelector("link[rel='canonical']");n.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer})}n.unshift(e);analytics.push(n);return analytics}};for(var n=0;n<analytics.methods.length;n++){var key=analytics.methods[n];analytics[key]=analytics.factory(key)}analytics.load=function(key,n){var t=document.createElement("script");t.type="text/javascript";t.async=!0;t.setAttribute("data-global-segment-analytics-key",i);t.src=HEARTH+"/analytics.js/v1/" + key + "/analytics.min.js";var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(t,r);analytics._loadOptions=n};analytics._writeKey=WRITE_KEY;analytics._cdn=HEARTH;analytics.SNIPPET_VERSION="5.2.0";
analytics.load(WRITE_KEY);
analytics.identify('snippet-user-3', { email: 'snippet@example.com' });
analytics.track('Coupon Applied', { code: 'SPRING' });
analytics.page('Checkout');
}}();`
	snippet = strings.NewReplacer("HEARTH", strconv.Quote(base), "WRITE_KEY", strconv.Quote(src.WriteKey)).Replace(snippet)
	page := `<!doctype html><html><head><title>Checkout</title><script>` + snippet + `</script></head><body></body></html>`
	shop := serveSDKPage(t, page, nil)

	ctx := browser(t)
	// ajs_event in the address makes analytics.js track it, with a bundle it loads for that from its CDN.
	do(t, ctx, "open the page", chromedp.Navigate(shop.URL+"/checkout?ajs_event=Promo%20Viewed"), chromedp.WaitReady("body"))
	evs := waitForEvents(t, a, src.ID, "the snippet's identify, tracks and page", func(evs []snippetEvent) bool {
		return len(find(evs, "identify", "")) == 1 && len(find(evs, "track", "Coupon Applied")) == 1 && len(find(evs, "page", "")) == 1 &&
			len(find(evs, "track", "Promo Viewed")) == 1
	})
	for _, e := range evs {
		if e.Context.Library.Name != "analytics.js" || !strings.HasPrefix(e.Context.Library.Version, "next-") {
			t.Errorf("%s: context.library %+v, want analytics.js from Hearth", e, e.Context.Library)
		}
		// The address's event is tracked as analytics.js loads, before the queued identify.
		if e.UserID != "snippet-user-3" && e.Event != "Promo Viewed" || e.Context.Page.Path != "/checkout" {
			t.Errorf("%s: userId %q, page %+v", e, e.UserID, e.Context.Page)
		}
	}
	if tr := find(evs, "track", "Coupon Applied")[0]; tr.Properties["code"] != "SPRING" {
		t.Errorf("track properties %v", tr.Properties)
	}
	if n := read(t, ctx, "bundles loaded from Hearth", chromedp.Evaluate[int](
		`performance.getEntriesByType('resource').filter(e => e.name.startsWith(`+strconv.Quote(base+"/analytics-next/bundles/")+`)).length`)); n == 0 {
		t.Error("analytics.js loaded none of its bundles from Hearth")
	}
}

// So does a site that sends with RudderStack's JavaScript SDK (@rudderstack/analytics-js, its bundled build),
// with its configUrl and dataPlaneUrl set to Hearth: it loads its source's config from Hearth, with no
// destination to load in the browser, and sends its calls to Hearth's tracking API.
func TestBrowserRudderStackJS(t *testing.T) {
	bundle := sdkBundle(t, "rudderstack-browser", "@rudderstack/analytics-js")
	a, base, src := startSnippetApp(t)
	page := `<!doctype html><html><head><title>Checkout</title><script src="/sdk.js"></script></head><body>
<script>
const rudderanalytics = new RudderAnalytics();
rudderanalytics.load(` + strconv.Quote(src.WriteKey) + `, ` + strconv.Quote(base) + `, { configUrl: ` + strconv.Quote(base) + `, logLevel: 'ERROR' });
rudderanalytics.identify('rs-user-9', { email: 'rs@example.com', plan: 'gold' });
rudderanalytics.track('Checkout Started', { total: 42, currency: 'CNY' });
rudderanalytics.page('Shop', 'Checkout');
</script></body></html>`
	shop := serveSDKPage(t, page, bundle)

	ctx := browser(t)
	do(t, ctx, "open the page", chromedp.Navigate(shop.URL+"/checkout"), chromedp.WaitReady("body"))
	evs := waitForEvents(t, a, src.ID, "the RudderStack SDK's identify, track and page", func(evs []snippetEvent) bool {
		return len(find(evs, "identify", "")) == 1 && len(find(evs, "track", "Checkout Started")) == 1 && len(find(evs, "page", "")) == 1
	})
	for _, e := range evs {
		if e.Context.Library.Name != "RudderLabs JavaScript SDK" || e.Context.Library.Version == "" {
			t.Errorf("%s: context.library %+v, want RudderStack's", e, e.Context.Library)
		}
		if e.UserID != "rs-user-9" || e.AnonymousID == "" {
			t.Errorf("%s: userId %q anonymousId %q, want the identified user and the SDK's anonymous id", e, e.UserID, e.AnonymousID)
		}
		if e.Context.Page.Path != "/checkout" {
			t.Errorf("%s: context.page %+v", e, e.Context.Page)
		}
	}
	if id := find(evs, "identify", "")[0]; id.Context.Traits["email"] != "rs@example.com" {
		t.Errorf("identify context.traits %v", id.Context.Traits)
	}
	if tr := find(evs, "track", "Checkout Started")[0]; tr.Properties["total"] != 42.0 || tr.Properties["currency"] != "CNY" {
		t.Errorf("track properties %v", tr.Properties)
	}
	if pg := find(evs, "page", "")[0]; pg.Name != "Checkout" {
		t.Errorf("page name %q, want Checkout", pg.Name)
	}
}

// serveSDKPage serves a site's page at /checkout and its bundle at /sdk.js, on the site's own origin, not
// Hearth's.
func serveSDKPage(t *testing.T, page string, bundle []byte) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	})
	mux.HandleFunc("GET /sdk.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write(bundle)
	})
	shop := httptest.NewServer(mux)
	t.Cleanup(shop.Close)
	return shop
}

// sdkBundle bundles testdata/DIR/entry.mjs with the SDK pkg and the esbuild that npm ci installed there
// (scripts/test runs it). Without them it skips the test, except under CI, where it must run.
func sdkBundle(t *testing.T, dir, pkg string) []byte {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
		msg := pkg + " is not installed (" + err.Error() + "): run scripts/test, or npm ci in " + dir
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; under CI this test must run")
		}
		t.Skip(msg)
	}
	out := filepath.Join(t.TempDir(), "sdk.js")
	cmd := exec.Command(filepath.Join(dir, "node_modules", ".bin", "esbuild"), "entry.mjs", "--bundle", "--format=iife", "--log-level=warning", "--outfile="+out)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
