package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists an engine's migrations in order. File names are NNNN_name.sql.
func Migrations(engine Engine) ([]Migration, error) {
	dir := path.Join("migrations", string(engine))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration file %s/%s is not named NNNN_name.sql", dir, e.Name())
		}
		body, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: read migration: %w", err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := range ms {
		if ms[i].Version != i+1 {
			return nil, fmt.Errorf("store: %s migrations must be numbered 1, 2, 3…; found %d at position %d", engine, ms[i].Version, i+1)
		}
	}
	return ms, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at TIMESTAMP NOT NULL
)`

// slowMigration is how long a migration runs before Migrate logs that it is running.
const slowMigration = 2 * time.Second

// migrationLock serialises migrations between processes on PostgreSQL (several nodes starting at once).
// SQLite needs none: the writer's BEGIN IMMEDIATE already serialises.
const migrationLockKey = 7_263_871_001

// Migrate applies the migrations not yet applied, each in its own transaction, and returns how many it applied.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	const op = "store.migrate"
	ms, err := Migrations(db.engine)
	if err != nil {
		return 0, err
	}
	pool := db.write
	if db.migrator != nil {
		if pool, err = db.migrator(); err != nil {
			return 0, db.wrap(op, err)
		}
		defer pool.Close()
	}
	conn, err := pool.Conn(ctx)
	if err != nil {
		return 0, db.wrap(op, err)
	}
	defer conn.Close()
	if db.engine == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
			return 0, db.wrap(op, err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
	}
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return 0, db.wrap(op, err)
	}
	applied := 0
	for _, m := range ms {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return applied, db.wrap(op, err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
			tx.Rollback()
			return applied, db.wrap(op, err)
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		// A migration that rebuilds tables takes minutes on a large store: say so rather than start in silence.
		began, name := time.Now(), fmt.Sprintf("%04d_%s", m.Version, m.Name)
		slow := time.AfterFunc(slowMigration, func() {
			db.logger.Info("applying a database migration: on a large store this takes minutes", "migration", name)
		})
		_, err = tx.ExecContext(ctx, m.SQL)
		if !slow.Stop() && err == nil {
			db.logger.Info("applied the database migration", "migration", name, "took", time.Since(began).Round(time.Millisecond))
		}
		if err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("%s: %s: %w", op, name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, db.clock.Now()); err != nil {
			tx.Rollback()
			return applied, db.wrap(op, err)
		}
		if err := tx.Commit(); err != nil {
			return applied, db.wrap(op, err)
		}
		applied++
	}
	if db.engine == SQLite {
		if err := db.moveEventLog(ctx, conn); err != nil {
			return applied, fmt.Errorf("%s: move the event log to %s: %w", op, logFile, err)
		}
	}
	return applied, nil
}

//go:embed eventlog_sqlite.sql
var eventLogSchema string

// The tables that moved from the state's file to the event log's, as moveEventLog copies them.
var eventLogTables = []struct{ name, columns, key string }{
	{"events", eventColumns + ", dedupe_key", "seq"},
	{"rejected_events", "id, source_id, received_at, reason, payload", "id"},
	{"source_stats", "source_id, accepted, duplicates, rejected, last_event_at", ""},
}

// moveCopyRows is how many rows one transaction of moveEventLog copies: a WAL's worth of pages that the
// next commit's automatic checkpoint copies on, rather than one transaction as large as the log. A variable
// for the tests.
var moveCopyRows int64 = 50_000

// moveEventLog gives the SQLite event log its file: it creates the log's tables in events.db and moves there
// the rows that stores made before the log had a file of its own kept in hearth.db (where numbered migrations
// still create them first). Each transaction writes one file: SQLite commits attached WAL files one after
// the other, so a transaction that copied and dropped could, if the process died between its two commits,
// leave the rows dropped and not copied. Copying again is harmless (by primary key), and the old tables are
// dropped only once the log holds as many rows.
func (db *DB) moveEventLog(ctx context.Context, conn *sql.Conn) error {
	inTx := func(fn func(tx *sql.Tx) error) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	exec := func(q string, args ...any) func(tx *sql.Tx) error {
		return func(tx *sql.Tx) error { _, err := tx.ExecContext(ctx, q, args...); return err }
	}
	if err := inTx(exec(eventLogSchema)); err != nil {
		return err
	}
	var old int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = 'events'`).Scan(&old); err != nil || old == 0 {
		return err
	}
	var events int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM main.events`).Scan(&events); err != nil {
		return err
	}
	if events > 0 { // a new store's tables are empty: nothing to tell
		db.logger.Info("moving the event log to its own file", "file", logFile, "events", events)
	}
	began := time.Now()
	for _, t := range eventLogTables {
		copyRows := `INSERT OR IGNORE INTO log.` + t.name + ` (` + t.columns + `) SELECT ` + t.columns + ` FROM main.` + t.name
		if t.key == "" {
			if err := inTx(exec(copyRows)); err != nil {
				return err
			}
			continue
		}
		var lo, hi sql.NullInt64
		if err := conn.QueryRowContext(ctx, `SELECT min(`+t.key+`), max(`+t.key+`) FROM main.`+t.name).Scan(&lo, &hi); err != nil {
			return err
		}
		for from := lo.Int64; lo.Valid && from <= hi.Int64; from += moveCopyRows {
			if err := inTx(exec(copyRows+` WHERE `+t.key+` >= ? AND `+t.key+` < ?`, from, from+moveCopyRows)); err != nil {
				return err
			}
		}
	}
	for _, t := range eventLogTables {
		var moved, left int64
		if err := conn.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM log.`+t.name+`), (SELECT count(*) FROM main.`+t.name+`)`).Scan(&moved, &left); err != nil {
			return err
		}
		if moved < left {
			return fmt.Errorf("%s holds %d rows of %s, the old table %d", logFile, moved, t.name, left)
		}
	}
	err := inTx(func(tx *sql.Tx) error {
		for _, t := range eventLogTables {
			if _, err := tx.ExecContext(ctx, `DROP TABLE main.`+t.name); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && events > 0 {
		db.logger.Info("moved the event log", "file", logFile, "events", events, "took", time.Since(began).Round(time.Millisecond))
	}
	return err
}
