// Package bench drives a running Hearth over HTTP and reports what it sustained: the load generators behind
// "hearth bench …" and the figures in BENCHMARKS.md.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
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
		// A batch's body goes out in one write rather than 4 KiB at a time (one system call each).
		Transport:     &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency, DisableCompression: true, WriteBufferSize: 64 << 10},
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
// identifies, from a pool of visitors, each of about 300 bytes. It writes them with appends rather than fmt
// and draws message ids from its own generator: it shares the cores with the server it measures, and
// formatting with fmt and crypto/rand took a third of its time (about a tenth of a core at 80,000 events/s).
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

// draw is what one event is made of.
type draw struct {
	visitor, kind, page, product, price int
	id                                  [2]uint64
}

func (g *eventGen) draw(n int) []draw {
	d := make([]draw, n)
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range d {
		d[i] = draw{
			visitor: g.rng.IntN(200000), kind: g.rng.IntN(10), page: g.rng.IntN(len(pages)),
			product: g.rng.IntN(len(products)), price: 50 + g.rng.IntN(950),
			id: [2]uint64{g.rng.Uint64(), g.rng.Uint64()},
		}
	}
	return d
}

// event appends one event, stamped now, and returns its type.
func (d draw) event(b []byte, now string) ([]byte, string) {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], d.id[0])
	binary.BigEndian.PutUint64(raw[8:], d.id[1])
	var msg [32]byte
	hex.Encode(msg[:], raw[:])
	anon := func(b []byte) []byte { return appendPad8(append(b, "anon-"...), d.visitor) }
	b = append(b, `{"type":"`...)
	typ := "track"
	switch {
	case d.kind < 5:
		typ = "page"
		b = append(b, `page","messageId":"`...)
		b = append(b, msg[:]...)
		b = anon(append(b, `","anonymousId":"`...))
		b = append(append(b, `","name":"`...), pages[d.page]...)
		b = append(append(b, `","properties":{"path":"`...), pages[d.page]...)
		b = append(b, `","referrer":"https://www.baidu.com/","title":"Hearth Outdoor"},"context":{"locale":"zh-CN","campaign":{"source":"wechat","medium":"social"}}`...)
	case d.kind < 8:
		b = append(b, `track","messageId":"`...)
		b = append(b, msg[:]...)
		b = anon(append(b, `","anonymousId":"`...))
		b = append(append(b, `","event":"Product Viewed","properties":{"product_id":"`...), products[d.product]...)
		b = strconv.AppendInt(append(b, `","price":`...), int64(d.price), 10)
		b = append(b, `,"currency":"CNY","category":"outdoor"},"context":{"locale":"zh-CN"}`...)
	case d.kind < 9:
		b = append(b, `track","messageId":"`...)
		b = append(b, msg[:]...)
		b = anon(append(b, `","anonymousId":"`...))
		b = strconv.AppendInt(append(b, `","userId":"user-`...), int64(d.visitor), 10)
		b = append(append(b, `","event":"Order Completed","properties":{"order_id":"`...), msg[:12]...)
		b = strconv.AppendInt(append(b, `","revenue":`...), int64(d.price), 10)
		b = append(b, `,"currency":"CNY"}`...)
	default:
		typ = "identify"
		b = append(b, `identify","messageId":"`...)
		b = append(b, msg[:]...)
		b = anon(append(b, `","anonymousId":"`...))
		b = strconv.AppendInt(append(b, `","userId":"user-`...), int64(d.visitor), 10)
		b = strconv.AppendInt(append(b, `","traits":{"email":"member`...), int64(d.visitor), 10)
		b = appendPad8(append(b, `@example.com","phone":"+86138`...), d.visitor)
		b = append(b, `","city":"上海"}`...)
	}
	b = append(append(append(b, `,"timestamp":"`...), now...), `"}`...)
	return b, typ
}

// appendPad8 appends v as %08d would.
func appendPad8(b []byte, v int) []byte {
	for p := 10000000; p > 1 && v < p; p /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(v), 10)
}

// body is one request and the path to post it to: a batch, or a single event to its type's endpoint.
func (g *eventGen) body(n int) ([]byte, string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	draws := g.draw(n)
	if n == 1 {
		b, typ := draws[0].event(make([]byte, 0, 512), now)
		return b, "/v1/" + typ
	}
	b := make([]byte, 0, 64+n*360)
	b = append(append(append(b, `{"sentAt":"`...), now...), `","batch":[`...)
	for i, d := range draws {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = d.event(b, now)
	}
	return append(b, `]}`...), "/v1/batch"
}

func (g *eventGen) avgSize(n int) int {
	size := 0
	for _, d := range g.draw(n) {
		b, _ := d.event(nil, time.Now().UTC().Format(time.RFC3339Nano))
		size += len(b)
	}
	return size / n
}
