package store

import (
	"context"
	"database/sql"

	"github.com/hearth-cdp/hearth/internal/collect"
)

const sourceColumns = `id, name, kind, write_key, enabled, created_at, updated_at`

func scanSource(row interface{ Scan(...any) error }) (collect.Source, error) {
	var s collect.Source
	err := row.Scan(&s.ID, &s.Name, &s.Kind, &s.WriteKey, &s.Enabled, &s.CreatedAt, &s.UpdatedAt)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, err
}

// CreateSource stores a new source. A taken name is a Conflict.
func (db *DB) CreateSource(ctx context.Context, s collect.Source) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO sources (`+sourceColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		s.ID, s.Name, s.Kind, s.WriteKey, s.Enabled, s.CreatedAt, s.UpdatedAt)
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

// UpdateSource saves a source's name, write key and enabled flag.
func (db *DB) UpdateSource(ctx context.Context, s collect.Source) error {
	res, err := db.write.ExecContext(ctx, `UPDATE sources SET name = $2, write_key = $3, enabled = $4, updated_at = $5 WHERE id = $1`,
		s.ID, s.Name, s.WriteKey, s.Enabled, s.UpdatedAt)
	if err != nil {
		return db.wrap("store.update_source", err)
	}
	return oneRow(res, "store.update_source", "Source")
}
