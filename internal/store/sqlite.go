package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/hearth-cdp/hearth"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The embedded store's two files in the data folder. The event log has a file of its own, with its own writer,
// so that appending events never waits for the transactions of what is derived from them (the profile
// processor's batches, the segment engine's steps, an unmerge), which hold the state's one writer for tens of
// milliseconds at a time: SQLite allows one writer per file.
const (
	stateFile = "hearth.db" // everything but the event log
	logFile   = "events.db" // the event log: events, rejected_events, source_stats
)

// SQLiteFiles are the files of the embedded store in its data folder that grow: each database and its WAL.
var SQLiteFiles = []string{stateFile, stateFile + "-wal", logFile, logFile + "-wal"}

// Commits sync with fdatasync rather than fsync where the system has it: the same durability (the data and the
// file's size) without also writing the file's times, one write of the disk's metadata less per commit.
func init() { _, _ = sqlite.Fdatasync(true) } // unavailable (macOS, Windows): fsync, as before

// openSQLite opens the data folder's two files: WAL so that readers never block the writers, a busy timeout so
// that a second process (hearth apikey create beside a running server) waits rather than fails, foreign keys
// on. The readers attach the log read-only as "log", so that queries name its tables as if they were one
// database's. The writers each have their file alone: a transaction of the state's writer that had the log
// attached would hold a snapshot of it from its BEGIN, and keep the log's WAL from starting over.
func openSQLite(ctx context.Context, dir string) (*DB, error) {
	return openSQLiteWAL(ctx, dir, walRestartSize, stateWALRestartSize, statePaceSize)
}

// openSQLiteWAL is openSQLite with the log's and the state's WAL restart sizes and the state's checkpoint pace
// in bytes (tests make them small).
func openSQLiteWAL(ctx context.Context, dir string, restartSize, stateRestartSize, paceSize int) (db *DB, err error) {
	if dir == "" {
		return nil, hearth.Errorf(hearth.Invalid, "store.open", "no data folder given for the embedded database")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &hearth.Error{Kind: hearth.Invalid, Op: "store.open", Msg: fmt.Sprintf("Cannot create the data folder %s.", dir), Err: err}
	}
	var opened []*sql.DB
	defer func() {
		if err != nil {
			for _, p := range opened {
				p.Close()
			}
		}
	}()
	open := func(dsn, attach string, conns int) (*sql.DB, error) {
		c, err := sqlite.NewConnector(dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
		var p *sql.DB
		if attach == "" {
			p = sql.OpenDB(c)
		} else {
			p = sql.OpenDB(attachingConnector{Connector: c, attach: attach})
		}
		p.SetMaxOpenConns(conns)
		p.SetMaxIdleConns(conns) // kept open: a new connection reads the schema and attaches the log again
		opened = append(opened, p)
		return p, nil
	}
	if err := createLog(ctx, dir); err != nil {
		return nil, &hearth.Error{Kind: hearth.Unavailable, Op: "store.open", Msg: fmt.Sprintf("Cannot create the event log in %s.", dir), Err: err}
	}
	state, log := sqliteDSN(dir, stateFile, defaultCacheKiB), sqliteDSN(dir, logFile, defaultCacheKiB)
	logReadOnly := "file:" + filepath.Join(dir, logFile) + "?mode=ro"
	// The writers: BEGIN IMMEDIATE, so that a write transaction takes the lock at its start, never by upgrading
	// a read lock later, which could fail with SQLITE_BUSY in the middle of the work.
	// They never checkpoint (wal_autocheckpoint 0): copying the WAL into the database would stall every commit
	// behind it. A checkpointer on its own connection does it beside each writer (see checkpointer).
	// The state's writer keeps 128 MiB of pages (SQLite's default is 2 MiB), which no other connection's writes
	// discard: the profile processor's batches insert at random places in large indexes (identities,
	// event_profiles), and with the default a batch on a store of 12 million events spilled dirty pages to the
	// WAL in the middle of its transaction; catching up on random visitors went from 4,700-4,800 events/s with
	// 64 MiB to 4,900-5,500 with 128 (BENCHMARKS.md, Profile processor). The log's writer appends at the end of
	// its tables and needs few.
	// Statement journals stay in memory rather than in temporary files.
	// The first commit after the WAL starts over cuts its file back to journal_size_limit: the log's to 64 MiB.
	// The state's WAL grows to several times its restart size while the processor catches up, and cutting 0.9
	// GB of file back held that commit for half a second; so its file is kept up to the size at which starting
	// over waits for readers, and cut back only past it.
	writer := func(keep int) string {
		return fmt.Sprintf("&_txlock=immediate&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(%d)&_pragma=temp_store(MEMORY)", keep)
	}
	// The log first: attaching needs its file.
	logWrite, err := open(log+writer(64<<20), "", 1)
	if err != nil {
		return nil, err
	}
	if err := logWrite.PingContext(ctx); err != nil {
		return nil, &hearth.Error{Kind: hearth.Unavailable, Op: "store.open", Msg: fmt.Sprintf("Cannot open the event log in %s.", dir), Err: err}
	}
	write, err := open(sqliteDSN(dir, stateFile, stateWriterCacheKiB)+writer(walRestartWaitFactor*stateRestartSize), "", 1)
	if err != nil {
		return nil, err
	}
	// The readers keep SQLite's default 2 MiB of pages: a read that follows the writer's commits discards the
	// whole cache (freeing each page cost a system call in the SQLite port's allocator), so under ingestion a
	// larger one costs more than it saves.
	read, err := open(state+"&mode=ro", logReadOnly, max(4, runtime.GOMAXPROCS(0)*2))
	if err != nil {
		return nil, err
	}
	stateCheckpoint, err := open(state, "", 1)
	if err != nil {
		return nil, err
	}
	logCheckpoint, err := open(log, "", 1)
	if err != nil {
		return nil, err
	}
	if err := write.PingContext(ctx); err != nil {
		return nil, &hearth.Error{Kind: hearth.Unavailable, Op: "store.open", Msg: fmt.Sprintf("Cannot open the database in %s.", dir), Err: err}
	}
	stateRestart, err := restartFrames(ctx, write, stateRestartSize)
	if err != nil {
		return nil, err
	}
	logRestart, err := restartFrames(ctx, logWrite, restartSize)
	if err != nil {
		return nil, err
	}
	statePace := 0 // frames; none: never paced
	if paceSize > 0 {
		if statePace, err = restartFrames(ctx, write, paceSize); err != nil {
			return nil, err
		}
	}
	return &DB{engine: SQLite, write: write, eventLog: logWrite, read: read, graph: write, mapErr: mapSQLiteError, logger: discardLogger, dialect: sqliteDialect,
		dedupe: &memoryDedupe{snapshot: filepath.Join(dir, dedupeSnapshotFile)},
		migrator: func() (*sql.DB, error) {
			// Both files writable: migrations may change the log's tables too.
			c, err := sqlite.NewConnector(state + "&_txlock=immediate")
			if err != nil {
				return nil, fmt.Errorf("store: open sqlite: %w", err)
			}
			p := sql.OpenDB(attachingConnector{Connector: c, attach: "file:" + filepath.Join(dir, logFile)})
			p.SetMaxOpenConns(1)
			return p, nil
		},
		checkpointers: []*checkpointer{newCheckpointer(stateCheckpoint, write, stateRestart, statePace), newCheckpointer(logCheckpoint, logWrite, logRestart, 0)},
	}, nil
}

// logPageSize is the page size of a new event log (SQLite's default is 4 KiB; a file keeps the size it was
// made with). A group commit of a thousand events of ~300 bytes writes a quarter as many WAL frames, two system
// calls each, and the checkpointer copies a quarter as many: closed-loop ingestion took 92,000-103,000
// events/s against 86,000-96,000 (BENCHMARKS.md). The log is read in order, so larger pages cost its readers
// nothing; the state keeps 4 KiB, since the profile processor reads and rewrites it at random places.
const logPageSize = 16384

// createLog makes a new data folder's event log with logPageSize pages. The page size must be set before the
// file turns to WAL, and the driver applies a DSN's pragmas in alphabetical order, journal_mode first.
func createLog(ctx context.Context, dir string) error {
	path := filepath.Join(dir, logFile)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return err // there already, or not to be looked at
	}
	c, err := sqlite.NewConnector("file:" + path)
	if err != nil {
		return err
	}
	p := sql.OpenDB(c)
	defer p.Close()
	_, err = p.ExecContext(ctx, fmt.Sprintf(`PRAGMA page_size = %d; PRAGMA journal_mode = WAL`, logPageSize))
	return err
}

// restartFrames is size bytes of WAL (a restart size, a pace) in frames of the pages of the writer's file.
func restartFrames(ctx context.Context, writer *sql.DB, size int) (int, error) {
	var pageSize int
	if err := writer.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		return 0, fmt.Errorf("store: read the page size: %w", err)
	}
	return max(1, size/pageSize), nil
}

// busyTimeout is how long a connection waits for a lock that another holds (another process's writer, or a
// checkpoint), before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Page caches, in KiB: SQLite's default for most connections, more for the state's writer (see openSQLiteWAL).
const (
	defaultCacheKiB     = 2000
	stateWriterCacheKiB = 128 << 10
)

// sqliteDSN names a file of the data folder with the pragmas every connection to it sets, and a page cache of
// cacheKiB. A connection spills dirty pages to the WAL before its commit only once its cache is full of them
// (cache_spill as large as the cache): the page cache (pagecache.go) refuses SQLite a new page while nine
// tenths of it are pinned, as dirty pages are, and with SQLite's default (1 page) a full cache then wrote out
// a dirty page for every page it read.
func sqliteDSN(dir, file string, cacheKiB int) string {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()), "foreign_keys(1)", "synchronous(FULL)",
		fmt.Sprintf("cache_size(-%d)", cacheKiB), fmt.Sprintf("cache_spill(-%d)", cacheKiB)} {
		q.Add("_pragma", p)
	}
	return "file:" + filepath.Join(dir, file) + "?" + q.Encode()
}

// attachingConnector attaches the event log to each connection it opens, as "log".
type attachingConnector struct {
	driver.Connector
	attach string // the log's URI
}

func (c attachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.(driver.ExecerContext).ExecContext(ctx, `ATTACH DATABASE ? AS log`, []driver.NamedValue{{Ordinal: 1, Value: c.attach}}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: attach the event log: %w", err)
	}
	return conn, nil
}

// checkpointer copies the WAL into the database file in the background, on its own connection, so that the
// writer's commits never wait for it: PASSIVE checkpoints neither wait for nor block readers and the writer.
// Under a constant stream of commits, though, a PASSIVE checkpoint never finds the WAL all copied, and the
// WAL would grow without end; so once it is large, a RESTART on the writer's own connection, between two of
// its transactions, copies the last few frames and makes the next commit write from the WAL's start.
type checkpointer struct {
	conn          *sql.DB // its own connection, for the PASSIVE copying
	writer        *sql.DB
	restartFrames int
	// paceFrames: a checkpoint that finds the WAL grown by this many frames since the one before makes the next
	// wait paceSkip ticks (0: never). See checkpointer.checkpoint.
	paceFrames int
	lastFrames int // the WAL's frames at the last checkpoint
	skip       int // ticks to let pass before the next
	stop       chan struct{}
	done       chan struct{}
}

const (
	// checkpointEvery is how often the WAL is copied: often enough that little is left for a RESTART.
	checkpointEvery = 100 * time.Millisecond
	// walRestartSize is the event log's WAL's size, in bytes, past which it is started over.
	walRestartSize = 32 << 20
	// stateWALRestartSize is the state's. Starting over takes the writer's connection, after one of its commits,
	// to copy that commit's frames and sync: a batch of the profile processor catching up on a large store
	// dirties 16-32 MB of pages at random places, so at 32 MiB nearly every batch was followed by such a
	// hold. At 256, catching up on the 20-million-event demo world went 11% faster (BENCHMARKS.md).
	stateWALRestartSize = 256 << 20
	// walRestartWaitFactor: at this many times its restart size, starting the WAL over waits for its readers.
	walRestartWaitFactor = 4
	// statePaceSize is the growth of the state's WAL in one tick past which its checkpoints come once a second
	// (paceSkip ticks apart): the profile processor catching up writes 4-12 MiB in most ticks, live touches at
	// 2,000 a second under 4.
	statePaceSize = 6 << 20
	paceSkip      = 9
)

func newCheckpointer(conn, writer *sql.DB, restartFrames, paceFrames int) *checkpointer {
	c := &checkpointer{conn: conn, writer: writer, restartFrames: restartFrames, paceFrames: paceFrames, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if c.skip > 0 {
				c.skip--
				continue
			}
			c.checkpoint()
		}
	}
}

func (c *checkpointer) checkpoint() {
	// An error (the disk is full, the file is gone) shows in the writer's next commit as well; here it only
	// means the WAL grows until the next try.
	frames, ok := c.passive()
	if !ok {
		return
	}
	// A writer catching up (the profile processor far behind) rewrites the same pages, the ends of its indexes,
	// batch after batch: copied once a second rather than ten times, they cost the other core a tenth as much. At live
	// rates the WAL grows less, and the checkpoints stay small and frequent: a second's copying in one call
	// holds a core that commits waiting for their fsync need (BENCHMARKS.md).
	grown := frames - c.lastFrames
	if frames < c.lastFrames { // started over
		grown = frames
	}
	c.lastFrames = frames
	if c.paceFrames > 0 && grown >= c.paceFrames {
		c.skip = paceSkip
	}
	if frames < c.restartFrames {
		return
	}
	// Starting over holds the writer while it copies what no checkpoint has yet and syncs. A writer catching
	// up commits its next batches (tens of MB of pages at random places) while a second's copying runs, which
	// the RESTART then copied with the writer held, 0.5-0.7 s each time on the 20-million-event demo world.
	// Copied first beside the writer, a few times over, what is left is about one commit: 0.22-0.27 s.
	for range restartCatchUps {
		before := frames
		if frames, ok = c.passive(); !ok {
			return
		}
		if frames < before || frames-before < c.restartFrames/16 { // started over, or little came meanwhile
			break
		}
	}
	c.lastFrames = frames
	if frames < c.restartFrames { // SQLite started it over itself, having found it all copied
		return
	}
	wait := time.Duration(0)
	if frames >= walRestartWaitFactor*c.restartFrames {
		wait = busyTimeout // readers have kept it from starting over for long: wait for them this once
	}
	c.restart(wait)
}

// restartCatchUps bounds the PASSIVE checkpoints before a RESTART: each copies what the writer committed
// while the one before ran, about a batch of the processor's in the end.
const restartCatchUps = 4

// passive copies what it can of the WAL without waiting for or blocking anyone, and returns the WAL's frames.
func (c *checkpointer) passive() (frames int, ok bool) {
	var busy, copied int
	err := c.conn.QueryRow(`PRAGMA main.wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	return frames, err == nil
}

// restart starts the WAL over from its first frame, on the writer's connection between two of its
// transactions, once no reader is still reading frames of it, waiting at most wait for them. A RESTART waits
// for readers, and a long read (a large export, a segment's first evaluation) would hold every commit behind
// it; so the checkpointer tries without waiting, and the next tick tries again, until the WAL is
// walRestartWaitFactor times its restart size.
func (c *checkpointer) restart(wait time.Duration) (done bool) {
	ctx := context.Background()
	conn, err := c.writer.Conn(ctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, wait.Milliseconds())); err != nil {
		return false
	}
	defer func() {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, busyTimeout.Milliseconds())); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) // a writer that never waits must not stay
		}
	}()
	var busy, frames, copied int
	err = conn.QueryRowContext(ctx, `PRAGMA main.wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied)
	return err == nil && busy == 0
}

// close stops the checkpointer and copies what is left, so that a clean shutdown leaves a small WAL. The writer
// is closed by then.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	_, err := c.conn.Exec(`PRAGMA main.wal_checkpoint(TRUNCATE)`)
	return errors.Join(err, c.conn.Close())
}

func mapSQLiteError(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return &hearth.Error{Kind: hearth.Conflict, Err: err}
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return &hearth.Error{Kind: hearth.Unavailable, Msg: "The database is busy; try again.", Err: err}
	}
	return nil
}
