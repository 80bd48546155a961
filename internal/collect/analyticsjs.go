package collect

import (
	"embed"
	"net/http"
	"path"

	"github.com/hearth-cdp/hearth/internal/static"
)

// analyticsJS is Segment's analytics.js (the browser build of @segment/analytics-next, MIT; see
// analyticsjs/LICENSE.md), vendored by scripts/update-analyticsjs: its standalone script and the bundles it
// loads when it needs them.
//
//go:embed analyticsjs/analytics.min.js analyticsjs/bundles
var analyticsJS embed.FS

// AnalyticsJSRoutes serve analytics.js where Segment's CDN does, so that Segment's classic snippet works with
// its CDN host changed to Hearth's: the script at /analytics.js/v1/WRITE_KEY/analytics.min.js (the same for
// every key: the snippet names the key to the script), and the bundles it loads from its CDN's
// /analytics-next/bundles/. The settings it then asks for are the tracking API's (Ingest.settings).
func AnalyticsJSRoutes() map[string]http.Handler {
	const js = "application/javascript; charset=utf-8"
	script, _ := analyticsJS.ReadFile("analyticsjs/analytics.min.js") // embedded: it is there
	bundles := map[string]*static.File{}
	entries, _ := analyticsJS.ReadDir("analyticsjs/bundles")
	for _, e := range entries {
		b, _ := analyticsJS.ReadFile(path.Join("analyticsjs/bundles", e.Name()))
		bundles[e.Name()] = static.NewFile(js, b)
	}
	return map[string]http.Handler{
		// Short-lived like Hearth's own snippet: a new version reaches sites within minutes.
		"GET /analytics.js/v1/{writeKey}/analytics.min.js": vendorScript(static.NewFile(js, script), snippetCache),
		"GET /analytics-next/bundles/{name}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f := bundles[r.PathValue("name")]
			if f == nil {
				http.NotFound(w, r)
				return
			}
			// Their names hold their content's hash: a new version has new names.
			vendorScript(f, "public, max-age=31536000, immutable").ServeHTTP(w, r)
		}),
	}
}

// vendorScript serves a script that any site may load, with or without crossorigin.
func vendorScript(f *static.File, cache string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Cache-Control", cache)
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Access-Control-Allow-Origin", "*")
		hdr.Set("Cross-Origin-Resource-Policy", "cross-origin")
		f.ServeHTTP(w, r)
	})
}
