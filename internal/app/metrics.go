package app

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// newLogMetrics registers the event log's metrics and returns the writer's observer.
func newLogMetrics(reg prometheus.Registerer) func(requests, events int, t store.WriteTimes) {
	appended := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hearth_event_log_appended_total", Help: "Events handed to the event log (before deduplication).",
	})
	commits := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hearth_event_log_commit_seconds", Help: "Time to write one group commit.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	syncs := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hearth_event_log_commit_sync_seconds", Help: "Of each group commit, the time to write it to the disk and wait for the disk to keep it.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	commitRequests := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "hearth_event_log_commit_requests", Help: "Requests that shared one group commit.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	reg.MustRegister(appended, commits, syncs, commitRequests)
	return func(requests, events int, t store.WriteTimes) {
		appended.Add(float64(events))
		commits.Observe(t.Held.Seconds())
		syncs.Observe(t.Commit.Seconds())
		commitRequests.Observe(float64(requests))
	}
}

// newTouchMetrics registers the count of touch link requests by outcome and returns its observer.
func newTouchMetrics(reg prometheus.Registerer) func(outcome string) {
	touches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hearth_touch_requests_total",
		Help: "Requests to touch links by outcome: person, bot, rate_limited, error, or why the token was refused.",
	}, []string{"outcome"})
	reg.MustRegister(touches)
	return func(outcome string) { touches.WithLabelValues(outcome).Inc() }
}

// newPageCacheMetrics registers the counts of the embedded SQLite's page cache (store.SeparatePageCaches), all
// connections together: a hit rate falling under load says the state writer's cache is too small for the store.
func newPageCacheMetrics(reg prometheus.Registerer) {
	for _, m := range []struct {
		name, help string
		count      func() int64
	}{
		{"hearth_sqlite_page_cache_hits_total", "Pages SQLite found in a connection's page cache.", func() int64 { return store.PageCacheStats().Hits }},
		{"hearth_sqlite_page_cache_misses_total", "Pages SQLite did not find in a connection's page cache (read from the file or the WAL, or new).", func() int64 { return store.PageCacheStats().Misses }},
		{"hearth_sqlite_page_cache_evictions_total", "Pages a connection's page cache gave up to stay within its size.", func() int64 { return store.PageCacheStats().Evictions }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help}, func() float64 { return float64(m.count()) }))
	}
}

// sqliteFiles reports, when scraped, the size of each of the embedded store's files in the data folder: what
// an operator watches the disk for (the event log grows with every event; a WAL grows while a long read, such
// as a backup, keeps it from starting over).
type sqliteFiles struct {
	dir  string
	desc *prometheus.Desc
}

func newSQLiteFiles(dir string) sqliteFiles {
	return sqliteFiles{dir: dir, desc: prometheus.NewDesc("hearth_sqlite_file_bytes",
		"Size of each file of the embedded store: hearth.db (people, segments, settings), events.db (the event log) and their WALs.", []string{"file"}, nil)}
}

func (f sqliteFiles) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f sqliteFiles) Collect(ch chan<- prometheus.Metric) {
	for _, name := range store.SQLiteFiles {
		if st, err := os.Stat(filepath.Join(f.dir, name)); err == nil {
			ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, float64(st.Size()), name)
		}
	}
}

// offsetReader reads the event log's head, its consumers' offsets and the events they set aside.
type offsetReader interface {
	LogHead(ctx context.Context) (int64, error)
	ConsumerOffset(ctx context.Context, name string) (int64, error)
	SetAsideEvents(ctx context.Context, consumer string, limit int) (int64, []collect.SetAsideEvent, error)
}

// consumerLag reports, when scraped, how many events each consumer of the event log has yet to read, and
// how many it set aside.
type consumerLag struct {
	log         offsetReader
	names       []string
	desc, aside *prometheus.Desc
}

func newConsumerLag(log offsetReader, names ...string) consumerLag {
	return consumerLag{log: log, names: names, desc: prometheus.NewDesc("hearth_event_log_consumer_lag_events",
		"Events appended to the log that a consumer (profiles: the profile processor; segments: the segment engine; touch-stats and touch-hours: the touch counter) has yet to read.", []string{"consumer"}, nil),
		aside: prometheus.NewDesc("hearth_event_log_set_aside_events",
			"Events that a consumer failed on alone, again and again, and set aside so as to read on (see the server log for why).", []string{"consumer"}, nil)}
}

func (c consumerLag) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.aside }

func (c consumerLag) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	head, err := c.log.LogHead(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, name := range c.names {
		off, err := c.log.ConsumerOffset(ctx, name)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(max(0, head-off)), name)
		n, _, err := c.log.SetAsideEvents(ctx, name, 0)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.aside, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.aside, prometheus.GaugeValue, float64(n), name)
	}
}

// sourceReader reads the sources and what each has sent.
type sourceReader interface {
	ListSources(ctx context.Context) ([]collect.Source, error)
	AllSourceStats(ctx context.Context) (map[string]collect.SourceStats, error)
}

// sourceCounts reports, when scraped, what each source has sent as the store counts it (every node's, so
// any node's answer is the whole): what to alert on when a source starts sending events Hearth refuses, or
// more than its rate limit. Names are in an info metric, so that renaming a source does not break its series.
type sourceCounts struct {
	sources      sourceReader
	events, info *prometheus.Desc
}

func newSourceCounts(sources sourceReader) sourceCounts {
	return sourceCounts{sources: sources,
		events: prometheus.NewDesc("hearth_source_events_total",
			"Events a source sent, by outcome: accepted (stored), duplicate (a retry, stored once), refused (invalid: see the source's live debugger) or throttled (over its rate limit, answered 429; counted every few seconds).",
			[]string{"source_id", "outcome"}, nil),
		info: prometheus.NewDesc("hearth_source_info", "Each source's name and kind, and 1 while it is enabled.", []string{"source_id", "name", "kind"}, nil)}
}

func (c sourceCounts) Describe(ch chan<- *prometheus.Desc) { ch <- c.events; ch <- c.info }

func (c sourceCounts) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srcs, err := c.sources.ListSources(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.events, err)
		return
	}
	stats, err := c.sources.AllSourceStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.events, err)
		return
	}
	for _, src := range srcs {
		enabled := 0.0
		if src.Enabled {
			enabled = 1
		}
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, enabled, src.ID, src.Name, string(src.Kind))
		st := stats[src.ID]
		for outcome, n := range map[string]int64{"accepted": st.Accepted, "duplicate": st.Duplicates, "refused": st.Rejected, "throttled": src.Throttled} {
			ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(n), src.ID, outcome)
		}
	}
}

// writerLoad measures the share of the last second the event writer spent writing. Its commits' waits for
// the disk count: without them, at 50,000 events/s the processor rested too little and ingestion's p50
// doubled (BENCHMARKS.md).
type writerLoad struct {
	mu         sync.Mutex
	start      time.Time     // of the current second
	busy, last time.Duration // written in the current second, and in the one before
}

func (l *writerLoad) roll(now time.Time) {
	if d := now.Sub(l.start); d >= time.Second {
		l.last = l.busy
		if d >= 2*time.Second { // a whole second without writes
			l.last = 0
		}
		l.busy, l.start = 0, now
	}
}

func (l *writerLoad) add(took time.Duration) { l.addAt(time.Now(), took) }

func (l *writerLoad) addAt(now time.Time, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	l.busy += took
}

// utilization is the share of the last whole second spent writing, from 0 to 1.
func (l *writerLoad) utilization() float64 { return l.utilizationAt(time.Now()) }

func (l *writerLoad) utilizationAt(now time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	return min(1, l.last.Seconds())
}
