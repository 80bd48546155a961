package store

import (
	"context"
	"database/sql"
)

// Setting returns a setting's JSON document, or nil when it was never set.
func (db *DB) Setting(ctx context.Context, name string) ([]byte, error) {
	var value string
	err := db.read.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&value)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, db.wrap("store.setting", err)
	}
	return []byte(value), nil
}

// PutSetting stores a setting's JSON document; by names who changed it.
func (db *DB) PutSetting(ctx context.Context, name string, value []byte, by string) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO settings (name, value, updated_at, updated_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		name, string(value), db.clock.Now(), by)
	return db.wrap("store.put_setting", err)
}
