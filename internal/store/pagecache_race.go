//go:build race

package store

import "modernc.org/sqlite/pcache"

// SeparatePageCaches says whether each connection has a page cache of its own: not in the race detector's
// build, which keeps SQLite's shared pool (see pagecache.go).
const SeparatePageCaches = false

// PageCacheStats are zero: SQLite's own pool does not count.
func PageCacheStats() pcache.Stats { return pcache.Stats{} }
