-- Segments (docs/segments.md): groups of people kept current, their members, and the history of entering
-- and leaving. Written by the segment engine, and by the API for the definitions.

-- Each event's name (for track events; '' for the others) and time beside its profile: event conditions
-- count a profile's events by name and time without reading the log.
ALTER TABLE event_profiles ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE event_profiles ADD COLUMN at TIMESTAMP;
-- Row by row, each event found by its seq: UPDATE … FROM would first build the whole join in memory.
UPDATE event_profiles SET (name, at) = (SELECT CASE WHEN e.type = 'track' THEN e.name ELSE '' END, e.timestamp
	FROM events e WHERE e.seq = event_profiles.seq);
CREATE INDEX event_profiles_name ON event_profiles (name, at, profile_id) WHERE name <> '';

-- The indexes that conditions over every profile read: traits by name and value, touches, stages.
CREATE INDEX profile_traits_name ON profile_traits (name, value, profile_id);
-- Text compares as its JSON string; the few values written with escapes are found through this one.
CREATE INDEX profile_traits_escaped ON profile_traits (name, profile_id) WHERE instr(value, char(92)) > 0;
-- Touches by touchpoint, campaign and channel, each with the profile and the time of the last touch.
DROP INDEX profile_touches_touchpoint;
DROP INDEX profile_touches_campaign;
CREATE INDEX profile_touches_touchpoint ON profile_touches (touchpoint_id, last_at, profile_id);
CREATE INDEX profile_touches_campaign ON profile_touches (campaign_id, last_at, profile_id);
CREATE INDEX profile_touches_channel ON profile_touches (channel, last_at, profile_id);
CREATE INDEX profiles_stage ON profiles (stage, id);
-- The segment engine reads the merges of each span of the log it follows.
CREATE INDEX merges_seq ON merges (seq);

CREATE TABLE segments (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	description TEXT NOT NULL,
	kind TEXT NOT NULL, -- rule or list
	rule TEXT, -- JSON; NULL for a list segment
	list_items INTEGER NOT NULL DEFAULT 0,
	size INTEGER NOT NULL DEFAULT 0,
	version INTEGER NOT NULL, -- counts the changes of the rule or list
	evaluated_version INTEGER NOT NULL DEFAULT 0, -- the version the members were last fully evaluated for
	evaluated_offset INTEGER NOT NULL DEFAULT 0, -- the profile processor's offset when it was: events up to it need no following
	evaluated_at TIMESTAMP,
	windows_checked TIMESTAMP, -- when people leaving a time window were last looked for
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	created_by TEXT NOT NULL
);

CREATE TABLE segment_members (
	segment_id TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	since TIMESTAMP NOT NULL,
	PRIMARY KEY (segment_id, profile_id)
);
CREATE INDEX segment_members_profile ON segment_members (profile_id);
CREATE INDEX segment_members_since ON segment_members (segment_id, since, profile_id);

-- Entering and leaving, for the person's timeline.
CREATE TABLE segment_changes (
	id INTEGER PRIMARY KEY,
	segment_id TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	entered BOOLEAN NOT NULL,
	at TIMESTAMP NOT NULL
);
CREATE INDEX segment_changes_profile ON segment_changes (profile_id, at);
CREATE INDEX segment_changes_segment ON segment_changes (segment_id);

-- A segment's size at the end of each hour that changed it, for its growth chart.
CREATE TABLE segment_sizes (
	segment_id TEXT NOT NULL,
	hour TIMESTAMP NOT NULL,
	size INTEGER NOT NULL,
	PRIMARY KEY (segment_id, hour)
);

-- A list segment's email addresses and phone numbers, normalised as identities are.
CREATE TABLE segment_list_items (
	segment_id TEXT NOT NULL,
	type TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (segment_id, type, value)
);
