package collect

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snippetSourceHash computes the hash of the snippet's build inputs exactly as snippet/build.mjs does: for
// each input, sorted by name, name + "\x00" + hex(sha256(bytes)) + "\n"; the hex sha256 of the whole.
func snippetSourceHash(t *testing.T) string {
	t.Helper()
	var list bytes.Buffer
	for _, name := range []string{"build.mjs", "hearth.js", "package-lock.json", "package.json"} { // sorted
		data, err := os.ReadFile(filepath.Join("snippet", name))
		if err != nil {
			t.Fatalf("read the snippet's source: %v", err)
		}
		sum := sha256.Sum256(data)
		list.WriteString(name + "\x00" + hex.EncodeToString(sum[:]) + "\n")
	}
	sum := sha256.Sum256(list.Bytes())
	return hex.EncodeToString(sum[:])
}

func TestSnippetBuiltFromSource(t *testing.T) {
	recorded, err := os.ReadFile(filepath.Join("snippet", ".source-hash"))
	if err != nil {
		t.Fatalf("read snippet/.source-hash: %v", err)
	}
	if got, want := snippetSourceHash(t), strings.TrimSpace(string(recorded)); got != want {
		t.Fatalf("the snippet's source changed without a rebuild: run scripts/build-snippet\n"+
			"(its inputs hash to %s, snippet/.source-hash says %s)", got, want)
	}
	onDisk, err := os.ReadFile(filepath.Join("snippet", "hearth.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, snippetJS) {
		t.Fatal("the embedded snippet differs from snippet/hearth.min.js")
	}
}

// The snippet is loaded on every page of customers' sites: it stays under 8 KiB gzipped.
func TestSnippetSize(t *testing.T) {
	const budget = 8 << 10
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(snippetJS)
	zw.Close()
	t.Logf("hearth.min.js: %d bytes, %d gzipped", len(snippetJS), gz.Len())
	if gz.Len() > budget {
		t.Fatalf("hearth.min.js is %d bytes gzipped, over the budget of %d", gz.Len(), budget)
	}
}

func TestSnippetHandler(t *testing.T) {
	tests := []struct {
		name           string
		method         string
		acceptEncoding string
		wantStatus     int
		wantGzip       bool
	}{
		{name: "get", wantStatus: 200},
		{name: "get gzip", acceptEncoding: "gzip, deflate, br, zstd", wantStatus: 200, wantGzip: true},
		{name: "gzip with quality", acceptEncoding: "br;q=1.0, GZIP;q=0.5", wantStatus: 200, wantGzip: true},
		{name: "gzip refused", acceptEncoding: "gzip;q=0, identity", wantStatus: 200},
		{name: "other encodings only", acceptEncoding: "br, zstd", wantStatus: 200},
		{name: "head", method: http.MethodHead, wantStatus: 200},
		{name: "head gzip", method: http.MethodHead, acceptEncoding: "gzip", wantStatus: 200, wantGzip: true},
		{name: "post", method: http.MethodPost, wantStatus: 405},
	}
	h := SnippetHandler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, "/hearth.js", nil)
			if tt.acceptEncoding != "" {
				req.Header.Set("Accept-Encoding", tt.acceptEncoding)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 405 {
				if got := res.Header.Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow = %q, want GET, HEAD", got)
				}
				return
			}
			for name, want := range map[string]string{
				"Content-Type":                 "application/javascript; charset=utf-8",
				"Cache-Control":                "public, max-age=300",
				"Vary":                         "Accept-Encoding",
				"X-Content-Type-Options":       "nosniff",
				"Access-Control-Allow-Origin":  "*",
				"Cross-Origin-Resource-Policy": "cross-origin",
			} {
				if got := res.Header.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if res.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			gzipped := res.Header.Get("Content-Encoding") == "gzip"
			if gzipped != tt.wantGzip {
				t.Fatalf("Content-Encoding = %q, want gzip %v", res.Header.Get("Content-Encoding"), tt.wantGzip)
			}
			if method == http.MethodHead {
				if rec.Body.Len() != 0 {
					t.Errorf("HEAD has a body of %d bytes", rec.Body.Len())
				}
				if res.Header.Get("Content-Length") == "" {
					t.Error("HEAD has no Content-Length")
				}
				return
			}
			body := rec.Body.Bytes()
			if gzipped {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("body is not gzip: %v", err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("gunzip: %v", err)
				}
			}
			if !bytes.Equal(body, snippetJS) {
				t.Errorf("body is not hearth.min.js: %.100q", body)
			}
		})
	}
}

// A revalidation that gets a 304 keeps the snippet's short cache time (encodings and ETags: package static).
func TestSnippetHandlerNotModified(t *testing.T) {
	h := SnippetHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hearth.js", nil))
	req := httptest.NewRequest(http.MethodGet, "/hearth.js", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified || rec.Header().Get("Cache-Control") != snippetCache {
		t.Fatalf("status %d, Cache-Control %q; want 304 with %q", rec.Code, rec.Header().Get("Cache-Control"), snippetCache)
	}
}

// analytics.js is served where Segment's CDN serves it, for any write key, with the bundles it loads later;
// nothing else is.
func TestAnalyticsJSRoutes(t *testing.T) {
	mux := http.NewServeMux()
	for p, h := range AnalyticsJSRoutes() {
		mux.Handle(p, h)
	}
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}
	w := get("/analytics.js/v1/any-write-key/analytics.min.js")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/javascript") ||
		w.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(w.Body.String(), "analytics-next/bundles/") {
		t.Errorf("analytics.min.js: %d %v", w.Code, w.Header())
	}
	entries, err := os.ReadDir("analyticsjs/bundles")
	if err != nil || len(entries) == 0 {
		t.Fatalf("vendored bundles: %v %v", entries, err)
	}
	w = get("/analytics-next/bundles/" + entries[0].Name())
	if w.Code != 200 || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
		t.Errorf("a bundle: %d %v", w.Code, w.Header())
	}
	for _, path := range []string{"/analytics-next/bundles/nope.js", "/analytics-next/bundles/..%2fanalytics.min.js", "/analytics.js/v1/k/other.js"} {
		if w := get(path); w.Code != 404 {
			t.Errorf("%s: %d, want 404", path, w.Code)
		}
	}
}
