package collect

import (
	_ "embed"
	"net/http"

	"github.com/hearth-cdp/hearth/internal/static"
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
// It answers GET and HEAD, gzipped when the client accepts gzip, with an ETag per encoding, so If-None-Match
// gets a 304. It may be loaded from any site, with or without crossorigin.
func SnippetHandler() http.Handler {
	return &snippetHandler{file: static.NewFile("application/javascript; charset=utf-8", snippetJS)}
}

type snippetHandler struct {
	file *static.File
}

func (h *snippetHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", snippetCache)
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Pages may load it with crossorigin="anonymous" (for Subresource Integrity, or to see its errors), and
	// pages that require Cross-Origin-Resource-Policy (COEP) may load it at all.
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.file.ServeHTTP(w, r)
}
