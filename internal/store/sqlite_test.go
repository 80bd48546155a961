package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"modernc.org/sqlite"
)

// A constant stream of commits must not grow the WAL without end: the checkpointer starts it over once it
// passes its restart size, and a clean close leaves it empty, with every row in the database. So too when the
// stream is heavy enough to pace the checkpoints to one a second.
func TestWALStaysBounded(t *testing.T) {
	t.Run("every tick", func(t *testing.T) { testWALStaysBounded(t, 0, 30*checkpointEvery) })
	t.Run("paced", func(t *testing.T) { testWALStaysBounded(t, 64<<10, 6*(paceSkip+1)*checkpointEvery) })
}

func testWALStaysBounded(t *testing.T, pace int, run time.Duration) {
	ctx := context.Background()
	dir := t.TempDir()
	const restartSize = 256 << 10
	db, err := openSQLiteWAL(ctx, dir, restartSize, restartSize, pace)
	if err != nil {
		t.Fatal(err)
	}
	db.clock = hearth.SystemClock{}
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE t (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	// Rows of four pages: the rows written soon dwarf what the WAL holds between two restarts.
	row := strings.Repeat("x", 16000)
	wal := filepath.Join(dir, "hearth.db-wal")
	var largest int64
	commits := 0
	// Commits one after another, as under load: PASSIVE checkpoints alone never find the WAL all copied. At
	// least 400, for a slow disk (40 ms a commit on a busy machine).
	for end := time.Now().Add(run); time.Now().Before(end) || commits < 400; commits++ {
		if err := db.inTx(ctx, "test", func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, row)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(wal); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	t.Logf("%d commits, the WAL at most %d bytes", commits, largest)
	// The WAL file keeps the size of the most written between two restarts: about a checkpoint interval's
	// commits (paced, a second's), a fraction of all. Without the restarts it would hold more than all the rows.
	if written := int64(commits * len(row)); largest > written/2 {
		t.Errorf("the WAL grew to %d bytes, over half the %d bytes of rows written", largest, written)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(wal); err == nil && fi.Size() > 0 {
		t.Errorf("after a clean close the WAL holds %d bytes", fi.Size())
	}
	db, err = openSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != commits {
		t.Fatalf("%d rows (%v), want %d", n, err, commits)
	}
}

// A derived transaction commits without its fsync, and the write connection, which the event log's appends
// use next, gets its FULL synchronous back, also when the transaction fails.
func TestDerivedTxRestoresSynchronous(t *testing.T) {
	ctx := context.Background()
	db, err := openSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.clock = hearth.SystemClock{}
	level := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int {
		var n int
		if err := q.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const normal, full = 1, 2
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for _, fail := range []bool{false, true} {
		err := db.derivedTx(ctx, "test", func(tx *sql.Tx) error {
			if got := level(tx); got != normal {
				t.Errorf("synchronous inside a derived transaction = %d, want %d (NORMAL)", got, normal)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != nil {
				return err
			}
			if fail {
				return hearth.Errorf(hearth.Invalid, "test", "fails")
			}
			return nil
		})
		if (err != nil) != fail {
			t.Fatalf("derivedTx (fail %v): %v", fail, err)
		}
		if got := level(db.write); got != full {
			t.Errorf("synchronous after a derived transaction (fail %v) = %d, want %d (FULL)", fail, got, full)
		}
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d rows (%v), want 1: the failed transaction's row must not stay", n, err)
	}
}

// openAppending opens a migrated store in a temporary folder, ready to append events, with a fixed clock.
func openAppending(t *testing.T) (*DB, *fixedClock) {
	t.Helper()
	clock := &fixedClock{time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	db := openMigrated(t, t.TempDir(), clock)
	t.Cleanup(func() { db.Close() })
	if err := db.LoadDedupe(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	return db, clock
}

// A page of people reads its emails and phones through the index of identities by profile: SQLite has no
// statistics here, and for the ORDER BY it would otherwise read every email and phone by the primary key.
// A transaction whose work panics is rolled back, as one that fails is: left open, it would hold SQLite's one
// writer, and every write after it would wait for good. The profile processor turns a panic into an error.
func TestTxRollsBackOnPanic(t *testing.T) {
	ctx := context.Background()
	db, err := openSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.clock = hearth.SystemClock{}
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for _, tx := range []func(context.Context, string, func(*sql.Tx) error) error{db.inTx, db.derivedTx} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("the panic did not reach the caller")
				}
			}()
			tx(ctx, "test", func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != nil {
					return err
				}
				panic("a bug")
			})
		}()
		waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.inTx(waitCtx, "test", func(tx *sql.Tx) error {
			_, err := tx.ExecContext(waitCtx, `INSERT INTO t VALUES (2)`)
			return err
		})
		cancel()
		if err != nil {
			t.Fatalf("a write after the panic: %v", err)
		}
	}
	var ones, twos int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE v = 1), count(*) FILTER (WHERE v = 2) FROM t`).Scan(&ones, &twos); err != nil {
		t.Fatal(err)
	}
	if ones != 0 || twos != 2 {
		t.Errorf("rows: %d of the panicking transactions, %d after; want 0 and 2", ones, twos)
	}
}

func TestContactIdentitiesUseProfileIndex(t *testing.T) {
	db, _ := openAppending(t)
	var plan []string
	ids := make([]any, 30) // a page of people: with a few, SQLite picks the index on its own
	for i := range ids {
		ids[i] = fmt.Sprintf("p%d", i)
	}
	err := db.scanRows(context.Background(), "EXPLAIN QUERY PLAN "+db.contactIdentitiesSQL(len(ids)), ids, func(row *sql.Rows) error {
		var id, parent, unused int
		var detail string
		err := row.Scan(&id, &parent, &unused, &detail)
		plan = append(plan, detail)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "identities_profile") || strings.Contains(got, "PRIMARY KEY") {
		t.Errorf("plan: %s; want the search by identities_profile", got)
	}
}

// Appending to the event log never waits for the state's writer: a derived transaction that holds it (a
// processor batch, a segment step) does not hold up ingestion.
func TestAppendWhileStateWriterBusy(t *testing.T) {
	ctx := context.Background()
	db, clock := openAppending(t)
	holding, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- db.derivedTx(ctx, "test", func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE consumer_offsets SET position = position`); err != nil {
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	b := &collect.Batch{SourceID: "src", ReceivedAt: clock.Now(), Events: []collect.Event{{MessageID: "m1", Type: "track", Name: "Tested",
		AnonymousID: "a1", Timestamp: clock.Now(), ReceivedAt: clock.Now(), Payload: []byte(`{}`)}}}
	appended := make(chan error, 1)
	go func() {
		_, _, err := db.appendBatches(ctx, []logBatch{db.newLogBatch(b)}, clock.Now().Add(-time.Hour))
		appended <- err
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the append waited for the state's writer")
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if head, err := db.LogHead(ctx); err != nil || head != 1 {
		t.Errorf("log head %d (%v), want 1", head, err)
	}
}

// storeAt makes dir's hearth.db as a release that knew the migrations up to version left it, each applied in
// hearth.db (the event log's tables among them, as before the log had a file of its own).
func storeAt(t *testing.T, dir string, version int) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ms, err := Migrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(createMigrationsTable); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:version] {
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("%04d_%s: %v", m.Version, m.Name, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// A store made before the event log had a file of its own keeps its log in hearth.db: migrating moves every
// row to events.db, also when an earlier try died after copying part of them.
func TestMigrateMovesEventLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// The store as the releases before made it: the log's tables in hearth.db.
	old := storeAt(t, dir, 13)
	mustExec := func(db *sql.DB, q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	moveCopyRows = 1000
	defer func() { moveCopyRows = 50_000 }()
	events := 2*moveCopyRows + 7 // more than one transaction's worth, and a part
	mustExec(old, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO events (seq, dedupe_key, source_id, message_id, type, name, user_id, anonymous_id, timestamp, received_at, bot, payload)
		SELECT i, i * 7919, 'src', 'm' || i, 'track', CASE WHEN i % 10 = 0 THEN 'Touch' ELSE 'Viewed' END, '', 'a' || i, '2026-11-01T12:00:00Z', '2026-11-01T12:00:00Z', 0, '{}' FROM n`, events)
	mustExec(old, `INSERT INTO rejected_events (source_id, received_at, reason, payload) VALUES ('src', '2026-11-01T12:00:00Z', 'no id', '{}')`)
	mustExec(old, `INSERT INTO source_stats (source_id, accepted, rejected) VALUES ('src', ?, 1)`, events)
	// An earlier try copied some events into events.db, then died.
	logDB, err := sql.Open("sqlite", "file:"+filepath.Join(dir, logFile)+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	mustExec(logDB, `ATTACH DATABASE ? AS log`, "file:"+filepath.Join(dir, logFile))
	mustExec(logDB, eventLogSchema)
	mustExec(logDB, `ATTACH DATABASE ? AS old`, "file:"+filepath.Join(dir, stateFile))
	mustExec(logDB, `INSERT INTO log.events SELECT * FROM old.events WHERE seq <= 1000`)
	logDB.Close()
	old.Close()

	db := openMigrated(t, dir, &fixedClock{time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)})
	defer db.Close()
	var tables int
	if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM main.sqlite_master WHERE name IN ('events', 'rejected_events', 'source_stats')`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("hearth.db keeps %d of the log's tables (%v)", tables, err)
	}
	var n, touches int64
	var last string
	if err := db.read.QueryRowContext(ctx, `SELECT count(*), max(message_id) FROM events`).Scan(&n, &last); err != nil || n != events {
		t.Errorf("%d events (%v), want %d", n, err, events)
	}
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM log.events INDEXED BY events_touches WHERE name = 'Touch'`).Scan(&touches); err != nil || touches != events/10 {
		t.Errorf("%d touches through the index (%v), want %d", touches, err, events/10)
	}
	if stats, err := db.AllSourceStats(ctx); err != nil || stats["src"].Accepted != events || stats["src"].Rejected != 1 {
		t.Errorf("source stats %+v (%v)", stats, err)
	}
	if r, err := db.SourceRejections(ctx, "src", 0, 10); err != nil || len(r) != 1 {
		t.Errorf("rejections %+v (%v)", r, err)
	}
	// The next events follow the moved ones.
	if err := db.LoadDedupe(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	b := &collect.Batch{SourceID: "src", ReceivedAt: db.clock.Now(), Events: []collect.Event{{MessageID: "next", Type: "track", Name: "Tested",
		AnonymousID: "a1", Timestamp: db.clock.Now(), ReceivedAt: db.clock.Now(), Payload: []byte(`{}`)}}}
	if _, _, err := db.appendBatches(ctx, []logBatch{db.newLogBatch(b)}, db.clock.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if head, err := db.LogHead(ctx); err != nil || head != events+1 {
		t.Errorf("log head %d (%v), want %d", head, err, events+1)
	}
	// Migrating again changes nothing.
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil || n != events+1 {
		t.Errorf("after migrating again: %d events (%v)", n, err)
	}
}

// Starting the log's WAL over never waits for a reader still reading it: a long read would otherwise hold every
// append behind it. The restart waits for the next tick instead.
func TestWALRestartDoesNotWaitForReaders(t *testing.T) {
	ctx := context.Background()
	f := newLogFixture(t)
	db, appendOne := f.db, f.appendOne
	appendOne()
	reader := f.reading()
	appendOne()
	logCheckpointer := db.checkpointers[1]
	began := time.Now()
	if logCheckpointer.restart(0) {
		t.Error("the WAL started over under a reader still reading it")
	}
	if took := time.Since(began); took > busyTimeout/2 {
		t.Errorf("the restart waited %v for the reader", took)
	}
	appendOne() // the writer's connection waits for locks again
	reader.Rollback()
	// The store's own checkpointer may be copying frames at this instant (a PASSIVE checkpoint, every
	// checkpointEvery), and a restart that does not wait is then refused: try again for a while.
	restarted := logCheckpointer.restart(0)
	for deadline := time.Now().Add(5 * time.Second); !restarted && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		restarted = logCheckpointer.restart(0)
	}
	if !restarted {
		t.Error("no restart once the reader was done")
	}
	appendOne()
	var timeout int
	if err := db.eventLog.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil || timeout != int(busyTimeout.Milliseconds()) {
		t.Errorf("the writer's busy timeout is %d ms (%v), want %d", timeout, err, busyTimeout.Milliseconds())
	}
}

// Readers that keep the log's WAL from starting over do so only until it is walRestartWaitFactor times its
// restart size: then the restart waits for them, and the WAL stays bounded.
func TestWALRestartWaitsOnceLarge(t *testing.T) {
	ctx := context.Background()
	f := newLogFixture(t)
	own, err := sql.Open("sqlite", sqliteDSN(f.dir, logFile, defaultCacheKiB))
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	c := &checkpointer{conn: own, writer: f.db.eventLog, restartFrames: 8}
	frames := func() int {
		var busy, n, copied int
		if err := own.QueryRowContext(ctx, `PRAGMA main.wal_checkpoint(PASSIVE)`).Scan(&busy, &n, &copied); err != nil {
			t.Fatal(err)
		}
		return n
	}
	appendOne := f.appendOne
	appendUntil := func(wal int) {
		t.Helper()
		for frames() < wal {
			appendOne()
		}
	}
	appendUntil(1)
	reader := f.reading()
	appendUntil(c.restartFrames)
	c.checkpoint() // gives way to the reader
	appendUntil(walRestartWaitFactor * c.restartFrames)
	done := make(chan struct{})
	go func() { c.checkpoint(); close(done) }()
	select {
	case <-done:
		t.Fatal("the restart of a WAL four times its size did not wait for the reader")
	case <-time.After(300 * time.Millisecond):
	}
	reader.Rollback()
	<-done
	appendOne() // written from the WAL's start
	if got := frames(); got >= c.restartFrames {
		t.Errorf("after the restart the WAL holds %d frames, want a new start", got)
	}
}

// A checkpoint that finds the WAL grown by its pace or more since the one before lets the next ticks pass
// (a writer catching up); a smaller growth keeps the next tick's.
func TestCheckpointPace(t *testing.T) {
	f := newLogFixture(t)
	own, err := sql.Open("sqlite", sqliteDSN(f.dir, logFile, defaultCacheKiB))
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	f.appendOne()
	defer f.reading().Rollback() // the WAL cannot start over: its frames only grow
	c := &checkpointer{conn: own, writer: f.db.eventLog, restartFrames: 1 << 20, paceFrames: 12}
	c.checkpoint()
	f.appendOne() // a few frames
	c.checkpoint()
	if c.skip != 0 {
		t.Fatalf("after a commit, %d ticks skipped (the WAL holds %d frames)", c.skip, c.lastFrames)
	}
	for from := c.lastFrames; ; {
		f.appendOne()
		var busy, n, copied int
		if err := own.QueryRow(`PRAGMA main.wal_checkpoint(PASSIVE)`).Scan(&busy, &n, &copied); err != nil {
			t.Fatal(err)
		}
		if n-from >= c.paceFrames {
			break
		}
	}
	c.checkpoint()
	if c.skip != paceSkip {
		t.Errorf("after the WAL grew by its pace, %d ticks skipped, want %d", c.skip, paceSkip)
	}
}

// logFixture is a migrated SQLite store whose checkpointers never start a WAL over (the tests do), an
// appender of events of their own, and a reader holding a snapshot of the log.
type logFixture struct {
	t   *testing.T
	dir string
	db  *DB
	n   int
}

func newLogFixture(t *testing.T) *logFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := openSQLiteWAL(ctx, dir, 1<<30, 1<<30, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.clock = &fixedClock{time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.LoadDedupe(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	return &logFixture{t: t, dir: dir, db: db}
}

func (f *logFixture) appendOne() {
	f.t.Helper()
	f.n++
	now := f.db.clock.Now()
	b := &collect.Batch{SourceID: "src", ReceivedAt: now, Events: []collect.Event{{MessageID: fmt.Sprint("m", f.n), Type: "track",
		Name: "Tested", AnonymousID: "a1", Timestamp: now, ReceivedAt: now, Payload: []byte(`{}`)}}}
	if _, _, err := f.db.appendBatches(context.Background(), []logBatch{f.db.newLogBatch(b)}, now.Add(-time.Hour)); err != nil {
		f.t.Fatal(err)
	}
}

// reading begins a read of the log, its snapshot in the WAL until the returned transaction ends.
func (f *logFixture) reading() *sql.Tx {
	f.t.Helper()
	ctx := context.Background()
	reader, err := f.db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		f.t.Fatal(err)
	}
	var seen int
	if err := reader.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&seen); err != nil {
		f.t.Fatal(err)
	}
	return reader
}

// The event writer binds times as text it formats itself (off the writer's goroutine): the text must be what
// the driver stores for a time.Time, or queries that bind times would compare against another format.
func TestEventTimesStoredAsTheDriverBindsThem(t *testing.T) {
	ctx := context.Background()
	db, clock := openAppending(t)
	stamps := []time.Time{
		time.Date(2026, 10, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 10, 31, 23, 59, 59, 120_000_000, time.UTC),
		time.Date(2026, 10, 31, 23, 59, 59, 123_456_789, time.FixedZone("CST", 8*3600)),
		time.Now(), // with a monotonic clock reading
	}
	b := &collect.Batch{SourceID: "src", ReceivedAt: clock.Now()}
	for i, ts := range stamps {
		b.Events = append(b.Events, collect.Event{MessageID: fmt.Sprint("m", i), Type: "track", Name: "Tested",
			AnonymousID: "a1", Timestamp: ts, ReceivedAt: clock.Now(), Payload: []byte(`{}`)})
	}
	if _, _, err := db.appendBatches(ctx, []logBatch{db.newLogBatch(b)}, clock.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i, ts := range stamps {
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE message_id = ? AND timestamp = ? AND received_at = ?`,
			fmt.Sprint("m", i), ts.Round(0), clock.Now()).Scan(&n); err != nil || n != 1 {
			t.Errorf("event %d (%v): %d rows match the times bound by the driver (%v)", i, ts, n, err)
		}
	}
}

// On Linux the store's commits sync with fdatasync (sqlite.go).
func TestCommitsSyncWithFdatasync(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("fdatasync is switched on where the system has it; this checks Linux")
	}
	if !sqlite.FdatasyncEnabled() {
		t.Error("SQLite commits with fsync")
	}
}

// A new data folder's event log has logPageSize pages, the state SQLite's 4 KiB; a log made before keeps its
// own, and its WAL restarts at the same size in bytes either way.
func TestLogPageSize(t *testing.T) {
	ctx := context.Background()
	pageSize := func(db *sql.DB) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	restarts := func(db *DB) (state, log int) {
		return db.checkpointers[0].restartFrames, db.checkpointers[1].restartFrames
	}

	db, err := openSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := pageSize(db.eventLog); got != logPageSize {
		t.Errorf("a new log's pages are of %d bytes, want %d", got, logPageSize)
	}
	if got := pageSize(db.write); got != 4096 {
		t.Errorf("the state's pages are of %d bytes, want 4096", got)
	}
	if state, log := restarts(db); state*4096 != stateWALRestartSize || log*logPageSize != walRestartSize {
		t.Errorf("WAL restarts after %d and %d frames, want %d and %d bytes", state, log, stateWALRestartSize, walRestartSize)
	}

	dir := t.TempDir()
	old, err := sql.Open("sqlite", "file:"+filepath.Join(dir, logFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE before (v)`); err != nil {
		t.Fatal(err)
	}
	old.Close()
	db, err = openSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := pageSize(db.eventLog); got != 4096 {
		t.Errorf("a log made with 4 KiB pages has %d now", got)
	}
	if _, log := restarts(db); log*4096 != walRestartSize {
		t.Errorf("its WAL restarts after %d frames, want %d bytes", log, walRestartSize)
	}
}

// Each connection keeps its own pages, within its cache_size: appending to the log does not push the state
// writer's pages out, nor grow the log writer's cache past its own size (SQLite's shared pool did both).
func TestPageCachesAreSeparate(t *testing.T) {
	if !SeparatePageCaches {
		t.Skip("the race detector's build keeps SQLite's shared page cache (pagecache.go); scripts/test runs this without it")
	}
	ctx := context.Background()
	db, err := openSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cached := func(pool *sql.DB) int {
		t.Helper()
		c, err := pool.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var used int
		if err := c.Raw(func(dc any) error {
			used, _, err = dc.(sqlite.DBStatus).Status(sqlite.DBStatusCacheUsed, false)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return used
	}
	fill := func(pool *sql.DB, table string, mib int) {
		t.Helper()
		if _, err := pool.ExecContext(ctx, `CREATE TABLE `+table+` (v TEXT)`); err != nil {
			t.Fatal(err)
		}
		for range mib {
			if _, err := pool.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1024) INSERT INTO `+table+` SELECT randomblob(1000) FROM n`); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(db.write, "state_rows", 16)
	var n int
	if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM state_rows WHERE v IS NOT NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	before := cached(db.write)
	if before < 16<<20 {
		t.Fatalf("the state writer caches %d bytes after reading 16 MiB", before)
	}
	fill(db.eventLog, "log_rows", 64)
	if after := cached(db.write); after < before {
		t.Errorf("appending to the log took the state writer's cache from %d to %d bytes", before, after)
	}
	if log := cached(db.eventLog); log > 3<<20 {
		t.Errorf("the log writer caches %d bytes, over its 2 MB", log)
	}
}

// Migration 0014 moves the per-profile tables into their primary key's B-tree (WITHOUT ROWID): every row and
// index comes through, and the processor's lookups read the new tables.
func TestMigrateWithoutRowid(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := storeAt(t, dir, 13)
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := old.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	at := "2026-11-01 12:00:00 +0000 UTC"
	for _, q := range []string{
		`INSERT INTO profiles (id, first_seq, first_seen, last_seen, created_at, updated_at, stage) VALUES ('p1', 1, '` + at + `', '` + at + `', '` + at + `', '` + at + `', 'connected')`,
		`INSERT INTO identities VALUES ('email', 'ada@example.com', 'p1', 1), ('anonymous_id', 'a1', 'p1', 1), ('phone', '+8613800000000', 'p1', 2)`,
		`INSERT INTO profile_traits VALUES ('p1', 'city', '"上海"', 'src', 2, '` + at + `'), ('p1', 'quote', '"a\"b"', 'src', 2, '` + at + `')`,
		`INSERT INTO profile_touches VALUES ('p1', 'tp1', 'Poster', 'qr_poster', 'c1', 3, 1, '` + at + `', 4, '` + at + `')`,
		`INSERT INTO stage_changes VALUES ('p1', 2, 'anonymous', 'connected', '` + at + `')`,
		`INSERT INTO left_out VALUES (5, 'user_id', 'u2', 'limit')`,
		`INSERT INTO separations VALUES ('p1', 'p2', 1)`,
		`INSERT INTO segment_members VALUES ('s1', 'p1', '` + at + `')`,
		`INSERT INTO segment_sizes VALUES ('s1', '` + at + `', 1)`,
		`INSERT INTO segment_list_items VALUES ('s1', 'email', 'ada@example.com')`,
	} {
		mustExec(q)
	}
	tables := []string{"identities", "profile_traits", "profile_touches", "stage_changes", "left_out", "separations", "segment_members", "segment_sizes", "segment_list_items"}
	dump := func(conn *sql.DB) map[string]string {
		t.Helper()
		d := map[string]string{}
		for _, table := range tables {
			var rows string
			if err := conn.QueryRowContext(ctx, `SELECT group_concat(r, '|') FROM (SELECT json_array(*) AS r FROM `+table+` ORDER BY 1)`).Scan(&rows); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			d[table] = rows
		}
		return d
	}
	before := dump(old)
	old.Close()

	db := openMigrated(t, dir, &fixedClock{time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)})
	defer db.Close()
	if after := dump(db.read); !maps.Equal(after, before) {
		t.Errorf("rows after the migration:\n%v\nwant\n%v", after, before)
	}
	for _, table := range tables {
		var ddl string
		if err := db.read.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&ddl); err != nil || !strings.HasSuffix(ddl, "WITHOUT ROWID") {
			t.Errorf("%s: %q (%v), want a WITHOUT ROWID table", table, ddl, err)
		}
	}
	var indexes []string
	if err := scanOn(ctx, db.read, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('identities', 'profile_traits', 'profile_touches', 'segment_members') ORDER BY name`, nil,
		func(r *sql.Rows) error {
			var name string
			err := r.Scan(&name)
			indexes = append(indexes, name)
			return err
		}); err != nil {
		t.Fatal(err)
	}
	want := []string{"identities_profile", "profile_touches_campaign", "profile_touches_channel", "profile_touches_touchpoint", "profile_traits_escaped",
		"profile_traits_name", "segment_members_profile", "segment_members_since"}
	if !slices.Equal(indexes, want) {
		t.Errorf("indexes %v, want %v", indexes, want)
	}
	k, err := db.KnownIdentities(ctx, []identity.Identifier{{Type: identity.Email, Value: "ada@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if k.ProfileOf[identity.Identifier{Type: identity.Email, Value: "ada@example.com"}] != "p1" || k.Counts["p1"][identity.Phone] != 1 || len(k.Facts["p1"].Traits) != 2 {
		t.Errorf("known identities after the migration: %+v", k)
	}
}

// Migration 18 works out the steps each stored profile meets by the rules the processor applies: it is what
// the home screen's lifecycle and "stage reached" conditions read.
func TestMigrateProfileSteps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := storeAt(t, dir, 17)
	at := "'2026-11-01 12:00:00 +0000 UTC'"
	profiles := map[string]struct {
		ids, traits, activated, converted string
		want                              profile.Steps
	}{
		"p-visitor":  {ids: "('anonymous_id', 'a1')", activated: at, want: profile.Steps{Activated: true}},
		"p-device":   {ids: "('device_id', 'd1')"},
		"p-email":    {ids: "('email', 'ada@example.com'), ('anonymous_id', 'a2')", want: profile.Steps{Identified: true, Connected: true}},
		"p-optedout": {ids: "('email', 'bo@example.com')", traits: "('email_subscribed', 'false')", converted: at, want: profile.Steps{Identified: true, Converted: true}},
		"p-phone":    {ids: "('email', 'cy@example.com'), ('phone', '+8613800000000')", traits: "('email_subscribed', 'false'), ('sms_subscribed', 'true')", want: profile.Steps{Identified: true, Connected: true}},
		"p-wechat":   {ids: "('wechat_openid', 'o1')", traits: "('wechat_subscribed', 'false')", activated: at, converted: at, want: profile.Steps{Identified: true, Activated: true, Converted: true}},
		"p-member":   {ids: "('user_id', 'm1')", want: profile.Steps{Identified: true}},
	}
	for id, p := range profiles {
		activated, converted := cmp.Or(p.activated, "NULL"), cmp.Or(p.converted, "NULL")
		qs := []string{`INSERT INTO profiles (id, first_seq, first_seen, last_seen, created_at, updated_at, activated_at, converted_at) VALUES ('` + id + `', 1, ` + at + `, ` + at + `, ` + at + `, ` + at + `, ` + activated + `, ` + converted + `)`,
			`INSERT INTO identities (type, value, profile_id, first_seq) SELECT column1, column2, '` + id + `', 1 FROM (VALUES ` + p.ids + `)`}
		if p.traits != "" {
			qs = append(qs, `INSERT INTO profile_traits (profile_id, name, value, source_id, seq, at) SELECT '`+id+`', column1, column2, 'src', 1, `+at+` FROM (VALUES `+p.traits+`)`)
		}
		for _, q := range qs {
			if _, err := old.ExecContext(ctx, q); err != nil {
				t.Fatalf("%.80s: %v", q, err)
			}
		}
	}
	old.Close()

	db := openMigrated(t, dir, &fixedClock{time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)})
	defer db.Close()
	for id, p := range profiles {
		var bits int
		if err := db.read.QueryRowContext(ctx, `SELECT steps FROM profiles WHERE id = ?`, id).Scan(&bits); err != nil {
			t.Fatal(err)
		}
		if got := profile.StepsOfBits(bits); got != p.want {
			t.Errorf("%s: steps %+v, want %+v", id, got, p.want)
		}
	}
	var stageColumns int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('profiles') WHERE name = 'stage'`).Scan(&stageColumns); err != nil || stageColumns != 0 {
		t.Errorf("the profiles keep a stage column (%d, %v): the stage is read from the steps", stageColumns, err)
	}
	for id, p := range profiles {
		got, err := db.Profile(ctx, id)
		if err != nil || got.Stage != p.want.Stage() {
			t.Errorf("%s: stage %s (%v), want %s", id, got.Stage, err, p.want.Stage())
		}
	}
	var plan []string
	if err := scanOn(ctx, db.read, `EXPLAIN QUERY PLAN SELECT steps, count(*) FROM profiles GROUP BY steps`, nil, func(r *sql.Rows) error {
		var id, parent, unused int
		var detail string
		err := r.Scan(&id, &parent, &unused, &detail)
		plan = append(plan, detail)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan, "; "), "profiles_steps") {
		t.Errorf("counting by steps: %s, want the index on steps", plan)
	}
}
