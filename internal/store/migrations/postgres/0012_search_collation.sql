-- Profile search reads prefix ranges of identifier values and name keys, and pages through them with cursors
-- compared in Go: both in byte order (code point order in UTF-8). A database whose default collation is a
-- language's orders ':' before digits and '{' before letters (ICU), or ignores punctuation (glibc), so a range
-- such as ["+86139", "+8613:") would hold nothing there. These columns compare in byte order everywhere; their
-- indexes, the primary key of identities among them, are rebuilt with them.
ALTER TABLE identities ALTER COLUMN value TYPE TEXT COLLATE "C";
ALTER TABLE profiles ALTER COLUMN name_key TYPE TEXT COLLATE "C";
