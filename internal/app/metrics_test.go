package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type offsets struct {
	head  int64
	at    map[string]int64
	aside map[string]int64
	err   error
}

func (o offsets) LogHead(context.Context) (int64, error) { return o.head, o.err }
func (o offsets) ConsumerOffset(_ context.Context, name string) (int64, error) {
	return o.at[name], nil
}
func (o offsets) SetAsideEvents(_ context.Context, name string, _ int) (int64, []collect.SetAsideEvent, error) {
	return o.aside[name], nil, nil
}

func TestConsumerLag(t *testing.T) {
	lag := newConsumerLag(offsets{head: 120, at: map[string]int64{"profiles": 100}, aside: map[string]int64{"profiles": 2}}, "profiles", "new")
	want := `# HELP hearth_event_log_consumer_lag_events Events appended to the log that a consumer (profiles: the profile processor; segments: the segment engine; touch-stats and touch-hours: the touch counter) has yet to read.
# TYPE hearth_event_log_consumer_lag_events gauge
hearth_event_log_consumer_lag_events{consumer="new"} 120
hearth_event_log_consumer_lag_events{consumer="profiles"} 20
# HELP hearth_event_log_set_aside_events Events that a consumer failed on alone, again and again, and set aside so as to read on (see the server log for why).
# TYPE hearth_event_log_set_aside_events gauge
hearth_event_log_set_aside_events{consumer="new"} 0
hearth_event_log_set_aside_events{consumer="profiles"} 2
`
	if err := testutil.CollectAndCompare(lag, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if err := testutil.CollectAndCompare(newConsumerLag(offsets{err: errors.New("database is closed")}, "profiles"), strings.NewReader("")); err == nil {
		t.Error("a store that cannot be read gave a lag")
	}
}

type sourceList struct {
	srcs  []collect.Source
	stats map[string]collect.SourceStats
	err   error
}

func (l sourceList) ListSources(context.Context) ([]collect.Source, error) { return l.srcs, l.err }
func (l sourceList) AllSourceStats(context.Context) (map[string]collect.SourceStats, error) {
	return l.stats, nil
}

func TestSourceEvents(t *testing.T) {
	m := newSourceCounts(sourceList{
		srcs: []collect.Source{{ID: "s1", Name: "Website", Kind: collect.KindWebsite, Enabled: true, Throttled: 40},
			{ID: "s2", Name: "会员 App", Kind: collect.KindApp}},
		stats: map[string]collect.SourceStats{"s1": {Accepted: 1200, Duplicates: 3, Rejected: 7}},
	})
	want := `# HELP hearth_source_events_total Events a source sent, by outcome: accepted (stored), duplicate (a retry, stored once), refused (invalid: see the source's live debugger) or throttled (over its rate limit, answered 429; counted every few seconds).
# TYPE hearth_source_events_total counter
hearth_source_events_total{outcome="accepted",source_id="s1"} 1200
hearth_source_events_total{outcome="accepted",source_id="s2"} 0
hearth_source_events_total{outcome="duplicate",source_id="s1"} 3
hearth_source_events_total{outcome="duplicate",source_id="s2"} 0
hearth_source_events_total{outcome="refused",source_id="s1"} 7
hearth_source_events_total{outcome="refused",source_id="s2"} 0
hearth_source_events_total{outcome="throttled",source_id="s1"} 40
hearth_source_events_total{outcome="throttled",source_id="s2"} 0
# HELP hearth_source_info Each source's name and kind, and 1 while it is enabled.
# TYPE hearth_source_info gauge
hearth_source_info{kind="app",name="会员 App",source_id="s2"} 0
hearth_source_info{kind="website",name="Website",source_id="s1"} 1
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if err := testutil.CollectAndCompare(newSourceCounts(sourceList{err: errors.New("database is closed")}), strings.NewReader("")); err == nil {
		t.Error("a store that cannot be read gave counts")
	}
}

func TestWriterLoad(t *testing.T) {
	var l writerLoad
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	if u := l.utilizationAt(t0); u != 0 {
		t.Errorf("idle: %v", u)
	}
	l.addAt(t0, 0) // the second begins
	l.addAt(t0.Add(100*time.Millisecond), 300*time.Millisecond)
	l.addAt(t0.Add(900*time.Millisecond), 200*time.Millisecond)
	if u := l.utilizationAt(t0.Add(500 * time.Millisecond)); u != 0 {
		t.Errorf("within the first second: %v, want 0 (no whole second yet)", u)
	}
	if u := l.utilizationAt(t0.Add(1100 * time.Millisecond)); u != 0.5 {
		t.Errorf("after a second with 500 ms of writes: %v, want 0.5", u)
	}
	if u := l.utilizationAt(t0.Add(1900 * time.Millisecond)); u != 0.5 {
		t.Errorf("still that second: %v, want 0.5", u)
	}
	if u := l.utilizationAt(t0.Add(3500 * time.Millisecond)); u != 0 {
		t.Errorf("after seconds without writes: %v, want 0", u)
	}
	l.addAt(t0.Add(4*time.Second), 3*time.Second)
	if u := l.utilizationAt(t0.Add(5100 * time.Millisecond)); u != 1 {
		t.Errorf("more writing than a second (overlapping commits): %v, want 1", u)
	}
}

// Close behind the log the processor rests only under heavy load, and little; far behind, from less load, and
// far longer: ingestion first.
func TestProfilesRest(t *testing.T) {
	const took = 10 * time.Millisecond
	for _, tc := range []struct {
		load      float64
		farBehind bool
		want      time.Duration
	}{
		{0, false, 0},
		{0.4, false, 0},
		{0.7, false, 30 * time.Millisecond},
		{1, false, 60 * time.Millisecond},
		{0.3, true, 0},
		{0.4, true, 30 * time.Millisecond},
		{0.7, true, 120 * time.Millisecond},
		{1, true, 210 * time.Millisecond},
	} {
		got := profilesRest(tc.load, tc.farBehind, took)
		if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("load %.1f, far behind %v: rest %v, want %v", tc.load, tc.farBehind, got, tc.want)
		}
	}
}

func TestSQLiteFileSizes(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"hearth.db": 4096, "events.db": 8192, "events.db-wal": 100, "master.key": 45} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want := `# HELP hearth_sqlite_file_bytes Size of each file of the embedded store: hearth.db (people, segments, settings), events.db (the event log) and their WALs.
# TYPE hearth_sqlite_file_bytes gauge
hearth_sqlite_file_bytes{file="events.db"} 8192
hearth_sqlite_file_bytes{file="events.db-wal"} 100
hearth_sqlite_file_bytes{file="hearth.db"} 4096
`
	if err := testutil.CollectAndCompare(newSQLiteFiles(dir), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
