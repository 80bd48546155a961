-- What the profile processor derives for each profile beyond its identities (docs/identity.md), and the
-- settings it follows. Written by the processor only, in the transaction of the batch that derived it.

-- The lifecycle stage, the moments it rests on, and the display name for search.
ALTER TABLE profiles ADD COLUMN stage TEXT NOT NULL DEFAULT 'anonymous';
ALTER TABLE profiles ADD COLUMN activated_at TIMESTAMP; -- the first engagement event, as configured
ALTER TABLE profiles ADD COLUMN converted_at TIMESTAMP; -- the first conversion event, as configured
ALTER TABLE profiles ADD COLUMN name TEXT NOT NULL DEFAULT ''; -- from the traits, for lists
ALTER TABLE profiles ADD COLUMN name_key TEXT NOT NULL DEFAULT ''; -- name folded (lower case, no spaces) for prefix search
CREATE INDEX profiles_name_key ON profiles (name_key) WHERE name_key <> '';

-- Traits with their provenance: the source and the event that set the value, and the event's time.
CREATE TABLE profile_traits (
	profile_id TEXT NOT NULL,
	name TEXT NOT NULL,
	value TEXT NOT NULL, -- JSON
	source_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	at TIMESTAMP NOT NULL,
	PRIMARY KEY (profile_id, name)
);

-- Each profile's touches of each touchpoint, summed: for the 360° view, segments and attribution.
CREATE TABLE profile_touches (
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
);
CREATE INDEX profile_touches_touchpoint ON profile_touches (touchpoint_id);
CREATE INDEX profile_touches_campaign ON profile_touches (campaign_id);

-- Lifecycle stage changes, on the profile's timeline.
CREATE TABLE stage_changes (
	profile_id TEXT NOT NULL,
	seq INTEGER NOT NULL, -- the event that moved it
	from_stage TEXT NOT NULL,
	to_stage TEXT NOT NULL,
	at TIMESTAMP NOT NULL,
	PRIMARY KEY (profile_id, seq)
);

-- Settings edited in the console, one JSON document per name.
CREATE TABLE settings (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	updated_by TEXT NOT NULL
);
