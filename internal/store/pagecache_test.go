//go:build !race

package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// checkPageCaches checks every live cache's bookkeeping: each allocated page is in the key table once, at
// its own slot, and the pinned count and the LRU list agree with the pages.
func checkPageCaches(t *testing.T) (pages int) {
	t.Helper()
	var live []*pageCache
	caches.live.each(func(c *pageCache) { live = append(live, c) })
	for _, c := range live {
		allocated, pinned := 0, 0
		for slot, p := range c.pages {
			if p.mem == 0 {
				continue
			}
			allocated++
			if p.pinned {
				pinned++
			}
			if s, ok := c.byKey[p.key]; !ok || s != uint32(slot) || pageSlot(p.mem) != uint32(slot) {
				t.Fatalf("page %d at slot %d: the key table has slot %d (%v), the page says %d", p.key, slot, s, ok, pageSlot(p.mem))
			}
			if p.key > c.maxKey {
				t.Fatalf("page %d is past the largest key %d", p.key, c.maxKey)
			}
		}
		if allocated != len(c.byKey) || pinned != c.pinned {
			t.Fatalf("%d pages allocated, %d in the key table; %d pinned, counted %d", allocated, len(c.byKey), pinned, c.pinned)
		}
		inLRU := 0
		for s := c.lru; s >= 0; {
			inLRU++
			if c.pages[s].pinned || c.pages[c.pages[s].next].prev != s {
				t.Fatalf("the LRU list is broken at slot %d", s)
			}
			if s = c.pages[s].next; s == c.lru {
				break
			}
		}
		if inLRU != allocated-pinned {
			t.Fatalf("%d unpinned pages, %d in the LRU list", allocated-pinned, inLRU)
		}
		if c.purgeable && allocated > max(c.max, pinned) {
			t.Fatalf("%d pages in a cache of %d", allocated, c.max)
		}
		pages += allocated
	}
	return pages
}

// A connection that appends keeps no more pages than its cache holds, however much it writes. The driver's
// page cache (modernc.org/sqlite/pcache) kept a record of every page it evicted until SQLite asked for it again,
// which an appending writer never does, and walked them all at the end of each transaction.
func TestPageCacheForgetsEvictedPages(t *testing.T) {
	ctx := context.Background()
	pool, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "append.db")+"?_pragma=journal_mode(WAL)&_pragma=cache_size(-512)&_pragma=cache_spill(-512)")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pool.SetMaxOpenConns(1)
	if _, err := pool.ExecContext(ctx, `CREATE TABLE t (v BLOB)`); err != nil {
		t.Fatal(err)
	}
	var most int
	before := PageCacheStats().Evictions
	for range 100 { // 100 transactions of 256 KiB: 25 MiB through a 512 KiB cache
		if _, err := pool.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 256) INSERT INTO t SELECT randomblob(1000) FROM n`); err != nil {
			t.Fatal(err)
		}
		most = max(most, checkPageCaches(t))
	}
	evicted := PageCacheStats().Evictions - before
	if evicted < 5000 {
		t.Errorf("the cache evicted %d pages while 25 MiB went through it", evicted)
	}
	t.Logf("at most %d pages in all caches; %d evicted", most, evicted)
}

// The cache under everything SQLite asks of it: pages moved (auto_vacuum), the file truncated, rollbacks of
// pages appended, spills of dirty pages from a small cache, an in-memory database, shrink. The data reads
// back whole and the databases pass SQLite's integrity check.
func TestPageCacheKeepsDataWhole(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, dsn := range []string{
		"file:" + filepath.Join(dir, "vacuum.db") + "?_pragma=auto_vacuum(FULL)&_pragma=journal_mode(WAL)&_pragma=cache_size(-64)",
		"file:" + filepath.Join(dir, "journal.db") + "?_pragma=journal_mode(DELETE)&_pragma=cache_size(-64)",
		"file:memory?mode=memory&cache=private",
	} {
		pool, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		pool.SetMaxOpenConns(1)
		exec := func(q string, args ...any) int64 {
			t.Helper()
			res, err := pool.ExecContext(ctx, q, args...)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			n, _ := res.RowsAffected()
			return n
		}
		exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`)
		exec(`CREATE INDEX t_v ON t (v)`)
		// Each row tells what it should hold: its batch and number, then 400 letters that follow from them.
		var want int64
		for b := range 20 {
			want += exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
				INSERT INTO t (v) SELECT printf('%04d-%04d-', ?, i) || replace(hex(zeroblob(200)), '00', char(65 + (? + i) % 26, 97 + i % 26)) FROM n`, b, b)
			if b%3 == 2 {
				want -= exec(`DELETE FROM t WHERE id % 3 = ?`, b%3)
			}
			// Pages appended and rolled back: the cache drops those past the file's end.
			tx, err := pool.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (v) SELECT v || 'x' FROM t`); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			checkPageCaches(t)
		}
		exec(`PRAGMA shrink_memory`)
		exec(`VACUUM`)
		var check string
		if err := pool.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("%s: integrity check %q, %v", dsn, check, err)
		}
		var n, bad int64
		if err := pool.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE substr(v, 11) <> replace(hex(zeroblob(200)), '00',
			char(65 + (CAST(substr(v, 1, 4) AS INTEGER) + CAST(substr(v, 6, 4) AS INTEGER)) % 26, 97 + CAST(substr(v, 6, 4) AS INTEGER) % 26))) FROM t`).Scan(&n, &bad); err != nil {
			t.Fatal(err)
		}
		if n != want || bad != 0 {
			t.Errorf("%s: %d rows of %d, %d of them changed", dsn, n, want, bad)
		}
		checkPageCaches(t)
		pool.Close()
	}
}
