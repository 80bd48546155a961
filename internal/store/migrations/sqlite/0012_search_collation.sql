-- PostgreSQL's 0012 makes the columns that profile search ranges over compare in byte order. SQLite's
-- columns already do (its default collation, BINARY): nothing to change here.
SELECT 1;
