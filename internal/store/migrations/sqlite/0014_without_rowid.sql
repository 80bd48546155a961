-- The per-profile tables keyed by text or by several columns become WITHOUT ROWID tables: their rows live in
-- the primary key's B-tree, where a rowid table kept them in a second one, found through an index on the key.
-- Looking a row up by its key then descends one B-tree instead of two, an upsert writes one instead of two,
-- and a secondary index carries the key's columns (identities_profile holds each identifier's type, so the
-- profile processor's count of a profile's identifiers by type reads that index alone). At 2.5 million
-- profiles those second descents were half of what the processor read for each batch (BENCHMARKS.md).
-- profiles keeps its rowid: its rows (about 240 bytes) are too wide for a B-tree whose inner pages would hold
-- whole rows. Each table is copied in its key's order, so the copy appends.

CREATE TABLE identities_new (
	type TEXT NOT NULL,
	value TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	first_seq INTEGER NOT NULL, -- the event that brought it in
	PRIMARY KEY (type, value)
) WITHOUT ROWID;
INSERT INTO identities_new SELECT type, value, profile_id, first_seq FROM identities ORDER BY type, value;
DROP TABLE identities;
ALTER TABLE identities_new RENAME TO identities;
CREATE INDEX identities_profile ON identities (profile_id);

CREATE TABLE profile_traits_new (
	profile_id TEXT NOT NULL,
	name TEXT NOT NULL,
	value TEXT NOT NULL, -- JSON
	source_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	at TIMESTAMP NOT NULL,
	PRIMARY KEY (profile_id, name)
) WITHOUT ROWID;
INSERT INTO profile_traits_new SELECT profile_id, name, value, source_id, seq, at FROM profile_traits ORDER BY profile_id, name;
DROP TABLE profile_traits;
ALTER TABLE profile_traits_new RENAME TO profile_traits;
CREATE INDEX profile_traits_name ON profile_traits (name, value, profile_id);
CREATE INDEX profile_traits_escaped ON profile_traits (name, profile_id) WHERE instr(value, char(92)) > 0;

CREATE TABLE profile_touches_new (
	profile_id TEXT NOT NULL,
	touchpoint_id TEXT NOT NULL,
	touchpoint TEXT NOT NULL, -- its name when last touched
	channel TEXT NOT NULL,
	campaign_id TEXT NOT NULL,
	count INTEGER NOT NULL,
	first_seq INTEGER NOT NULL,
	first_at TIMESTAMP NOT NULL,
	last_seq INTEGER NOT NULL,
	last_at TIMESTAMP NOT NULL,
	PRIMARY KEY (profile_id, touchpoint_id)
) WITHOUT ROWID;
INSERT INTO profile_touches_new SELECT profile_id, touchpoint_id, touchpoint, channel, campaign_id, count, first_seq, first_at, last_seq, last_at
	FROM profile_touches ORDER BY profile_id, touchpoint_id;
DROP TABLE profile_touches;
ALTER TABLE profile_touches_new RENAME TO profile_touches;
CREATE INDEX profile_touches_touchpoint ON profile_touches (touchpoint_id, last_at, profile_id);
CREATE INDEX profile_touches_campaign ON profile_touches (campaign_id, last_at, profile_id);
CREATE INDEX profile_touches_channel ON profile_touches (channel, last_at, profile_id);

CREATE TABLE stage_changes_new (
	profile_id TEXT NOT NULL,
	seq INTEGER NOT NULL, -- the event that moved it
	from_stage TEXT NOT NULL,
	to_stage TEXT NOT NULL,
	at TIMESTAMP NOT NULL,
	PRIMARY KEY (profile_id, seq)
) WITHOUT ROWID;
INSERT INTO stage_changes_new SELECT profile_id, seq, from_stage, to_stage, at FROM stage_changes ORDER BY profile_id, seq;
DROP TABLE stage_changes;
ALTER TABLE stage_changes_new RENAME TO stage_changes;

CREATE TABLE left_out_new (
	seq INTEGER NOT NULL,
	type TEXT NOT NULL,
	value TEXT NOT NULL,
	reason TEXT NOT NULL,
	PRIMARY KEY (seq, type, value)
) WITHOUT ROWID;
INSERT INTO left_out_new SELECT seq, type, value, reason FROM left_out ORDER BY seq, type, value;
DROP TABLE left_out;
ALTER TABLE left_out_new RENAME TO left_out;

CREATE TABLE separations_new (
	profile_a TEXT NOT NULL, -- the smaller id
	profile_b TEXT NOT NULL,
	unmerge_id INTEGER NOT NULL,
	PRIMARY KEY (profile_a, profile_b)
) WITHOUT ROWID;
INSERT INTO separations_new SELECT profile_a, profile_b, unmerge_id FROM separations ORDER BY profile_a, profile_b;
DROP TABLE separations;
ALTER TABLE separations_new RENAME TO separations;

CREATE TABLE segment_members_new (
	segment_id TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	since TIMESTAMP NOT NULL,
	PRIMARY KEY (segment_id, profile_id)
) WITHOUT ROWID;
INSERT INTO segment_members_new SELECT segment_id, profile_id, since FROM segment_members ORDER BY segment_id, profile_id;
DROP TABLE segment_members;
ALTER TABLE segment_members_new RENAME TO segment_members;
CREATE INDEX segment_members_profile ON segment_members (profile_id);
CREATE INDEX segment_members_since ON segment_members (segment_id, since, profile_id);

CREATE TABLE segment_sizes_new (
	segment_id TEXT NOT NULL,
	hour TIMESTAMP NOT NULL,
	size INTEGER NOT NULL,
	PRIMARY KEY (segment_id, hour)
) WITHOUT ROWID;
INSERT INTO segment_sizes_new SELECT segment_id, hour, size FROM segment_sizes ORDER BY segment_id, hour;
DROP TABLE segment_sizes;
ALTER TABLE segment_sizes_new RENAME TO segment_sizes;

CREATE TABLE segment_list_items_new (
	segment_id TEXT NOT NULL,
	type TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (segment_id, type, value)
) WITHOUT ROWID;
INSERT INTO segment_list_items_new SELECT segment_id, type, value FROM segment_list_items ORDER BY segment_id, type, value;
DROP TABLE segment_list_items;
ALTER TABLE segment_list_items_new RENAME TO segment_list_items;
