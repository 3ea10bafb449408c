-- The audit chain is keyed from here on: an entry's hash is HMAC-SHA256 under a key derived from
-- the key file, and the head carries a seal made with that key over its number and hash (and the
-- chain's version), so that neither can be recomputed or set back from the database alone
-- (docs/security.md, "Audit log integrity"). Empty until the server first seals the head.
ALTER TABLE audit_head ADD COLUMN seal TEXT NOT NULL DEFAULT '';

-- Entries written before were chained with plain SHA-256. This table asks the server to check
-- them against that chain and rehash them with the key, once: it drops the table in the same
-- transaction. A table rather than a row, so that asking again takes creating a table, not just
-- inserting a row; and a server whose head is sealed already refuses to do it again.
CREATE TABLE audit_chain_unkeyed (id INTEGER PRIMARY KEY);
