package collect

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// snippetJS is the browser snippet, minified by scripts/build-snippet from snippet/hearth.js.
//
//go:embed snippet/hearth.min.js
var snippetJS []byte

// snippetCache is short so that a new snippet reaches customers' sites within minutes; the ETag makes the
// revalidation after that a 304.
const snippetCache = "public, max-age=300"

// SnippetHandler serves the browser snippet. Mount it at GET /hearth.js: customers' pages load it with
// <script src="https://HEARTH/hearth.js" data-write-key="…" async></script> (see docs/snippet.md).
//
// It answers GET and HEAD, gzipped when the client accepts gzip (compressed once, here), with an ETag per
// encoding, so If-None-Match gets a 304. It may be loaded from any site, with or without crossorigin.
func SnippetHandler() http.Handler {
	return newSnippetHandler(snippetJS)
}

type snippetVariant struct {
	data []byte
	etag string
}

type snippetHandler struct {
	plain, gzipped snippetVariant
}

func newSnippetHandler(js []byte) *snippetHandler {
	sum := sha256.Sum256(js)
	tag := hex.EncodeToString(sum[:12])
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // the level is valid: no error
	zw.Write(js)                                            // a bytes.Buffer does not fail
	zw.Close()
	return &snippetHandler{
		plain: snippetVariant{data: js, etag: `"` + tag + `"`},
		// A strong ETag names one representation: the gzipped bytes get their own.
		gzipped: snippetVariant{data: gz.Bytes(), etag: `"` + tag + `-gz"`},
	}
}

func (h *snippetHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/javascript; charset=utf-8")
	hdr.Set("Cache-Control", snippetCache)
	hdr.Set("Vary", "Accept-Encoding")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Pages may load it with crossorigin="anonymous" (for Subresource Integrity, or to see its errors), and
	// pages that require Cross-Origin-Resource-Policy (COEP) may load it at all.
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Cross-Origin-Resource-Policy", "cross-origin")
	v := h.plain
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		v = h.gzipped
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("ETag", v.etag)
	// ServeContent leaves Content-Length out when Content-Encoding is set; it replaces this one for a range.
	hdr.Set("Content-Length", strconv.Itoa(len(v.data)))
	// ServeContent answers HEAD, ranges and If-None-Match (against the ETag above).
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(v.data))
}

// acceptsGzip reports whether an Accept-Encoding header lists gzip (or x-gzip) with a non-zero quality.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" {
			continue
		}
		for param := range strings.SplitSeq(params, ";") {
			name, value, _ := strings.Cut(param, "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil && q <= 0 {
					return false
				}
			}
		}
		return true
	}
	return false
}
