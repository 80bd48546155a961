-- Console users, their sessions, API keys, the one-time setup link, login throttling, and sources.

CREATE TABLE users (
	id TEXT PRIMARY KEY,
	email TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	role TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	disabled BOOLEAN NOT NULL DEFAULT false,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	last_login_at TIMESTAMP
);

CREATE TABLE sessions (
	token_hash TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf_token TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_keys (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	role TEXT NOT NULL,
	key_hash TEXT NOT NULL UNIQUE,
	prefix TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	last_used_at TIMESTAMP,
	revoked_at TIMESTAMP
);

CREATE TABLE setup_tokens (
	token_hash TEXT PRIMARY KEY,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL
);

-- Failed sign-ins, keyed by a hash of the email address or of the client address: enough to throttle
-- guessing across every node, without keeping who tried.
CREATE TABLE login_failures (
	key_hash TEXT NOT NULL,
	at TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (key_hash, at);

CREATE TABLE sources (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	write_key TEXT NOT NULL UNIQUE,
	enabled BOOLEAN NOT NULL DEFAULT true,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
