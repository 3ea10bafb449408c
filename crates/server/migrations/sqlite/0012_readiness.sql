-- One row that /readyz writes: a database that answers reads but cannot write (a full disk, a
-- read-only file system, a PostgreSQL standby) is not ready.
CREATE TABLE readiness (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    writes INTEGER NOT NULL
);
INSERT INTO readiness (id, writes) VALUES (1, 0);
