package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
)

func event(clock *Clock, msgID, user string) collect.Event {
	now := clock.Now()
	return collect.Event{
		MessageID: msgID, Type: "track", Name: "Order Completed", UserID: user,
		Timestamp: now.Add(-time.Second), ReceivedAt: now,
		Payload: []byte(fmt.Sprintf(`{"type":"track","messageId":%q,"userId":%q,"event":"Order Completed","properties":{"总额":9.5}}`, msgID, user)),
	}
}

func runWriter(t *testing.T, db *store.DB, opts store.EventWriterOptions) *store.EventWriter {
	w := store.NewEventWriter(db, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("event writer: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func testEventLog(t *testing.T, db *store.DB, clock *Clock) {
	w := runWriter(t, db, store.EventWriterOptions{DedupeWindow: 24 * time.Hour})
	b := &collect.Batch{SourceID: "src1", ReceivedAt: clock.Now(), Events: []collect.Event{
		event(clock, "m1", "u1"), event(clock, "m2", "u2"), event(clock, "m1", "u1"), // m1 twice in one request
	}, Rejected: []collect.Rejected{{Index: 3, Reason: "userId or anonymousId is required", Payload: []byte(`{"event":"x"}`)}}}
	res, err := w.Append(ctx, b)
	must(t, err)
	if res != (collect.AppendResult{Accepted: 2, Duplicates: 1}) {
		t.Errorf("first append = %+v, want 2 accepted, 1 duplicate", res)
	}
	// A retried request: stored once. The same message id from another source is another event.
	res, err = w.Append(ctx, &collect.Batch{SourceID: "src1", ReceivedAt: clock.Now(), Events: []collect.Event{event(clock, "m1", "u1")}})
	must(t, err)
	if res != (collect.AppendResult{Duplicates: 1}) {
		t.Errorf("retry = %+v, want 1 duplicate", res)
	}
	res, err = w.Append(ctx, &collect.Batch{SourceID: "src2", ReceivedAt: clock.Now(), Events: []collect.Event{event(clock, "m1", "u9")}})
	must(t, err)
	if res.Accepted != 1 {
		t.Errorf("same id, other source = %+v, want accepted", res)
	}
	// Past the window, the same id is a new event.
	clock.Advance(25 * time.Hour)
	res, err = w.Append(ctx, &collect.Batch{SourceID: "src1", ReceivedAt: clock.Now(), Events: []collect.Event{event(clock, "m2", "u2")}})
	must(t, err)
	if res.Accepted != 1 {
		t.Errorf("after the window = %+v, want accepted", res)
	}

	evs, err := db.ReadEvents(ctx, 0, 100)
	must(t, err)
	if len(evs) != 4 {
		t.Fatalf("log has %d events, want 4", len(evs))
	}
	for i, e := range evs {
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Errorf("log out of order: %d after %d", e.Seq, evs[i-1].Seq)
		}
	}
	if e := evs[0]; e.SourceID != "src1" || e.MessageID != "m1" || e.Name != "Order Completed" || e.UserID != "u1" || !e.ReceivedAt.Equal(clock.Now().Add(-25*time.Hour)) {
		t.Errorf("first event = %+v", e)
	}
	if got := string(evs[0].Payload); got == "" || got[0] != '{' {
		t.Errorf("payload = %q", got)
	}
	rest, err := db.ReadEvents(ctx, evs[1].Seq, 100)
	must(t, err)
	if len(rest) != 2 || rest[0].Seq != evs[2].Seq {
		t.Errorf("ReadEvents after %d = %d events", evs[1].Seq, len(rest))
	}

	// Consumer offsets.
	pos, err := db.ConsumerOffset(ctx, "profiles")
	must(t, err)
	if pos != 0 {
		t.Errorf("new consumer at %d", pos)
	}
	must(t, db.SetConsumerOffset(ctx, "profiles", evs[2].Seq))
	must(t, db.SetEventAside(ctx, "fresh", 0, evs[0].Seq, "a consumer's first event")) // no offset stored yet
	if pos, _ = db.ConsumerOffset(ctx, "fresh"); pos != evs[0].Seq {
		t.Errorf("a new consumer at %d after setting its first event aside", pos)
	}
	must(t, db.SetConsumerOffset(ctx, "profiles", evs[3].Seq))
	if pos, _ = db.ConsumerOffset(ctx, "profiles"); pos != evs[3].Seq {
		t.Errorf("consumer at %d, want %d", pos, evs[3].Seq)
	}
	// An event set aside: the offset moves past it, from where the consumer was only, and the reason is kept.
	next := evs[3].Seq + 1
	wantKind(t, db.SetEventAside(ctx, "profiles", evs[2].Seq, next, "stale"), hearth.Conflict)
	must(t, db.SetEventAside(ctx, "profiles", evs[3].Seq, next, "profile: store events 9 to 9: boom"))
	if pos, _ = db.ConsumerOffset(ctx, "profiles"); pos != next {
		t.Errorf("consumer at %d after setting %d aside", pos, next)
	}
	asideCount, aside, err := db.SetAsideEvents(ctx, "profiles", 10)
	must(t, err)
	want := []collect.SetAsideEvent{{Consumer: "profiles", Seq: next, Reason: "profile: store events 9 to 9: boom", At: clock.Now()}}
	if asideCount != 1 || !cmp.Equal(aside, want) {
		t.Errorf("set aside: %d, %+v; want 1, %+v", asideCount, aside, want)
	}
	if asideCount, aside, err = db.SetAsideEvents(ctx, "segments", 10); err != nil || asideCount != 0 || aside != nil {
		t.Errorf("another consumer's set aside: %d, %+v, %v", asideCount, aside, err)
	}
	must(t, db.SetConsumerOffset(ctx, "profiles", evs[3].Seq))

	// The debugger's view of one source.
	latest, cursor, err := db.SourceEvents(ctx, "src1", 0, 10)
	must(t, err)
	if len(latest) != 3 || latest[0].Seq != evs[3].Seq || cursor != evs[3].Seq {
		t.Errorf("latest of src1: %d events, cursor %d", len(latest), cursor)
	}
	res, err = w.Append(ctx, &collect.Batch{SourceID: "src1", ReceivedAt: clock.Now(), Events: []collect.Event{event(clock, "m3", "u3")}})
	must(t, err)
	newer, cursor2, err := db.SourceEvents(ctx, "src1", cursor, 10)
	must(t, err)
	if len(newer) != 1 || newer[0].MessageID != "m3" || cursor2 <= cursor {
		t.Errorf("after cursor: %+v, cursor %d", newer, cursor2)
	}
	rej, err := db.SourceRejections(ctx, "src1", 0, 10)
	must(t, err)
	if len(rej) != 1 || rej[0].Reason != "userId or anonymousId is required" || rej[0].Payload != `{"event":"x"}` {
		t.Errorf("rejections = %+v", rej)
	}
	stats, err := db.AllSourceStats(ctx)
	must(t, err)
	if s := stats["src1"]; s.Accepted != 4 || s.Duplicates != 2 || s.Rejected != 1 || s.LastEventAt == nil || !s.LastEventAt.Equal(clock.Now()) {
		t.Errorf("stats of src1 = %+v", s)
	}

	// Retention removes what is older than the cutoff, and nothing else.
	n, err := db.DeleteEventsBefore(ctx, clock.Now().Add(-time.Hour), clock.Now().Add(-time.Hour))
	must(t, err)
	if n != 3 {
		t.Errorf("retention removed %d events, want 3", n)
	}
	left, err := db.ReadEvents(ctx, 0, 100)
	must(t, err)
	if len(left) != 2 {
		t.Errorf("after retention %d events, want 2", len(left))
	}
	if rej, _ := db.SourceRejections(ctx, "src1", 0, 10); len(rej) != 0 {
		t.Errorf("old rejections kept: %d", len(rej))
	}
	// When every event has expired the newest stays, so that the log's positions, where the consumers'
	// offsets point, never start over (SQLite would give the next event the seq of the first).
	clock.Advance(2 * time.Hour)
	n, err = db.DeleteEventsBefore(ctx, clock.Now(), clock.Now())
	must(t, err)
	if n != 1 {
		t.Errorf("retention of everything removed %d events, want 1", n)
	}
	_, err = w.Append(ctx, &collect.Batch{SourceID: "src1", ReceivedAt: clock.Now(), Events: []collect.Event{event(clock, "m4", "u4")}})
	must(t, err)
	if after, err := db.ReadEvents(ctx, 0, 100); err != nil || len(after) != 2 || after[0].Seq != left[1].Seq || after[1].Seq <= left[1].Seq {
		t.Errorf("after retention of everything and an append: %d events (%v), want the newest kept and the next after it", len(after), err)
	}
}

// Many concurrent appends share transactions and lose nothing.
func testEventLogConcurrent(t *testing.T, db *store.DB, clock *Clock) {
	w := runWriter(t, db, store.EventWriterOptions{})
	const writers, batches, per = 8, 20, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				batch := &collect.Batch{SourceID: "src", ReceivedAt: clock.Now()}
				for i := 0; i < per; i++ {
					batch.Events = append(batch.Events, event(clock, fmt.Sprintf("%d-%d-%d", g, b, i), "u"))
				}
				res, err := w.Append(ctx, batch)
				if err == nil && res.Accepted != per {
					err = fmt.Errorf("accepted %d of %d", res.Accepted, per)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs, err := db.ReadEvents(ctx, 0, writers*batches*per+1)
	must(t, err)
	if len(evs) != writers*batches*per {
		t.Errorf("log has %d events, want %d", len(evs), writers*batches*per)
	}
}

// Several sources' batches handed over at once are stored in the order given, in one commit, each with its
// own result; a batch whose events are all known again counts its duplicates.
func testAppendBatches(t *testing.T, db *store.DB, clock *Clock) {
	w := runWriter(t, db, store.EventWriterOptions{})
	head, err := db.LogHead(ctx)
	must(t, err)
	batch := func(source string, ids ...string) *collect.Batch {
		b := &collect.Batch{SourceID: source, ReceivedAt: clock.Now()}
		for _, id := range ids {
			b.Events = append(b.Events, event(clock, id, "u-"+id))
		}
		return b
	}
	res, err := w.AppendBatches(ctx, []*collect.Batch{batch("web", "a1", "a2"), batch("app", "b1"), batch("web", "a3", "a1"), batch("app", "b2")})
	must(t, err)
	want := []collect.AppendResult{{Accepted: 2}, {Accepted: 1}, {Accepted: 1, Duplicates: 1}, {Accepted: 1}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("results %+v, want %+v", res, want)
	}
	evs, err := db.ReadEvents(ctx, head, 100)
	must(t, err)
	var got []string
	for _, e := range evs {
		got = append(got, e.SourceID+"/"+e.MessageID)
	}
	if fmt.Sprint(got) != "[web/a1 web/a2 app/b1 web/a3 app/b2]" {
		t.Errorf("log holds %v, want the events in the order given", got)
	}
	res, err = w.AppendBatches(ctx, []*collect.Batch{batch("app", "b1", "b2")})
	must(t, err)
	if len(res) != 1 || res[0] != (collect.AppendResult{Duplicates: 2}) {
		t.Errorf("again: %+v, want 2 duplicates", res)
	}
}

// Deduplication survives a restart: what a new writer knows comes from the log itself.
func testDedupeAfterRestart(t *testing.T, db *store.DB, clock *Clock) {
	ctx1, stop := context.WithCancel(context.Background())
	w := store.NewEventWriter(db, store.EventWriterOptions{DedupeWindow: 48 * time.Hour})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx1) }()
	var batch collect.Batch
	batch.SourceID, batch.ReceivedAt = "src", clock.Now()
	for i := 0; i < 3000; i++ {
		batch.Events = append(batch.Events, event(clock, fmt.Sprintf("m%d", i), "u"))
	}
	if res, err := w.Append(ctx, &batch); err != nil || res.Accepted != 3000 {
		t.Fatalf("first append: %+v, %v", res, err)
	}
	clock.Advance(30 * time.Hour) // another day: the index spans two days now
	old := batch
	old.ReceivedAt = clock.Now()
	old.Events = []collect.Event{event(clock, "m7", "u"), event(clock, "new-1", "u")}
	if res, err := w.Append(ctx, &old); err != nil || res.Accepted != 1 || res.Duplicates != 1 {
		t.Fatalf("second append: %+v, %v", res, err)
	}
	stop()
	must(t, <-done)

	// A new writer, as after a restart.
	w2 := runWriter(t, db, store.EventWriterOptions{DedupeWindow: 48 * time.Hour})
	again := &collect.Batch{SourceID: "src", ReceivedAt: clock.Now()}
	for _, id := range []string{"m0", "m2999", "new-1", "new-2"} {
		again.Events = append(again.Events, event(clock, id, "u"))
	}
	res, err := w2.Append(ctx, again)
	must(t, err)
	if res.Accepted != 1 || res.Duplicates != 3 {
		t.Errorf("after restart: %+v, want 1 accepted (new-2), 3 duplicates", res)
	}
	// Past the window, the first day's messages are new again.
	clock.Advance(49 * time.Hour)
	w3 := runWriter(t, db, store.EventWriterOptions{DedupeWindow: 48 * time.Hour})
	res, err = w3.Append(ctx, &collect.Batch{SourceID: "src", ReceivedAt: clock.Now(), Events: []collect.Event{event(clock, "m0", "u")}})
	must(t, err)
	if res.Accepted != 1 {
		t.Errorf("past the window: %+v, want accepted", res)
	}
}
