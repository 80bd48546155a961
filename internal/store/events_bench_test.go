package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

// BenchmarkAppend measures the event log's write path alone: group commits of 20 requests of 100 events of
// about 300 bytes, as the tracking API produces under load; and (single) of 28 requests of one event each,
// as /v1/track under load commits them. Reported per event.
func BenchmarkAppend(b *testing.B) {
	for _, eng := range storetest.Engines() {
		b.Run(eng.Name, func(b *testing.B) { benchmarkAppend(b, eng.Open, 100, 20) })
		b.Run(eng.Name+"/single", func(b *testing.B) { benchmarkAppend(b, eng.Open, 1, 28) })
	}
}

func benchmarkAppend(b *testing.B, open func(testing.TB, hearth.Clock) *store.DB, perRequest, inFlight int) {
	db := open(b, hearth.SystemClock{})
	var commits atomic.Int64
	w := store.NewEventWriter(db, store.EventWriterOptions{Observe: func(int, int, store.WriteTimes) { commits.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	payload := []byte(`{"type":"track","messageId":"0123456789abcdef0123456789abcdef","anonymousId":"anon-00012345","event":"Product Viewed","properties":{"product_id":"SKU-1001","price":399,"currency":"CNY","category":"outdoor"},"context":{"locale":"zh-CN","ip":"127.0.0.1"},"timestamp":"2026-11-23T10:00:00Z"}`)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		errs := make(chan error, inFlight)
		for r := 0; r < inFlight; r++ {
			batch := &collect.Batch{SourceID: "src", ReceivedAt: time.Now()}
			for i := 0; i < perRequest; i++ {
				n++
				batch.Events = append(batch.Events, collect.Event{MessageID: fmt.Sprint(n), Type: "track", Name: "Product Viewed",
					AnonymousID: "anon-00012345", Timestamp: time.Now(), ReceivedAt: time.Now(), Payload: payload})
			}
			go func() { _, err := w.Append(ctx, batch); errs <- err }()
		}
		for r := 0; r < inFlight; r++ {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(n)/float64(perRequest)/float64(commits.Load()), "requests/commit")
}
