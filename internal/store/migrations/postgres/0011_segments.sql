-- Segments (docs/segments.md): groups of people kept current, their members, and the history of entering
-- and leaving. Written by the segment engine, and by the API for the definitions.

-- Each event's name (for track events; '' for the others) and time beside its profile: event conditions
-- count a profile's events by name and time without reading the log.
ALTER TABLE event_profiles ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE event_profiles ADD COLUMN at TIMESTAMPTZ;
UPDATE event_profiles SET name = CASE WHEN e.type = 'track' THEN e.name ELSE '' END, at = e.timestamp
	FROM events e WHERE e.seq = event_profiles.seq;
CREATE INDEX event_profiles_name ON event_profiles (name, at, profile_id) WHERE name <> '';

-- The indexes that conditions over every profile read: traits by name and value, touches, stages.
-- Not with the value, as on SQLite: a long one would pass the size of an index entry.
CREATE INDEX profile_traits_name ON profile_traits (name, profile_id);
-- Text compares as its JSON string; the few values written with escapes are found through this one.
CREATE INDEX profile_traits_escaped ON profile_traits (name, profile_id) WHERE strpos(value, chr(92)) > 0;
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
	list_items BIGINT NOT NULL DEFAULT 0,
	size BIGINT NOT NULL DEFAULT 0,
	version BIGINT NOT NULL, -- counts the changes of the rule or list
	evaluated_version BIGINT NOT NULL DEFAULT 0, -- the version the members were last fully evaluated for
	evaluated_offset BIGINT NOT NULL DEFAULT 0, -- the profile processor's offset when it was: events up to it need no following
	evaluated_at TIMESTAMPTZ,
	windows_checked TIMESTAMPTZ, -- when people leaving a time window were last looked for
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	created_by TEXT NOT NULL
);

CREATE TABLE segment_members (
	segment_id TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	since TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (segment_id, profile_id)
);
CREATE INDEX segment_members_profile ON segment_members (profile_id);
CREATE INDEX segment_members_since ON segment_members (segment_id, since, profile_id);

-- Entering and leaving, for the person's timeline.
CREATE TABLE segment_changes (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	segment_id TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	entered BOOLEAN NOT NULL,
	at TIMESTAMPTZ NOT NULL
);
CREATE INDEX segment_changes_profile ON segment_changes (profile_id, at);
CREATE INDEX segment_changes_segment ON segment_changes (segment_id);

-- A segment's size at the end of each hour that changed it, for its growth chart.
CREATE TABLE segment_sizes (
	segment_id TEXT NOT NULL,
	hour TIMESTAMPTZ NOT NULL,
	size BIGINT NOT NULL,
	PRIMARY KEY (segment_id, hour)
);

-- A list segment's email addresses and phone numbers, normalised as identities are.
CREATE TABLE segment_list_items (
	segment_id TEXT NOT NULL,
	type TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (segment_id, type, value)
);
