package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/hearth-cdp/hearth"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// openSQLite opens dir/hearth.db: WAL so that readers never block the writer, a busy timeout so that a second
// process (hearth apikey create beside a running server) waits rather than fails, foreign keys on.
func openSQLite(ctx context.Context, dir string) (*DB, error) {
	return openSQLiteWAL(ctx, dir, walRestartFrames)
}

// openSQLiteWAL is openSQLite with the WAL's restart size in pages (tests make it small).
func openSQLiteWAL(ctx context.Context, dir string, restartFrames int) (*DB, error) {
	if dir == "" {
		return nil, hearth.Errorf(hearth.Invalid, "store.open", "no data folder given for the embedded database")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &hearth.Error{Kind: hearth.Invalid, Op: "store.open", Msg: fmt.Sprintf("Cannot create the data folder %s.", dir), Err: err}
	}
	path := filepath.Join(dir, "hearth.db")
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	// BEGIN IMMEDIATE on the writer: a write transaction takes the lock at its start, never by upgrading a read
	// lock later, which could fail with SQLITE_BUSY in the middle of the work.
	// The writer never checkpoints (wal_autocheckpoint 0): copying the WAL into the database would stall every
	// commit behind it. A checkpointer on its own connection does it beside the writer (see checkpoints).
	// It keeps 64 MiB of pages (SQLite's default is 2 MiB), which no other connection's writes discard: the
	// profile processor's batches insert at random places in large indexes (identities, event_profiles), and
	// with the default a batch on a store of 12 million events spilled dirty pages to the WAL in the middle of
	// its transaction. Statement journals stay in memory rather than in temporary files.
	write, err := sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(67108864)&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)")
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	// The readers keep SQLite's default 2 MiB of pages: a read that follows the writer's commits discards the
	// whole cache (freeing each page cost a system call in the SQLite port's allocator), so under ingestion a
	// larger one costs more than it saves.
	read, err := sql.Open("sqlite", dsn+"&mode=ro")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	read.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)*2))
	checkpoint, err := sql.Open("sqlite", dsn)
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	checkpoint.SetMaxOpenConns(1)
	db := &DB{engine: SQLite, write: write, read: read, graph: write, mapErr: mapSQLiteError, dialect: sqliteDialect, dedupe: &memoryDedupe{snapshot: filepath.Join(dir, dedupeSnapshotFile)}}
	if err := write.PingContext(ctx); err != nil {
		checkpoint.Close()
		db.Close()
		return nil, &hearth.Error{Kind: hearth.Unavailable, Op: "store.open", Msg: fmt.Sprintf("Cannot open the database in %s.", dir), Err: err}
	}
	db.checkpointer = newCheckpointer(checkpoint, write, restartFrames)
	return db, nil
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
	stop          chan struct{}
	done          chan struct{}
}

const (
	// checkpointEvery is how often the WAL is copied: often enough that little is left for a RESTART.
	checkpointEvery = 100 * time.Millisecond
	// walRestartFrames is the WAL's size, in pages, past which it is started over.
	walRestartFrames = 8192 // 32 MiB of 4 KiB pages
)

func newCheckpointer(conn, writer *sql.DB, restartFrames int) *checkpointer {
	c := &checkpointer{conn: conn, writer: writer, restartFrames: restartFrames, stop: make(chan struct{}), done: make(chan struct{})}
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
			c.checkpoint()
		}
	}
}

func (c *checkpointer) checkpoint() {
	// An error (the disk is full, the file is gone) shows in the writer's next commit as well; here it only
	// means the WAL grows until the next try.
	var busy, frames, copied int
	if c.conn.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied) != nil || frames < c.restartFrames {
		return
	}
	c.writer.Exec(`PRAGMA wal_checkpoint(RESTART)`)
}

// close stops the checkpointer and copies what is left, so that a clean shutdown leaves a small WAL. The writer
// is closed by then.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	_, err := c.conn.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
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
