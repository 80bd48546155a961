-- The segment engine reads the events of the profiles a step re-evaluates by name and time (Facts): with
-- both in the index of a profile's events, an index-only scan reads them without visiting the table for
-- each event (as on SQLite, where the lookups were most of a step's reads).
DROP INDEX event_profiles_profile;
CREATE INDEX event_profiles_profile ON event_profiles (profile_id, seq) INCLUDE (name, at);
