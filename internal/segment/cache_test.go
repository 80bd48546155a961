package segment

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// slowReader answers a trait condition and an event condition over a store of profiles 1 to 100,000: the
// profiles with the trait are trait, those with the event every other one. Asked of every profile, the
// event condition takes until its view's context ends, or a while.
type slowReader struct {
	Reader
	ctx   context.Context
	trait *Set
	calls *readCalls
}

type readCalls struct {
	mu                         sync.Mutex
	views                      int
	traits, events, restricted int // events asked of every profile that came back, and asked of some
}

func (r slowReader) Traits(_ context.Context, _ Compare, _ string, within *Set) (*Set, error) {
	r.calls.mu.Lock()
	r.calls.traits++
	r.calls.mu.Unlock()
	s := r.trait.Clone()
	if within != nil {
		s.And(within)
	}
	return s, nil
}

func (r slowReader) Events(ctx context.Context, _ EventQuery, within *Set) (*Set, error) {
	every := roaring64.New()
	for n := uint64(2); n <= 100_000; n += 2 {
		every.Add(n)
	}
	if within != nil {
		r.calls.mu.Lock()
		r.calls.restricted++
		r.calls.mu.Unlock()
		return roaring64.And(every, within), nil
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(200 * time.Millisecond):
	}
	r.calls.mu.Lock()
	r.calls.events++
	r.calls.mu.Unlock()
	return every, nil
}

type slowStore struct {
	Admin
	trait *Set
	calls *readCalls
}

func (s slowStore) View(ctx context.Context, fn func(Reader) error) error {
	s.calls.mu.Lock()
	s.calls.views++
	s.calls.mu.Unlock()
	return fn(slowReader{ctx: ctx, trait: s.trait, calls: s.calls})
}

func TestCountReadsConditionsSideBySide(t *testing.T) {
	rule, err := ParseRule([]byte(`{"and": [{"trait": {"name": "city", "op": "equals", "value": "上海"}}, {"event": {"name": "Order Completed"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		trait      *Set
		want       int64
		views      int
		events     int // of every profile, read to the end
		restricted int
	}{
		// Both conditions hold for many: each is read in a view of its own, then the count takes them from the
		// cache in its own view.
		{"many", roaring64.BitmapOf(rangeOf(1, 50_000)...), 25_000, 3, 1, 0},
		// The trait holds for a few: the event's read of every profile is stopped, and the count asks it of the
		// few alone, as it would have without reading ahead.
		{"few", roaring64.BitmapOf(1, 2, 3, 4, 10), 3, 3, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := &readCalls{}
			svc := NewService(slowStore{trait: tc.trait, calls: calls}, fixedClock(time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)), nil, nil)
			c, err := svc.Count(context.Background(), rule)
			if err != nil {
				t.Fatal(err)
			}
			n := c.Size
			calls.mu.Lock()
			defer calls.mu.Unlock()
			if n != tc.want || calls.views != tc.views || calls.traits != 1 || calls.events != tc.events || calls.restricted != tc.restricted {
				t.Errorf("count %d in %d views, traits read %d times, events of everyone %d, of some %d; want %d in %d views, 1, %d, %d",
					n, calls.views, calls.traits, calls.events, calls.restricted, tc.want, tc.views, tc.events, tc.restricted)
			}
		})
	}
}

func rangeOf(from, to uint64) []uint64 {
	var s []uint64
	for n := from; n <= to; n++ {
		s = append(s, n)
	}
	return s
}
