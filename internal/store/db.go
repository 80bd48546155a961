// Package store holds all of Hearth's SQL, for both engines: SQLite (embedded default) and PostgreSQL.
// The domain packages declare the small interfaces they need; *DB satisfies them.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-cdp/hearth"
)

// Engine names a database engine.
type Engine string

const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Options says which database to open.
type Options struct {
	// URL selects PostgreSQL when it starts with postgres:// or postgresql://. Empty means SQLite in Dir.
	URL string
	// Dir is the data folder that holds the SQLite database (hearth.db, and the event log's events.db).
	Dir   string
	Clock hearth.Clock
	// Log hears of long work, such as a migration that moves data; nil discards.
	Log *slog.Logger
}

// DB is Hearth's store. On SQLite, writes go through one connection per file, the state's and the event log's
// (SQLite allows one writer at a time, and queuing in Go beats spinning on SQLITE_BUSY), while reads use a
// pool; on PostgreSQL all are one pool.
type DB struct {
	engine   Engine
	write    *sql.DB // everything but the event log
	eventLog *sql.DB // appends to the event log and deletes from it
	read     *sql.DB
	// graph is where the profile processor reads the identity graph: on SQLite the writer's connection,
	// whose page cache no other connection's commits discard (a reader's is discarded after each of them);
	// on PostgreSQL the pool.
	graph  *sql.DB
	clock  hearth.Clock
	logger *slog.Logger
	// dialect is what this engine does differently.
	dialect dialect
	// dedupe finds events already in the log.
	dedupe dedupeIndex
	// stmts holds prepared statements of hot paths, by key (see prepared).
	stmts sync.Map
	// checkpointers copy SQLite's WALs into the files; none on PostgreSQL.
	checkpointers []*checkpointer
	// migrator opens the pool that Migrate uses on SQLite: one connection that may write both files.
	migrator func() (*sql.DB, error)
	// mapErr turns an engine's driver error into a *hearth.Error where it has a meaning (unique violation).
	mapErr func(error) error
}

// discardLogger is a store's logger until Open is given one.
var discardLogger = slog.New(slog.DiscardHandler)

// IsPostgresURL reports whether url selects PostgreSQL.
func IsPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// Open opens the store. It does not migrate: call Migrate.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Clock == nil {
		opts.Clock = hearth.SystemClock{}
	}
	var (
		db  *DB
		err error
	)
	if IsPostgresURL(opts.URL) {
		db, err = openPostgres(ctx, opts.URL)
	} else if opts.URL != "" {
		return nil, hearth.Errorf(hearth.Invalid, "store.open", "unsupported database URL: use postgres://… for PostgreSQL, or leave it empty for the embedded SQLite")
	} else {
		db, err = openSQLite(ctx, opts.Dir)
	}
	if err != nil {
		return nil, err
	}
	db.clock = opts.Clock
	if opts.Log != nil {
		db.logger = opts.Log
	}
	return db, nil
}

// Engine tells which engine this store runs on.
func (db *DB) Engine() Engine { return db.engine }

// Close closes the connection pools.
func (db *DB) Close() error {
	db.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close(), db.eventLog.Close())
	}
	for _, c := range db.checkpointers { // last: with the writers closed, the final checkpoints can copy everything
		err = errors.Join(err, c.close())
	}
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return &hearth.Error{Kind: hearth.Unavailable, Op: "store.ping", Msg: "The database does not answer.", Err: err}
	}
	return nil
}

// wrap maps a driver error and adds the operation; nil stays nil.
func (db *DB) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &hearth.Error{Kind: hearth.NotFound, Op: op, Err: err}
	}
	if mapped := db.mapErr(err); mapped != nil {
		var he *hearth.Error
		if errors.As(mapped, &he) && he.Op == "" {
			he.Op = op
		}
		return mapped
	}
	return fmt.Errorf("%s: %w", op, err)
}

// inTx runs fn in a write transaction, committing when fn returns nil.
func (db *DB) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return db.runTx(op, func() (*sql.Tx, error) { return db.write.BeginTx(ctx, nil) }, fn)
}

// runTx begins a transaction with begin and runs fn in it, committing when fn returns nil. It rolls back when
// fn fails or panics: a transaction left open would hold SQLite's one writer for good.
func (db *DB) runTx(op string, begin func() (*sql.Tx, error), fn func(tx *sql.Tx) error) error {
	tx, err := begin()
	if err != nil {
		return db.wrap(op, err)
	}
	committing := false
	defer func() {
		if !committing {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committing = true
	return db.wrap(op, tx.Commit())
}

// derivedTx runs fn in a write transaction of what a consumer of the event log derives from it and commits
// with its offset (the profile processor's batches, the segment engine's steps). Its commit need not wait for
// the disk: a crash may lose the last such commits, never part of one, and the consumer then reads those events
// again and writes the same. On SQLite the commit skips its fsync (synchronous NORMAL: the WAL stays
// consistent, and the checkpointer syncs it before copying it on); on PostgreSQL it does not wait for
// the WAL flush. The event log's own appends keep waiting for the disk.
func (db *DB) derivedTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if db.engine == Postgres {
		return db.inTx(ctx, op, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				return db.wrap(op, err)
			}
			return fn(tx)
		})
	}
	// The setting cannot change inside a transaction: it is set on the one write connection around it.
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return db.wrap(op, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return db.wrap(op, err)
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); err != nil {
			// A connection left without its fsyncs must not append events: drop it.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return db.runTx(op, func() (*sql.Tx, error) { return conn.BeginTx(ctx, nil) }, fn)
}

// giveWay lets waiting goroutines run between the statements of the long work that derives state from the
// log (the profile processor's batches, the segment engine's steps). Go preempts a running goroutine only
// after 10 ms, so on two cores a request whose event writer had just been woken could wait that long for a
// core behind them; yielding between statements cut ingestion's p99 at 50,000 events/s by a quarter
// (BENCHMARKS.md, Ingestion). At most every giveWayEvery: a yield at each of a batch's thousands of
// statements cost the processor a tenth of its rate.
func giveWay() {
	now := time.Now().UnixNano()
	if last := lastGaveWay.Load(); now-last >= int64(giveWayEvery) && lastGaveWay.CompareAndSwap(last, now) {
		runtime.Gosched()
	}
}

const giveWayEvery = 100 * time.Microsecond

var lastGaveWay atomic.Int64 // when giveWay last yielded, in Unix nanoseconds

// notFound returns a NotFound error with a user-facing message.
func notFound(op, what string) error {
	return &hearth.Error{Kind: hearth.NotFound, Op: op, Msg: what + " not found."}
}

// oneRow checks that an UPDATE or DELETE touched a row.
func oneRow(res sql.Result, op, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return notFound(op, what)
	}
	return nil
}
