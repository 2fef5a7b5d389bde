-- v7: history and the change feed (SPEC §14), and the number of agents.
--
-- Every write appends its events in its own transaction, so `seq` (the rowid) grows
-- with commit order: SQLite has one writer at a time. A rowid is reused only when the
-- row with the largest one is deleted; prune_events never deletes the newest event,
-- so no seq is ever given twice. `at` is milliseconds since the epoch; `data` is the
-- event's data object as JSON text, keys in the contract's order; `prev` is the seq of
-- the same task's previous event.
--
-- A task's history is a chain: the task's row (or, once it is deleted, its row in
-- `deleted_tasks`) holds its last event, each event the one before. Reading a history
-- follows the chain, a rowid lookup per event; writing one costs no page beyond the
-- task's own row, which the write changes anyway. (An index by task would put each
-- event's entry on a page of its own, and cost a claim + complete a third more.)
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    agent_id TEXT    NOT NULL,
    task_id  TEXT,
    type     TEXT    NOT NULL CHECK (type IN ('created', 'updated', 'claimed', 'finished',
             'lease_expired', 'deleted', 'dependency_added', 'dependency_removed', 'prefix_set')),
    actor    TEXT,
    data     TEXT    NOT NULL,
    prev     INTEGER
) STRICT;

-- The feed of one agent: a seek, then a page.
CREATE INDEX events_by_agent ON events (agent_id, seq);

ALTER TABLE tasks ADD COLUMN last_event INTEGER;

CREATE TABLE deleted_tasks (
    task_id    TEXT    NOT NULL PRIMARY KEY,
    agent_id   TEXT    NOT NULL,
    last_event INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- How many agents there are, for list_agents' total without counting rows: agents are
-- never deleted, so one trigger on insert keeps it.
CREATE TABLE agent_count (
    one   INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
    count INTEGER NOT NULL CHECK (count >= 0)
) STRICT;
INSERT INTO agent_count (one, count) SELECT 1, count(*) FROM agents;
CREATE TRIGGER agents_counted AFTER INSERT ON agents BEGIN
    UPDATE agent_count SET count = count + 1 WHERE one = 1;
END;
