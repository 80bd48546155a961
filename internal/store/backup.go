package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// BackupProgress is told, every second or so while a file is written and once when it is done, how far a
// backup has come: the file, the bytes written of it so far and the size of its source.
type BackupProgress func(file string, written, size int64, done bool)

// BackupSQLite copies the embedded store in the data folder dir into dest, a folder that does not exist yet or
// is empty, while Hearth may go on serving: each database file as one consistent snapshot (SQLite's VACUUM
// INTO, which also leaves out free pages), and the master key file if the folder holds it. dest is then a data
// folder of its own: serve it to restore.
//
// The state (hearth.db) is copied before the event log (events.db): the log only grows, so the copy of the log
// holds every event the copy of the state has read, and the profile processor of a restored store reads on
// from its offset. The deduplication index is left out; a start without it reads the log's last window again.
func BackupSQLite(ctx context.Context, dir, dest string, progress BackupProgress) error {
	const op = "store.backup"
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		return &hearth.Error{Kind: hearth.Invalid, Op: op, Msg: fmt.Sprintf("There is no Hearth store in %s.", dir), Err: err}
	}
	if err := emptyFolder(dest); err != nil {
		return &hearth.Error{Kind: hearth.Invalid, Op: op, Msg: fmt.Sprintf("The backup needs a new or empty folder; %s is not one.", dest), Err: err}
	}
	for _, file := range []string{stateFile, logFile} {
		if err := snapshot(ctx, filepath.Join(dir, file), filepath.Join(dest, file), progress); err != nil {
			return &hearth.Error{Kind: hearth.Unavailable, Op: op, Msg: fmt.Sprintf("Cannot copy %s.", file), Err: err}
		}
	}
	// Without the master key the copy's signing keys and WeChat secrets cannot be unsealed. A key given in the
	// environment is not in the folder: the operator keeps it.
	if err := copyFile(filepath.Join(dir, touchpoint.MasterKeyFile), filepath.Join(dest, touchpoint.MasterKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &hearth.Error{Kind: hearth.Unavailable, Op: op, Msg: "Cannot copy the master key.", Err: err}
	}
	return nil
}

// emptyFolder makes dir, or checks that it is empty.
func emptyFolder(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s holds %d entries", dir, len(entries))
	}
	return nil
}

// snapshot writes a consistent copy of the SQLite database at src to dst, in one read transaction of src, which
// writers go on beside (its WAL cannot start over until the copy is done).
func snapshot(ctx context.Context, src, dst string, progress BackupProgress) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma="+fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	if err != nil {
		return err
	}
	defer db.Close()
	done := make(chan struct{})
	var reporting sync.WaitGroup
	if progress != nil {
		reporting.Add(1)
		go func() {
			defer reporting.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if st, err := os.Stat(dst); err == nil {
						progress(filepath.Base(dst), st.Size(), info.Size(), false)
					}
				}
			}
		}()
	}
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, dst)
	close(done)
	reporting.Wait() // no line of progress after the last
	if err != nil {
		os.Remove(dst)
		return err
	}
	if err := os.Chmod(dst, 0o600); err != nil { // personal data: the owner's alone, as the data folder is
		return err
	}
	if err := syncFile(dst); err != nil {
		return err
	}
	if progress != nil {
		st, err := os.Stat(dst)
		if err != nil {
			return err
		}
		progress(filepath.Base(dst), st.Size(), info.Size(), true)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
