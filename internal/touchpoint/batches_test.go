package touchpoint_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"image"
	"image/png"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

// batchEnv is the touchpoint service on a real SQLite store, with a business card touchpoint.
type batchEnv struct {
	db    *store.DB
	clock *storetest.Clock
	svc   *touchpoint.Service
	tp    touchpoint.Touchpoint
}

func newBatchEnv(t testing.TB) *batchEnv {
	t.Helper()
	return newBatchEnvWith(t, touchpoint.Options{PublicURL: "https://go.example"})
}

func newBatchEnvWith(t testing.TB, opts touchpoint.Options) *batchEnv {
	t.Helper()
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
	db := storetest.SQLite(t, clock)
	master, err := touchpoint.ParseMasterKey(strings.Repeat("k", 43) + "=")
	if err != nil {
		t.Fatal(err)
	}
	svc := touchpoint.NewService(db, master, clock, opts)
	if err := svc.LoadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	tp, err := svc.CreateTouchpoint(ctx, touchpoint.Touchpoint{Name: "Li Lei's card", Channel: touchpoint.ChannelCard, DestinationURL: "https://shop.example/"})
	if err != nil {
		t.Fatal(err)
	}
	return &batchEnv{db: db, clock: clock, svc: svc, tp: tp}
}

// run runs the waiting batches and checks how many there were.
func (e *batchEnv) run(t *testing.T, want int) {
	t.Helper()
	n, err := e.svc.RunCodeBatches(t.Context())
	if err != nil {
		t.Fatalf("RunCodeBatches: %v", err)
	}
	if n != want {
		t.Fatalf("RunCodeBatches ran %d batches, want %d", n, want)
	}
}

// die has n nodes in turn claim the waiting batch and die before their lease ends.
func (e *batchEnv) die(t *testing.T, n int) {
	t.Helper()
	for range n {
		if _, ok, err := e.db.ClaimCodeBatch(t.Context(), e.clock.Now(), e.clock.Now().Add(time.Minute)); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		e.clock.Advance(2 * time.Minute)
	}
}

func (e *batchEnv) batch(t *testing.T, id string) touchpoint.CodeBatch {
	t.Helper()
	b, err := e.svc.CodeBatch(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantKind(t *testing.T, err error, kind hearth.Kind) {
	t.Helper()
	if got := hearth.KindOf(err); err == nil || got != kind {
		t.Fatalf("error = %v (kind %v), want kind %v", err, got, kind)
	}
}

// A batch's ZIP holds exactly its reserved serials, each with a genuine token of that serial, in a QR code
// that a phone reads as its touch link.
func TestCodeBatch(t *testing.T) {
	e := newBatchEnv(t)
	ctx := t.Context()
	if _, err := e.svc.IssueSerials(ctx, e.tp.ID, 5, time.Time{}); err != nil { // codes issued one by one before
		t.Fatal(err)
	}
	expires := e.clock.Now().Add(90*24*time.Hour + 30*time.Second)
	b, err := e.svc.CreateCodeBatch(ctx, e.tp.ID, 300, "", touchpoint.QROptions{}, expires)
	if err != nil {
		t.Fatal(err)
	}
	if b.FirstSerial != 6 || b.LastSerial() != 305 || b.Status != touchpoint.BatchPending || b.Format != touchpoint.QRPNG ||
		b.Options != (touchpoint.QROptions{Size: 512, Margin: 4, Level: "M"}) || !b.ExpiresAt.Equal(expires.Truncate(time.Minute)) {
		t.Fatalf("created %+v", b)
	}
	tp, err := e.svc.Touchpoint(ctx, e.tp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tp.LastSerial != 305 {
		t.Errorf("the touchpoint's last serial is %d after the batch, want 305", tp.LastSerial)
	}
	_, _, err = e.svc.CodeBatchZIP(ctx, b.ID)
	wantKind(t, err, hearth.Conflict)

	// A new signing key after the batch was created does not change its codes.
	if _, err := e.svc.RotateKey(ctx); err != nil {
		t.Fatal(err)
	}
	e.run(t, 1)
	e.run(t, 0)
	b, data, err := e.svc.CodeBatchZIP(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != touchpoint.BatchDone || b.Done != 300 || b.Attempts != 1 || b.ZIPSize != int64(len(data)) || b.StartedAt == nil || b.FinishedAt == nil {
		t.Errorf("after running: %+v", b)
	}

	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	manifest := readAll(t, files["manifest.csv"])
	rows, err := csv.NewReader(bytes.NewReader(manifest)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 301 || strings.Join(rows[0], ",") != "serial,token,url,file" {
		t.Fatalf("manifest has %d rows, header %v", len(rows), rows[0])
	}
	if len(zr.File) != 301 {
		t.Errorf("the ZIP has %d files, want 300 images and the manifest", len(zr.File))
	}
	for i, row := range rows[1:] {
		serial, token, url, file := row[0], row[1], row[2], row[3]
		want := int64(6 + i)
		if serial != strconv.FormatInt(want, 10) {
			t.Fatalf("manifest row %d has serial %s, want %d", i+1, serial, want)
		}
		tok, err := e.svc.Keyring().Verify(token)
		if err != nil {
			t.Fatalf("serial %s: token %s: %v", serial, token, err)
		}
		if tok.Number != e.tp.Number || tok.Serial != want || tok.KeyID != b.KeyID || !tok.Expires.Equal(*b.ExpiresAt) {
			t.Errorf("serial %s: token says %+v; want touchpoint %d, serial %d, key %d, expiry %v", serial, tok, e.tp.Number, want, b.KeyID, *b.ExpiresAt)
		}
		if url != e.svc.Link(token) {
			t.Errorf("serial %s: url %s, want %s", serial, url, e.svc.Link(token))
		}
		if files[file] == nil {
			t.Errorf("serial %s: no file %s in the ZIP", serial, file)
		}
		if i%37 != 0 && i != 299 {
			continue
		}
		img, err := png.Decode(bytes.NewReader(readAll(t, files[file])))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got := decodeQR(t, img); got != url {
			t.Errorf("%s holds %q, want %q", file, got, url)
		}
	}
	list, err := e.svc.CodeBatches(ctx, e.tp.ID)
	if err != nil || len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("CodeBatches = %v, %v", list, err)
	}
	_, err = e.svc.CodeBatches(ctx, hearth.NewID())
	wantKind(t, err, hearth.NotFound)
	_, _, err = e.svc.CodeBatchZIP(ctx, hearth.NewID())
	wantKind(t, err, hearth.NotFound)
}

func readAll(t *testing.T, f *zip.File) []byte {
	t.Helper()
	if f == nil {
		t.Fatal("no such file in the ZIP")
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeQR reads a QR code. The codes hold random tokens, and gozxing's finder-pattern detector misreads about
// one random code in 250, so it reads the pure image's modules straight off the grid; qr_test.go checks that
// the detector reads Hearth's images.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}

func TestCreateCodeBatchInvalid(t *testing.T) {
	e := newBatchEnv(t)
	past := e.clock.Now().Add(-time.Minute)
	tests := []struct {
		name    string
		count   int64
		format  touchpoint.QRFormat
		opts    touchpoint.QROptions
		expires time.Time
	}{
		{"no codes", 0, "png", touchpoint.QROptions{}, time.Time{}},
		{"too many codes", touchpoint.MaxSerialBatch + 1, "png", touchpoint.QROptions{}, time.Time{}},
		{"unknown format", 10, "gif", touchpoint.QROptions{}, time.Time{}},
		{"tiny", 10, "png", touchpoint.QROptions{Size: 10}, time.Time{}},
		{"unknown level", 10, "svg", touchpoint.QROptions{Level: "X"}, time.Time{}},
		{"expired", 10, "png", touchpoint.QROptions{}, past},
		{"link does not fit", 10, "png", touchpoint.QROptions{Size: 64, Margin: 16, Level: "H"}, time.Time{}},
		{"ZIP too large", touchpoint.MaxSerialBatch, "png", touchpoint.QROptions{Size: 4096}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateCodeBatch(t.Context(), e.tp.ID, tc.count, tc.format, tc.opts, tc.expires)
			wantKind(t, err, hearth.Invalid)
			if msg := hearth.MessageOf(err); strings.Contains(msg, "..") || strings.Contains(msg, ".;") || strings.Contains(msg, "; The") {
				t.Errorf("message %q", msg)
			}
		})
	}
	// Every problem at once.
	_, err := e.svc.CreateCodeBatch(t.Context(), e.tp.ID, 0, "gif", touchpoint.QROptions{Size: 1}, past)
	wantKind(t, err, hearth.Invalid)
	for _, want := range []string{"count", "format", "size", "expires_at"} {
		if !strings.Contains(strings.ToLower(hearth.MessageOf(err)), want) {
			t.Errorf("%q does not mention %s", hearth.MessageOf(err), want)
		}
	}
	_, err = e.svc.CreateCodeBatch(t.Context(), hearth.NewID(), 10, "png", touchpoint.QROptions{}, time.Time{})
	wantKind(t, err, hearth.NotFound)
	if tp, _ := e.svc.Touchpoint(t.Context(), e.tp.ID); tp.LastSerial != 0 {
		t.Errorf("refused batches reserved %d serials", tp.LastSerial)
	}
}

// A batch whose worker died is taken over once its lease lapses, and drawn again from the start.
func TestCodeBatchLeaseTakenOver(t *testing.T) {
	e := newBatchEnv(t)
	ctx := t.Context()
	b, err := e.svc.CreateCodeBatch(ctx, e.tp.ID, 20, touchpoint.QRSVG, touchpoint.QROptions{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// A node claims it, and dies.
	if _, ok, err := e.db.ClaimCodeBatch(ctx, e.clock.Now(), e.clock.Now().Add(time.Minute)); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	e.run(t, 0) // its lease holds
	e.clock.Advance(time.Minute + time.Second)
	e.run(t, 1)
	b = e.batch(t, b.ID)
	if b.Status != touchpoint.BatchDone || b.Attempts != 2 || b.Done != 20 {
		t.Errorf("after the takeover: %+v", b)
	}
}

// A batch that keeps killing its node is given up on, with a message.
func TestCodeBatchGivenUp(t *testing.T) {
	e := newBatchEnv(t)
	ctx := t.Context()
	b, err := e.svc.CreateCodeBatch(ctx, e.tp.ID, 1, "", touchpoint.QROptions{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	e.die(t, 5)
	e.run(t, 1)
	b = e.batch(t, b.ID)
	if b.Status != touchpoint.BatchFailed || !strings.Contains(b.Error, "5 times") {
		t.Errorf("after 5 deaths: %s %q", b.Status, b.Error)
	}
	_, _, err = e.svc.CodeBatchZIP(ctx, b.ID)
	wantKind(t, err, hearth.Conflict)
}

// A batch whose key was retired before it ran fails, rather than making codes that would not work.
func TestCodeBatchKeyRetired(t *testing.T) {
	e := newBatchEnv(t)
	ctx := t.Context()
	b, err := e.svc.CreateCodeBatch(ctx, e.tp.ID, 3, "", touchpoint.QROptions{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RotateKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RetireKey(ctx, b.KeyID); err != nil {
		t.Fatal(err)
	}
	e.run(t, 1)
	b = e.batch(t, b.ID)
	if b.Status != touchpoint.BatchFailed || !strings.Contains(b.Error, "retired") {
		t.Errorf("%s %q, want failed because its key was retired", b.Status, b.Error)
	}
}

// A shutdown in the middle of a batch gives it back to the queue at once.
func TestCodeBatchShutdown(t *testing.T) {
	e := newBatchEnv(t)
	b, err := e.svc.CreateCodeBatch(t.Context(), e.tp.ID, 2000, "", touchpoint.QROptions{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.svc.RunCodeBatches(ctx); err != nil {
		t.Fatal(err)
	}
	b = e.batch(t, b.ID)
	if b.Status != touchpoint.BatchPending || b.ClaimedUntil != nil {
		t.Fatalf("after a shutdown: %+v", b)
	}
	e.run(t, 1)
	if b = e.batch(t, b.ID); b.Status != touchpoint.BatchDone || b.Attempts != 2 {
		t.Errorf("after the restart: %s, attempt %d", b.Status, b.Attempts)
	}
}

// BenchmarkCodeBatch10kEndToEnd creates and runs a batch of 10,000 PNG codes at the default size on SQLite:
// validation, the serial reservation, signing, drawing, the ZIP and storing it. The target is 10 s a batch.
func BenchmarkCodeBatch10kEndToEnd(b *testing.B) {
	e := newBatchEnv(b)
	ctx := context.Background()
	var size int64
	start := time.Now()
	for b.Loop() {
		batch, err := e.svc.CreateCodeBatch(ctx, e.tp.ID, 10_000, touchpoint.QRPNG, touchpoint.QROptions{}, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		if n, err := e.svc.RunCodeBatches(ctx); err != nil || n != 1 {
			b.Fatalf("RunCodeBatches = %d, %v", n, err)
		}
		done, err := e.svc.CodeBatch(ctx, batch.ID)
		if err != nil || done.Status != touchpoint.BatchDone {
			b.Fatalf("batch %+v, %v", done, err)
		}
		size = done.ZIPSize
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/batch")
	b.ReportMetric(float64(size)/(1<<20), "MB/zip")
}

// manifestOf is the manifest.csv of a batch's ZIP.
func manifestOf(t *testing.T, e *batchEnv, id string) []byte {
	t.Helper()
	_, data, err := e.svc.CodeBatchZIP(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == "manifest.csv" {
			return readAll(t, f)
		}
	}
	t.Fatal("no manifest.csv")
	return nil
}

// A ZIP is deleted once older than the retention; drawn again, the batch makes the very same codes.
func TestCodeBatchExpiresAndIsDrawnAgain(t *testing.T) {
	e := newBatchEnvWith(t, touchpoint.Options{PublicURL: "https://go.example", CodeBatchRetention: 30 * 24 * time.Hour})
	ctx := t.Context()
	b, err := e.svc.CreateCodeBatch(ctx, e.tp.ID, 25, "", touchpoint.QROptions{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	e.run(t, 1)
	before := manifestOf(t, e, b.ID)

	e.clock.Advance(29 * 24 * time.Hour)
	if n, err := e.svc.ExpireCodeBatches(ctx); err != nil || n != 0 {
		t.Fatalf("after 29 days: %d expired, %v; want none", n, err)
	}
	e.clock.Advance(2 * 24 * time.Hour)
	if n, err := e.svc.ExpireCodeBatches(ctx); err != nil || n != 1 {
		t.Fatalf("after 31 days: %d expired, %v; want 1", n, err)
	}
	_, _, err = e.svc.CodeBatchZIP(ctx, b.ID)
	wantKind(t, err, hearth.Conflict)
	if !strings.Contains(hearth.MessageOf(err), "Draw them again") {
		t.Errorf("the download of an expired batch says %q", hearth.MessageOf(err))
	}

	// A new signing key since does not change the codes: the batch keeps the key it was made with.
	if _, err := e.svc.RotateKey(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err = e.svc.RedrawCodeBatch(ctx, b.ID); err != nil || b.Status != touchpoint.BatchPending {
		t.Fatalf("redraw: %s, %v", b.Status, err)
	}
	_, err = e.svc.RedrawCodeBatch(ctx, b.ID)
	wantKind(t, err, hearth.Conflict) // waiting already
	e.run(t, 1)
	if after := manifestOf(t, e, b.ID); !bytes.Equal(after, before) {
		t.Errorf("drawn again, the manifest changed:\n%s\nwas\n%s", after, before)
	}

	// Without a retention, ZIPs stay.
	keep := newBatchEnv(t)
	if _, err := keep.svc.CreateCodeBatch(ctx, keep.tp.ID, 1, "", touchpoint.QROptions{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	keep.run(t, 1)
	keep.clock.Advance(10 * 365 * 24 * time.Hour)
	if n, err := keep.svc.ExpireCodeBatches(ctx); err != nil || n != 0 {
		t.Errorf("with no retention: %d expired, %v", n, err)
	}
}

// A batch given up after its attempts can be tried again, with as many attempts as a new one.
func TestCodeBatchGivenUpThenDrawnAgain(t *testing.T) {
	e := newBatchEnv(t)
	ctx := t.Context()
	b, err := e.svc.CreateCodeBatch(ctx, e.tp.ID, 2, "", touchpoint.QROptions{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	e.die(t, 5)
	e.run(t, 1)
	if b = e.batch(t, b.ID); b.Status != touchpoint.BatchFailed {
		t.Fatalf("after 5 deaths: %s", b.Status)
	}
	if _, err := e.svc.RedrawCodeBatch(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	e.die(t, 4) // four more deaths: within the limit again
	e.run(t, 1)
	if b = e.batch(t, b.ID); b.Status != touchpoint.BatchDone || b.Attempts != 11 {
		t.Errorf("drawn again: %s after %d attempts, want done after 11", b.Status, b.Attempts)
	}
}
