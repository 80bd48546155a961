// Package console serves the web console: the single-page app built from web/console by
// scripts/build-console into dist/, embedded in the binary.
package console

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/hearth-cdp/hearth/internal/static"
)

//go:embed all:dist
var distFS embed.FS

// Prefix is the path the console lives under. Handler expects request paths that still carry it.
const Prefix = "/console/"

const indexFile = "index.html"

// contentSecurityPolicy allows the console's own scripts, styles and API calls, and nothing else but WeChat's
// QR code images (a parametric code's image is served by WeChat).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https://mp.weixin.qq.com; " +
	"connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// SourceHash reports the hash of the web/console sources that dist was built from (see
// web/console/scripts/source-hash.mjs), or "" if the build did not record one.
func SourceHash() string {
	b, err := distFS.ReadFile("dist/.source-hash")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Handler serves the console. Mount it at Prefix without stripping it: mux.Handle("/console/", console.Handler()).
//
//   - Files of the build are served with their content type, gzipped to clients that accept it (package
//     static). Those under assets/ have content hashes in their names and are cached for a year; other files
//     (index.html, favicon.svg) are revalidated on every use.
//   - A path under assets/ that is not a file is 404: a missing script must not be answered with HTML.
//   - Any other path under the prefix is a client-side route and gets index.html (the SPA fallback).
//   - Paths outside the prefix are 404; "/console" redirects to "/console/"; methods other than GET and HEAD are 405.
func Handler() http.Handler {
	return newHandler(distFS, "dist")
}

type handler struct {
	files map[string]*static.File // by slash-separated name relative to the build root; dot files left out
}

func newHandler(fsys fs.FS, root string) *handler {
	h := &handler{files: map[string]*static.File{}}
	// The embedded tree cannot change, so a read error here is a broken build: it then serves nothing.
	_ = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		name := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if hidden(name) {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		h.files[name] = static.NewFile(ctype, data)
		return nil
	})
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	// Clean removes "." and ".." elements; names are only ever looked up in the map of built files.
	name := strings.TrimPrefix(path.Clean("/"+rel), "/")

	w.Header().Set("X-Content-Type-Options", "nosniff")
	if f, ok := h.files[name]; ok && name != indexFile {
		if strings.HasPrefix(name, "assets/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		f.ServeHTTP(w, r)
		return
	}
	if name == "assets" || strings.HasPrefix(name, "assets/") {
		http.NotFound(w, r)
		return
	}

	index, ok := h.files[indexFile]
	if !ok {
		http.Error(w, "console not built: run scripts/build-console", http.StatusNotFound)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	index.ServeHTTP(w, r)
}

// hidden reports whether an element of name starts with a dot (.source-hash): build metadata, not content.
func hidden(name string) bool {
	for part := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	return false
}
