package collect

import (
	"bytes"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
)

// benchBatch is a /v1/batch body of n events like those hearth bench ingest sends (internal/bench's
// eventGen): a retail site's page views, product views, orders and identifies of about 300 bytes, some with
// Chinese text. It is the same for every run.
func benchBatch(n int) []byte {
	rng := mrand.New(mrand.NewChaCha8([32]byte{'h', 'e', 'a', 'r', 't', 'h'}))
	pages := []string{"/", "/products/running-shoes", "/products/trail-jacket", "/cart", "/stores/shanghai-jingan", "/campaigns/singles-day"}
	products := []string{"SKU-1001", "SKU-1002", "SKU-2040", "SKU-3300", "SKU-4711"}
	start := time.Date(2026, 11, 23, 10, 45, 18, 123456789, time.UTC)
	var b bytes.Buffer
	b.WriteString(`{"sentAt":"` + start.Add(time.Duration(n)*time.Millisecond).Format(time.RFC3339Nano) + `","batch":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		visitor, kind, page, product, price := rng.IntN(200000), rng.IntN(10), pages[rng.IntN(len(pages))], products[rng.IntN(len(products))], 50+rng.IntN(950)
		var id [16]byte
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		msg := hex.EncodeToString(id[:])
		now := start.Add(time.Duration(i)*time.Millisecond + time.Duration(rng.IntN(1000))).Format(time.RFC3339Nano)
		anon := fmt.Sprintf("anon-%08d", visitor)
		switch {
		case kind < 5:
			fmt.Fprintf(&b, `{"type":"page","messageId":"%s","anonymousId":"%s","name":"%s","properties":{"path":"%s","referrer":"https://www.baidu.com/","title":"Hearth Outdoor"},"context":{"locale":"zh-CN","campaign":{"source":"wechat","medium":"social"}},"timestamp":"%s"}`, msg, anon, page, page, now)
		case kind < 8:
			fmt.Fprintf(&b, `{"type":"track","messageId":"%s","anonymousId":"%s","event":"Product Viewed","properties":{"product_id":"%s","price":%d,"currency":"CNY","category":"outdoor"},"context":{"locale":"zh-CN"},"timestamp":"%s"}`, msg, anon, product, price, now)
		case kind < 9:
			fmt.Fprintf(&b, `{"type":"track","messageId":"%s","anonymousId":"%s","userId":"user-%d","event":"Order Completed","properties":{"order_id":"%s","revenue":%d,"currency":"CNY"},"timestamp":"%s"}`, msg, anon, visitor, msg[:12], price, now)
		default:
			fmt.Fprintf(&b, `{"type":"identify","messageId":"%s","anonymousId":"%s","userId":"user-%d","traits":{"email":"member%d@example.com","phone":"+86138%08d","city":"上海"},"timestamp":"%s"}`, msg, anon, visitor, visitor, visitor, now)
		}
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// BenchmarkNormalizeBatch measures what ingesting a batch of 100 events costs between reading the body and
// appending to the log: taking the body apart, validating and normalising each event, encoding its payload.
// Authentication and the log are left out. It reports ns and allocations per event.
func BenchmarkNormalizeBatch(b *testing.B) {
	const n = 100
	data := benchBatch(n)
	bots, err := NewBotDetector()
	if err != nil {
		b.Fatal(err)
	}
	h := NewIngest(nil, nil, hearth.SystemClock{}, bots, IngestOptions{}, nil)
	// A server source, as hearth bench ingest creates: the client's IP is added to each event's context.
	req := Request{ReceivedAt: time.Date(2026, 11, 23, 10, 45, 19, 0, time.UTC), IP: "203.0.113.9", UserAgent: "Go-http-client/1.1"}
	check := func() {
		body, err := decodeBody(data, "batch")
		if err != nil {
			b.Fatal(err)
		}
		batch, rejected := h.normalizeEvents(&body, "", req, "src")
		body.release()
		if len(batch.Events) != n || len(rejected) != 0 {
			b.Fatalf("%d events, %d refused: %v", len(batch.Events), len(rejected), rejected)
		}
	}
	check()
	b.SetBytes(int64(len(data)))
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for b.Loop() {
		body, _ := decodeBody(data, "batch")
		h.normalizeEvents(&body, "", req, "src")
		body.release()
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N*n), "allocs/event")
}

// BenchmarkNormalizeBatchReference is BenchmarkNormalizeBatch on the reference implementation, for the ratio.
func BenchmarkNormalizeBatchReference(b *testing.B) {
	const n = 100
	data := benchBatch(n)
	bots, err := NewBotDetector()
	if err != nil {
		b.Fatal(err)
	}
	h := NewIngest(nil, nil, hearth.SystemClock{}, bots, IngestOptions{}, nil)
	req := Request{ReceivedAt: time.Date(2026, 11, 23, 10, 45, 19, 0, time.UTC), IP: "203.0.113.9", UserAgent: "Go-http-client/1.1"}
	for b.Loop() {
		body, _ := refDecodeBody(data, "batch")
		h.refNormalizeEvents(&body, "", req, "src")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}
