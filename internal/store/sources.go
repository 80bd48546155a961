package store

import (
	"context"
	"database/sql"
	"maps"
	"slices"
	"time"

	"github.com/hearth-cdp/hearth/internal/collect"
)

const sourceColumns = `id, name, kind, write_key, enabled, rate_limit, created_at, updated_at, throttled, last_throttled_at`

func scanSource(row interface{ Scan(...any) error }) (collect.Source, error) {
	var s collect.Source
	var throttledAt sql.NullTime
	err := row.Scan(&s.ID, &s.Name, &s.Kind, &s.WriteKey, &s.Enabled, &s.RateLimit, &s.CreatedAt, &s.UpdatedAt, &s.Throttled, &throttledAt)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	if throttledAt.Valid {
		at := throttledAt.Time.UTC()
		s.LastThrottledAt = &at
	}
	return s, err
}

// CreateSource stores a new source. A taken name is a Conflict.
func (db *DB) CreateSource(ctx context.Context, s collect.Source) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO sources (id, name, kind, write_key, enabled, rate_limit, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		s.ID, s.Name, s.Kind, s.WriteKey, s.Enabled, s.RateLimit, s.CreatedAt, s.UpdatedAt)
	return db.wrap("store.create_source", err)
}

// Source returns a source by id.
func (db *DB) Source(ctx context.Context, id string) (collect.Source, error) {
	s, err := scanSource(db.read.QueryRowContext(ctx, `SELECT `+sourceColumns+` FROM sources WHERE id = $1`, id))
	if err == sql.ErrNoRows {
		return s, notFound("store.source", "Source")
	}
	return s, db.wrap("store.source", err)
}

// SourceByWriteKey returns the source with a write key.
func (db *DB) SourceByWriteKey(ctx context.Context, writeKey string) (collect.Source, error) {
	s, err := scanSource(db.read.QueryRowContext(ctx, `SELECT `+sourceColumns+` FROM sources WHERE write_key = $1`, writeKey))
	if err == sql.ErrNoRows {
		return s, notFound("store.source_by_write_key", "Source")
	}
	return s, db.wrap("store.source_by_write_key", err)
}

// ListSources lists sources, newest first, the built-in one last.
func (db *DB) ListSources(ctx context.Context) ([]collect.Source, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+sourceColumns+` FROM sources ORDER BY kind = 'touch', id DESC`)
	if err != nil {
		return nil, db.wrap("store.list_sources", err)
	}
	defer rows.Close()
	var out []collect.Source
	for rows.Next() {
		s, err := scanSource(rows)
		if err != nil {
			return nil, db.wrap("store.list_sources", err)
		}
		out = append(out, s)
	}
	return out, db.wrap("store.list_sources", rows.Err())
}

// UpdateSource saves a source's name, write key, enabled flag and rate limit; not its throttled count, which
// AddThrottled adds to meanwhile.
func (db *DB) UpdateSource(ctx context.Context, s collect.Source) error {
	res, err := db.write.ExecContext(ctx, `UPDATE sources SET name = $2, write_key = $3, enabled = $4, rate_limit = $5, updated_at = $6 WHERE id = $1`,
		s.ID, s.Name, s.WriteKey, s.Enabled, s.RateLimit, s.UpdatedAt)
	if err != nil {
		return db.wrap("store.update_source", err)
	}
	return oneRow(res, "store.update_source", "Source")
}

// AddThrottled adds to sources' counts of events their rate limit refused, as of at. A source deleted meanwhile
// is skipped.
func (db *DB) AddThrottled(ctx context.Context, events map[string]int64, at time.Time) error {
	const op = "store.add_throttled"
	return db.runTx(op, func() (*sql.Tx, error) { return db.write.BeginTx(ctx, nil) }, func(tx *sql.Tx) error {
		for _, id := range slices.Sorted(maps.Keys(events)) { // in one order, so that two nodes' flushes never deadlock
			if _, err := tx.ExecContext(ctx, `UPDATE sources SET throttled = throttled + $2, last_throttled_at = $3 WHERE id = $1`,
				id, events[id], at.UTC().Round(0)); err != nil {
				return db.wrap(op, err)
			}
		}
		return nil
	})
}
