package touchpoint_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// appendTouches appends touches of e's touchpoint to the log: at the given times, bots where bot says so.
func (e *batchEnv) appendTouches(t *testing.T, token string, at []time.Time, bot func(i int) bool) {
	t.Helper()
	w := store.NewEventWriter(e.db, store.EventWriterOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var evs []collect.Event
	for i, when := range at {
		ev, err := collect.Touch{Resolved: collect.ResolvedTouch{TouchpointID: e.tp.ID, TouchpointName: e.tp.Name, Channel: string(e.tp.Channel)},
			Token: token, Via: "link", AnonymousID: fmt.Sprintf("v-%d", i), Bot: bot(i), At: when, ReceivedAt: when,
		}.Event(collect.TouchSourceID, func() string { return fmt.Sprint("touch-", i, "-", when.UnixNano()) })
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if _, err := w.Append(ctx, &collect.Batch{SourceID: collect.TouchSourceID, ReceivedAt: e.clock.Now(), Events: evs}); err != nil {
		t.Fatal(err)
	}
}

// The counter adds each touch once to the totals and once to its hour, and on a store whose totals were
// counted before hours were (the hours' offset behind), it fills in the hours without counting the totals again.
func TestCountTouchesByHour(t *testing.T) {
	e := newBatchEnv(t)
	ctx := t.Context()
	token, err := e.svc.Token(e.tp, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	h := time.Date(2026, 4, 30, 9, 0, 0, 0, time.UTC)
	first := []time.Time{h.Add(5 * time.Minute), h.Add(59 * time.Minute), h.Add(2*time.Hour + time.Minute)}
	e.appendTouches(t, token, first, func(i int) bool { return i == 1 })
	// As a store made before hours were counted: its totals count these three, its hours' offset is at 0.
	head, err := e.db.LogHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := first[2]
	if err := e.db.AddTouchCounts(ctx, touchpoint.TouchCounts{
		Stats: []touchpoint.TouchStats{{TouchpointID: e.tp.ID, Touches: 2, BotTouches: 1, LastTouchAt: &last}}, StatsFrom: 0, StatsThrough: head,
	}); err != nil {
		t.Fatal(err)
	}
	e.appendTouches(t, token, []time.Time{h.Add(2*time.Hour + 30*time.Minute)}, func(int) bool { return false })
	if n, err := e.svc.CountTouches(ctx, e.db, e.db); err != nil || n != 4 {
		t.Fatalf("the counter read %d touches (%v), want all 4: the hours' offset is behind", n, err)
	}
	stats, err := e.svc.TouchStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := stats[e.tp.ID]; st.Touches != 3 || st.BotTouches != 1 {
		t.Errorf("totals %+v, want 3 people and 1 bot: each counted once", st)
	}
	hours, err := e.svc.TouchHours(ctx, e.tp.ID, h.Add(-time.Hour), h.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []touchpoint.TouchHour{
		{TouchpointID: e.tp.ID, Hour: h, Touches: 1, BotTouches: 1},
		{TouchpointID: e.tp.ID, Hour: h.Add(2 * time.Hour), Touches: 2},
	}
	if fmt.Sprint(hours) != fmt.Sprint(want) {
		t.Errorf("hours %+v, want %+v", hours, want)
	}
	// Nothing new: nothing read, nothing added.
	if n, err := e.svc.CountTouches(ctx, e.db, e.db); err != nil || n != 0 {
		t.Errorf("a pass with nothing new read %d (%v)", n, err)
	}
	if _, err := e.svc.TouchHours(ctx, e.tp.ID, h, h.Add(-time.Hour)); err == nil {
		t.Error("a range that ends before it starts was answered")
	}
	if _, err := e.svc.TouchHours(ctx, e.tp.ID, h, h.Add(touchpoint.MaxTouchHoursRange+time.Hour)); err == nil {
		t.Error("a range of more than 400 days was answered")
	}
}

// Counters that run at once, as on several nodes, count each touch once.
func TestCountTouchesConcurrently(t *testing.T) {
	e := newBatchEnv(t)
	ctx := t.Context()
	token, err := e.svc.Token(e.tp, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	at := make([]time.Time, 300)
	for i := range at {
		at[i] = time.Date(2026, 4, 30, 9, i%60, 0, 0, time.UTC)
	}
	e.appendTouches(t, token, at, func(i int) bool { return i%3 == 0 })
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := e.svc.CountTouches(ctx, e.db, e.db)
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.CountTouches(ctx, e.db, e.db); err != nil { // whatever a refused pass left
		t.Fatal(err)
	}
	stats, err := e.svc.TouchStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := stats[e.tp.ID]; st.Touches != 200 || st.BotTouches != 100 {
		t.Errorf("totals %+v, want 200 people and 100 bots", st)
	}
	hours, err := e.svc.TouchHours(ctx, e.tp.ID, at[0], at[0].Add(time.Hour))
	if err != nil || len(hours) != 1 || hours[0].Touches != 200 || hours[0].BotTouches != 100 {
		t.Errorf("hours %+v (%v), want one of 200 people and 100 bots", hours, err)
	}
}
