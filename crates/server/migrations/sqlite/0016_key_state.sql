-- Which server key seals new secrets, for every node at once (`tessera key activate ID`).
-- NULL: the newest key in each node's key file, as before this table existed.
CREATE TABLE key_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    active_key_id BIGINT
);
INSERT INTO key_state (id, active_key_id) VALUES (1, NULL);
