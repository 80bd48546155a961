package segment

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// countTTL is how long a live count reuses a condition's profiles: while a marketer edits a rule, each count
// queries only the condition that changed.
const countTTL = time.Minute

// leafCache keeps the profiles of conditions over every profile, for live counts.
type leafCache struct {
	mu      sync.Mutex
	entries map[string]cached
}

type cached struct {
	set *Set
	at  time.Time
}

const maxCached = 64

func (c *leafCache) get(key string, now time.Time, read func() (*Set, error)) (*Set, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < countTTL {
		return e.set.Clone(), nil
	}
	s, err := read()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCached {
		c.entries = map[string]cached{} // rarely full: a few conditions are edited at a time
	}
	c.entries[key] = cached{set: s.Clone(), at: now}
	return s, nil
}

// cachingReader answers conditions over every profile from a leafCache.
type cachingReader struct {
	Reader
	cache *leafCache
	now   time.Time
}

func cacheKey(kind string, args ...any) string {
	b, _ := json.Marshal(args)
	return kind + string(b)
}

func (r cachingReader) Profiles(ctx context.Context, within *Set) (*Set, error) {
	if within != nil {
		return r.Reader.Profiles(ctx, within)
	}
	return r.cache.get(cacheKey("profiles"), r.now, func() (*Set, error) { return r.Reader.Profiles(ctx, nil) })
}

func (r cachingReader) Traits(ctx context.Context, c Compare, today string, within *Set) (*Set, error) {
	if within != nil {
		return r.Reader.Traits(ctx, c, today, within)
	}
	return r.cache.get(cacheKey("traits", c, today), r.now, func() (*Set, error) { return r.Reader.Traits(ctx, c, today, nil) })
}

func (r cachingReader) Events(ctx context.Context, q EventQuery, within *Set) (*Set, error) {
	if within != nil {
		return r.Reader.Events(ctx, q, within)
	}
	return r.cache.get(cacheKey("events", q), r.now, func() (*Set, error) { return r.Reader.Events(ctx, q, nil) })
}

func (r cachingReader) Touched(ctx context.Context, t Touched, since time.Time, within *Set) (*Set, error) {
	if within != nil {
		return r.Reader.Touched(ctx, t, since, within)
	}
	return r.cache.get(cacheKey("touched", t, since), r.now, func() (*Set, error) { return r.Reader.Touched(ctx, t, since, nil) })
}

func (r cachingReader) Steps(ctx context.Context, steps []profile.Steps, within *Set) (*Set, error) {
	if within != nil {
		return r.Reader.Steps(ctx, steps, within)
	}
	return r.cache.get(cacheKey("steps", steps), r.now, func() (*Set, error) { return r.Reader.Steps(ctx, steps, nil) })
}

func (r cachingReader) Reachable(ctx context.Context, channel string, within *Set) (*Set, error) {
	if within != nil {
		return r.Reader.Reachable(ctx, channel, within)
	}
	return r.cache.get(cacheKey("reachable", channel), r.now, func() (*Set, error) { return r.Reader.Reachable(ctx, channel, nil) })
}

// prefetchWidth is how many conditions a count reads side by side: two cores' worth, the machine Hearth is
// measured on; more would only share them.
const prefetchWidth = 2

// prefetch reads into the cache, side by side and each in a view of its own, the conditions of a rule's
// top-level and that its evaluation would ask of every profile. A count's conditions then cost the slowest
// of them rather than their sum. The evaluation asks a condition of only the profiles the earlier ones left
// once those are few (restrictLimit), which is far cheaper: the reads stop as soon as the conditions read
// so far in the rule's order leave that few, and the evaluation goes on as without them. Views a little
// apart in time are no worse than the cache's minute: a count while editing is of the moment, not of one
// snapshot.
func prefetch(ctx context.Context, st Viewer, rule Rule, reader func(Reader) Reader, now time.Time) {
	var leaves []Rule
	for _, c := range rule.And {
		if _, negative := positiveOf(c); negative {
			continue
		}
		if !c.cacheable() { // it may leave few profiles, and the conditions after it are then cheap
			return
		}
		leaves = append(leaves, c)
	}
	if len(leaves) < 2 {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type done struct {
		i   int
		set *Set
	}
	results := make(chan done, len(leaves))
	next := make(chan int, len(leaves))
	for i := range leaves {
		next <- i
	}
	close(next)
	for range min(prefetchWidth, len(leaves)) {
		go func() {
			for i := range next {
				var s *Set
				err := st.View(ctx, func(r Reader) error {
					var err error
					s, err = newEvaluation(ctx, reader(r), now).leaf(leaves[i], nil)
					return err
				})
				if err != nil { // cancelled, or failing: the evaluation asks again and reports it
					s = nil
				}
				results <- done{i, s}
			}
		}()
	}
	sets := make([]*Set, len(leaves))
	read := 0 // leaves[:read] are all read
	for range leaves {
		d := <-results
		sets[d.i] = d.set
		if d.set == nil {
			return
		}
		for read < len(leaves) && sets[read] != nil {
			read++
		}
		if d.set.GetCardinality() <= restrictLimit {
			return
		}
		if read > 1 && read < len(leaves) && roaring64.FastAnd(sets[:read]...).GetCardinality() <= restrictLimit {
			return
		}
	}
}

// cacheable reports whether a rule is one condition that cachingReader keeps.
func (n Rule) cacheable() bool {
	return n.Trait != nil || n.Event != nil || n.Touched != nil || n.Stage != nil || n.Reachable != nil
}
