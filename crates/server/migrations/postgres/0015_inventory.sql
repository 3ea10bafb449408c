-- Hardware tokens in stock, apart from users' tokens (a token in stock belongs to nobody), and
-- the imports they came from. Seeds are sealed under the server key, bound to the serial.
CREATE TABLE imports (
    id BIGSERIAL PRIMARY KEY,
    actor TEXT NOT NULL,
    format TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    imported BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    existing BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    -- JSON: skips with their reasons and warnings; never secrets.
    report TEXT NOT NULL DEFAULT ''
);

CREATE TABLE inventory_tokens (
    id BIGSERIAL PRIMARY KEY,
    serial TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    digits BIGINT NOT NULL,
    period BIGINT NOT NULL,
    sealed_secret BYTEA NOT NULL,
    counter BIGINT NOT NULL DEFAULT 0,
    drift BIGINT NOT NULL DEFAULT 0,
    manufacturer TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    not_before BIGINT,
    not_after BIGINT,
    state TEXT NOT NULL DEFAULT 'in_stock',
    import_id BIGINT REFERENCES imports(id),
    -- The user's token made from it (no foreign key: deleting that token keeps the history).
    token_id BIGINT,
    assigned_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX inventory_tokens_state ON inventory_tokens(state, serial);

-- A factory token's first use: while above 0, a code is also looked for this many steps (TOTP)
-- or counters (HOTP) away, with two consecutive codes needed far out; the first accepted code
-- sets it to 0 and the normal window applies around the learned drift.
ALTER TABLE tokens ADD COLUMN first_use_window BIGINT NOT NULL DEFAULT 0;
