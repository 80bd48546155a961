//go:build !race

package store

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// The page cache: each SQLite connection gets a cache of its own, bounded by its cache_size, installed as
// SQLite's page cache (SQLITE_CONFIG_PCACHE2) before any connection opens.
//
// Why not SQLite's own: the SQLite port is built with SQLITE_ENABLE_MEMORY_MANAGEMENT, which makes its page
// cache one pool for all connections that recycles the least recently used page, whoever read it. The event
// log's writer, appending page after page, pushed the profile processor's pages out of the state writer's
// cache and kept 60-120 MB of the server's memory at 50,000 events/s (the pool counts pages, so four times
// that with the log's 16 KiB pages).
//
// Why not the driver's (modernc.org/sqlite/pcache, v1.61 to v1.63): its binding keeps a record for every page
// its cache ever evicted and forgets it only when SQLite asks for that page again, which the log's writer,
// appending, never does. The records grew with every page written (a memory leak) and SQLite's truncation at
// the end of each write transaction walked them all, so every commit cost more than the one before
// (TestPageCacheForgetsEvictedPages checks that this one keeps no more than it holds).
//
// This one is SQLite's pcache1 for one connection: a page is its buffer, allocated at its exact size (libc's
// allocator rounds up to a power of two), and a small allocation with SQLite's page header, the page's slot in
// the cache's table (so that nothing is looked up when SQLite hands a page back) and SQLite's extra bytes;
// unpinned pages are recycled least recently used first once the cache is full.
//
// Not in the race detector's build: with another page cache, SQLite still takes its scratch pages from its
// own pool's allocator, whose statistics counters it then updates without a lock (pcache1Alloc), which the
// detector reports. scripts/test runs this package's tests without it as well.

// SeparatePageCaches says whether each connection has a page cache of its own.
const SeparatePageCaches = true

// PageCacheCounts are the page caches' lifetime counts, every connection's together.
type PageCacheCounts struct {
	Hits      int64 // pages SQLite found in a cache
	Misses    int64 // pages it did not (read from the file or the WAL, or new)
	Evictions int64 // pages a cache gave up to stay within its size
}

// PageCacheStats returns the counts so far.
func PageCacheStats() PageCacheCounts {
	caches.mu.Lock()
	defer caches.mu.Unlock()
	n := caches.closed
	caches.live.each(func(c *pageCache) {
		n.Hits += c.hits.Load()
		n.Misses += c.misses.Load()
		n.Evictions += c.evictions.Load()
	})
	return n
}

func init() {
	tls := libc.NewTLS()
	defer tls.Close()
	methods := libc.Xcalloc(tls, 1, types.Size_t(unsafe.Sizeof(sqlite3.Tsqlite3_pcache_methods2{})))
	args := libc.Xmalloc(tls, types.Size_t(unsafe.Sizeof(uintptr(0))))
	if methods == 0 || args == 0 {
		panic("store: out of memory installing the page cache")
	}
	defer libc.Xfree(tls, args)
	m := (*sqlite3.Tsqlite3_pcache_methods2)(cmem(methods))
	m.FiVersion = 1
	m.FxInit = cFunc(pcacheInit)
	m.FxShutdown = cFunc(pcacheShutdown)
	m.FxCreate = cFunc(pcacheCreate)
	m.FxCachesize = cFunc(pcacheCachesize)
	m.FxPagecount = cFunc(pcachePagecount)
	m.FxFetch = cFunc(pcacheFetch)
	m.FxUnpin = cFunc(pcacheUnpin)
	m.FxRekey = cFunc(pcacheRekey)
	m.FxTruncate = cFunc(pcacheTruncate)
	m.FxDestroy = cFunc(pcacheDestroy)
	m.FxShrink = cFunc(pcacheShrink)
	// SQLite copies the methods; methods stays allocated all the same, as a C library's would.
	if rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PCACHE2, libc.VaList(args, methods)); rc != sqlite3.SQLITE_OK {
		panic("store: installing the page cache: SQLite said " + libc.GoString(sqlite3.Xsqlite3_errstr(tls, rc)))
	}
}

// caches are the live caches. SQLite's handle for a cache is a C allocation holding its slot.
var caches struct {
	live   slotTable[pageCache]
	mu     sync.Mutex      // guards closed, and keeps it and live in step for PageCacheStats
	closed PageCacheCounts // of caches destroyed
}

func cacheOf(handle uintptr) *pageCache { return caches.live.get(*(*uint32)(cmem(handle))) }

// A page's header is one C allocation: SQLite's sqlite3_pcache_page (pBuf, pExtra), the page's slot in its
// cache, then SQLite's extra bytes. pBuf is the page's buffer, another allocation.
const (
	pageSlotOffset = unsafe.Sizeof(sqlite3.Tsqlite3_pcache_page{})
	pageHeaderSize = pageSlotOffset + 8
)

func freePage(tls *libc.TLS, mem uintptr) {
	libc.Xfree(tls, (*sqlite3.Tsqlite3_pcache_page)(cmem(mem)).FpBuf)
	libc.Xfree(tls, mem)
}

func pageSlot(p uintptr) uint32 { return *(*uint32)(cmem(p + pageSlotOffset)) }

// pageCache is one connection's cache. SQLite calls it from one goroutine at a time: the connection's.
type pageCache struct {
	szPage    uintptr
	szExtra   uintptr
	purgeable bool
	max       int // pages; SQLite's cache_size
	byKey     map[uint32]uint32
	pages     []cachedPage // by slot
	freeSlots []uint32
	pinned    int
	maxKey    uint32 // no page has a larger key
	lru       int32  // most recently unpinned page's slot, or -1; the list is circular
	hits      atomic.Int64
	misses    atomic.Int64
	evictions atomic.Int64
}

type cachedPage struct {
	mem        uintptr // 0 for a free slot
	key        uint32
	pinned     bool
	prev, next int32 // in the LRU list of unpinned pages
}

func pcacheInit(tls *libc.TLS, arg uintptr) int32 { return sqlite3.SQLITE_OK }

func pcacheShutdown(tls *libc.TLS, arg uintptr) {}

func pcacheCreate(tls *libc.TLS, szPage, szExtra, purgeable int32) uintptr {
	handle := libc.Xmalloc(tls, 8)
	if handle == 0 {
		return 0
	}
	c := &pageCache{szPage: uintptr(szPage), szExtra: uintptr(szExtra), purgeable: purgeable != 0,
		max: 100, byKey: map[uint32]uint32{}, lru: -1}
	*(*uint32)(cmem(handle)) = caches.live.add(c)
	return handle
}

func pcacheCachesize(tls *libc.TLS, handle uintptr, n int32) {
	c := cacheOf(handle)
	if c.purgeable {
		c.max = int(n)
		for len(c.byKey) > c.max && c.lru >= 0 {
			c.free(tls, c.pages[c.lru].prev) // the least recently used
			c.evictions.Add(1)
		}
	}
}

func pcachePagecount(tls *libc.TLS, handle uintptr) int32 { return int32(len(cacheOf(handle).byKey)) }

// pcacheFetch returns the page for key. createFlag 0: only if cached; 1: a new page too, unless most of the
// cache is pinned (SQLite then writes dirty pages out and asks again); 2: a new page whatever it takes.
func pcacheFetch(tls *libc.TLS, handle uintptr, key uint32, createFlag int32) uintptr {
	c := cacheOf(handle)
	if slot, ok := c.byKey[key]; ok {
		c.hits.Add(1)
		c.pin(slot)
		return c.pages[slot].mem
	}
	// Only asking whether the page is cached, or refused (SQLite asks again): not a page read yet.
	if createFlag == 0 || createFlag == 1 && c.purgeable && c.pinned >= c.max*9/10 {
		return 0
	}
	c.misses.Add(1)
	var slot uint32
	if c.purgeable && c.lru >= 0 && len(c.byKey)+1 >= c.max {
		slot = uint32(c.pages[c.lru].prev) // recycle the least recently used
		c.unlink(slot)
		delete(c.byKey, c.pages[slot].key)
		c.evictions.Add(1)
	} else {
		mem := libc.Xmalloc(tls, types.Size_t(pageHeaderSize+c.szExtra))
		buf := libc.Xmalloc(tls, types.Size_t(c.szPage))
		if mem == 0 || buf == 0 {
			libc.Xfree(tls, mem)
			libc.Xfree(tls, buf)
			return 0
		}
		if n := len(c.freeSlots); n > 0 {
			slot, c.freeSlots = c.freeSlots[n-1], c.freeSlots[:n-1]
		} else {
			slot = uint32(len(c.pages))
			c.pages = append(c.pages, cachedPage{})
		}
		c.pages[slot].mem = mem
		hdr := (*sqlite3.Tsqlite3_pcache_page)(cmem(mem))
		hdr.FpBuf = buf
		hdr.FpExtra = mem + pageHeaderSize
		*(*uint32)(cmem(mem + pageSlotOffset)) = slot
	}
	p := &c.pages[slot]
	p.key, p.pinned = key, true
	c.pinned++
	c.byKey[key] = slot
	c.maxKey = max(c.maxKey, key)
	// SQLite takes a page whose extra bytes start with a null pointer as new (sqlite3PcacheFetchFinish).
	clear(unsafe.Slice((*byte)(cmem(p.mem+pageHeaderSize)), c.szExtra))
	return p.mem
}

func pcacheUnpin(tls *libc.TLS, handle, mem uintptr, discard int32) {
	c := cacheOf(handle)
	slot := pageSlot(mem)
	if discard != 0 || c.purgeable && len(c.byKey) > c.max {
		if discard == 0 {
			c.evictions.Add(1)
		}
		c.free(tls, int32(slot))
		return
	}
	c.pages[slot].pinned = false
	c.pinned--
	c.pushLRU(slot)
}

// pcacheRekey moves a page to another key, dropping the page there if any (SQLite has unpinned it).
func pcacheRekey(tls *libc.TLS, handle, mem uintptr, oldKey, newKey uint32) {
	c := cacheOf(handle)
	slot := pageSlot(mem)
	if other, ok := c.byKey[newKey]; ok && other != slot {
		c.free(tls, int32(other))
	}
	delete(c.byKey, oldKey)
	c.byKey[newKey] = slot
	c.pages[slot].key = newKey
	c.maxKey = max(c.maxKey, newKey)
}

// pcacheTruncate drops every page whose key is limit or more. SQLite calls it at the end of each write
// transaction with the database's size, where there is rarely anything to drop: keys are walked from limit
// to the largest when that is shorter than the table.
func pcacheTruncate(tls *libc.TLS, handle uintptr, limit uint32) {
	c := cacheOf(handle)
	if limit > c.maxKey {
		return
	}
	if int(c.maxKey-limit) < len(c.byKey) {
		for k := limit; ; k++ {
			if slot, ok := c.byKey[k]; ok {
				c.free(tls, int32(slot))
			}
			if k == c.maxKey {
				break
			}
		}
	} else {
		for k, slot := range c.byKey {
			if k >= limit {
				c.free(tls, int32(slot))
			}
		}
	}
	c.maxKey = max(limit, 1) - 1
}

func pcacheDestroy(tls *libc.TLS, handle uintptr) {
	c := cacheOf(handle)
	for _, p := range c.pages {
		if p.mem != 0 {
			freePage(tls, p.mem)
		}
	}
	caches.mu.Lock()
	defer caches.mu.Unlock()
	caches.closed.Hits += c.hits.Load()
	caches.closed.Misses += c.misses.Load()
	caches.closed.Evictions += c.evictions.Load()
	caches.live.remove(*(*uint32)(cmem(handle)))
	libc.Xfree(tls, handle)
}

// pcacheShrink drops every unpinned page of a database on disk (an in-memory database is all in its cache).
func pcacheShrink(tls *libc.TLS, handle uintptr) {
	c := cacheOf(handle)
	for c.purgeable && c.lru >= 0 {
		c.free(tls, c.lru)
	}
}

func (c *pageCache) pin(slot uint32) {
	if p := &c.pages[slot]; !p.pinned {
		c.unlink(slot)
		p.pinned = true
		c.pinned++
	}
}

// free drops a page, pinned or not.
func (c *pageCache) free(tls *libc.TLS, slot int32) {
	p := &c.pages[slot]
	if p.pinned {
		c.pinned--
	} else {
		c.unlink(uint32(slot))
	}
	delete(c.byKey, p.key)
	freePage(tls, p.mem)
	*p = cachedPage{}
	c.freeSlots = append(c.freeSlots, uint32(slot))
}

func (c *pageCache) pushLRU(slot uint32) {
	p := &c.pages[slot]
	if c.lru < 0 {
		p.prev, p.next = int32(slot), int32(slot)
	} else {
		head := &c.pages[c.lru]
		p.next, p.prev = c.lru, head.prev
		c.pages[head.prev].next = int32(slot)
		head.prev = int32(slot)
	}
	c.lru = int32(slot)
}

func (c *pageCache) unlink(slot uint32) {
	p := &c.pages[slot]
	if p.next == int32(slot) {
		c.lru = -1
	} else {
		c.pages[p.prev].next = p.next
		c.pages[p.next].prev = p.prev
		if c.lru == int32(slot) {
			c.lru = p.next
		}
	}
	p.prev, p.next = -1, -1
}
