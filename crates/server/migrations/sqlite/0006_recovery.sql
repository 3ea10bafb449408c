-- Self-service recovery (SPEC F4).

-- Per-user recovery policies: NULL follows the configuration (`recovery.self_service`,
-- `recovery.revoke_old_devices`); TRUE or FALSE is an admin's explicit choice.
ALTER TABLE users ADD COLUMN self_recovery BOOLEAN;
ALTER TABLE users ADD COLUMN revoke_on_recovery BOOLEAN;
-- Self-service locked (after "this wasn't me") until an admin clears it.
ALTER TABLE users ADD COLUMN self_service_locked BOOLEAN NOT NULL DEFAULT FALSE;

-- A recovery in progress: the user proved a recovery code and was sent a one-time code by e-mail.
-- The ticket (256 random bits, carried by the form) is stored only as its SHA-256, the code as
-- SHA-256 over ticket and code, so a database dump reveals neither. When the code was right, the
-- row remembers the hash of the enrollment link it led to (for the revoke-old-devices policy).
CREATE TABLE recovery_requests (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used_at BIGINT,
    invitation_hash TEXT,
    source TEXT NOT NULL
);
CREATE INDEX recovery_requests_user_id ON recovery_requests(user_id);
CREATE INDEX recovery_requests_invitation ON recovery_requests(invitation_hash);

-- Recovery attempts per account (right or wrong), for the hourly limit.
CREATE TABLE recovery_attempts (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE INDEX recovery_attempts_user_id ON recovery_attempts(user_id, created_at);

-- "This wasn't me" links in security notifications. The link carries 256 random bits; only their
-- SHA-256 is stored. `token_id` is the device the notified event added (revoked when the link is
-- used); `event` names what happened, for the audit.
CREATE TABLE block_links (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_id BIGINT REFERENCES tokens(id) ON DELETE SET NULL,
    event TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX block_links_user_id ON block_links(user_id);

-- Account reset (SPEC F6): an optional password hint the user set with the new password.
ALTER TABLE users ADD COLUMN password_hint TEXT NOT NULL DEFAULT '';

-- A reset link mailed to the user's address. The link carries 256 random bits; only their SHA-256
-- is stored. Single-use, short-lived.
CREATE TABLE reset_requests (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX reset_requests_user_id ON reset_requests(user_id);
