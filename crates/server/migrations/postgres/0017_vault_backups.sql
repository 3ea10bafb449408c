-- tessera-auth's end-to-end encrypted vault backups: opaque blobs the server cannot read (the
-- key needs the user's account key, which never reaches the server). At most two generations a
-- user; an account reset deletes them and records when, so old devices learn of it.
CREATE TABLE vault_backups (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    blob BYTEA NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, generation)
);

CREATE TABLE vault_backup_resets (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    reset_at BIGINT NOT NULL
);
