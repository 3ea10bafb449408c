-- A file an admin uploaded on the web import page, between its dry run and the confirmation:
-- one per web session, sealed under the server key (it may hold seeds and the file's password),
-- gone when confirmed, cancelled, replaced, or after its expiry.
CREATE TABLE import_uploads (
    session_hash TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
