-- The audit log's chains (see the PostgreSQL migration of the same number). SQLite has one
-- writer, so it keeps one chain, chain 1; the columns keep both databases' SQL the same.
ALTER TABLE audit_log ADD COLUMN chain INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_head ADD COLUMN entry INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_head ADD COLUMN started_at INTEGER NOT NULL DEFAULT 0;
UPDATE audit_head SET entry = seq;

CREATE TABLE audit_index_chains (
    chain INTEGER PRIMARY KEY,
    upto INTEGER NOT NULL
);
INSERT INTO audit_index_chains (chain, upto) SELECT 1, upto FROM audit_user_index_state;
DROP TABLE audit_user_index_state;
