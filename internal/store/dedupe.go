package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// dedupeIndex finds events already in the log, for deduplication by (source, message id).
type dedupeIndex interface {
	// existing calls found for each event in the log received after since whose dedupe key is in keys.
	existing(ctx context.Context, tx *sql.Tx, keys []int64, since time.Time, found func(source, id string)) error
	// added records committed events: their keys, seqs and arrival time, those received after since.
	added(keys []int64, firstSeq int64, receivedAt []time.Time, since time.Time)
	// load builds what the index needs from the log at start.
	load(ctx context.Context, db *DB, since time.Time) error
	// save keeps the index for the next start, when the writer stops.
	save(since time.Time) error
	// saveLater takes the index as it is now, for saving on another goroutine (nil: nothing to save).
	saveLater(since time.Time) func() error
}

// sqlDedupe asks the database's index on dedupe_key: what PostgreSQL uses, where several nodes append.
type sqlDedupe struct{}

func (sqlDedupe) existing(ctx context.Context, tx *sql.Tx, keys []int64, since time.Time, found func(source, id string)) error {
	if len(keys) == 0 {
		return nil
	}
	return scanPairs(ctx, tx, `SELECT source_id, message_id FROM events WHERE received_at > $1 AND dedupe_key = ANY($2)`, []any{since, keys}, found)
}
func (sqlDedupe) added([]int64, int64, []time.Time, time.Time) {}
func (sqlDedupe) load(context.Context, *DB, time.Time) error   { return nil }
func (sqlDedupe) save(time.Time) error                         { return nil }
func (sqlDedupe) saveLater(time.Time) func() error             { return nil }

// memoryDedupe is SQLite's deduplication index, kept in memory and derived from the log: SQLite is one
// node, and an index of random hashes on disk would dirty a different page for every event, writing many
// times the data to the WAL. For each event received within the window it keeps a 32-bit fingerprint of
// its dedupe key and its seq, in one open-addressing table per day of arrival (today's in shards; 8 bytes an
// entry). A fingerprint match is checked against the row itself, so a collision never drops an event. Only
// the event writer's goroutine uses it.
//
// Reading the window's keys from the log at start means reading the whole rows of every event in it (minutes
// for tens of millions of events, while ingestion waits), so the writer saves the index to a file in the data
// folder now and then and when it stops, and the next start reads that and only the events logged after it.
type memoryDedupe struct {
	days     []*dayTable // oldest first
	through  int64       // the last seq the index holds (0: none)
	snapshot string      // the file the index is saved to
	scanned  int         // events the last load read from the log
}

type dayTable struct {
	day  int64 // days since the Unix epoch, UTC
	base int64 // the first seq the table holds
	n    int   // entries
	// The table that takes entries (today's) keeps them in shards: open-addressing tables of
	// fingerprint<<32 | (seq-base+1), 0 empty, each doubling on its own when half full. One table of millions
	// that doubled held the event writer while it moved every entry (80-210 ms at 4 million) and held both
	// sizes at once, three times the table; a shard of a 256th moves its entries in well under a millisecond,
	// and the shards, filled evenly, hold 16-32 bytes an entry throughout.
	shards  [][]uint64 // nil once compacted
	shardN  []int      // entries per shard
	slots   []uint64   // a closed table's entries once compacted, in the order of their homes
	ordered bool       // slots holds the entries (and shards nil)
	// A table that takes no more entries is made again at its final size, three quarters full, on another
	// goroutine (compactLoad): a week's window is seven closed tables to one open. compacted brings the new
	// slots; adopt takes them.
	compacted chan []uint64
}

// compactLoad is how full a closed table is made: a week of closed tables takes 38% less memory than as
// grown. Searched as a table that grows is (to the first free slot), a lookup in all of them took twice the
// time; in the order of their homes, a search stops at the first entry whose home is past the key's
// (BenchmarkDedupeLookup).
const compactLoad = 0.75

// mix spreads a fingerprint's bits by a Fibonacci multiply. Unmixed, the high bits of FNV-1a for message ids
// that differ in their last characters are uneven: a probe 77 slots long on average in a closed table,
// against 1.4.
func mix(fp uint64) uint32 { return uint32(fp * 0x9E3779B1) }

// home is the slot where a fingerprint's probe starts in a table of size slots, scaled to the range so that a
// table may have any size.
func home(fp uint64, size int) int { return int(uint64(mix(fp)) * uint64(size) >> 32) }

// An open table's shard is chosen by the top shardBits of the mixed fingerprint, and a probe in it starts
// from the bits below them.
const (
	shardBits     = 8
	shardMinSlots = 8
)

func shardOf(fp uint64) int { return int(mix(fp) >> (32 - shardBits)) }

func homeInShard(fp uint64, size int) int {
	return int(uint64(mix(fp)<<shardBits) * uint64(size) >> 32)
}

func dayOf(t time.Time) int64 { return t.Unix() / 86400 }

func newDayTable(day, base int64) *dayTable {
	return &dayTable{day: day, base: base, shards: make([][]uint64, 1<<shardBits), shardN: make([]int, 1<<shardBits)}
}

func (t *dayTable) put(key, seq int64) {
	t.putEntry(uint64(key)>>32<<32 | uint64(seq-t.base+1))
}

// putEntry places an entry, fingerprint<<32 | offset, doubling its shard first if that would be more than
// half full.
func (t *dayTable) putEntry(e uint64) {
	s := shardOf(e >> 32)
	if sh := t.shards[s]; (t.shardN[s]+1)*2 > len(sh) {
		grown := make([]uint64, max(shardMinSlots, 2*len(sh)))
		for _, old := range sh {
			if old != 0 {
				placeInShard(grown, old)
			}
		}
		t.shards[s] = grown
	}
	placeInShard(t.shards[s], e)
	t.shardN[s]++
	t.n++
}

// placeInShard puts an entry in the first free slot of a shard from its fingerprint's.
func placeInShard(slots []uint64, e uint64) {
	for i := homeInShard(e>>32, len(slots)); ; i++ {
		if i == len(slots) {
			i = 0
		}
		if slots[i] == 0 {
			slots[i] = e
			return
		}
	}
}

// entries returns a copy of an open (or not yet compacted) table's entries.
func (t *dayTable) entries() []uint64 {
	all := make([]uint64, 0, t.n)
	for _, sh := range t.shards {
		for _, e := range sh {
			if e != 0 {
				all = append(all, e)
			}
		}
	}
	return all
}

// compact makes the table again at its final size, in order, on another goroutine; the shards stay in use
// until then, and are only read, here and there.
func (t *dayTable) compact() {
	if t.ordered || t.compacted != nil {
		return
	}
	done, shards, size := make(chan []uint64, 1), t.shards, compactSize(t.n)
	go func() {
		c := make([]uint64, size)
		for _, sh := range shards {
			for _, e := range sh {
				if e != 0 {
					placeOrdered(c, e)
				}
			}
		}
		done <- c
	}()
	t.compacted = done
}

// placeOrdered puts an entry in slots kept in the order of their homes (Robin Hood hashing): along a probe,
// an entry whose home lies further on gives its slot to one whose home lies further back, and moves on. A
// probe's positions q count on past the end of the slots, so that homes compare across the wrap.
func placeOrdered(slots []uint64, e uint64) {
	size := len(slots)
	h := home(e>>32, size)
	for q := h; ; q++ {
		i := q
		if i >= size { // a probe wraps once at most: the slots are never full
			i -= size
		}
		r := slots[i]
		if r == 0 {
			slots[i] = e
			return
		}
		if rh := probeHome(r, i, q, size); rh > h {
			slots[i], e, h = e, r, rh
		}
	}
}

// probeHome is the home of the entry r in slot i as a probe position, the probe being at position q (that
// slot): an entry in a slot before its home has wrapped past the end.
func probeHome(r uint64, i, q, size int) int {
	rh := home(r>>32, size) + q - i
	if rh > q {
		rh -= size
	}
	return rh
}

// adopt takes the compacted slots if they are ready (or, with wait, once they are), and lets the shards go.
func (t *dayTable) adopt(wait bool) {
	if t.compacted == nil {
		return
	}
	if wait {
		t.slots = <-t.compacted
	} else {
		select {
		case t.slots = <-t.compacted:
		default:
			return
		}
	}
	t.compacted, t.ordered, t.shards, t.shardN = nil, true, nil, nil
}

// compactSize is the size of a closed table of n entries: compactLoad full, with a free slot to end probes.
func compactSize(n int) int { return int(float64(n)/compactLoad) + 1 }

// seqs calls fn with the seq of every entry whose fingerprint matches key.
func (t *dayTable) seqs(key int64, fn func(seq int64)) {
	fp := uint64(key) >> 32
	if t.ordered {
		t.probeOrdered(fp, fn)
		return
	}
	t.probeShard(fp, fn)
}

// probeOrdered calls fn for the entries of ordered slots matching fingerprint fp: from fp's home to the first
// free slot or entry whose home is further on.
func (t *dayTable) probeOrdered(fp uint64, fn func(seq int64)) {
	size := len(t.slots)
	h := home(fp, size)
	for q := h; ; q++ {
		i := q
		if i >= size {
			i -= size
		}
		s := t.slots[i]
		if s == 0 || probeHome(s, i, q, size) > h {
			return
		}
		if s>>32 == fp {
			fn(t.base + int64(s&0xffffffff) - 1)
		}
	}
}

// probeShard calls fn for the entries of fp's shard matching it, from fp's slot to the first free one.
func (t *dayTable) probeShard(fp uint64, fn func(seq int64)) {
	slots := t.shards[shardOf(fp)]
	if len(slots) == 0 {
		return
	}
	for i := homeInShard(fp, len(slots)); ; i++ {
		if i == len(slots) {
			i = 0
		}
		s := slots[i]
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
	return m.open(day, seq)
}

// open starts a newest table, and closes the one before.
func (m *memoryDedupe) open(day, seq int64) *dayTable {
	if n := len(m.days); n > 0 {
		m.days[n-1].compact() // it takes no more entries
	}
	t := newDayTable(day, seq)
	m.days = append(m.days, t)
	return t
}

func (m *memoryDedupe) add(key, seq int64, receivedAt time.Time) {
	m.through = max(m.through, seq)
	t := m.table(dayOf(receivedAt), seq)
	if seq-t.base+1 >= 1<<32 { // more than four billion events in a day: start another table
		t = m.open(t.day, seq)
	}
	t.put(key, seq)
}

func (m *memoryDedupe) added(keys []int64, firstSeq int64, receivedAt []time.Time, since time.Time) {
	for i, k := range keys {
		m.addSince(k, firstSeq+int64(i), receivedAt[i], since)
	}
}

// addSince adds an event received after since. One received before, outside the window already (the history
// hearth demo appends, 90 days of it at once), only moves how far the index has read: existing would never
// count it, and kept it would crowd the newest table (a 20-million-event demo held 512 MiB there for a week).
func (m *memoryDedupe) addSince(key, seq int64, receivedAt, since time.Time) {
	if !receivedAt.After(since) {
		m.through = max(m.through, seq)
		return
	}
	m.add(key, seq, receivedAt)
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
	for _, t := range m.days {
		t.adopt(false)
	}
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

// load reads the saved index, if there is one that covers the window and the log, then the keys of the events
// logged after it; without one, the keys of every event received within the window.
func (m *memoryDedupe) load(ctx context.Context, db *DB, since time.Time) error {
	var head sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&head); err != nil {
		return fmt.Errorf("store: load dedupe index: %w", err)
	}
	m.days, m.through, m.scanned = nil, 0, 0
	if err := m.restore(since, head.Int64); err != nil {
		m.days, m.through = nil, 0
		first, err := db.firstSeqSince(ctx, since)
		if err != nil {
			return err
		}
		return m.scan(ctx, db, first, since)
	}
	return m.scan(ctx, db, m.through+1, since)
}

// scan adds the keys of the events from seq first on, those received after since.
func (m *memoryDedupe) scan(ctx context.Context, db *DB, first int64, since time.Time) error {
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
		m.addSince(key, seq, at.UTC(), since)
		m.scanned++
	}
	return rows.Err()
}

// dedupeSnapshotFile is where, in the data folder, a stopped writer leaves the index.
const dedupeSnapshotFile = "dedupe.index"

// dedupeMagic starts the file: its format, version 1. Then, little-endian: the window's start (Unix
// seconds), the last seq held, the number of day tables, and for each its day, base and entries (a count,
// then each entry as the table holds it); last, a CRC-32 of everything before.
var dedupeMagic = [8]byte{'H', 'D', 'D', 'U', 'P', 0, 0, 1}

// dedupeImage is the index as saved: taken on the writer's goroutine, written on any.
type dedupeImage struct {
	since   time.Time
	through int64
	days    []dayImage
}

type dayImage struct {
	day, base int64
	n         int      // entries
	slots     []uint64 // the table's entries, or its slots with the empty ones (0)
}

// image takes what save writes. Only the newest table takes new entries (older days are closed), so the
// image shares the compacted tables' slots and copies the others' entries: the writer pauses for a day's
// entries, not the window's.
func (m *memoryDedupe) image(since time.Time) dedupeImage {
	m.expire(since)
	img := dedupeImage{since: since, through: m.through}
	for _, t := range m.days {
		d := dayImage{day: t.day, base: t.base, n: t.n, slots: t.slots}
		if !t.ordered {
			d.slots = t.entries()
		}
		img.days = append(img.days, d)
	}
	return img
}

func (m *memoryDedupe) save(since time.Time) error { return m.write(m.image(since)) }

func (m *memoryDedupe) saveLater(since time.Time) func() error {
	img := m.image(since)
	return func() error { return m.write(img) }
}

// write writes an image to the index's file: a new file renamed over the old, so that a crash leaves one or
// the other whole (and the checksum refuses anything else).
func (m *memoryDedupe) write(img dedupeImage) error {
	tmp := m.snapshot + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: save dedupe index: %w", err)
	}
	sum := crc32.NewIEEE()
	w := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
	var buf [8]byte
	put := func(v uint64) { // errors stay in w until Flush
		binary.LittleEndian.PutUint64(buf[:], v)
		w.Write(buf[:])
	}
	w.Write(dedupeMagic[:])
	put(uint64(img.since.Unix()))
	put(uint64(img.through))
	put(uint64(len(img.days)))
	for _, d := range img.days {
		put(uint64(d.day))
		put(uint64(d.base))
		put(uint64(d.n))
		for _, e := range d.slots {
			if e != 0 {
				put(e)
			}
		}
	}
	err = w.Flush()
	if err == nil {
		err = binary.Write(f, binary.LittleEndian, sum.Sum32())
	}
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(tmp, m.snapshot)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: save dedupe index: %w", err)
	}
	return nil
}

// errNoSnapshot: there is no saved index that can serve (none, another window, a log that is not the one it
// was saved from): the log is read instead.
var errNoSnapshot = errors.New("store: no saved dedupe index for this log and window")

// restore reads the saved index. It serves only if it reaches back to since (the window may have grown since
// it was saved) and holds no seq beyond the log's head (the store was not replaced by an older copy). The
// file is read as a stream into tables made at their final size: reading it whole and growing the tables
// entry by entry allocated five times the index (BenchmarkDedupeRestore), a heap that set the collector's
// goal for a store of tens of millions of events.
func (m *memoryDedupe) restore(since time.Time, head int64) error {
	if m.snapshot == "" {
		return errNoSnapshot
	}
	f, err := os.Open(m.snapshot)
	if err != nil {
		return errNoSnapshot
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.Size() < int64(len(dedupeMagic)+3*8+4) {
		return errNoSnapshot
	}
	sum := crc32.NewIEEE()
	left := info.Size() - 4 // the body's bytes not yet read; the checksum follows them
	r := bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, left), sum), 1<<20)
	var buf [8]byte
	next := func() (uint64, bool) {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return 0, false
		}
		left -= 8
		return binary.LittleEndian.Uint64(buf[:]), true
	}
	if _, err := io.ReadFull(r, buf[:]); err != nil || buf != dedupeMagic {
		return errNoSnapshot
	}
	left -= int64(len(dedupeMagic))
	from, _ := next()
	through, _ := next()
	days, ok := next()
	if !ok || int64(from) > since.Unix() || int64(through) > head {
		return errNoSnapshot
	}
	var tables []*dayTable
	for i := range days {
		day, _ := next()
		base, _ := next()
		n, ok := next()
		if !ok || n > uint64(left/8) {
			return errNoSnapshot
		}
		// All but the newest table are closed: made at their final size, in order. The newest takes entries:
		// its shards made for an even share of them each (the few that get more grow).
		var t *dayTable
		if i < days-1 {
			t = &dayTable{day: int64(day), base: int64(base), ordered: true, slots: make([]uint64, compactSize(int(n)))}
			for range n {
				e, _ := next()
				placeOrdered(t.slots, e)
			}
			t.n = int(n)
		} else {
			t = newDayTable(int64(day), int64(base))
			for s := range t.shards {
				t.shards[s] = make([]uint64, slotsFor(int(n>>shardBits)))
			}
			for range n {
				e, _ := next()
				t.putEntry(e)
			}
		}
		tables = append(tables, t)
	}
	var tail [4]byte
	if left != 0 {
		return errNoSnapshot
	}
	if _, err := io.ReadFull(f, tail[:]); err != nil || sum.Sum32() != binary.LittleEndian.Uint32(tail[:]) {
		return errNoSnapshot
	}
	m.days = tables
	m.through = int64(through)
	m.expire(since)
	return nil
}

// slotsFor is the size of a shard that holds n entries without growing: a power of two, at most half full.
func slotsFor(n int) int {
	size := shardMinSlots
	for size < 2*n {
		size *= 2
	}
	return size
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
