//go:build !race

package store

import (
	"modernc.org/sqlite"
	"modernc.org/sqlite/pcache"
)

// pageCache gives each SQLite connection a page cache of its own, bounded by its cache_size. The SQLite port
// is built with SQLITE_ENABLE_MEMORY_MANAGEMENT, which makes SQLite's own page cache one pool for all
// connections that evicts the least recently used page, whoever read it: the event log's writer, appending
// page after page, pushed the profile processor's pages out of the state writer's cache and kept them, 60-120
// MB of the server's memory at 50,000 events/s (the pool counts pages, so four times that with the log's 16
// KiB pages). This cache is the driver's own (modernc.org/sqlite/pcache), registered before any connection
// opens; its pages cost their size, where SQLite's pool took a page and its header in an 8 KiB block.
//
// Not in the race detector's build: with another page cache, SQLite still takes its scratch pages from its
// own pool's allocator, whose statistics counters it then updates without a lock (pcache1Alloc), which the
// detector reports. scripts/test runs this package's tests without it as well.
var pageCache = pcache.New()

// SeparatePageCaches says whether each connection has a page cache of its own (see pageCache).
const SeparatePageCaches = true

func init() { sqlite.MustRegisterPageCache(pageCache) }

// PageCacheStats are the page cache's lifetime counts, every connection's together.
func PageCacheStats() pcache.Stats { return pageCache.Stats() }
