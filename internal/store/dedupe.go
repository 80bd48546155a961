package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// dedupeIndex finds events already in the log, for deduplication by (source, message id).
type dedupeIndex interface {
	// existing calls found for each event in the log received after since whose dedupe key is in keys.
	existing(ctx context.Context, tx *sql.Tx, keys []int64, since time.Time, found func(source, id string)) error
	// added records committed events: their keys, seqs and arrival time.
	added(keys []int64, firstSeq int64, receivedAt []time.Time)
	// load builds what the index needs from the log at start.
	load(ctx context.Context, db *DB, since time.Time) error
}

// sqlDedupe asks the database's index on dedupe_key: what PostgreSQL uses, where several nodes append.
type sqlDedupe struct{}

func (sqlDedupe) existing(ctx context.Context, tx *sql.Tx, keys []int64, since time.Time, found func(source, id string)) error {
	if len(keys) == 0 {
		return nil
	}
	return scanPairs(ctx, tx, `SELECT source_id, message_id FROM events WHERE received_at > $1 AND dedupe_key = ANY($2)`, []any{since, keys}, found)
}
func (sqlDedupe) added([]int64, int64, []time.Time)          {}
func (sqlDedupe) load(context.Context, *DB, time.Time) error { return nil }

// memoryDedupe is SQLite's deduplication index, kept in memory and derived from the log: SQLite is one
// node, and an index of random hashes on disk would dirty a different page for every event, writing many
// times the data to the WAL. For each event received within the window it keeps a 32-bit fingerprint of
// its dedupe key and its seq, in one open-addressing table per day of arrival (8 bytes an entry). A
// fingerprint match is checked against the row itself, so a collision never drops an event. Only the event
// writer's goroutine uses it.
type memoryDedupe struct {
	days []*dayTable // oldest first
}

type dayTable struct {
	day   int64    // days since the Unix epoch, UTC
	base  int64    // the first seq the table holds
	slots []uint64 // fingerprint<<32 | (seq-base+1), placed by the fingerprint; 0 is empty
	n     int
}

func dayOf(t time.Time) int64 { return t.Unix() / 86400 }

func (t *dayTable) put(key, seq int64) {
	if (t.n+1)*2 > len(t.slots) {
		t.grow()
	}
	fp, off := uint64(key)>>32, uint64(seq-t.base+1)
	mask := uint64(len(t.slots) - 1)
	for i := fp & mask; ; i = (i + 1) & mask {
		if t.slots[i] == 0 {
			t.slots[i] = fp<<32 | off
			t.n++
			return
		}
	}
}

func (t *dayTable) grow() {
	old := t.slots
	t.slots = make([]uint64, max(1024, 2*len(old)))
	t.n = 0
	mask := uint64(len(t.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		for i := (s >> 32) & mask; ; i = (i + 1) & mask {
			if t.slots[i] == 0 {
				t.slots[i] = s
				t.n++
				break
			}
		}
	}
}

// seqs calls fn with the seq of every entry whose fingerprint matches key.
func (t *dayTable) seqs(key int64, fn func(seq int64)) {
	if len(t.slots) == 0 {
		return
	}
	fp := uint64(key) >> 32
	mask := uint64(len(t.slots) - 1)
	for i := fp & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return
		}
		if s>>32 == fp {
			fn(t.base + int64(s&0xffffffff) - 1)
		}
	}
}

func (m *memoryDedupe) table(day, seq int64) *dayTable {
	if n := len(m.days); n > 0 && m.days[n-1].day >= day {
		return m.days[n-1] // arrival times may step back a little; keep them in the newest table
	}
	t := &dayTable{day: day, base: seq}
	m.days = append(m.days, t)
	return t
}

func (m *memoryDedupe) add(key, seq int64, receivedAt time.Time) {
	t := m.table(dayOf(receivedAt), seq)
	if seq-t.base+1 >= 1<<32 { // more than four billion events in a day: start another table
		t = &dayTable{day: t.day, base: seq}
		m.days = append(m.days, t)
	}
	t.put(key, seq)
}

func (m *memoryDedupe) added(keys []int64, firstSeq int64, receivedAt []time.Time) {
	for i, k := range keys {
		m.add(k, firstSeq+int64(i), receivedAt[i])
	}
}

// expire drops the tables of days wholly before since's day: deduplication may reach a little further
// back than the window, never less far.
func (m *memoryDedupe) expire(since time.Time) {
	cut := dayOf(since)
	i := 0
	for i < len(m.days) && m.days[i].day < cut {
		i++
	}
	m.days = slices.Delete(m.days, 0, i)
}

func (m *memoryDedupe) existing(ctx context.Context, tx *sql.Tx, keys []int64, since time.Time, found func(source, id string)) error {
	m.expire(since)
	var candidates []any
	for _, k := range keys {
		for _, t := range m.days {
			t.seqs(k, func(seq int64) { candidates = append(candidates, seq) })
		}
	}
	// Check the candidates against the log: the true duplicates, and the rare fingerprint collisions.
	for len(candidates) > 0 {
		n := min(500, len(candidates))
		q := `SELECT source_id, message_id FROM events WHERE received_at > ? AND seq IN (` + strings.TrimSuffix(strings.Repeat("?,", n), ",") + `)`
		if err := scanPairs(ctx, tx, q, append([]any{since}, candidates[:n]...), found); err != nil {
			return err
		}
		candidates = candidates[n:]
	}
	return nil
}

// load reads the keys of the events received within the window from the log.
func (m *memoryDedupe) load(ctx context.Context, db *DB, since time.Time) error {
	m.days = nil
	first, err := db.firstSeqSince(ctx, since)
	if err != nil {
		return err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT seq, dedupe_key, received_at FROM events WHERE seq >= ? ORDER BY seq`, first)
	if err != nil {
		return fmt.Errorf("store: load dedupe index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq, key int64
		var at time.Time
		if err := rows.Scan(&seq, &key, &at); err != nil {
			return fmt.Errorf("store: load dedupe index: %w", err)
		}
		m.add(key, seq, at.UTC())
	}
	return rows.Err()
}

// firstSeqSince finds the first event received after since by binary search over seq: arrival order and
// seq agree closely, and an event received a little out of order only makes the index hold a few more.
func (db *DB) firstSeqSince(ctx context.Context, since time.Time) (int64, error) {
	var lo, hi sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT min(seq), max(seq) FROM events`).Scan(&lo, &hi); err != nil || !lo.Valid {
		return 0, db.wrap("store.first_seq_since", err)
	}
	l, h := lo.Int64, hi.Int64+1
	for l < h {
		mid := l + (h-l)/2
		var at time.Time
		err := db.read.QueryRowContext(ctx, `SELECT received_at FROM events WHERE seq >= ? ORDER BY seq LIMIT 1`, mid).Scan(&at)
		if err != nil {
			return 0, db.wrap("store.first_seq_since", err)
		}
		if at.After(since) {
			h = mid
		} else {
			l = mid + 1
		}
	}
	// Step back a little to cover arrivals slightly out of order.
	return max(lo.Int64, l-10000), nil
}
