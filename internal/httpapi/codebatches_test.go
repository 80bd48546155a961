package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

type codeBatchResp struct {
	ID           string
	TouchpointID string `json:"touchpoint_id"`
	FirstSerial  int64  `json:"first_serial"`
	LastSerial   int64  `json:"last_serial"`
	Count        int64
	Format       string
	Size         int
	Margin       *int
	Level        string
	Status       string
	Done         int64
	ZIPBytes     int64      `json:"zip_bytes"`
	ExpiresAt    *time.Time `json:"expires_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	Error        *string
	DownloadURL  *string `json:"download_url"`
}

// codeBatchWorker runs the code batch worker beside the test server, as the app does, until the test ends.
func codeBatchWorker(t *testing.T, e *env) {
	t.Helper()
	master, err := touchpoint.ParseMasterKey(strings.Repeat("k", 43) + "=") // the test server's
	if err != nil {
		t.Fatal(err)
	}
	svc := touchpoint.NewService(e.db, master, e.clock, touchpoint.Options{PublicURL: "https://go.example"})
	if err := svc.LoadKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if _, err := svc.RunCodeBatches(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("RunCodeBatches: %v", err)
			}
		}
	})
}

func TestCodeBatches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		m := e.as(hearth.RoleMarketer)
		var tp touchpointResp
		m.do("POST", "/api/v1/touchpoints", map[string]any{"name": "Spring packs", "channel": "product_pack", "destination_url": "https://shop.example/"}).decode(t, &tp)

		expires := e.clock.Now().Add(90 * 24 * time.Hour)
		r := m.do("POST", "/api/v1/touchpoints/"+tp.ID+"/code-batches", map[string]any{"count": 120, "format": "png", "size": 256, "margin": 0, "level": "q", "expires_at": expires})
		wantStatus(t, r, http.StatusAccepted)
		var b codeBatchResp
		r.decode(t, &b)
		if b.ID == "" || b.TouchpointID != tp.ID || b.FirstSerial != 1 || b.LastSerial != 120 || b.Count != 120 || b.Format != "png" || b.Size != 256 ||
			b.Margin == nil || *b.Margin != 0 || b.Level != "Q" || b.Status != "pending" || b.DownloadURL != nil || b.Error != nil || b.ExpiresAt == nil || !b.ExpiresAt.Equal(expires) {
			t.Errorf("created %s", r.body)
		}
		if loc := r.header.Get("Location"); loc != "/api/v1/code-batches/"+b.ID {
			t.Errorf("Location %q", loc)
		}
		r = m.do("GET", "/api/v1/code-batches/"+b.ID+"/download", nil)
		if r.status != http.StatusConflict || r.errCode() != "conflict" {
			t.Errorf("download before it is done: %d %s, want 409", r.status, r.body)
		}

		// The worker draws it; the console polls for progress.
		codeBatchWorker(t, e)
		deadline := time.Now().Add(time.Minute)
		for b.Status != "done" {
			if time.Now().After(deadline) || b.Status == "failed" {
				t.Fatalf("batch still %s (%d of %d), error %v", b.Status, b.Done, b.Count, b.Error)
			}
			time.Sleep(20 * time.Millisecond)
			r = e.as(hearth.RoleAnalyst).do("GET", "/api/v1/code-batches/"+b.ID, nil)
			wantStatus(t, r, http.StatusOK)
			r.decode(t, &b)
		}
		if b.Done != 120 || b.FinishedAt == nil || b.DownloadURL == nil || *b.DownloadURL != "/api/v1/code-batches/"+b.ID+"/download" || b.ZIPBytes == 0 {
			t.Errorf("done: %+v", b)
		}

		var list struct{ Items []codeBatchResp }
		m.do("GET", "/api/v1/touchpoints/"+tp.ID+"/code-batches", nil).decode(t, &list)
		if len(list.Items) != 1 || list.Items[0].ID != b.ID || list.Items[0].Status != "done" {
			t.Errorf("list: %+v", list.Items)
		}

		r = e.as(hearth.RoleAnalyst).do("GET", *b.DownloadURL, nil)
		wantStatus(t, r, http.StatusOK)
		if ct, cd := r.header.Get("Content-Type"), r.header.Get("Content-Disposition"); ct != "application/zip" ||
			cd != `attachment; filename="touchpoint-`+strconv.FormatInt(tp.Number, 10)+`-serials-1-120.zip"` {
			t.Errorf("Content-Type %q, Content-Disposition %q", ct, cd)
		}
		if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) || int64(len(r.body)) != b.ZIPBytes {
			t.Errorf("Content-Length %s, body %d bytes, zip_bytes %d", cl, len(r.body), b.ZIPBytes)
		}
		zr, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
		if err != nil {
			t.Fatal(err)
		}
		var manifest, first []byte
		for _, f := range zr.File {
			switch {
			case f.Name == "manifest.csv":
				manifest = readZIPFile(t, f)
			case strings.HasSuffix(f.Name, "-001.png"):
				first = readZIPFile(t, f)
			}
		}
		rows, err := csv.NewReader(bytes.NewReader(manifest)).ReadAll()
		if err != nil || len(rows) != 121 || rows[1][0] != "1" || rows[120][0] != "120" {
			t.Fatalf("manifest: %d rows, %v", len(rows), err)
		}
		if got := decodeQR(t, first); got != rows[1][2] {
			t.Errorf("the first code holds %q, the manifest says %q", got, rows[1][2])
		}

		// A broken download resumes.
		c := e.as(hearth.RoleAnalyst)
		c.header.Set("Range", "bytes=100-199")
		r = c.do("GET", *b.DownloadURL, nil)
		if wantBody := e.as(hearth.RoleAnalyst).do("GET", *b.DownloadURL, nil).body[100:200]; r.status != http.StatusPartialContent || !bytes.Equal(r.body, wantBody) {
			t.Errorf("range: %d, %d bytes", r.status, len(r.body))
		}

		// The ZIP expires (the retention job); the batch is drawn again, by a marketer, not an analyst.
		if n, err := e.db.ExpireCodeBatches(t.Context(), e.clock.Now().Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("expire: %d, %v", n, err)
		}
		m.do("GET", "/api/v1/code-batches/"+b.ID, nil).decode(t, &b)
		if b.Status != "expired" || b.DownloadURL != nil {
			t.Errorf("expired: %+v", b)
		}
		if r := m.do("GET", "/api/v1/code-batches/"+b.ID+"/download", nil); r.status != http.StatusConflict {
			t.Errorf("download of an expired batch: %d %s, want 409", r.status, r.body)
		}
		wantStatus(t, e.as(hearth.RoleAnalyst).do("POST", "/api/v1/code-batches/"+b.ID+"/redraw", nil), http.StatusForbidden)
		r = m.do("POST", "/api/v1/code-batches/"+b.ID+"/redraw", nil)
		wantStatus(t, r, http.StatusAccepted)
		r.decode(t, &b)
		if b.Status != "pending" || b.Done != 0 || b.FinishedAt != nil || r.header.Get("Location") != "/api/v1/code-batches/"+b.ID {
			t.Errorf("queued again: %s", r.body)
		}
		for deadline := time.Now().Add(time.Minute); b.Status != "done"; {
			if time.Now().After(deadline) || b.Status == "failed" {
				t.Fatalf("drawn again: still %s, error %v", b.Status, b.Error)
			}
			time.Sleep(20 * time.Millisecond)
			m.do("GET", "/api/v1/code-batches/"+b.ID, nil).decode(t, &b)
		}
		if again := m.do("GET", *b.DownloadURL, nil); again.status != http.StatusOK || int64(len(again.body)) != b.ZIPBytes {
			t.Errorf("download drawn again: %d, %d bytes", again.status, len(again.body))
		}

		// Mistakes.
		for _, tc := range []struct {
			method, path string
			body         any
			status       int
		}{
			{"GET", "/api/v1/code-batches/" + hearth.NewID(), nil, http.StatusNotFound},
			{"GET", "/api/v1/code-batches/" + hearth.NewID() + "/download", nil, http.StatusNotFound},
			{"GET", "/api/v1/touchpoints/" + hearth.NewID() + "/code-batches", nil, http.StatusNotFound},
			{"POST", "/api/v1/touchpoints/" + hearth.NewID() + "/code-batches", map[string]any{"count": 10}, http.StatusNotFound},
			{"POST", "/api/v1/touchpoints/" + tp.ID + "/code-batches", map[string]any{"count": 0}, http.StatusBadRequest},
			{"POST", "/api/v1/touchpoints/" + tp.ID + "/code-batches", map[string]any{"count": 200_000, "format": "gif"}, http.StatusBadRequest},
			{"POST", "/api/v1/touchpoints/" + tp.ID + "/code-batches", map[string]any{"count": 10, "colour": "red"}, http.StatusBadRequest},
			{"POST", "/api/v1/code-batches/" + b.ID + "/redraw", nil, http.StatusConflict}, // ready: nothing to draw
			{"POST", "/api/v1/code-batches/" + hearth.NewID() + "/redraw", nil, http.StatusNotFound},
		} {
			if r := m.do(tc.method, tc.path, tc.body); r.status != tc.status {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.status)
			}
		}
	})
}

func readZIPFile(t *testing.T, f *zip.File) []byte {
	t.Helper()
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
