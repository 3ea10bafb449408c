-- A user's audit trail, indexed in the background instead of by every append (SPEC F2's
-- throughput): an index on audit_log(username) is touched by every entry at a page of its own per
-- user, so each commit wrote one extra page per user in it. The service adds the newest entries
-- to audit_user_index in bulk, in username order, about once a second; audit_user_index_state
-- says up to which entry. Entries after that are found by scanning the log's tail by seq. The
-- audit chain (audit_log, audit_head) is unchanged.
DROP INDEX audit_log_username;

CREATE TABLE audit_user_index (
    username TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (username, seq)
);

CREATE TABLE audit_user_index_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    upto BIGINT NOT NULL
);

-- The state first: entries appended meanwhile (by another node) stay in the tail.
INSERT INTO audit_user_index_state (id, upto) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_log;
INSERT INTO audit_user_index (username, seq)
    SELECT username, seq FROM audit_log
    WHERE seq <= (SELECT upto FROM audit_user_index_state WHERE id = 1)
    ORDER BY username, seq;
