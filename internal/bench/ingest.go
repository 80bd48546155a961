// Package bench drives a running Hearth over HTTP and reports what it sustained: the load generators behind
// "hearth bench …" and the figures in BENCHMARKS.md.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// IngestOptions describe an ingestion load.
type IngestOptions struct {
	URL         string        // the server, such as http://127.0.0.1:8080
	WriteKey    string        // a source's write key
	Duration    time.Duration // how long to send
	Concurrency int           // requests in flight at once
	Batch       int           // events per request; 1 sends single events to /v1/track
	Rate        float64       // events per second to offer; 0 sends as fast as the server takes them
}

// IngestReport is what a run measured.
type IngestReport struct {
	Options    IngestOptions
	EventBytes int // average size of one event's JSON
	load
	server
}

// server is what the server said of itself, from its /metrics, during a run.
type server struct {
	ServerCPU       float64 // cores the server used on average
	ServerRSSMax    float64 // bytes, the most seen while sampling
	ServerRSSSample int
}

// EventsPerSecond is the acknowledged rate.
func (r IngestReport) EventsPerSecond() float64 { return float64(r.Accepted) / r.Elapsed.Seconds() }

func (r IngestReport) String() string {
	var b strings.Builder
	mode := fmt.Sprintf("batches of %d to /v1/batch", r.Options.Batch)
	if r.Options.Batch == 1 {
		mode = "single events to /v1/{type}"
	}
	offered := "as fast as accepted"
	if r.Options.Rate > 0 {
		offered = fmt.Sprintf("%.0f events/s offered", r.Options.Rate)
	}
	fmt.Fprintf(&b, "load:      %s, %d in flight, %s, %s, events of ~%d bytes\n", mode, r.Options.Concurrency, offered, r.Options.Duration, r.EventBytes)
	fmt.Fprintf(&b, "accepted:  %d events in %.1fs = %.0f events/s (%d requests, %.0f req/s)\n",
		r.Accepted, r.Elapsed.Seconds(), r.EventsPerSecond(), r.Requests, float64(r.Requests)/r.Elapsed.Seconds())
	r.load.write(&b)
	r.server.write(&b)
	return b.String()
}

func (l load) write(b *strings.Builder) {
	fmt.Fprintf(b, "latency:   p50 %s  p90 %s  p99 %s  max %s\n", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
	if len(l.Failed) > 0 {
		keys := make([]string, 0, len(l.Failed))
		for k := range l.Failed {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(b, "failures: ")
		for _, k := range keys {
			fmt.Fprintf(b, " %s×%d", k, l.Failed[k])
		}
		b.WriteByte('\n')
	}
}

func (s server) write(b *strings.Builder) {
	if s.ServerRSSSample > 0 {
		fmt.Fprintf(b, "server:    %.2f cores CPU on average, RSS max %.0f MiB\n", s.ServerCPU, s.ServerRSSMax/(1<<20))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// Ingest runs the load and reports.
func Ingest(ctx context.Context, opts IngestOptions, progress io.Writer) (IngestReport, error) {
	if opts.Concurrency < 1 || opts.Batch < 1 || opts.Duration <= 0 || opts.WriteKey == "" {
		return IngestReport{}, errors.New("bench: need a write key, a duration, and at least 1 in flight and 1 event per request")
	}
	client := newClient(opts.Concurrency)
	gen := newEventGen()
	report := IngestReport{Options: opts, EventBytes: gen.avgSize(200)}
	stopSampling := sampleServer(ctx, client, opts.URL, &report.server)
	l := drive(ctx, opts.Concurrency, opts.Duration, opts.Rate/float64(opts.Batch), "events accepted", progress, func(ctx context.Context) (int, string) {
		body, path := gen.body(opts.Batch)
		return send(ctx, client, opts.URL+path, opts.WriteKey, body)
	})
	stopSampling()
	report.load = l
	return report, nil
}

func newClient(concurrency int) *http.Client {
	return &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency, DisableCompression: true},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// drainTimeout is how long requests still in flight at the end of a run are waited for.
const drainTimeout = 30 * time.Second

// load is what driving a server measured.
type load struct {
	Elapsed       time.Duration
	Requests      int64
	Accepted      int64 // what the server acknowledged: events, or touches
	Failed        map[string]int64
	P50, P90, P99 time.Duration
	Max           time.Duration
}

// drive calls do from concurrency workers for a while: as fast as answered, or at rate requests a second
// when rate > 0. do returns how many items the server accepted, or what failed.
// The end of the run stops new requests; those in flight are waited for, up to drainTimeout, and counted:
// cutting them off would drop the slowest requests from the latencies, and a run shorter than one slow
// answer (an fsync stalled behind a busy disk) would measure nothing at all.
func drive(ctx context.Context, concurrency int, duration time.Duration, rate float64, unit string, progress io.Writer, do func(context.Context) (int, string)) load {
	l := load{Failed: map[string]int64{}}
	runCtx, cancel := context.WithTimeout(ctx, duration) // while requests are issued
	defer cancel()
	reqCtx, cancelReq := context.WithTimeout(ctx, duration+drainTimeout) // while they are answered
	defer cancelReq()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		requests  atomic.Int64
		accepted  atomic.Int64
	)
	fail := func(what string) {
		mu.Lock()
		l.Failed[what]++
		mu.Unlock()
	}
	jobs := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			defer func() { mu.Lock(); latencies = append(latencies, local...); mu.Unlock() }()
			for {
				if rate > 0 {
					select {
					case <-runCtx.Done():
						return
					case <-jobs:
					}
				} else if runCtx.Err() != nil {
					return
				}
				t0 := time.Now()
				n, failure := do(reqCtx)
				if reqCtx.Err() != nil && failure != "" {
					fail("unanswered-at-end") // still in flight drainTimeout after the run
					return
				}
				local = append(local, time.Since(t0))
				requests.Add(1)
				accepted.Add(int64(n))
				if failure != "" {
					fail(failure)
				}
			}
		}()
	}
	if rate > 0 {
		// Open loop: requests are due at fixed times whether or not earlier ones have returned, so that a
		// slow server shows as latency rather than as a slower offered rate. Every millisecond the requests
		// due by then are handed out (a ticker at the rate itself would drop ticks when late).
		go func() {
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			sent := 0
			for {
				select {
				case <-runCtx.Done():
					return
				case now := <-t.C:
					for due := int(rate * now.Sub(start).Seconds()); sent < due; sent++ {
						select {
						case jobs <- struct{}{}:
						default:
							fail("generator-behind") // every worker busy: the server cannot keep up
						}
					}
				}
			}
		}()
	}
	if progress != nil {
		go func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					fmt.Fprintf(progress, "  %.0fs: %d %s\n", time.Since(start).Seconds(), accepted.Load(), unit)
				}
			}
		}()
	}
	wg.Wait()
	l.Elapsed = time.Since(start)
	l.Requests, l.Accepted = requests.Load(), accepted.Load()
	slices.Sort(latencies)
	l.P50, l.P90, l.P99 = quantile(latencies, .5), quantile(latencies, .9), quantile(latencies, .99)
	if len(latencies) > 0 {
		l.Max = latencies[len(latencies)-1]
	}
	return l
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// send posts one request and returns how many events the server accepted, or what failed.
func send(ctx context.Context, client *http.Client, url, writeKey string, body []byte) (int, string) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, "request"
	}
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "network"
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return 0, strconv.Itoa(resp.StatusCode)
	}
	var r struct {
		Accepted   int `json:"accepted"`
		Duplicates int `json:"duplicates"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, "bad-response"
	}
	return r.Accepted, ""
}

// sampleServer reads the server's CPU time and RSS from /metrics once a second until stopped.
func sampleServer(ctx context.Context, client *http.Client, url string, report *server) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	cpu0, _, ok := readProcess(ctx, client, url)
	t0 := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, rss, ok := readProcess(ctx, client, url); ok {
					report.ServerRSSMax = max(report.ServerRSSMax, rss)
					report.ServerRSSSample++
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
		if cpu1, rss, ok2 := readProcess(context.Background(), client, url); ok && ok2 {
			report.ServerCPU = (cpu1 - cpu0) / time.Since(t0).Seconds()
			report.ServerRSSMax = max(report.ServerRSSMax, rss)
			report.ServerRSSSample++
		}
	}
}

func readProcess(ctx context.Context, client *http.Client, url string) (cpu, rss float64, ok bool) {
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/metrics", nil)
	if err != nil {
		return 0, 0, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, false
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), " ")
		switch name {
		case "process_cpu_seconds_total":
			cpu, _ = strconv.ParseFloat(value, 64)
			found++
		case "process_resident_memory_bytes":
			rss, _ = strconv.ParseFloat(value, 64)
			found++
		}
	}
	return cpu, rss, found == 2
}

// eventGen makes realistic events: a retail site's page views, product views, cart and order events and
// identifies, from a pool of visitors, each of about 300 bytes.
type eventGen struct {
	mu  sync.Mutex
	rng *mrand.Rand
}

func newEventGen() *eventGen {
	var seed [32]byte
	rand.Read(seed[:])
	return &eventGen{rng: mrand.New(mrand.NewChaCha8(seed))}
}

var (
	pages    = []string{"/", "/products/running-shoes", "/products/trail-jacket", "/cart", "/stores/shanghai-jingan", "/campaigns/singles-day"}
	products = []string{"SKU-1001", "SKU-1002", "SKU-2040", "SKU-3300", "SKU-4711"}
)

// event writes one event and returns its type.
func (g *eventGen) event(b *bytes.Buffer) string {
	g.mu.Lock()
	visitor, kind, page, product, price := g.rng.IntN(200000), g.rng.IntN(10), pages[g.rng.IntN(len(pages))], products[g.rng.IntN(len(products))], 50+g.rng.IntN(950)
	g.mu.Unlock()
	id := make([]byte, 16)
	rand.Read(id)
	msg := hex.EncodeToString(id)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	anon := fmt.Sprintf("anon-%08d", visitor)
	switch {
	case kind < 5:
		fmt.Fprintf(b, `{"type":"page","messageId":"%s","anonymousId":"%s","name":"%s","properties":{"path":"%s","referrer":"https://www.baidu.com/","title":"Hearth Outdoor"},"context":{"locale":"zh-CN","campaign":{"source":"wechat","medium":"social"}},"timestamp":"%s"}`, msg, anon, page, page, now)
		return "page"
	case kind < 8:
		fmt.Fprintf(b, `{"type":"track","messageId":"%s","anonymousId":"%s","event":"Product Viewed","properties":{"product_id":"%s","price":%d,"currency":"CNY","category":"outdoor"},"context":{"locale":"zh-CN"},"timestamp":"%s"}`, msg, anon, product, price, now)
		return "track"
	case kind < 9:
		fmt.Fprintf(b, `{"type":"track","messageId":"%s","anonymousId":"%s","userId":"user-%d","event":"Order Completed","properties":{"order_id":"%s","revenue":%d,"currency":"CNY"},"timestamp":"%s"}`, msg, anon, visitor, msg[:12], price, now)
		return "track"
	default:
		fmt.Fprintf(b, `{"type":"identify","messageId":"%s","anonymousId":"%s","userId":"user-%d","traits":{"email":"member%d@example.com","phone":"+86138%08d","city":"上海"},"timestamp":"%s"}`, msg, anon, visitor, visitor, visitor, now)
		return "identify"
	}
}

// body is one request and the path to post it to: a batch, or a single event to its type's endpoint.
func (g *eventGen) body(n int) ([]byte, string) {
	var b bytes.Buffer
	if n == 1 {
		typ := g.event(&b)
		return b.Bytes(), "/v1/" + typ
	}
	b.WriteString(`{"sentAt":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","batch":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		g.event(&b)
	}
	b.WriteString(`]}`)
	return b.Bytes(), "/v1/batch"
}

func (g *eventGen) avgSize(n int) int {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		g.event(&b)
	}
	return b.Len() / n
}
