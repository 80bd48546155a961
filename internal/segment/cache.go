package segment

import (
	"context"
	"encoding/json"
	"sync"
	"time"

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

func (r cachingReader) Stages(ctx context.Context, stages []profile.Stage, within *Set) (*Set, error) {
	if within != nil {
		return r.Reader.Stages(ctx, stages, within)
	}
	return r.cache.get(cacheKey("stages", stages), r.now, func() (*Set, error) { return r.Reader.Stages(ctx, stages, nil) })
}

func (r cachingReader) Reachable(ctx context.Context, channel string, within *Set) (*Set, error) {
	if within != nil {
		return r.Reader.Reachable(ctx, channel, within)
	}
	return r.cache.get(cacheKey("reachable", channel), r.now, func() (*Set, error) { return r.Reader.Reachable(ctx, channel, nil) })
}
