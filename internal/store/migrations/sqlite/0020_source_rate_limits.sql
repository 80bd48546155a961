-- A source's own rate limit, in events per second on each node (0: the server's --source-rate), and the
-- events that its limit refused with a 429, counted every few seconds by each node.
ALTER TABLE sources ADD COLUMN rate_limit REAL NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN throttled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN last_throttled_at TIMESTAMP;
