package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
)

// nullTime turns a nullable column into a *time.Time in UTC.
func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

const userColumns = `id, email, name, role, password_hash, disabled, created_at, last_login_at`

func scanUser(row interface{ Scan(...any) error }) (auth.User, error) {
	var u auth.User
	var lastLogin sql.NullTime
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &u.Disabled, &u.CreatedAt, &lastLogin)
	u.CreatedAt = u.CreatedAt.UTC()
	u.LastLoginAt = nullTime(lastLogin)
	return u, err
}

// CountUsers counts console users.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, db.wrap("store.count_users", err)
}

const insertUser = `INSERT INTO users (id, email, name, role, password_hash, disabled, created_at, updated_at, last_login_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)`

// CreateUser stores a new console user. A taken email is a Conflict.
func (db *DB) CreateUser(ctx context.Context, u auth.User) error {
	_, err := db.write.ExecContext(ctx, insertUser, u.ID, u.Email, u.Name, u.Role, u.PasswordHash, u.Disabled, u.CreatedAt, u.LastLoginAt)
	return db.wrap("store.create_user", err)
}

// UserByID returns a console user.
func (db *DB) UserByID(ctx context.Context, id string) (auth.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err == sql.ErrNoRows {
		return u, notFound("store.user", "User")
	}
	return u, db.wrap("store.user", err)
}

// UserByEmail returns the console user with a (normalised) email address.
func (db *DB) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	if err == sql.ErrNoRows {
		return u, notFound("store.user_by_email", "User")
	}
	return u, db.wrap("store.user_by_email", err)
}

// ListUsers lists console users, oldest first.
func (db *DB) ListUsers(ctx context.Context) ([]auth.User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY id`)
	if err != nil {
		return nil, db.wrap("store.list_users", err)
	}
	defer rows.Close()
	var users []auth.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, db.wrap("store.list_users", err)
		}
		users = append(users, u)
	}
	return users, db.wrap("store.list_users", rows.Err())
}

// UpdateUser saves a user's name, role and disabled flag, unless that would leave no enabled admin (Conflict).
func (db *DB) UpdateUser(ctx context.Context, u auth.User) error {
	const op = "store.update_user"
	return db.inTx(ctx, op, func(tx *sql.Tx) error {
		// Lock the enabled admins (PostgreSQL; SQLite's writer is alone already), so that two admins who demote
		// each other at once cannot both succeed.
		rows, err := tx.QueryContext(ctx, `SELECT id FROM users WHERE role = 'admin' AND NOT disabled`+db.dialect.forUpdate)
		if err != nil {
			return db.wrap(op, err)
		}
		others := 0
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return db.wrap(op, err)
			}
			if id != u.ID {
				others++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return db.wrap(op, err)
		}
		if others == 0 && (u.Role != hearth.RoleAdmin || u.Disabled) {
			var wasAdmin bool
			err := tx.QueryRowContext(ctx, `SELECT role = 'admin' AND NOT disabled FROM users WHERE id = $1`, u.ID).Scan(&wasAdmin)
			if err != nil && err != sql.ErrNoRows {
				return db.wrap(op, err)
			}
			if wasAdmin {
				return &hearth.Error{Kind: hearth.Conflict, Op: op, Msg: "The last enabled admin must stay one."}
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET name = $2, role = $3, disabled = $4, updated_at = $5 WHERE id = $1`,
			u.ID, u.Name, u.Role, u.Disabled, db.clock.Now())
		if err != nil {
			return db.wrap(op, err)
		}
		return oneRow(res, op, "User")
	})
}

// SetPasswordHash replaces a user's password hash.
func (db *DB) SetPasswordHash(ctx context.Context, userID, hash string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, userID, hash, db.clock.Now())
	if err != nil {
		return db.wrap("store.set_password", err)
	}
	return oneRow(res, "store.set_password", "User")
}

// RecordLogin notes a user's latest sign-in.
func (db *DB) RecordLogin(ctx context.Context, userID string, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE users SET last_login_at = $2 WHERE id = $1`, userID, at)
	return db.wrap("store.record_login", err)
}

// CreateSession stores a new session.
func (db *DB) CreateSession(ctx context.Context, s auth.Session) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		s.TokenHash, s.UserID, s.CSRFToken, s.CreatedAt, s.ExpiresAt)
	return db.wrap("store.create_session", err)
}

// SessionByHash returns the session with a token hash, expired or not.
func (db *DB) SessionByHash(ctx context.Context, tokenHash string) (auth.Session, error) {
	var s auth.Session
	err := db.read.QueryRowContext(ctx, `SELECT token_hash, user_id, csrf_token, created_at, expires_at FROM sessions WHERE token_hash = $1`, tokenHash).
		Scan(&s.TokenHash, &s.UserID, &s.CSRFToken, &s.CreatedAt, &s.ExpiresAt)
	if err == sql.ErrNoRows {
		return s, notFound("store.session", "Session")
	}
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return s, db.wrap("store.session", err)
}

// DeleteSession ends a session; an unknown one is not an error.
func (db *DB) DeleteSession(ctx context.Context, tokenHash string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
	return db.wrap("store.delete_session", err)
}

// DeleteUserSessions ends all of a user's sessions but the one with exceptHash.
func (db *DB) DeleteUserSessions(ctx context.Context, userID, exceptHash string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2`, userID, exceptHash)
	return db.wrap("store.delete_user_sessions", err)
}

// DeleteExpiredSessions removes sessions that ended before now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now)
	return db.wrap("store.delete_expired_sessions", err)
}

const apiKeyColumns = `id, name, role, prefix, created_at, last_used_at, revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (auth.APIKey, error) {
	var k auth.APIKey
	var used, revoked sql.NullTime
	err := row.Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &used, &revoked)
	k.CreatedAt = k.CreatedAt.UTC()
	k.LastUsedAt, k.RevokedAt = nullTime(used), nullTime(revoked)
	return k, err
}

// CreateAPIKey stores a new API key by its hash.
func (db *DB) CreateAPIKey(ctx context.Context, k auth.APIKey, keyHash string) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO api_keys (id, name, role, key_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.Name, k.Role, keyHash, k.Prefix, k.CreatedAt)
	return db.wrap("store.create_api_key", err)
}

// APIKeyByHash returns the API key with a hash, revoked or not.
func (db *DB) APIKeyByHash(ctx context.Context, keyHash string) (auth.APIKey, error) {
	k, err := scanAPIKey(db.read.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE key_hash = $1`, keyHash))
	if err == sql.ErrNoRows {
		return k, notFound("store.api_key", "API key")
	}
	return k, db.wrap("store.api_key", err)
}

// ListAPIKeys lists API keys, newest first.
func (db *DB) ListAPIKeys(ctx context.Context) ([]auth.APIKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id DESC`)
	if err != nil {
		return nil, db.wrap("store.list_api_keys", err)
	}
	defer rows.Close()
	var keys []auth.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, db.wrap("store.list_api_keys", err)
		}
		keys = append(keys, k)
	}
	return keys, db.wrap("store.list_api_keys", rows.Err())
}

// RevokeAPIKey marks a key revoked; revoking twice keeps the first time.
func (db *DB) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, at)
	if err != nil {
		return db.wrap("store.revoke_api_key", err)
	}
	return oneRow(res, "store.revoke_api_key", "API key")
}

// TouchAPIKey notes a key's latest use.
func (db *DB) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1`, id, at)
	return db.wrap("store.touch_api_key", err)
}

// ReplaceSetupToken makes tokenHash the only setup token.
func (db *DB) ReplaceSetupToken(ctx context.Context, tokenHash string, created, expires time.Time) error {
	return db.inTx(ctx, "store.replace_setup_token", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM setup_tokens`); err != nil {
			return db.wrap("store.replace_setup_token", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)`, tokenHash, created, expires)
		return db.wrap("store.replace_setup_token", err)
	})
}

// SetupTokenValid reports whether a setup token exists, is unexpired, and no user exists yet.
func (db *DB) SetupTokenValid(ctx context.Context, tokenHash string, now time.Time) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM setup_tokens
		WHERE token_hash = $1 AND expires_at > $2 AND NOT EXISTS (SELECT 1 FROM users)`, tokenHash, now).Scan(&n)
	return n > 0, db.wrap("store.setup_token_valid", err)
}

// CreateFirstAdmin creates the first user with a valid setup token and spends the token, atomically.
func (db *DB) CreateFirstAdmin(ctx context.Context, tokenHash string, now time.Time, u auth.User) error {
	const op = "store.create_first_admin"
	return db.inTx(ctx, op, func(tx *sql.Tx) error {
		// Deleting the token first makes two concurrent set-ups race on one row: only one deletes it.
		res, err := tx.ExecContext(ctx, `DELETE FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2`, tokenHash, now)
		if err != nil {
			return db.wrap(op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &hearth.Error{Kind: hearth.NotFound, Op: op}
		}
		var users int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&users); err != nil {
			return db.wrap(op, err)
		}
		if users > 0 {
			return &hearth.Error{Kind: hearth.Conflict, Op: op}
		}
		_, err = tx.ExecContext(ctx, insertUser, u.ID, u.Email, u.Name, u.Role, u.PasswordHash, u.Disabled, u.CreatedAt, u.LastLoginAt)
		return db.wrap(op, err)
	})
}

// RecordLoginFailure notes a failed sign-in under each key.
func (db *DB) RecordLoginFailure(ctx context.Context, keyHashes []string, at time.Time) error {
	return db.inTx(ctx, "store.record_login_failure", func(tx *sql.Tx) error {
		for _, k := range keyHashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO login_failures (key_hash, at) VALUES ($1, $2)`, k, at); err != nil {
				return db.wrap("store.record_login_failure", err)
			}
		}
		return nil
	})
}

// LoginFailures counts a key's failures since a time and tells the oldest of them.
func (db *DB) LoginFailures(ctx context.Context, keyHash string, since time.Time) (int, time.Time, error) {
	const op = "store.login_failures"
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM login_failures WHERE key_hash = $1 AND at > $2`, keyHash, since).Scan(&n); err != nil || n == 0 {
		return n, time.Time{}, db.wrap(op, err)
	}
	// A separate query rather than min(at): SQLite's aggregates lose the column's declared type, and with it the
	// driver's conversion to time.Time.
	var oldest time.Time
	err := db.read.QueryRowContext(ctx, `SELECT at FROM login_failures WHERE key_hash = $1 AND at > $2 ORDER BY at LIMIT 1`, keyHash, since).Scan(&oldest)
	return n, oldest.UTC(), db.wrap(op, err)
}

// DeleteLoginFailures forgets failures older than before.
func (db *DB) DeleteLoginFailures(ctx context.Context, before time.Time) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM login_failures WHERE at <= $1`, before)
	return db.wrap("store.delete_login_failures", err)
}
