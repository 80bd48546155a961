-- The event log's file on SQLite (events.db, attached as log): the tables that ingestion writes. Its one
-- writer is the event writer's; everything else reads it. Changes to these tables go here, with IF NOT
-- EXISTS, or in a numbered migration that names them log.events, log.rejected_events, log.source_stats.

-- Every interaction, in the order it was durably appended. seq is the log's offset.
CREATE TABLE IF NOT EXISTS log.events (
	seq INTEGER PRIMARY KEY,
	-- A 64-bit hash of (source_id, message_id), for deduplication. Rows with the same key are
	-- compared in full, so a hash collision never drops an event.
	dedupe_key INTEGER NOT NULL,
	source_id TEXT NOT NULL,
	message_id TEXT NOT NULL,
	type TEXT NOT NULL,
	name TEXT NOT NULL,
	user_id TEXT NOT NULL,
	anonymous_id TEXT NOT NULL,
	timestamp TIMESTAMP NOT NULL,
	received_at TIMESTAMP NOT NULL,
	bot BOOLEAN NOT NULL,
	payload TEXT NOT NULL
);
-- No index on dedupe_key: SQLite deduplicates with an index in memory, derived from this table (dedupe.go).
-- The touch counter reads only the log's touch events: a partial index finds them without reading the
-- others, and costs nothing on the inserts of the rest.
CREATE INDEX IF NOT EXISTS log.events_touches ON events (seq) WHERE name = 'Touch';

-- Events refused at the door, with the reason, for the console's debugger. Kept for a short while only.
CREATE TABLE IF NOT EXISTS log.rejected_events (
	id INTEGER PRIMARY KEY,
	source_id TEXT NOT NULL,
	received_at TIMESTAMP NOT NULL,
	reason TEXT NOT NULL,
	payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log.rejected_events_source ON rejected_events (source_id, id);

-- Counts per source, updated with each append.
CREATE TABLE IF NOT EXISTS log.source_stats (
	source_id TEXT PRIMARY KEY,
	accepted INTEGER NOT NULL DEFAULT 0,
	duplicates INTEGER NOT NULL DEFAULT 0,
	rejected INTEGER NOT NULL DEFAULT 0,
	last_event_at TIMESTAMP
);
