package identity

import (
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// Payloads as the event log keeps them (collect.Normalize's output), for the benchmark and tests.
const (
	pagePayload     = `{"type":"page","messageId":"2c51a42419a17fb953a37391dfe3ebe6","anonymousId":"anon-00065006","name":"/stores/shanghai-jingan","properties":{"path":"/stores/shanghai-jingan","referrer":"https://www.baidu.com/","title":"Hearth Outdoor"},"context":{"ip":"203.0.113.9","locale":"zh-CN","campaign":{"source":"wechat","medium":"social"}},"timestamp":"2026-11-23T10:45:18.988000965Z","originalTimestamp":"2026-11-23T10:45:18.123457754Z","sentAt":"2026-11-23T10:45:18.135456789Z","receivedAt":"2026-11-23T10:45:19Z"}`
	orderPayload    = `{"type":"track","messageId":"b9711f0c83a46da786cfa74a4190d0ec","anonymousId":"anon-00164084","userId":"user-164084","event":"Order Completed","properties":{"order_id":"b9711f0c83a4","revenue":231,"currency":"CNY"},"context":{"ip":"203.0.113.9"},"timestamp":"2026-11-23T10:45:18.990000676Z","originalTimestamp":"2026-11-23T10:45:18.125457465Z","sentAt":"2026-11-23T10:45:18.135456789Z","receivedAt":"2026-11-23T10:45:19Z"}`
	identifyPayload = `{"type":"identify","messageId":"61d3a0f0f9c2b1e8a7d6c5b4a3928170","anonymousId":"anon-00164084","userId":"user-164084","traits":{"email":"member164084@example.com","phone":"+8613800164084","city":"上海"},"context":{"ip":"203.0.113.9"},"timestamp":"2026-11-23T10:45:18.990000676Z","originalTimestamp":"2026-11-23T10:45:18.125457465Z","sentAt":"2026-11-23T10:45:18.135456789Z","receivedAt":"2026-11-23T10:45:19Z"}`
	touchPayload    = `{"type":"track","messageId":"0196f0a4-8d3f-7e4b-a5c6-1f2e3d4c5b6a","anonymousId":"7f3c9e2a-1b4d-4c8e-9a6f-2d5b8c1e0f37","event":"Touch","properties":{"touchpoint_id":"0196f0a4-7c1e-7d3a-9b2f-5e8c1d2a3b4c","touchpoint":"Poster — Jing'an store","channel":"poster","token":"hAbc123XyZ","via":"offline","campaign_id":"0196f0a4-6b2d-7c3e-8a1f-4d7b0c9e8f12"},"context":{"library":{"name":"hearth","version":"dev"},"ip":"203.0.113.9","userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47","traits":{"email":"Li.Lei@Example.COM","phone":"138 1234 5678"},"externalIds":[{"type":"wechat_unionid","id":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}]},"timestamp":"2026-11-23T10:45:19Z","receivedAt":"2026-11-23T10:45:19Z"}`
	wechatPayload   = `{"type":"track","messageId":"wechat-0cb2b0c5f597ec0d534d43a3154356ad","anonymousId":"oK3xR5d8Tq2vWm9ZpL4sYbN7cHfJ","event":"WeChat Followed","properties":{"scene":"hAbc123XyZ"},"context":{"library":{"name":"hearth","version":"dev"},"externalIds":[{"type":"wechat_openid","id":"oK3xR5d8Tq2vWm9ZpL4sYbN7cHfJ"}]},"timestamp":"2026-11-23T10:45:19Z","receivedAt":"2026-11-23T10:45:19Z"}`
)

// benchEvents are n payloads as the log keeps the events of collect's benchBatch (hearth bench ingest's
// retail site: page views, product views, orders and identifies), with every tenth a touch or a WeChat
// event instead. They are the same for every run.
func benchEvents(n int) [][]byte {
	rng := mrand.New(mrand.NewChaCha8([32]byte{'h', 'e', 'a', 'r', 't', 'h'}))
	pages := []string{"/", "/products/running-shoes", "/products/trail-jacket", "/cart", "/stores/shanghai-jingan", "/campaigns/singles-day"}
	products := []string{"SKU-1001", "SKU-1002", "SKU-2040", "SKU-3300", "SKU-4711"}
	start := time.Date(2026, 11, 23, 10, 45, 18, 123456789, time.UTC)
	const times = `"timestamp":"%[1]s","originalTimestamp":"%[1]s","sentAt":"2026-11-23T10:45:18.2Z","receivedAt":"2026-11-23T10:45:19Z"}`
	var evs [][]byte
	for i := range n {
		visitor, kind, page, product, price := rng.IntN(200000), rng.IntN(10), pages[rng.IntN(len(pages))], products[rng.IntN(len(products))], 50+rng.IntN(950)
		var id [16]byte
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		msg := hex.EncodeToString(id[:])
		now := start.Add(time.Duration(i)*time.Millisecond + time.Duration(rng.IntN(1000))).Format(time.RFC3339Nano)
		anon := fmt.Sprintf("anon-%08d", visitor)
		var p string
		switch {
		case i%10 == 9 && i%20 == 19:
			p = touchPayload
		case i%10 == 9:
			p = wechatPayload
		case kind < 5:
			p = fmt.Sprintf(`{"type":"page","messageId":"%s","anonymousId":"%s","name":"%s","properties":{"path":"%s","referrer":"https://www.baidu.com/","title":"Hearth Outdoor"},"context":{"ip":"203.0.113.9","locale":"zh-CN","campaign":{"source":"wechat","medium":"social"}},`+times, msg, anon, page, page, now)
		case kind < 8:
			p = fmt.Sprintf(`{"type":"track","messageId":"%s","anonymousId":"%s","event":"Product Viewed","properties":{"product_id":"%s","price":%d,"currency":"CNY","category":"outdoor"},"context":{"ip":"203.0.113.9","locale":"zh-CN"},`+times, msg, anon, product, price, now)
		case kind < 9:
			p = fmt.Sprintf(`{"type":"track","messageId":"%s","anonymousId":"%s","userId":"user-%d","event":"Order Completed","properties":{"order_id":"%s","revenue":%d,"currency":"CNY"},"context":{"ip":"203.0.113.9"},`+times, msg, anon, visitor, msg[:12], price, now)
		default:
			p = fmt.Sprintf(`{"type":"identify","messageId":"%s","anonymousId":"%s","userId":"user-%d","traits":{"email":"member%d@example.com","phone":"+86138%08d","city":"上海"},"context":{"ip":"203.0.113.9"},`+times, msg, anon, visitor, visitor, visitor, now)
		}
		evs = append(evs, []byte(p))
	}
	return evs
}

// BenchmarkFromEvent measures reading the identifiers of events as the profile processor will: the mix of
// benchEvents, and each shape alone. It reports ns and allocations per event.
func BenchmarkFromEvent(b *testing.B) {
	rules := DefaultRules()
	run := func(b *testing.B, evs [][]byte) {
		for _, p := range evs {
			if _, err := rules.FromEvent(p); err != nil {
				b.Fatalf("%s: %v", p, err)
			}
		}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		b.ResetTimer()
		n := 0
		for b.Loop() {
			for _, p := range evs {
				rules.FromEvent(p)
			}
			n += len(evs)
		}
		b.StopTimer()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
		b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(n), "allocs/event")
	}
	b.Run("mix", func(b *testing.B) { run(b, benchEvents(100)) })
	for _, c := range []struct{ name, payload string }{
		{"page", pagePayload}, {"order", orderPayload}, {"identify", identifyPayload}, {"touch", touchPayload}, {"wechat", wechatPayload},
	} {
		b.Run(c.name, func(b *testing.B) { run(b, [][]byte{[]byte(c.payload)}) })
	}
}

// BenchmarkExtract is BenchmarkFromEvent's mix read as the processor can, into one Extraction reused.
func BenchmarkExtract(b *testing.B) {
	rules := DefaultRules()
	evs := benchEvents(100)
	var x Extraction
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	n := 0
	for b.Loop() {
		for _, p := range evs {
			rules.Extract(&x, p)
		}
		n += len(evs)
	}
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(n), "allocs/event")
}
