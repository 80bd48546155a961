package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// A backup taken while events are appended and a consumer moves on is a store of its own: every event
// acknowledged before it began, no consumer ahead of its log, both files whole, the master key with them.
func TestBackupWhileServing(t *testing.T) {
	ctx := context.Background()
	dir, dest := t.TempDir(), filepath.Join(t.TempDir(), "backup")
	clock := &fixedClock{time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	db := openMigrated(t, dir, clock)
	defer db.Close()
	key := []byte("a master key for the test\n")
	if err := os.WriteFile(filepath.Join(dir, touchpoint.MasterKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	w := NewEventWriter(db, EventWriterOptions{})
	runCtx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() { writerDone <- w.Run(runCtx) }()
	acked := 0
	appendBatch := func() error {
		b := &collect.Batch{SourceID: "src", ReceivedAt: clock.Now()}
		for range 10 {
			acked++
			b.Events = append(b.Events, collect.Event{MessageID: fmt.Sprintf("m%d", acked), Type: "track", Name: "Tested", AnonymousID: "a1",
				Timestamp: clock.Now(), ReceivedAt: clock.Now(), Payload: []byte(`{"event":"Tested"}`)})
		}
		_, err := w.Append(ctx, b)
		return err
	}
	for range 100 {
		if err := appendBatch(); err != nil {
			t.Fatal(err)
		}
	}
	before := acked

	// While the backup runs: appends, and a consumer that keeps up with the log in the state.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var busyErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := appendBatch()
			if err == nil {
				var head int64
				if head, err = db.LogHead(ctx); err == nil {
					err = db.SetConsumerOffset(ctx, "follower", head)
				}
			}
			if err != nil {
				busyErr = err
				return
			}
		}
	}()
	var reports []string
	err := BackupSQLite(ctx, dir, dest, func(file string, written, size int64, done bool) {
		if done {
			reports = append(reports, file)
		}
	})
	close(stop)
	wg.Wait()
	stopWriter()
	if werr := <-writerDone; werr != nil || busyErr != nil {
		t.Fatalf("the writer: %v; appending during the backup: %v", werr, busyErr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(reports) != "[hearth.db events.db]" {
		t.Errorf("progress reported %v done, want the state, then the log", reports)
	}

	for _, f := range []string{stateFile, logFile, touchpoint.MasterKeyFile} {
		st, err := os.Stat(filepath.Join(dest, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s in the backup: %v, %v; want it, readable by its owner alone", f, st, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dest, touchpoint.MasterKeyFile)); !bytes.Equal(got, key) {
		t.Errorf("the backup's master key is %q", got)
	}
	copyDB := openMigrated(t, dest, clock)
	defer copyDB.Close()
	for _, schema := range []string{"main", "log"} {
		var check string
		if err := copyDB.read.QueryRowContext(ctx, `PRAGMA `+schema+`.integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Errorf("integrity of the backup's %s: %q, %v", schema, check, err)
		}
	}
	var events int
	if err := copyDB.read.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	head, err := copyDB.LogHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	followed, err := copyDB.ConsumerOffset(ctx, "follower")
	if err != nil {
		t.Fatal(err)
	}
	if events < before || events > acked || followed > head {
		t.Errorf("the backup holds %d events (log head %d, a consumer at %d); want %d to %d, the consumer not past the head",
			events, head, followed, before, acked)
	}

	// A folder in use is refused, as is one without a store.
	if err := BackupSQLite(ctx, dir, dest, nil); hearth.KindOf(err) != hearth.Invalid {
		t.Errorf("a backup into a folder that holds one: %v, want Invalid", err)
	}
	if err := BackupSQLite(ctx, t.TempDir(), filepath.Join(t.TempDir(), "b"), nil); hearth.KindOf(err) != hearth.Invalid {
		t.Errorf("a backup of a folder without a store: %v, want Invalid", err)
	}
}
