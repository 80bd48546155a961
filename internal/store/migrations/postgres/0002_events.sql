-- The event log: every interaction, in the order it was durably appended. seq is the log's offset.
CREATE TABLE events (
	seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- A 64-bit hash of (source_id, message_id): a compact index for deduplication. Rows with the same key are
	-- compared in full, so a hash collision never drops an event.
	dedupe_key BIGINT NOT NULL,
	source_id TEXT NOT NULL,
	message_id TEXT NOT NULL,
	type TEXT NOT NULL,
	name TEXT NOT NULL,
	user_id TEXT NOT NULL,
	anonymous_id TEXT NOT NULL,
	timestamp TIMESTAMPTZ NOT NULL,
	received_at TIMESTAMPTZ NOT NULL,
	bot BOOLEAN NOT NULL,
	payload JSONB NOT NULL
);
CREATE INDEX events_dedupe ON events (dedupe_key);

-- Events refused at the door, with the reason, for the console's debugger. Kept for a short while only.
CREATE TABLE rejected_events (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	source_id TEXT NOT NULL,
	received_at TIMESTAMPTZ NOT NULL,
	reason TEXT NOT NULL,
	payload TEXT NOT NULL
);
CREATE INDEX rejected_events_source ON rejected_events (source_id, id);

-- Counts per source, updated with each append.
CREATE TABLE source_stats (
	source_id TEXT PRIMARY KEY,
	accepted BIGINT NOT NULL DEFAULT 0,
	duplicates BIGINT NOT NULL DEFAULT 0,
	rejected BIGINT NOT NULL DEFAULT 0,
	last_event_at TIMESTAMPTZ
);

-- How far each consumer of the event log has read.
CREATE TABLE consumer_offsets (
	name TEXT PRIMARY KEY,
	position BIGINT NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
