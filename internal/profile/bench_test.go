package profile_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/demo"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

var people = flag.Int("people", 0, "people in the demo world: of BenchmarkProcessor and BenchmarkProcessorDemo (default 5,000) and TestResolutionTruth (default 1,000)")

// BenchmarkProcessor measures the profile processor over the demo world on SQLite: a fresh store is filled
// with the events of -people people (untimed), then the processor reads the log to its end (timed). The
// events are in the generator's order, each person's story whole, as hearth demo appended them before it
// put them in time order: comparable with every figure since, and the easier case (a person's events
// read and written once a batch); BenchmarkProcessorDemo reads hearth demo's order.
// Reported: events/s, and the median and worst time a batch held the state's write transaction, which the
// segment engine's steps and the console's writes wait for (the event log has a writer of its own).
func BenchmarkProcessor(b *testing.B) {
	benchProcess(b, func(db *store.DB) int { return appendDemo(b, db, worldSize(5000)) })
}

// BenchmarkProcessorDemo is BenchmarkProcessor on the log as hearth demo appends it, and as live traffic
// arrives: everyone's events interleaved in time order, so that a batch meets about as many people as it
// holds events.
func BenchmarkProcessorDemo(b *testing.B) {
	benchProcess(b, func(db *store.DB) int { return appendWorld(b, db, worldSize(5000), nil).Events })
}

// benchProcess fills a fresh store with fill (untimed), then times the processor reading it to the end.
func benchProcess(b *testing.B, fill func(*store.DB) int) {
	ctx := context.Background()
	var events int
	var applies []time.Duration
	for b.Loop() {
		b.StopTimer()
		db := storetest.SQLite(b, hearth.SystemClock{})
		events = fill(db)
		timed := &timedStore{DB: db}
		p := profile.NewProcessor(timed, profile.Options{})
		b.StartTimer()
		for {
			n, err := p.Process(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		applies = append(applies, timed.applies...)
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
	slices.Sort(applies)
	b.ReportMetric(float64(applies[len(applies)/2].Microseconds())/1000, "apply-p50-ms")
	b.ReportMetric(float64(applies[len(applies)-1].Microseconds())/1000, "apply-max-ms")
}

// timedStore times each ApplyProfiles.
type timedStore struct {
	*store.DB
	applies []time.Duration
}

func (s *timedStore) ApplyProfiles(ctx context.Context, consumer string, upto int64, c profile.Changes) error {
	t0 := time.Now()
	err := s.DB.ApplyProfiles(ctx, consumer, upto, c)
	s.applies = append(s.applies, time.Since(t0))
	return err
}

// appendDemo appends the events of the demo world's first people to db's log and returns how many.
func appendDemo(tb testing.TB, db *store.DB, people int) int {
	tb.Helper()
	g := demo.NewGenerator(demo.Options{People: people, Seed: 1, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}, demo.FakeEnv())
	var events []collect.Event
	for g.Next() {
		_, evs, err := g.Person()
		if err != nil {
			tb.Fatal(err)
		}
		events = append(events, evs...)
	}
	appendEvents(tb, db, events)
	return len(events)
}

// BenchmarkProcessorLive measures the processor on live traffic rather than the demo generator's per-person
// order, in the batches that serve takes while events arrive (1,000): "touches" is a poster's scans, each a
// new visitor (a new profile per event); "visitors" is `hearth bench ingest`'s mix, page views and product
// views of a pool of 200,000 visitors with a tenth of them logging in, so that each batch touches a thousand
// profiles at random. A fresh store is filled with 50,000 events (untimed), then read to its end (timed).
func BenchmarkProcessorLive(b *testing.B) {
	ctx := context.Background()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	kinds := map[string]func(i int, rng *rand.Rand) collect.Event{
		"touches": func(i int, _ *rand.Rand) collect.Event {
			e, err := collect.Touch{Resolved: collect.ResolvedTouch{TouchpointID: "tp_poster", TouchpointName: "Poster", Channel: "qr_poster", CampaignID: "cmp_1"},
				Token: "EAEBdlmlMCzsTys", Via: "link", AnonymousID: fmt.Sprintf("v-%08d", i), At: at, ReceivedAt: at,
			}.Event(collect.TouchSourceID, func() string { return fmt.Sprint("t", i) })
			if err != nil {
				b.Fatal(err)
			}
			return e
		},
		"visitors": func(i int, rng *rand.Rand) collect.Event {
			v := rng.IntN(200_000)
			e := collect.Event{MessageID: fmt.Sprint("m", i), Type: "page", Name: "/products/trail-jacket", AnonymousID: fmt.Sprintf("anon-%08d", v), Timestamp: at, ReceivedAt: at,
				Payload: []byte(`{"type":"page","properties":{"path":"/products/trail-jacket"}}`)}
			if rng.IntN(10) == 0 {
				e.Type, e.Name, e.UserID = "identify", "", fmt.Sprint("user-", v)
				e.Payload = fmt.Appendf(nil, `{"type":"identify","userId":"user-%d","traits":{"email":"member%d@example.com","phone":"+86138%08d"}}`, v, v, v)
			}
			return e
		},
	}
	// "returning" is "visitors" once the pool has a history: 500,000 of its events are processed first
	// (untimed), so that nearly every visitor of the timed events has a profile to find and update.
	cases := []struct {
		name, kind string
		history    int
	}{{"touches", "touches", 0}, {"visitors", "visitors", 0}, {"returning", "visitors", 500_000}}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			const events = 50_000
			for b.Loop() {
				b.StopTimer()
				db := storetest.SQLite(b, hearth.SystemClock{})
				rng := rand.New(rand.NewPCG(1, 2))
				p := profile.NewProcessor(db, profile.Options{})
				process := func() {
					for {
						n, err := p.ProcessUpTo(ctx, 1000)
						if err != nil {
							b.Fatal(err)
						}
						if n == 0 {
							break
						}
					}
				}
				var evs []collect.Event
				for i := range c.history + events {
					evs = append(evs, kinds[c.kind](i, rng))
				}
				appendEvents(b, db, evs[:c.history])
				process()
				appendEvents(b, db, evs[c.history:])
				b.StartTimer()
				process()
			}
			b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// appendEvents appends events to db's log, 5,000 a batch.
func appendEvents(tb testing.TB, db *store.DB, events []collect.Event) {
	tb.Helper()
	withWriter(db, func(runCtx context.Context, w *store.EventWriter) {
		for len(events) > 0 {
			n := min(5000, len(events))
			if _, err := w.Append(runCtx, &collect.Batch{SourceID: "web", ReceivedAt: time.Now(), Events: events[:n]}); err != nil {
				tb.Fatal(err)
			}
			events = events[n:]
		}
	})
}

// withWriter runs an event writer on db while fn appends through it.
func withWriter(db *store.DB, fn func(ctx context.Context, w *store.EventWriter)) {
	w := store.NewEventWriter(db, store.EventWriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	fn(ctx, w)
}
