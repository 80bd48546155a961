-- Campaigns, touchpoints and the keys of their tokens.

CREATE TABLE campaigns (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	goal TEXT NOT NULL,
	starts_at TIMESTAMP,
	ends_at TIMESTAMP,
	status TEXT NOT NULL,
	fallback_url TEXT NOT NULL,
	utm_source TEXT NOT NULL,
	utm_medium TEXT NOT NULL,
	utm_campaign TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);

-- number is what tokens name: short, so that tokens are.
CREATE TABLE touchpoints (
	number INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	channel TEXT NOT NULL,
	destination_url TEXT NOT NULL,
	campaign_id TEXT REFERENCES campaigns (id),
	location TEXT NOT NULL,
	owner TEXT NOT NULL,
	status TEXT NOT NULL,
	last_serial INTEGER NOT NULL DEFAULT 0,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
CREATE INDEX touchpoints_campaign ON touchpoints (campaign_id);

CREATE TABLE token_revocations (
	id TEXT PRIMARY KEY,
	touchpoint_id TEXT NOT NULL REFERENCES touchpoints (id),
	kind TEXT NOT NULL,
	token TEXT NOT NULL,
	serial_from INTEGER NOT NULL,
	serial_to INTEGER NOT NULL,
	reason TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX token_revocations_touchpoint ON token_revocations (touchpoint_id);

-- The secrets are sealed with the master key (AES-256-GCM), never stored in the clear.
CREATE TABLE signing_keys (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	sealed BLOB NOT NULL,
	created_at TIMESTAMP NOT NULL,
	retired_at TIMESTAMP
);

-- Touches per touchpoint, counted from the event log by a consumer (its offset is in consumer_offsets).
CREATE TABLE touch_stats (
	touchpoint_id TEXT PRIMARY KEY,
	touches INTEGER NOT NULL DEFAULT 0,
	bot_touches INTEGER NOT NULL DEFAULT 0,
	last_touch_at TIMESTAMP
);
