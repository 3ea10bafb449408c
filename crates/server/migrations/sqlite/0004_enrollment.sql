-- Self-enrollment by e-mail (SPEC F1): invitation links and recovery codes.

-- Recovery codes at enrollment for this user: NULL follows the policy
-- `enroll.recovery_codes_for_new_users`; TRUE or FALSE is an admin's explicit choice.
ALTER TABLE users ADD COLUMN recovery_enabled BOOLEAN;

-- An enrollment link. The link carries 256 random bits; only their SHA-256 is stored. A newer
-- invitation for the same user supersedes the older ones in the same transaction. The row also
-- holds the enrollment's progress (the pending token), so any node can serve the next step.
CREATE TABLE invitations (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    superseded BOOLEAN NOT NULL DEFAULT FALSE,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    token_id BIGINT REFERENCES tokens(id) ON DELETE SET NULL
);
CREATE INDEX invitations_user_id ON invitations(user_id);

-- Single-use recovery codes, stored only as keyed hashes (HMAC-SHA256 under a key derived from
-- the server key, with its key id; see crypto.rs).
CREATE TABLE recovery_codes (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
