-- Validation: account-level throttling, automatic resync hints, and e-mail/SMS challenges.
ALTER TABLE users ADD COLUMN fail_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN throttled_until BIGINT NOT NULL DEFAULT 0;

-- A code that matched outside the window but inside the resync window: the next consecutive
-- code completes an automatic resync. NULL: none pending.
ALTER TABLE tokens ADD COLUMN resync_hint BIGINT;
ALTER TABLE tokens ADD COLUMN resync_hint_at BIGINT NOT NULL DEFAULT 0;

-- A code sent by e-mail or SMS. The transaction id and the code are stored only as hashes.
CREATE TABLE challenges (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_id BIGINT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX challenges_user_created ON challenges(user_id, created_at);
