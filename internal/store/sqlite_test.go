package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
)

// A constant stream of commits must not grow the WAL without end: the checkpointer starts it over once it
// passes its restart size, and a clean close leaves it empty, with every row in the database.
func TestWALStaysBounded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const restartFrames = 64 // 256 KiB
	db, err := openSQLiteWAL(ctx, dir, restartFrames)
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
	for end := time.Now().Add(30 * checkpointEvery); time.Now().Before(end) || commits < 400; commits++ {
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
	// commits, a fraction of all. Without the restarts it would hold more than all the rows.
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
