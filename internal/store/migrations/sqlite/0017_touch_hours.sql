-- Touches per touchpoint and hour (UTC), counted by the touch counter with touch_stats, for the touchpoint's
-- chart of touches over time. Its own consumer offset ("touch-hours") starts at 0, so the counter fills it
-- from the events the log holds, then counts both together.
CREATE TABLE touch_hours (
	touchpoint_id TEXT NOT NULL,
	hour TIMESTAMP NOT NULL, -- the hour's start
	touches INTEGER NOT NULL DEFAULT 0,
	bot_touches INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (touchpoint_id, hour)
) WITHOUT ROWID;
