-- The audit log keyed by SQLite's row id (SPEC F2's throughput). `seq BIGINT PRIMARY KEY` made
-- seq a separate unique index beside the table's own row id, so every commit that appended to
-- the log also wrote that index's newest page. With `INTEGER PRIMARY KEY` seq is the row id
-- itself: the same order, the same uniqueness, one B-tree less. Entries, numbers and hashes are
-- copied unchanged, so the hash chain still verifies.
CREATE TABLE audit_log_by_rowid (
    seq INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    username TEXT NOT NULL,
    source TEXT NOT NULL,
    result TEXT NOT NULL,
    reason TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_log_by_rowid (seq, at, actor, action, target, username, source, result, reason,
    prev_hash, hash)
    SELECT seq, at, actor, action, target, username, source, result, reason, prev_hash, hash
    FROM audit_log ORDER BY seq;
DROP TABLE audit_log;
ALTER TABLE audit_log_by_rowid RENAME TO audit_log;
CREATE INDEX audit_log_action ON audit_log(action, seq);
