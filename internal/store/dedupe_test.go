package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
)

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

// openMigrated opens the SQLite store in dir, migrated, with clock.
func openMigrated(t *testing.T, dir string, clock *fixedClock) *DB {
	t.Helper()
	db, err := openSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db.clock = clock
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// A stopped writer saves the deduplication index; the next start reads it and the events logged after it,
// and falls back to the log whenever the file cannot serve: damaged, saved for a shorter window, or ahead of
// the log. Each way, a message sent again is a duplicate.
func TestDedupeSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := &fixedClock{time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	open := func() *DB { return openMigrated(t, dir, clock) }
	const window = 48 * time.Hour
	appendIDs := func(db *DB, ids ...string) collect.AppendResult {
		t.Helper()
		b := &collect.Batch{SourceID: "src", ReceivedAt: clock.Now()}
		for _, id := range ids {
			b.Events = append(b.Events, collect.Event{MessageID: id, Type: "track", Name: "Tested", AnonymousID: "a1",
				Timestamp: clock.Now(), ReceivedAt: clock.Now(), Payload: []byte(`{}`)})
		}
		res, _, err := db.appendBatches(ctx, []logBatch{db.newLogBatch(b)}, clock.Now().Add(-window))
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	db := open()
	if err := db.LoadDedupe(ctx, window); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 2000 {
		ids = append(ids, fmt.Sprintf("m%d", i))
	}
	appendIDs(db, ids...)
	clock.t = clock.t.Add(30 * time.Hour) // a second day table
	appendIDs(db, "d2")
	if err := db.SaveDedupe(window); err != nil {
		t.Fatal(err)
	}
	appendIDs(db, "after") // logged after the save, as by a process killed later
	db.Close()

	snapshot := filepath.Join(dir, dedupeSnapshotFile)
	saved, err := os.ReadFile(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	// From the file, a load reads one event of the log ("after"); from the log alone, all 2,002.
	check := func(name string, window time.Duration, scanned int) {
		t.Helper()
		db := open()
		defer db.Close()
		if err := db.LoadDedupe(ctx, window); err != nil {
			t.Fatal(err)
		}
		if m := db.dedupe.(*memoryDedupe); m.scanned != scanned || len(m.days) != 2 {
			t.Errorf("%s: read %d events of the log, want %d; %d day tables, want 2", name, m.scanned, scanned, len(m.days))
		}
		if res := appendIDs(db, "m0", "m1999", "d2", "after", "new-"+name); res.Accepted != 1 || res.Duplicates != 4 {
			t.Errorf("%s: %+v, want 4 duplicates and the new message", name, res)
		}
	}
	check("saved", window, 1)
	check("saved, read again", window, 1+1) // the last check's new message is logged after the file too

	os.WriteFile(snapshot, append(saved[:len(saved)-1:len(saved)-1], saved[len(saved)-1]^1), 0o600)
	check("damaged", window, 2004)
	os.WriteFile(snapshot, saved[:100], 0o600)
	check("cut", window, 2005)
	os.WriteFile(snapshot, saved, 0o600)
	check("a longer window", 4*window, 2006)

	// A log that ends before the file's last seq is not the log it was saved from.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dir, logFile+suffix))
	}
	os.WriteFile(snapshot, saved, 0o600)
	db = open()
	defer db.Close()
	if err := db.LoadDedupe(ctx, window); err != nil {
		t.Fatal(err)
	}
	if m := db.dedupe.(*memoryDedupe); m.through != 0 || len(m.days) != 0 {
		t.Errorf("a new log took the saved index: %d tables through %d", len(m.days), m.through)
	}
	if res := appendIDs(db, "m0"); res.Accepted != 1 {
		t.Errorf("a new log: %+v, want m0 accepted", res)
	}
}

// While events arrive the writer saves the index now and then, so that a start after a crash (here: a second
// store on the same folder while the writer still runs) reads only what was logged after the last save.
func TestDedupeSavedWhileRunning(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := &fixedClock{time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	open := func() *DB {
		db := openMigrated(t, dir, clock)
		t.Cleanup(func() { db.Close() })
		return db
	}
	batch := func(ids ...string) *collect.Batch {
		b := &collect.Batch{SourceID: "src", ReceivedAt: clock.Now()}
		for _, id := range ids {
			b.Events = append(b.Events, collect.Event{MessageID: id, Type: "track", Name: "Tested", AnonymousID: "a1",
				Timestamp: clock.Now(), ReceivedAt: clock.Now(), Payload: []byte(`{}`)})
		}
		return b
	}
	db := open()
	w := NewEventWriter(db, EventWriterOptions{SaveEvery: 20 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() { stop(); <-done }()
	var ids []string
	for i := range 1000 {
		ids = append(ids, fmt.Sprintf("m%d", i))
	}
	if _, err := w.Append(ctx, batch(ids...)); err != nil {
		t.Fatal(err)
	}
	snapshot := filepath.Join(dir, dedupeSnapshotFile)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(snapshot); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no saved index 10 s after the events arrived")
		}
	}
	if _, err := w.Append(ctx, batch("late")); err != nil {
		t.Fatal(err)
	}

	db2 := open()
	if err := db2.LoadDedupe(ctx, 7*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if m := db2.dedupe.(*memoryDedupe); m.scanned > 1 {
		t.Errorf("the start read %d events of the log, want at most the one after the save", m.scanned)
	}
	res, _, err := db2.appendBatches(ctx, []logBatch{db2.newLogBatch(batch("m0", "m999", "late", "new"))}, clock.Now().Add(-7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Accepted != 1 || res[0].Duplicates != 3 {
		t.Errorf("after the start: %+v, want 3 duplicates and the new message", res[0])
	}
}

// An image holds the index as it was when taken, whatever is added while it is written: the newest day's
// table takes more entries, and a new day begins.
func TestDedupeImageIsASnapshot(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	m := &memoryDedupe{snapshot: filepath.Join(dir, dedupeSnapshotFile)}
	seq := int64(0)
	addDay := func(at time.Time, n int) {
		for range n {
			seq++
			m.add(dedupeKey("src", fmt.Sprint("m", seq)), seq, at)
		}
	}
	addDay(day, 3000)
	addDay(day.Add(24*time.Hour), 2000)
	img := m.image(day.Add(-time.Hour))
	addDay(day.Add(24*time.Hour), 5000) // the table copied into the image grows, and its slots move
	addDay(day.Add(48*time.Hour), 100)
	if err := m.write(img); err != nil {
		t.Fatal(err)
	}
	r := &memoryDedupe{snapshot: m.snapshot}
	if err := r.restore(day.Add(-time.Hour), seq); err != nil {
		t.Fatal(err)
	}
	if r.through != 5000 || len(r.days) != 2 || r.days[0].n != 3000 || r.days[1].n != 2000 {
		t.Fatalf("restored through %d, %d tables", r.through, len(r.days))
	}
}

// Today's table grows a shard at a time: after each shard's growth every entry is still found, with its seq,
// an image holds them all, and the shards hold 16-32 bytes an entry (not counting those still nearly empty).
func TestDedupeTableGrowsByShards(t *testing.T) {
	day := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	m := &memoryDedupe{}
	const n = 50_000
	keys := make([]int64, n+1)
	grown, slots := 0, 0
	for seq := int64(1); seq <= n; seq++ {
		keys[seq] = dedupeKey("src", fmt.Sprint("m", seq))
		m.add(keys[seq], seq, day)
		tab := m.days[0]
		now := slotBytes(m) / 8
		if now == slots {
			continue
		}
		slots = now
		if grown++; grown%97 != 0 {
			continue
		}
		for s := int64(1); s <= seq; s += 7 {
			found := 0
			tab.seqs(keys[s], func(got int64) {
				if got == s {
					found++
				}
			})
			if found != 1 {
				t.Fatalf("after %d shard growths, seq %d found %d times", grown, s, found)
			}
		}
		if img := m.image(day.Add(-time.Hour)); len(img.days[0].slots) != int(seq) || img.days[0].n != int(seq) {
			t.Fatalf("image holds %d entries, want %d", len(img.days[0].slots), seq)
		}
		if seq > 100_000/8 && (slots < 2*int(seq) || slots > 4*int(seq)*9/8) {
			t.Errorf("%d entries in %d slots, want 2 to 4 slots an entry", seq, slots)
		}
	}
	if grown < 1<<shardBits {
		t.Fatalf("the shards grew %d times", grown)
	}
	// A new day's table closes this one: it is made again at its final size, three quarters full, where every
	// entry is still found.
	m.add(dedupeKey("src", "next day"), n+1, day.Add(24*time.Hour))
	tab := m.days[0]
	if tab.compacted == nil {
		t.Fatal("a closed table is not being compacted")
	}
	img := m.image(day.Add(-time.Hour)) // taken while it is
	tab.adopt(true)
	if tab.shards != nil {
		t.Error("a compacted table keeps its shards")
	}
	if len(tab.slots) != compactSize(n) || len(tab.slots) > n*4/3+1 {
		t.Errorf("the closed table has %d slots for %d entries, want %d", len(tab.slots), n, compactSize(n))
	}
	for s := int64(1); s <= n; s++ {
		var got []int64
		tab.seqs(keys[s], func(seq int64) { got = append(got, seq) })
		if !slices.Contains(got, s) {
			t.Fatalf("after compaction seq %d's key finds %v", s, got)
		}
	}
	if entries := len(slices.DeleteFunc(slices.Clone(img.days[0].slots), func(e uint64) bool { return e == 0 })); entries != n {
		t.Errorf("the image taken during compaction holds %d entries, want %d", entries, n)
	}
}

// A closed table's slots are kept in the order of their homes, and a search stops at the first entry whose
// home is past the key's: it finds exactly what a search of every entry finds, for entries whose probes wrap
// past the end, for fingerprints that several entries share, and for fingerprints that none has.
func TestDedupeOrderedTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 300, 5000} {
		tab := &dayTable{base: 1, slots: make([]uint64, compactSize(n)), ordered: true}
		var entries []uint64
		for i := range n {
			fp := uint64(rng.Uint32())
			switch {
			case i%5 == 0 && i > 0: // the fingerprint of an earlier entry
				fp = entries[rng.IntN(len(entries))] >> 32
			case i%7 == 0: // a fingerprint whose home is one of the last slots: its probe wraps
				fp = math.MaxUint32 - uint64(rng.IntN(1<<24))
			}
			e := fp<<32 | uint64(i+1)
			entries = append(entries, e)
			placeOrdered(tab.slots, e)
		}
		want := func(fp uint64) []int64 {
			var seqs []int64
			for _, e := range entries {
				if e>>32 == fp {
					seqs = append(seqs, int64(e&0xffffffff))
				}
			}
			return seqs
		}
		search := func(fp uint64) {
			var got []int64
			tab.seqs(int64(fp<<32), func(seq int64) { got = append(got, seq) })
			slices.Sort(got)
			if w := want(fp); !slices.Equal(got, w) {
				t.Fatalf("%d entries: fingerprint %#x finds %v, want %v", n, fp, got, w)
			}
		}
		for _, e := range entries {
			search(e >> 32)
		}
		for range 20000 {
			search(uint64(rng.Uint32()))
		}
		search(math.MaxUint32)
		search(0)
	}
}

// fillWeek adds a week's window of 3.9 million events (the default window) to m, in eight day tables, and
// returns the window's start.
func fillWeek(m *memoryDedupe) (since time.Time) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const perDay = 3_900_000 / 8
	for d := range 8 {
		at := start.Add(time.Duration(d) * 24 * time.Hour)
		for i := range perDay {
			seq := int64(d*perDay + i + 1)
			m.add(dedupeKey("src", strconv.FormatInt(seq, 10)), seq, at)
		}
	}
	return start.Add(-time.Hour)
}

// BenchmarkDedupeImage: how long the event writer pauses to take the index's image, a week's window of 3.9
// million events (the default window), today's table one of eight.
func BenchmarkDedupeImage(b *testing.B) {
	m := &memoryDedupe{}
	since := fillWeek(m)
	for b.Loop() {
		m.image(since)
	}
}

// BenchmarkDedupeAdd: the event writer adds each event to the index; the longest single add is how long the
// writer stops when today's table grows (a day of 4 million events here), peak-MiB the most its slots held
// (read every 4,096 adds).
func BenchmarkDedupeAdd(b *testing.B) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const n = 4_000_000
	keys := make([]int64, n)
	for i := range keys {
		keys[i] = dedupeKey("src", strconv.Itoa(i))
	}
	var longest time.Duration
	peak := 0
	for b.Loop() {
		m := &memoryDedupe{}
		for i, k := range keys {
			start := time.Now()
			m.add(k, int64(i+1), at)
			longest = max(longest, time.Since(start))
			if i%4096 == 0 {
				peak = max(peak, slotBytes(m))
			}
		}
	}
	b.ReportMetric(float64(longest.Microseconds())/1000, "longest-add-ms")
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/add")
}

// BenchmarkDedupeRestore: a start reads the saved index, a week's window of 3.9 million events in eight day
// tables (31 MB on disk). B/op is what the start allocates for it, the heap it leaves to the collector;
// slots-MiB the tables' memory once restored.
func BenchmarkDedupeRestore(b *testing.B) {
	m := &memoryDedupe{snapshot: filepath.Join(b.TempDir(), dedupeSnapshotFile)}
	since := fillWeek(m)
	if err := m.save(since); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var r *memoryDedupe
	for b.Loop() {
		r = &memoryDedupe{snapshot: m.snapshot}
		if err := r.restore(since, m.through); err != nil || len(r.days) != 8 {
			b.Fatalf("restored %d tables: %v", len(r.days), err)
		}
	}
	b.ReportMetric(float64(slotBytes(r))/(1<<20), "slots-MiB")
}

func slotBytes(m *memoryDedupe) int {
	n := 0
	for _, t := range m.days {
		n += 8 * len(t.slots)
		for _, sh := range t.shards {
			n += 8 * len(sh)
		}
	}
	return n
}

// BenchmarkDedupeLookup: the event writer looks up each event it appends in every day table of the window,
// a week's here; nearly all are new events, found in none (miss), a retried one in one (hit).
func BenchmarkDedupeLookup(b *testing.B) {
	m := &memoryDedupe{}
	fillWeek(m)
	m.open(dayOf(time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)), m.through+1) // a new day: the week's tables closed
	for _, t := range m.days {
		t.adopt(true) // and compacted
	}
	const n = 1 << 16
	miss, hit := make([]int64, n), make([]int64, n)
	for i := range n {
		miss[i] = dedupeKey("src", fmt.Sprint("new", i))
		hit[i] = dedupeKey("src", strconv.Itoa(1+i*37))
	}
	for _, c := range []struct {
		name string
		keys []int64
	}{{"miss", miss}, {"hit", hit}} {
		b.Run(c.name, func(b *testing.B) {
			found := 0
			for i := 0; b.Loop(); i++ {
				for _, t := range m.days {
					t.seqs(c.keys[i%n], func(int64) { found++ })
				}
			}
			if c.name == "hit" && found < b.N {
				b.Fatalf("found %d of %d", found, b.N)
			}
			b.ReportMetric(float64(slotBytes(m))/(1<<20), "slots-MiB")
		})
	}
}

// A saved index is read at every start: whatever the file holds (cut, damaged, made by hand), restore takes
// it whole or refuses it, and never fails in another way.
func FuzzDedupeRestore(f *testing.F) {
	day := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	m := &memoryDedupe{snapshot: filepath.Join(f.TempDir(), dedupeSnapshotFile)}
	for seq := int64(1); seq <= 50; seq++ {
		m.add(dedupeKey("src", strconv.FormatInt(seq, 10)), seq, day.Add(time.Duration(seq)*time.Hour))
	}
	if err := m.save(day.Add(-time.Hour)); err != nil {
		f.Fatal(err)
	}
	saved, err := os.ReadFile(m.snapshot)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(saved)
	f.Add(saved[:40])
	f.Add(append(slices.Clone(saved[:len(saved)-1]), saved[len(saved)-1]^1))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), dedupeSnapshotFile)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := &memoryDedupe{snapshot: path}
		err := r.restore(day.Add(-time.Hour), 50)
		switch {
		case err != nil && err != errNoSnapshot:
			t.Fatalf("restore: %v, want errNoSnapshot", err)
		case err != nil && (len(r.days) != 0 || r.through != 0):
			t.Fatalf("a refused file left %d tables through %d", len(r.days), r.through)
		case err == nil && r.through > 50:
			t.Fatalf("restored through %d, beyond the log's head", r.through)
		}
	})
}

// Events received before the window, as hearth demo appends months of history at once, are not indexed: a
// retry of them would not be found in the window anyway. How far the index has read still moves past them.
func TestDedupeSkipsHistory(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	since := now.Add(-7 * 24 * time.Hour)
	m := &memoryDedupe{}
	var keys []int64
	var times []time.Time
	for i := range 100 {
		keys = append(keys, dedupeKey("src", fmt.Sprint("m", i)))
		at := now.Add(-time.Duration(90-i) * 24 * time.Hour) // 90 days back to 9 days from now, a day each
		if i%10 == 0 {
			at = now.Add(-time.Duration(i) * time.Minute) // and every tenth arrives now
		}
		times = append(times, at)
	}
	m.added(keys, 1, times, since)
	held := 0
	for _, d := range m.days {
		held += d.n
	}
	// Within the window: the ten that arrive now, and days 83 to 89 of the history (7 days back to now).
	want := 0
	for _, at := range times {
		if at.After(since) {
			want++
		}
	}
	if held != want || m.through != 100 {
		t.Errorf("the index holds %d events read through %d, want the %d received after the window's start, through 100", held, m.through, want)
	}
}
