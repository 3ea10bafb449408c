-- RADIUS clients (NASes, VPN gateways, proxies), matched by source address (longest prefix
-- wins). Their shared secrets are sealed under the server key like token seeds; during a
-- rotation a next secret is accepted beside the current one.
CREATE TABLE radius_clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    sealed_next_secret BLOB,
    mode TEXT NOT NULL,
    require_message_authenticator BOOLEAN NOT NULL,
    limit_proxy_state BOOLEAN NOT NULL,
    passthrough BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Access-Challenge States already answered: a State is sealed (any node can open it) but
-- single-use, across nodes. Rows go once the State has expired.
CREATE TABLE radius_states_used (
    nonce TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- The fingerprint of the RADIUS request whose code moved the token's counter, written in the
-- same update: an identical retransmit of that request reaching another node is answered with
-- the same Accept instead of "code already used". Empty for other logins.
ALTER TABLE tokens ADD COLUMN last_request TEXT NOT NULL DEFAULT '';
