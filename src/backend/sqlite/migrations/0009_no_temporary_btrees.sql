-- v9: no temporary B-tree on the write path.
--
-- SQLite evaluates `x IN (constant, constant, constant, ...)` by building a temporary
-- B-tree of the list on every execution of the statement, and `x IN (SELECT ...)` by
-- materialising the subquery the same way. Every event insert checked its type with
-- such a list, and every completion ran the dependents' trigger whose UPDATE
-- materialised its subquery even when the task had no dependents: three temporary
-- B-trees (each a fresh zeroed page) in a worker's finish + claim.

-- The events table, rebuilt with the same columns and rows, its type checked by
-- comparisons (the same values as in v7).
CREATE TABLE events_v9 (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    agent_id TEXT    NOT NULL,
    task_id  TEXT,
    type     TEXT    NOT NULL CHECK (
        type = 'created' OR type = 'updated' OR type = 'claimed' OR type = 'finished'
        OR type = 'lease_expired' OR type = 'deleted' OR type = 'dependency_added'
        OR type = 'dependency_removed' OR type = 'prefix_set'),
    actor    TEXT,
    data     TEXT    NOT NULL,
    prev     INTEGER
) STRICT;
INSERT INTO events_v9 (seq, at, agent_id, task_id, type, actor, data, prev)
    SELECT seq, at, agent_id, task_id, type, actor, data, prev FROM events;
DROP TABLE events;
ALTER TABLE events_v9 RENAME TO events;
CREATE INDEX events_by_agent ON events (agent_id, seq);

-- The dependents of a task that becomes complete (or leaves complete) are updated
-- only when it has some: one probe of `dependencies_by_depends` decides.
DROP TRIGGER tasks_met_on_status;
CREATE TRIGGER tasks_met_on_status AFTER UPDATE OF status ON tasks
    WHEN (OLD.status = 'complete') IS NOT (NEW.status = 'complete')
        AND EXISTS (SELECT 1 FROM dependencies WHERE depends_seq = NEW.seq)
BEGIN
    UPDATE tasks SET unmet = unmet + (CASE WHEN NEW.status = 'complete' THEN -1 ELSE 1 END)
    WHERE seq IN (SELECT task_seq FROM dependencies WHERE depends_seq = NEW.seq);
END;
