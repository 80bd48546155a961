-- Profiles: the people identity resolution found in the event log (docs/identity.md). Written by the profile
-- processor only, a batch of the log and its consumer offset in one transaction.
CREATE TABLE profiles (
	id TEXT PRIMARY KEY, -- derived from first_seq, so that replaying the log gives the same ids
	first_seq BIGINT NOT NULL, -- the event that made the profile
	first_seen TIMESTAMPTZ NOT NULL,
	last_seen TIMESTAMPTZ NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

-- The identity graph: which profile holds each identifier.
CREATE TABLE identities (
	type TEXT NOT NULL,
	value TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	first_seq BIGINT NOT NULL, -- the event that brought it in
	PRIMARY KEY (type, value)
);
CREATE INDEX identities_profile ON identities (profile_id);

-- The timeline: the profile each event is attributed to.
CREATE TABLE event_profiles (
	seq BIGINT PRIMARY KEY,
	profile_id TEXT NOT NULL
);
CREATE INDEX event_profiles_profile ON event_profiles (profile_id, seq);

-- Every merge: which event, by which of its identifiers, merged which profile into which.
CREATE TABLE merges (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	seq BIGINT NOT NULL,
	into_profile TEXT NOT NULL,
	from_profile TEXT NOT NULL,
	via_type TEXT NOT NULL,
	via_value TEXT NOT NULL,
	at TIMESTAMPTZ NOT NULL
);
CREATE INDEX merges_into ON merges (into_profile, seq);

-- Identifiers an event carried that resolution kept out of the graph, and why.
CREATE TABLE left_out (
	seq BIGINT NOT NULL,
	type TEXT NOT NULL,
	value TEXT NOT NULL,
	reason TEXT NOT NULL,
	PRIMARY KEY (seq, type, value)
);
