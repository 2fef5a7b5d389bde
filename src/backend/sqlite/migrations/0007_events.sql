-- v7: history and the change feed (SPEC §14), and the number of agents.
--
-- Every write appends its events in its own transaction, so `seq` (the rowid) grows
-- with commit order: SQLite has one writer at a time. A rowid is reused only when the
-- row with the largest one is deleted; prune_events never deletes the newest event,
-- so no seq is ever given twice. `at` is milliseconds since the epoch; `data` is the
-- event's data object as JSON text, keys in the contract's order.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    agent_id TEXT    NOT NULL,
    task_id  TEXT,
    type     TEXT    NOT NULL CHECK (type IN ('created', 'updated', 'claimed', 'finished',
             'lease_expired', 'deleted', 'dependency_added', 'dependency_removed', 'prefix_set')),
    actor    TEXT,
    data     TEXT    NOT NULL
) STRICT;

-- The feed of one agent, and the history of one task: each a seek, then a page.
CREATE INDEX events_by_agent ON events (agent_id, seq);
CREATE INDEX events_by_task ON events (task_id, seq) WHERE task_id IS NOT NULL;

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
