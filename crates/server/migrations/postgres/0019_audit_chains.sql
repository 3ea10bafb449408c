-- One audit hash chain per writer (per node and writer task) instead of one for all: appending
-- no longer locks a row every node shares, so writers commit in parallel (docs/operations.md,
-- "Audit chains"). Chain 1 holds every entry written before; a writer claims a new chain (a new
-- audit_head row) when it first appends and never hands it on. An entry's number (seq) is
-- unique across chains and comes from a sequence; its hash covers its position in its chain.
ALTER TABLE audit_log ADD COLUMN chain BIGINT NOT NULL DEFAULT 1;
CREATE SEQUENCE audit_log_seq OWNED BY audit_log.seq;
SELECT setval('audit_log_seq', COALESCE((SELECT MAX(seq) FROM audit_log), 0) + 1, false);
ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT nextval('audit_log_seq');
CREATE INDEX audit_log_chain ON audit_log(chain, seq);

-- A head per chain: seq is the number of entries in it (the newest one's position), entry the
-- newest one's seq, hash its hash; node and started_at say who claimed it and when.
ALTER TABLE audit_head DROP CONSTRAINT audit_head_id_check;
ALTER TABLE audit_head ALTER COLUMN id TYPE BIGINT;
ALTER TABLE audit_head ADD COLUMN entry BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_head ADD COLUMN started_at BIGINT NOT NULL DEFAULT 0;
UPDATE audit_head SET entry = seq;
CREATE SEQUENCE audit_chain_id START 2;

-- The user index's progress per chain: every entry of the chain up to seq `upto` is in it
-- (entries of different chains commit out of seq order, so one number for all cannot say it).
CREATE TABLE audit_index_chains (
    chain BIGINT PRIMARY KEY,
    upto BIGINT NOT NULL
);
INSERT INTO audit_index_chains (chain, upto) SELECT 1, upto FROM audit_user_index_state;
DROP TABLE audit_user_index_state;
