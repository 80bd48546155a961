// Package static serves files held in memory, such as the embedded console and the browser snippet: each with
// a strong ETag, answering HEAD, ranges and If-None-Match, and gzipped for clients that accept it.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// File is one file's content, served as is or gzipped. The gzipped form is made on the first request that
// accepts it, not at start: the console's files take tens of milliseconds to compress at the best level.
type File struct {
	contentType string
	plain       variant

	gzipOnce sync.Once
	gzipped  *variant // nil when gzip would not make the file smaller enough to be worth it
}

type variant struct {
	data []byte
	etag string
}

// NewFile holds data, served with contentType. The caller must not change data afterwards.
func NewFile(contentType string, data []byte) *File {
	sum := sha256.Sum256(data)
	return &File{contentType: contentType, plain: variant{data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}}
}

// minSaving is the share of the bytes gzip must save to be used: images and fonts are compressed already.
const minSaving = 0.1

func (f *File) gzip() *variant {
	f.gzipOnce.Do(func() {
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // the level is valid: no error
		zw.Write(f.plain.data)                                  // a bytes.Buffer does not fail
		zw.Close()
		if float64(gz.Len()) > float64(len(f.plain.data))*(1-minSaving) {
			return
		}
		// A strong ETag names one representation: the gzipped bytes get their own.
		f.gzipped = &variant{data: gz.Bytes(), etag: strings.TrimSuffix(f.plain.etag, `"`) + `-gz"`}
	})
	return f.gzipped
}

// ServeHTTP writes the file, gzipped if the request accepts gzip and that makes it smaller, with its
// Content-Type, ETag, Content-Length and Vary: Accept-Encoding. Other headers (Cache-Control) are the
// caller's, set before. http.ServeContent answers HEAD, ranges and If-None-Match.
func (f *File) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Add("Vary", "Accept-Encoding")
	v := &f.plain
	if AcceptsGzip(r.Header.Get("Accept-Encoding")) {
		if gz := f.gzip(); gz != nil {
			v = gz
			hdr.Set("Content-Encoding", "gzip")
		}
	}
	hdr.Set("ETag", v.etag)
	// ServeContent leaves Content-Length out when Content-Encoding is set; it replaces this one for a range.
	hdr.Set("Content-Length", strconv.Itoa(len(v.data)))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(v.data))
}

// AcceptsGzip reports whether an Accept-Encoding header lists gzip (or x-gzip) with a non-zero quality.
func AcceptsGzip(header string) bool {
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
