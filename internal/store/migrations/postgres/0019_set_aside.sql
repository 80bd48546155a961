-- Events that a consumer of the log failed on alone, again and again, and set aside so as to read on. They stay
-- in the log; the reason is the error, which holds no personal data.
CREATE TABLE set_aside_events (
	consumer TEXT NOT NULL,
	seq BIGINT NOT NULL,
	reason TEXT NOT NULL,
	set_aside_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (consumer, seq)
);
