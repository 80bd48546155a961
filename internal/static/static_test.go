package static

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func request(h http.Handler, method, acceptEncoding, ifNoneMatch string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/f", nil)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("body is not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

var script = []byte(strings.Repeat("console.log('hearth');\n", 500))

func TestFileServesGzipToClientsThatAcceptIt(t *testing.T) {
	f := NewFile("application/javascript", script)
	for _, tc := range []struct {
		method, acceptEncoding string
		wantGzip               bool
	}{
		{http.MethodGet, "", false},
		{http.MethodGet, "gzip, deflate, br, zstd", true},
		{http.MethodGet, "br;q=1.0, GZIP;q=0.5", true},
		{http.MethodGet, "gzip;q=0, identity", false},
		{http.MethodGet, "br, zstd", false},
		{http.MethodHead, "gzip", true},
		{http.MethodHead, "", false},
	} {
		rec := request(f, tc.method, tc.acceptEncoding, "")
		res := rec.Result()
		name := tc.method + " " + tc.acceptEncoding
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/javascript" || res.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("%s: %d, Content-Type %q, Vary %q", name, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Vary"))
		}
		if gz := res.Header.Get("Content-Encoding") == "gzip"; gz != tc.wantGzip {
			t.Fatalf("%s: Content-Encoding %q, want gzip %v", name, res.Header.Get("Content-Encoding"), tc.wantGzip)
		}
		if tc.method == http.MethodHead {
			if rec.Body.Len() != 0 || res.Header.Get("Content-Length") == "" {
				t.Errorf("%s: a body of %d bytes, Content-Length %q", name, rec.Body.Len(), res.Header.Get("Content-Length"))
			}
			continue
		}
		body := rec.Body.Bytes()
		if got := res.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
			t.Errorf("%s: Content-Length %q for %d bytes", name, got, len(body))
		}
		if tc.wantGzip {
			if len(body) >= len(script)/10 {
				t.Errorf("%s: %d gzipped bytes of %d", name, len(body), len(script))
			}
			body = gunzip(t, body)
		}
		if !bytes.Equal(body, script) {
			t.Errorf("%s: body is not the file", name)
		}
	}
}

// Bytes that gzip cannot shrink (an image, a font) are served as they are, whatever the client accepts.
func TestFileLeavesIncompressibleBytesAlone(t *testing.T) {
	noise := make([]byte, 4096)
	rand.Read(noise)
	rec := request(NewFile("image/png", noise), http.MethodGet, "gzip", "")
	if rec.Header().Get("Content-Encoding") != "" || !bytes.Equal(rec.Body.Bytes(), noise) {
		t.Fatalf("Content-Encoding %q, %d bytes; want the file as it is", rec.Header().Get("Content-Encoding"), rec.Body.Len())
	}
}

func TestFileConditionalGet(t *testing.T) {
	f := NewFile("application/javascript", script)
	plainTag := request(f, http.MethodGet, "", "").Header().Get("ETag")
	gzipTag := request(f, http.MethodGet, "gzip", "").Header().Get("ETag")
	if plainTag == "" || gzipTag == "" || plainTag == gzipTag {
		t.Fatalf("ETags: plain %q, gzip %q; want two different ones", plainTag, gzipTag)
	}
	for _, tc := range []struct {
		name, acceptEncoding, ifNoneMatch string
		want                              int
	}{
		{"plain, same", "", plainTag, 304},
		{"gzip, same", "gzip", gzipTag, 304},
		{"gzip, weakened by a proxy", "gzip", "W/" + gzipTag, 304},
		{"one of several", "", `"old", ` + plainTag, 304},
		{"the other encoding's", "gzip", plainTag, 200},
		{"an old file", "", `"0123456789abcdef01234567"`, 200},
	} {
		if got := request(f, http.MethodGet, tc.acceptEncoding, tc.ifNoneMatch).Code; got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

// A range of the gzipped file has the range's length, not the whole file's.
func TestFileRange(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/f", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Range", "bytes=0-9")
	rec := httptest.NewRecorder()
	NewFile("text/plain", script).ServeHTTP(rec, req)
	if rec.Code != http.StatusPartialContent || rec.Header().Get("Content-Length") != "10" || rec.Body.Len() != 10 {
		t.Fatalf("status %d, Content-Length %q, %d bytes; want 206 with 10 bytes", rec.Code, rec.Header().Get("Content-Length"), rec.Body.Len())
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"x-gzip", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"gzip ; q=0.001", true},
		{"gzip;q=0", false},
		{"gzip;q=0.000", false},
		{"identity", false},
		{"gzipped", false},
		{"br", false},
	}
	for _, tt := range tests {
		if got := AcceptsGzip(tt.header); got != tt.want {
			t.Errorf("AcceptsGzip(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}
