-- SQLite's 0014 stores the per-profile tables keyed by text or by several columns in their primary key's
-- B-tree (WITHOUT ROWID). PostgreSQL keeps every table in a heap beside its indexes: nothing to change here.
SELECT 1;
