package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// sourceHash computes the hash of the console sources exactly as web/console/scripts/source-hash.mjs does:
// every file under dir except the top-level node_modules/ and dist/, sorted by slash-separated relative path
// (byte order); for each, path + "\x00" + hex(sha256(bytes)) + "\n"; the hex sha256 of the whole.
func sourceHash(t *testing.T, dir string) string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "node_modules" || rel == "dist" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			t.Fatalf("%s is neither a file nor a folder", rel)
		}
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("walk console sources: %v", err)
	}
	slices.Sort(paths) // Go strings compare as bytes, like the Buffer.compare in source-hash.mjs
	var list bytes.Buffer
	for _, p := range paths {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		sum := sha256.Sum256(data)
		list.WriteString(p + "\x00" + hex.EncodeToString(sum[:]) + "\n")
	}
	sum := sha256.Sum256(list.Bytes())
	return hex.EncodeToString(sum[:])
}

func TestDistBuiltFromSources(t *testing.T) {
	dir := filepath.Join("..", "..", "web", "console")
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		t.Fatalf("console sources not found at %s: %v", dir, err)
	}
	got := sourceHash(t, dir)
	if want := SourceHash(); got != want {
		t.Fatalf("console sources changed without a rebuild: run scripts/build-console\n"+
			"(sources hash to %s, internal/console/dist/.source-hash says %q)", got, want)
	}
}

func TestSourceHash(t *testing.T) {
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(SourceHash()) {
		t.Fatalf("SourceHash() = %q, want 64 hex digits", SourceHash())
	}
}

// assets returns the names of the built JS and CSS files, as index.html references them.
func assets(t *testing.T) (js, css string) {
	t.Helper()
	index, err := distFS.ReadFile("dist/index.html")
	if err != nil {
		t.Fatalf("read index.html: %v", err)
	}
	m := regexp.MustCompile(`src="/console/(assets/[^"]+\.js)"`).FindSubmatch(index)
	if m == nil {
		t.Fatalf("index.html names no script under /console/assets/:\n%s", index)
	}
	js = string(m[1])
	m = regexp.MustCompile(`href="/console/(assets/[^"]+\.css)"`).FindSubmatch(index)
	if m == nil {
		t.Fatalf("index.html names no stylesheet under /console/assets/:\n%s", index)
	}
	return js, string(m[1])
}

func TestHandler(t *testing.T) {
	js, css := assets(t)
	index, err := distFS.ReadFile("dist/index.html")
	if err != nil {
		t.Fatal(err)
	}

	const immutable = "public, max-age=31536000, immutable"
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantType   string // substring of Content-Type
		wantCache  string
		wantIndex  bool // body is index.html
	}{
		{name: "script asset", path: "/console/" + js, wantStatus: 200, wantType: "javascript", wantCache: immutable},
		{name: "stylesheet asset", path: "/console/" + css, wantStatus: 200, wantType: "text/css", wantCache: immutable},
		{name: "index", path: "/console/", wantStatus: 200, wantType: "text/html", wantCache: "no-cache", wantIndex: true},
		{name: "index by name", path: "/console/index.html", wantStatus: 200, wantType: "text/html", wantCache: "no-cache", wantIndex: true},
		{name: "SPA route", path: "/console/sources", wantStatus: 200, wantType: "text/html", wantCache: "no-cache", wantIndex: true},
		{name: "nested SPA route", path: "/console/sources/01J9ZX", wantStatus: 200, wantType: "text/html", wantCache: "no-cache", wantIndex: true},
		{name: "SPA route with dot", path: "/console/team/a.b", wantStatus: 200, wantType: "text/html", wantCache: "no-cache", wantIndex: true},
		{name: "head", method: http.MethodHead, path: "/console/sources", wantStatus: 200, wantType: "text/html", wantCache: "no-cache"},
		{name: "public file", path: "/console/favicon.svg", wantStatus: 200, wantType: "image/svg+xml", wantCache: "no-cache"},
		{name: "build metadata is not served", path: "/console/.source-hash", wantStatus: 200, wantType: "text/html", wantIndex: true, wantCache: "no-cache"},
		{name: "dot dot stays inside", path: "/console/../console/sources", wantStatus: 200, wantType: "text/html", wantIndex: true, wantCache: "no-cache"},
		{name: "missing asset", path: "/console/assets/index-missing.js", wantStatus: 404},
		{name: "assets folder", path: "/console/assets/", wantStatus: 404},
		{name: "outside the prefix", path: "/api/v1/sources", wantStatus: 404},
		{name: "post", method: http.MethodPost, path: "/console/sources", wantStatus: 405},
		{name: "no trailing slash", path: "/console", wantStatus: 301},
	}
	h := Handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, "http://hearth.test"+tt.path, nil)
			req.URL.Path = tt.path // keep ".." as a raw client could send it
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if tt.wantType != "" && !strings.Contains(res.Header.Get("Content-Type"), tt.wantType) {
				t.Errorf("Content-Type = %q, want it to contain %q", res.Header.Get("Content-Type"), tt.wantType)
			}
			if tt.wantCache != "" && res.Header.Get("Cache-Control") != tt.wantCache {
				t.Errorf("Cache-Control = %q, want %q", res.Header.Get("Cache-Control"), tt.wantCache)
			}
			if tt.wantIndex && !bytes.Equal(rec.Body.Bytes(), index) {
				t.Errorf("body is not index.html:\n%.200s", rec.Body.String())
			}
			if tt.wantStatus == 301 && res.Header.Get("Location") != "/console/" {
				t.Errorf("Location = %q, want /console/", res.Header.Get("Location"))
			}
			if tt.wantStatus == 405 && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q, want GET, HEAD", res.Header.Get("Allow"))
			}
		})
	}
}

func TestHandlerIndexHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/console/login", nil))
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if rec.Header().Get(h) == "" {
			t.Errorf("index.html is served without %s", h)
		}
	}
}

func TestHandlerConditionalGet(t *testing.T) {
	js, _ := assets(t)
	h := Handler()
	for _, p := range []string{"/console/" + js, "/console/", "/console/sources"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		etag := rec.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", p)
		}
		req := httptest.NewRequest(http.MethodGet, p, nil)
		req.Header.Set("If-None-Match", etag)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: status %d, want 304", p, rec.Code)
		}
	}
}

// The console's script, stylesheet and page go gzipped to browsers, which all accept it: a fraction of the bytes.
func TestHandlerGzip(t *testing.T) {
	js, css := assets(t)
	h := Handler()
	for _, p := range []string{"/console/" + js, "/console/" + css, "/console/", "/console/people"} {
		req := httptest.NewRequest(http.MethodGet, p, nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("GET %s: status %d, Content-Encoding %q; want 200 gzip", p, rec.Code, rec.Header().Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		name := strings.TrimPrefix(p, Prefix)
		if !strings.HasPrefix(name, "assets/") {
			name = indexFile
		}
		want, err := distFS.ReadFile("dist/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(plain, want) {
			t.Errorf("GET %s: the gzipped body is not %s", p, name)
		}
	}
}

// The handler works when mounted the documented way, on a ServeMux at the prefix without stripping it.
func TestHandlerMounted(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(Prefix, Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := srv.Client().Get(srv.URL + "/console/api-keys")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /console/api-keys: %d %s, want 200 text/html", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
