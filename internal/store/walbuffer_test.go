package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

// A transaction's WAL frames reach the file in a few large writes, and a commit that does not sync (as the
// derived writers commit) has every frame in the file when it returns: another connection reads the rows at
// once, and a copy of the database and its WAL taken then (as a crash would leave them) opens with all of
// them. A transaction larger than its connection's cache spills pages to the WAL and writes some of them again
// before it commits, and reads them back: the copy holds its final values.
func TestWALBuffer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	open := func(path, pragmas string) *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)"+pragmas)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	writer := open(path, "&_pragma=synchronous(NORMAL)&_pragma=cache_size(50)")
	reader := open(path, "")
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := writer.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`)

	check := func(step string, want int64) {
		t.Helper()
		var n, sum int64
		if err := reader.QueryRowContext(ctx, `SELECT count(*), sum(length(v) + id) FROM t`).Scan(&n, &sum); err != nil || n != 2000 || sum != want {
			t.Fatalf("%s: another connection reads %d rows, sum %d (%v); want 2000, %d", step, n, sum, err, want)
		}
		// The files as they are now, without the WAL index in shared memory: recovery reads the WAL itself.
		copyDir := t.TempDir()
		for _, name := range []string{"t.db", "t.db-wal"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(copyDir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		copied := open(filepath.Join(copyDir, "t.db"), "")
		if err := copied.QueryRowContext(ctx, `SELECT count(*), sum(length(v) + id) FROM t`).Scan(&n, &sum); err != nil || n != 2000 || sum != want {
			t.Fatalf("%s: a copy of the files holds %d rows, sum %d (%v); want 2000, %d", step, n, sum, err, want)
		}
		var ok string
		if err := copied.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
			t.Fatalf("%s: integrity of the copy: %q, %v", step, ok, err)
		}
	}

	asked, made := walWrites.asked.Load(), walWrites.made.Load()
	exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
		INSERT INTO t (id, v) SELECT i, randomblob(1000) FROM n`)
	asked, made = walWrites.asked.Load()-asked, walWrites.made.Load()-made
	if asked < 1000 || made*10 > asked {
		t.Errorf("SQLite asked for %d writes to the WAL and the files took %d: want at least 1,000 asked, a tenth of that made", asked, made)
	}
	check("after the insert", 2000*1000+2000*2001/2)

	// Every row made longer, in a transaction that spills: pages written to the WAL, read back, written again.
	tx, err := writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := tx.ExecContext(ctx, `UPDATE t SET v = randomblob(length(v) + 100)`); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	check("after the spilling update", 2000*1300+2000*2001/2)
}
