package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// Per-item code batches: rows that are both the batch a marketer sees and the durable queue of its rendering.
// A worker claims a batch with a lease (claimed_until) and an attempt number; every later write of that worker
// names the attempt, so a worker that lost its lease to another can no longer change the batch.

// codeBatchColumns are every column but the ZIP, which only a download reads.
const codeBatchColumns = `id, touchpoint_id, first_serial, count, key_id, format, size, margin, level, expires_at, status, done, error,
	attempts, attempt_base, zip_size, created_at, started_at, finished_at, claimed_until`

func scanCodeBatch(row interface{ Scan(...any) error }, extra ...any) (touchpoint.CodeBatch, error) {
	var b touchpoint.CodeBatch
	var expires, started, finished, claimed sql.NullTime
	dst := []any{&b.ID, &b.TouchpointID, &b.FirstSerial, &b.Count, &b.KeyID, &b.Format, &b.Options.Size, &b.Options.Margin, &b.Options.Level,
		&expires, &b.Status, &b.Done, &b.Error, &b.Attempts, &b.AttemptBase, &b.ZIPSize, &b.CreatedAt, &started, &finished, &claimed}
	err := row.Scan(append(dst, extra...)...)
	b.ExpiresAt, b.StartedAt, b.FinishedAt, b.ClaimedUntil = nullTime(expires), nullTime(started), nullTime(finished), nullTime(claimed)
	b.CreatedAt = b.CreatedAt.UTC()
	return b, err
}

// CreateCodeBatch reserves b.Count serial numbers of b's touchpoint and stores b as starting at the first of
// them, in one transaction: a batch that is not stored takes no serials. It returns the first serial.
func (db *DB) CreateCodeBatch(ctx context.Context, b touchpoint.CodeBatch) (int64, error) {
	const op = "store.create_code_batch"
	var first int64
	err := db.inTx(ctx, op, func(tx *sql.Tx) error {
		var last int64
		err := tx.QueryRowContext(ctx, `UPDATE touchpoints SET last_serial = last_serial + $2 WHERE id = $1 RETURNING last_serial`,
			b.TouchpointID, b.Count).Scan(&last)
		if err == sql.ErrNoRows {
			return notFound(op, "Touchpoint")
		}
		if err != nil {
			return db.wrap(op, err)
		}
		first = last - b.Count + 1
		_, err = tx.ExecContext(ctx, `INSERT INTO code_batches (id, touchpoint_id, first_serial, count, key_id, format, size, margin, level,
			expires_at, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			b.ID, b.TouchpointID, first, b.Count, int64(b.KeyID), b.Format, b.Options.Size, b.Options.Margin, b.Options.Level,
			nullable(b.ExpiresAt), b.Status, b.CreatedAt.UTC())
		return db.wrap(op, err)
	})
	return first, err
}

// CodeBatch returns a batch by id, without its ZIP.
func (db *DB) CodeBatch(ctx context.Context, id string) (touchpoint.CodeBatch, error) {
	b, err := scanCodeBatch(db.read.QueryRowContext(ctx, `SELECT `+codeBatchColumns+` FROM code_batches WHERE id = $1`, id))
	if err == sql.ErrNoRows {
		return b, notFound("store.code_batch", "Code batch")
	}
	return b, db.wrap("store.code_batch", err)
}

// ListCodeBatches lists a touchpoint's batches, newest first, without their ZIPs.
func (db *DB) ListCodeBatches(ctx context.Context, touchpointID string) ([]touchpoint.CodeBatch, error) {
	return queryAll(ctx, db, "store.list_code_batches", func(row interface{ Scan(...any) error }) (touchpoint.CodeBatch, error) {
		return scanCodeBatch(row)
	}, `SELECT `+codeBatchColumns+` FROM code_batches WHERE touchpoint_id = $1 ORDER BY id DESC`, touchpointID)
}

// CodeBatchZIP returns a batch and its ZIP, which is nil until the batch is done.
func (db *DB) CodeBatchZIP(ctx context.Context, id string) (touchpoint.CodeBatch, []byte, error) {
	var zip []byte
	b, err := scanCodeBatch(db.read.QueryRowContext(ctx, `SELECT `+codeBatchColumns+`, zip FROM code_batches WHERE id = $1`, id), &zip)
	if err == sql.ErrNoRows {
		return b, nil, notFound("store.code_batch_zip", "Code batch")
	}
	return b, zip, db.wrap("store.code_batch_zip", err)
}

// claimCodeBatchSQL claims the oldest batch that waits: pending, or running under a lease that ended before $1
// (its worker died). The outer condition repeats the inner one, so that of two claims that picked the same row
// only the first changes it. On PostgreSQL the inner SELECT also skips a row that another node is claiming at
// this instant, rather than queueing behind it; SQLite has one writer, so there is nothing to skip.
func claimCodeBatchSQL(lock string) string {
	const waiting = `status IN ('pending', 'running') AND (status = 'pending' OR claimed_until < $1)`
	return `UPDATE code_batches SET status = 'running', attempts = attempts + 1, done = 0, claimed_until = $2,
		started_at = COALESCE(started_at, $1)
	WHERE id = (SELECT id FROM code_batches WHERE ` + waiting + ` ORDER BY id LIMIT 1` + lock + `) AND ` + waiting + `
	RETURNING ` + codeBatchColumns
}

// ClaimCodeBatch takes the oldest batch that waits for a worker, marks it running with a lease until until,
// and counts the attempt (the returned batch's Attempts). ok is false when no batch waits.
func (db *DB) ClaimCodeBatch(ctx context.Context, now, until time.Time) (b touchpoint.CodeBatch, ok bool, err error) {
	const op = "store.claim_code_batch"
	b, err = scanCodeBatch(db.write.QueryRowContext(ctx, claimCodeBatchSQL(db.dialect.skipLocked), now.UTC(), until.UTC()))
	if err == sql.ErrNoRows {
		return b, false, nil
	}
	if err != nil {
		return b, false, db.wrap(op, err)
	}
	return b, true, nil
}

// lostClaim is the error of a write by a worker whose claim on a batch has passed to another (or ended).
func lostClaim(op, id string, attempt int) error {
	return &hearth.Error{Kind: hearth.Conflict, Op: op, Msg: "Another worker has taken over this batch.",
		Err: fmt.Errorf("code batch %s: attempt %d no longer holds the claim", id, attempt)}
}

// SaveCodeBatchProgress records how many codes of a running batch are done and extends its lease to until, if
// attempt still holds the claim; else it returns a Conflict error.
func (db *DB) SaveCodeBatchProgress(ctx context.Context, id string, attempt int, done int64, until time.Time) error {
	const op = "store.save_code_batch_progress"
	res, err := db.write.ExecContext(ctx, `UPDATE code_batches SET done = $3, claimed_until = $4 WHERE id = $1 AND attempts = $2 AND status = 'running'`,
		id, attempt, done, until.UTC())
	return db.claimed(res, err, op, id, attempt)
}

// FinishCodeBatch stores a running batch's ZIP and marks it done, if attempt still holds the claim; else it
// returns a Conflict error.
func (db *DB) FinishCodeBatch(ctx context.Context, id string, attempt int, zip []byte, at time.Time) error {
	const op = "store.finish_code_batch"
	res, err := db.write.ExecContext(ctx, `UPDATE code_batches SET status = 'done', done = count, zip = $3, zip_size = $4, finished_at = $5,
		claimed_until = NULL WHERE id = $1 AND attempts = $2 AND status = 'running'`, id, attempt, zip, int64(len(zip)), at.UTC())
	return db.claimed(res, err, op, id, attempt)
}

// FailCodeBatch marks a running batch failed with a message for its marketer, if attempt still holds the
// claim; else it returns a Conflict error.
func (db *DB) FailCodeBatch(ctx context.Context, id string, attempt int, msg string, at time.Time) error {
	const op = "store.fail_code_batch"
	res, err := db.write.ExecContext(ctx, `UPDATE code_batches SET status = 'failed', error = $3, finished_at = $4, claimed_until = NULL
		WHERE id = $1 AND attempts = $2 AND status = 'running'`, id, attempt, msg, at.UTC())
	return db.claimed(res, err, op, id, attempt)
}

// ReleaseCodeBatch gives a running batch back to the queue at once, rather than when its lease ends, if
// attempt still holds the claim; otherwise it does nothing. The attempt still counts.
func (db *DB) ReleaseCodeBatch(ctx context.Context, id string, attempt int) error {
	_, err := db.write.ExecContext(ctx, `UPDATE code_batches SET status = 'pending', done = 0, claimed_until = NULL
		WHERE id = $1 AND attempts = $2 AND status = 'running'`, id, attempt)
	return db.wrap("store.release_code_batch", err)
}

// ExpireCodeBatches deletes the ZIPs of the batches done before before, marking them expired, and returns
// how many. Their rows stay: the serials they hold, and the codes drawn again on request.
func (db *DB) ExpireCodeBatches(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.write.ExecContext(ctx, `UPDATE code_batches SET status = 'expired', zip = NULL WHERE status = 'done' AND finished_at < $1`,
		before.UTC())
	if err != nil {
		return 0, db.wrap("store.expire_code_batches", err)
	}
	n, err := res.RowsAffected()
	return n, db.wrap("store.expire_code_batches", err)
}

// RedrawCodeBatch queues an expired or failed batch to be drawn again and returns it; a Conflict error for a
// batch in another state. Its attempts keep counting (they fence workers' writes); the limit counts from here.
func (db *DB) RedrawCodeBatch(ctx context.Context, id string) (touchpoint.CodeBatch, error) {
	const op = "store.redraw_code_batch"
	b, err := scanCodeBatch(db.write.QueryRowContext(ctx, `UPDATE code_batches SET status = 'pending', done = 0, error = '',
		attempt_base = attempts, zip = NULL, zip_size = 0, started_at = NULL, finished_at = NULL
		WHERE id = $1 AND status IN ('expired', 'failed') RETURNING `+codeBatchColumns, id))
	if err != sql.ErrNoRows {
		return b, db.wrap(op, err)
	}
	if b, err = db.CodeBatch(ctx, id); err != nil {
		return b, err
	}
	return b, &hearth.Error{Kind: hearth.Conflict, Op: op, Msg: "Only codes whose ZIP expired, or that could not be made, can be drawn again."}
}

// claimed checks the result of a write that only the holder of a batch's claim may make.
func (db *DB) claimed(res sql.Result, err error, op, id string, attempt int) error {
	if err != nil {
		return db.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return lostClaim(op, id, attempt)
	}
	return nil
}
