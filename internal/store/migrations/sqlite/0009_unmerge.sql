-- Unmerges (docs/identity.md): an admin's request to split a profile where one merge joined it, and its
-- outcome, kept as the audit of who split what. Carried out by the profile processor, between two batches.
CREATE TABLE unmerges (
	id INTEGER PRIMARY KEY,
	profile_id TEXT NOT NULL, -- the profile split (the one that held the merge)
	into_profile TEXT NOT NULL, -- the merge undone: which profile absorbed which
	from_profile TEXT NOT NULL,
	merge_seq INTEGER NOT NULL,
	via_type TEXT NOT NULL,
	via_value TEXT NOT NULL,
	requested_by TEXT NOT NULL,
	requested_at TIMESTAMP NOT NULL,
	done_at TIMESTAMP, -- NULL while pending
	result TEXT NOT NULL DEFAULT '' -- the profiles it left, as JSON, or why it failed
);
CREATE INDEX unmerges_pending ON unmerges (id) WHERE done_at IS NULL;

-- Profiles that an unmerge keeps apart: no later event merges them, or profiles that absorbed them, again.
-- Profile ids are derived from the log, so a pair names the same sides after any replay.
CREATE TABLE separations (
	profile_a TEXT NOT NULL, -- the smaller id
	profile_b TEXT NOT NULL,
	unmerge_id INTEGER NOT NULL,
	PRIMARY KEY (profile_a, profile_b)
);
