package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// appendOnly are the B-trees of the state database that the profile processor writes only at their ends (by
// seq, or by name and a time that is nearly now): their inner pages are not worth a place in the cache.
var appendOnly = map[string]bool{"event_profiles": true, "event_profiles_name": true}

// warmFirst are the B-trees that the profile processor reads or writes at random places for nearly every
// event, most used first: the identity graph, a profile's timeline, its traits and touches.
var warmFirst = []string{"identities", "identities_profile", "event_profiles_profile", "profile_traits", "profile_touches", "profiles"}

// WarmCache reads the inner pages of the state database's B-trees into the page cache of its writer, through
// which the profile processor reads the identity graph. Started cold, each of its first events looks up keys
// at random places of indexes of a gigabyte, a read of the file for every page on the way down, until those
// pages are cached: at 5,000 events/s of returning visitors it fell seconds behind for the first 10-20 s after
// each start. The inner pages are a hundredth of a B-tree's, and reading them takes a fraction of a second.
// Leaves are left to be read as they are needed. Reads stop at three quarters of the cache. A no-op on
// PostgreSQL, whose buffers outlive Hearth's process.
func (db *DB) WarmCache(ctx context.Context) (pages int, took time.Duration, err error) {
	return db.warmCache(ctx, stateWriterCacheKiB*1024*3/4)
}

func (db *DB) warmCache(ctx context.Context, budgetBytes int) (pages int, took time.Duration, err error) {
	if db.engine != SQLite {
		return 0, 0, nil
	}
	start := time.Now()
	var pageSize int
	if err := db.write.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		return 0, 0, db.wrap("store.warm_cache", err)
	}
	w := warmer{ctx: ctx, conn: db.write, budget: budgetBytes / pageSize}
	err = w.run()
	return w.pages, time.Since(start), db.wrap("store.warm_cache", err)
}

// warmer reads pages a query at a time on the writer's one connection, between the transactions of the
// processor and the segment engine rather than holding them up.
type warmer struct {
	ctx    context.Context
	conn   *sql.DB
	read   *sql.Stmt
	budget int // pages
	pages  int // inner pages read
}

func (w *warmer) run() error {
	roots := map[string]int64{}
	var order []string
	rows, err := w.conn.QueryContext(w.ctx, `SELECT name, rootpage FROM sqlite_schema WHERE rootpage > 1 ORDER BY rootpage`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		var root int64
		if err := rows.Scan(&name, &root); err != nil {
			rows.Close()
			return err
		}
		if !appendOnly[name] {
			roots[name] = root
			if !slices.Contains(warmFirst, name) {
				order = append(order, name)
			}
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if w.read, err = w.conn.PrepareContext(w.ctx, `SELECT data FROM sqlite_dbpage WHERE pgno = ?`); err != nil {
		return err
	}
	defer w.read.Close()
	for _, name := range append(slices.Clone(warmFirst), order...) {
		root, ok := roots[name]
		if !ok {
			continue
		}
		if done, err := w.tree(root); done || err != nil {
			return err
		}
	}
	return nil
}

// tree reads the inner pages of the B-tree at root, a level at a time, and reports whether the budget ran
// out. The leftmost path tells the depth: a B-tree's leaves are all on its last level, which is not read
// (but for the leftmost).
func (w *warmer) tree(root int64) (bool, error) {
	depth := 0
	for pgno := root; ; depth++ {
		children, err := w.page(pgno)
		if err != nil {
			return false, err
		}
		if len(children) == 0 {
			break
		}
		pgno = children[0]
	}
	level := []int64{root}
	for k := range depth { // the inner levels, 0 to depth-1; the leaves are level depth
		var next []int64
		for _, pgno := range level {
			children, err := w.page(pgno)
			if err != nil {
				return false, err
			}
			w.pages++
			if k+1 < depth {
				next = append(next, children...)
			}
			if w.pages >= w.budget {
				return true, nil
			}
		}
		level = next
	}
	return false, nil
}

// page reads a page through the connection's page cache and returns its children: none for a leaf. The
// reads are not one snapshot (the writer commits between them), so a page that no longer parses as the
// inner page its parent named, or is gone, counts as a leaf.
func (w *warmer) page(pgno int64) ([]int64, error) {
	var data []byte
	switch err := w.read.QueryRowContext(w.ctx, pgno).Scan(&data); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read page %d: %w", pgno, err)
	}
	hdr := data
	if pgno == 1 {
		hdr = data[100:] // after the file's header
	}
	if len(hdr) < 12 || (hdr[0] != 2 && hdr[0] != 5) { // interior index and table pages
		return nil, nil
	}
	cells := int(binary.BigEndian.Uint16(hdr[3:5]))
	if 12+2*cells > len(hdr) {
		return nil, nil
	}
	children := make([]int64, 0, cells+1)
	for i := range cells {
		off := int(binary.BigEndian.Uint16(hdr[12+2*i:]))
		if off+4 > len(data) {
			return nil, nil
		}
		children = append(children, int64(binary.BigEndian.Uint32(data[off:])))
	}
	return append(children, int64(binary.BigEndian.Uint32(hdr[8:12]))), nil
}
