-- v8: the access tokens of the server (`serve --auth`): who may use which backlog.
--
-- A token is for one agent (agent_id) or for an administrator (admin = 1), never both.
-- Only the SHA-256 of its secret is kept; the secret names the token's id, so a check
-- is a lookup by id and a comparison of hashes. Times are milliseconds since the
-- epoch; `revoked` is set once and never cleared.
CREATE TABLE tokens (
    id       INTEGER PRIMARY KEY,
    name     TEXT    NOT NULL UNIQUE,
    agent_id TEXT,
    admin    INTEGER NOT NULL CHECK (admin IN (0, 1)),
    hash     BLOB    NOT NULL CHECK (length(hash) = 32),
    created  INTEGER NOT NULL,
    expires  INTEGER,
    revoked  INTEGER,
    CHECK ((admin = 1) = (agent_id IS NULL))
) STRICT;
