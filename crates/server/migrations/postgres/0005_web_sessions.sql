-- Sessions of the web pages (login, portal, admin area). The cookie carries 256 random bits;
-- only their SHA-256 is stored, so a database dump opens no session. The CSRF secret is stored
-- as it is: forms embed it, and it is worthless without the cookie.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    reauth_until BIGINT NOT NULL DEFAULT 0,
    csrf_secret TEXT NOT NULL
);
CREATE INDEX web_sessions_user_id ON web_sessions(user_id);
