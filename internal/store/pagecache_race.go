//go:build race

package store

// SeparatePageCaches says whether each connection has a page cache of its own: not in the race detector's
// build, which keeps SQLite's shared pool (see pagecache.go).
const SeparatePageCaches = false

// PageCacheCounts are the page caches' lifetime counts (see pagecache.go).
type PageCacheCounts struct{ Hits, Misses, Evictions int64 }

// PageCacheStats are zero: SQLite's own pool does not count.
func PageCacheStats() PageCacheCounts { return PageCacheCounts{} }
