package touchpoint

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/hearth-cdp/hearth"
)

// Code is one item of a per-item code batch, such as one business card of ten thousand.
type Code struct {
	Serial int64  // printed beside the code; unique in its batch
	Token  string // the signed token in URL
	URL    string // the touch link the QR code holds
}

const (
	batchManifestName = "manifest.csv"
	maxBatchNameRunes = 64
	// batchAhead is how many images each worker may draw before the ZIP writer takes them: enough to ride
	// out one slow image, few enough that memory stays flat however large the batch.
	batchAhead = 4
)

// WriteCodeBatch writes a ZIP of one QR code image per code, named "{name}-{serial}.{format}" with serials
// zero-padded to the widest, and a manifest.csv of serial, token, url and file. Images are drawn on
// GOMAXPROCS workers and written in order as they come, so memory does not grow with the batch.
// Options and every code are checked before the first byte is written, so a bad batch fails with an
// Invalid error that a caller can still report instead of a broken download. progress, if not nil, is
// called with the number of images written about every 1% and at the end, from the caller's goroutine.
func WriteCodeBatch(ctx context.Context, w io.Writer, name string, codes []Code, format QRFormat, o QROptions, progress func(done int)) error {
	o, err := o.Normalize()
	if err != nil {
		return err
	}
	if err := checkQRFormat(format); err != nil {
		return err
	}
	files, err := batchFileNames(sanitizeBatchName(name), codes, format)
	if err != nil {
		return err
	}
	for _, c := range codes {
		if _, _, err := planQR(c.URL, o); err != nil {
			return codeError(c, err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // no worker outlives the call
	defer cancel()  // runs first: stops the workers when we return early

	workers := max(1, min(runtime.GOMAXPROCS(0), len(codes)))
	results := make([]chan renderedCode, workers)
	buffers := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	for k := range results {
		results[k] = make(chan renderedCode, batchAhead)
		wg.Go(func() { renderCodes(ctx, codes, k, workers, format, o, &buffers, results[k]) })
	}

	modified := time.Now() // the files' date in the archive: when it was made, rather than 1980
	zw := zip.NewWriter(w)
	if err := writeBatchManifest(zw, codes, files, modified); err != nil {
		return err
	}
	method := zip.Store // PNG is compressed already
	if format == QRSVG {
		method = zip.Deflate
	}
	step := max(1, len(codes)/100)
	reported := -1
	for i, c := range codes {
		var rc renderedCode
		select {
		case rc = <-results[i%workers]:
		case <-ctx.Done():
			return fmt.Errorf("touchpoint: code batch %s: %w", files[i], ctx.Err())
		}
		if rc.err != nil {
			return codeError(c, rc.err)
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: files[i], Method: method, Modified: modified})
		if err != nil {
			return fmt.Errorf("touchpoint: code batch %s: %w", files[i], err)
		}
		if _, err := fw.Write(rc.image.Bytes()); err != nil {
			return fmt.Errorf("touchpoint: code batch %s: %w", files[i], err)
		}
		buffers.Put(rc.image)
		if done := i + 1; progress != nil && (done%step == 0 || done == len(codes)) {
			progress(done)
			reported = done
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("touchpoint: code batch: %w", err)
	}
	if progress != nil && reported != len(codes) {
		progress(len(codes)) // an empty batch is done too
	}
	return nil
}

// renderedCode is one drawn image, or why it could not be drawn.
type renderedCode struct {
	image *bytes.Buffer
	err   error
}

// renderCodes draws every workers-th code from first, in order, into out. Striping the codes over the
// workers this way lets the writer take image i from out[i%workers] without any reordering.
func renderCodes(ctx context.Context, codes []Code, first, workers int, format QRFormat, o QROptions, buffers *sync.Pool, out chan<- renderedCode) {
	var r qrRenderer
	for i := first; i < len(codes); i += workers {
		if ctx.Err() != nil {
			return
		}
		buf := buffers.Get().(*bytes.Buffer)
		buf.Reset()
		err := r.write(buf, format, codes[i].URL, o)
		select {
		case out <- renderedCode{image: buf, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func writeBatchManifest(zw *zip.Writer, codes []Code, files []string, modified time.Time) error {
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: batchManifestName, Method: zip.Deflate, Modified: modified})
	if err != nil {
		return fmt.Errorf("touchpoint: code batch manifest: %w", err)
	}
	cw := csv.NewWriter(fw)
	if err := cw.Write([]string{"serial", "token", "url", "file"}); err != nil {
		return fmt.Errorf("touchpoint: code batch manifest: %w", err)
	}
	for i, c := range codes {
		if err := cw.Write([]string{strconv.FormatInt(c.Serial, 10), c.Token, c.URL, files[i]}); err != nil {
			return fmt.Errorf("touchpoint: code batch manifest: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("touchpoint: code batch manifest: %w", err)
	}
	return nil
}

// batchFileNames returns each code's image file name, with serials padded to the width of the largest so
// that the files sort in serial order.
func batchFileNames(name string, codes []Code, format QRFormat) ([]string, error) {
	var largest int64
	seen := make(map[int64]bool, len(codes))
	for _, c := range codes {
		if c.Serial < 0 {
			return nil, hearth.Errorf(hearth.Invalid, "touchpoint.batch", "Serial numbers cannot be negative (got %d).", c.Serial)
		}
		if seen[c.Serial] {
			return nil, hearth.Errorf(hearth.Invalid, "touchpoint.batch", "Serial number %d appears twice in the batch.", c.Serial)
		}
		seen[c.Serial] = true
		largest = max(largest, c.Serial)
	}
	width := len(strconv.FormatInt(largest, 10))
	files := make([]string, len(codes))
	for i, c := range codes {
		files[i] = fmt.Sprintf("%s-%0*d.%s", name, width, c.Serial, format)
	}
	return files, nil
}

// sanitizeBatchName makes name safe as the start of a file name on any system: letters and digits of any
// script stay, every other run of characters (path separators, dots, spaces, control characters) becomes
// one dash.
func sanitizeBatchName(name string) string {
	var b strings.Builder
	runes := 0
	pendingDash := false
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '_') {
			pendingDash = b.Len() > 0
			continue
		}
		if pendingDash {
			b.WriteByte('-')
			runes++
			pendingDash = false
		}
		if runes >= maxBatchNameRunes {
			break
		}
		b.WriteRune(r)
		runes++
	}
	if b.Len() == 0 {
		return "codes"
	}
	return strings.TrimSuffix(b.String(), "-")
}

// codeError says which code of a batch failed, in the message a marketer sees as well as in the chain.
func codeError(c Code, err error) error {
	return &hearth.Error{Kind: hearth.KindOf(err), Op: "touchpoint.batch",
		Msg: fmt.Sprintf("Code %d: %s", c.Serial, hearth.MessageOf(err)), Err: err}
}
