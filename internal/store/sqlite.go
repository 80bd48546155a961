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

	"github.com/hearth-cdp/hearth"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// openSQLite opens dir/hearth.db: WAL so that readers never block the writer, a busy timeout so that a second
// process (hearth apikey create beside a running server) waits rather than fails, foreign keys on.
func openSQLite(ctx context.Context, dir string) (*DB, error) {
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
	write, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite", dsn+"&mode=ro")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	read.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)*2))
	db := &DB{engine: SQLite, write: write, read: read, mapErr: mapSQLiteError, dialect: sqliteDialect, dedupe: &memoryDedupe{}}
	if err := write.PingContext(ctx); err != nil {
		db.Close()
		return nil, &hearth.Error{Kind: hearth.Unavailable, Op: "store.open", Msg: fmt.Sprintf("Cannot open the database in %s.", dir), Err: err}
	}
	return db, nil
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
