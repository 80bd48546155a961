package store

import "context"

// NameProfile sets a profile's stage and display name (and its search key) as the profile processor stores
// them, for tests of reads that come before the processor derives them.
func (db *DB) NameProfile(ctx context.Context, id string, stage, name, nameKey string) error {
	_, err := db.write.ExecContext(ctx, `UPDATE profiles SET stage = $1, name = $2, name_key = $3 WHERE id = $4`, stage, name, nameKey, id)
	return err
}
