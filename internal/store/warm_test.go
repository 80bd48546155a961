package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// WarmCache reads every inner page of the state's B-trees, but those of the log's order, into the writer's
// cache, and no more than its budget: a lookup then reads only its leaf from the file.
func TestWarmCacheReadsInnerPages(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := &fixedClock{time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	db := openMigrated(t, dir, clock)
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE warm_rows (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
		INSERT INTO warm_rows SELECT printf('key-%08d-%s', i * 7919 % 60000, hex(randomblob(30))), hex(randomblob(20)) FROM n`); err != nil {
		t.Fatal(err)
	}
	var inner int
	if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM dbstat WHERE pagetype = 'internal'
		AND name NOT IN ('sqlite_schema', 'event_profiles', 'event_profiles_name')`).Scan(&inner); err != nil {
		t.Fatal(err)
	}
	if inner < 20 {
		t.Fatalf("%d inner pages: the test needs deeper B-trees", inner)
	}
	db.Close()

	lookup := func(db *DB) (misses int64) {
		t.Helper()
		before := PageCacheStats().Misses
		var v string
		if err := db.write.QueryRowContext(ctx, `SELECT v FROM warm_rows WHERE k >= 'key-00031337' LIMIT 1`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return PageCacheStats().Misses - before
	}
	cold := openMigrated(t, dir, clock)
	coldMisses := lookup(cold)
	cold.Close()

	db = openMigrated(t, dir, clock)
	defer db.Close()
	pages, _, err := db.WarmCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pages != inner {
		t.Errorf("warmed %d pages, want the %d inner pages", pages, inner)
	}
	if SeparatePageCaches {
		if warm := lookup(db); warm != 1 || coldMisses < 3 { // root, inner page, leaf
			t.Errorf("a lookup read %d pages from the file after warming (want its leaf alone), %d without", warm, coldMisses)
		}
	}
	for _, budget := range []int{0, 5, inner - 1} {
		t.Run(fmt.Sprint("budget ", budget), func(t *testing.T) {
			pages, _, err := db.warmCache(ctx, budget*4096)
			if err != nil || pages != max(budget, 1) {
				t.Errorf("with a budget of %d pages, warmed %d (%v)", budget, pages, err)
			}
		})
	}
}
