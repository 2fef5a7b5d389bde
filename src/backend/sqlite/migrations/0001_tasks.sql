-- v1: agents with their prefix and counter, and tasks whose CHECK constraints
-- encode the invariants of the lifecycle, so no code path can store an impossible task.
CREATE TABLE agents (
    agent_id    TEXT    NOT NULL PRIMARY KEY CHECK (length(agent_id) BETWEEN 1 AND 64),
    prefix      TEXT    NOT NULL UNIQUE CHECK (length(prefix) BETWEEN 1 AND 16),
    next_number INTEGER NOT NULL DEFAULT 1 CHECK (next_number >= 1)
) STRICT, WITHOUT ROWID;

CREATE TABLE tasks (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    agent_id    TEXT    NOT NULL REFERENCES agents (agent_id),
    title       TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    description TEXT    CHECK (length(description) <= 65536),
    priority    INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    status      TEXT    NOT NULL DEFAULT 'queued',
    created     TEXT    NOT NULL,
    started     TEXT,
    completed   TEXT,
    result      TEXT    CHECK (length(result) <= 1048576),
    blocker     TEXT    CHECK (length(blocker) BETWEEN 1 AND 2000),
    CHECK (CASE status
        WHEN 'queued' THEN
            started IS NULL AND completed IS NULL AND result IS NULL AND blocker IS NULL
        WHEN 'in_progress' THEN
            started IS NOT NULL AND completed IS NULL AND result IS NULL AND blocker IS NULL
        WHEN 'blocked' THEN
            blocker IS NOT NULL AND completed IS NULL AND result IS NULL
        WHEN 'complete' THEN
            started IS NOT NULL AND completed IS NOT NULL AND started <= completed
            AND blocker IS NULL
        ELSE 0 -- no other status
    END)
) STRICT;

CREATE INDEX tasks_by_agent_status ON tasks (agent_id, status, priority);
