-- A profile's row no longer moves with every event it gets: last_seen counts its events up to seen_through,
-- and a read takes the later time of its events after that from the timeline (profile.Options.SeenRefresh).
-- Every stored last_seen counts every event attributed so far.
ALTER TABLE profiles ADD COLUMN seen_through BIGINT NOT NULL DEFAULT 0;
UPDATE profiles SET seen_through = (SELECT coalesce(max(seq), 0) FROM event_profiles);
