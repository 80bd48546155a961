-- The segment engine reads the events of the profiles a step re-evaluates by name and time (Facts): with
-- both in the index of a profile's events, it reads them from the index alone, where each event cost a
-- lookup in the table (at 400,000 profiles, `hearth bench segments` spent 7.5 s of its steps' reads on
-- those lookups, 1.8 s after).
DROP INDEX event_profiles_profile;
CREATE INDEX event_profiles_profile ON event_profiles (profile_id, seq, name, at);
