-- Per-item code batches: N serial codes of one touchpoint, rendered by a worker into a ZIP of QR images and a
-- manifest. The serial range and the signing key are fixed when the batch is created, so that rendering it
-- again (after a node died mid-way) makes the same codes.
CREATE TABLE code_batches (
	id TEXT PRIMARY KEY,
	touchpoint_id TEXT NOT NULL REFERENCES touchpoints (id),
	first_serial INTEGER NOT NULL,
	count INTEGER NOT NULL,
	key_id INTEGER NOT NULL,
	format TEXT NOT NULL,
	size INTEGER NOT NULL,
	margin INTEGER NOT NULL,
	level TEXT NOT NULL,
	expires_at TIMESTAMP,
	-- pending, running, done or failed
	status TEXT NOT NULL,
	-- codes rendered so far, saved a few times a second while running
	done INTEGER NOT NULL DEFAULT 0,
	-- why it failed, in words a marketer can read
	error TEXT NOT NULL DEFAULT '',
	-- how many times a worker claimed it; the claim's fencing token, and a limit for batches that keep dying
	attempts INTEGER NOT NULL DEFAULT 0,
	zip_size INTEGER NOT NULL DEFAULT 0,
	created_at TIMESTAMP NOT NULL,
	started_at TIMESTAMP,
	finished_at TIMESTAMP,
	-- the lease of the worker that runs it: another may take it over once this has passed
	claimed_until TIMESTAMP,
	-- last, so that reading the other columns never reads the ZIP's pages
	zip BLOB
);
CREATE INDEX code_batches_touchpoint ON code_batches (touchpoint_id, id);
CREATE INDEX code_batches_waiting ON code_batches (id) WHERE status IN ('pending', 'running');
