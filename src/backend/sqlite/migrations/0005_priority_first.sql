-- v5: the status indexes keyed priority first, and the counts kept by agent and
-- priority (docs/BENCHMARKS.md, "Fewer pages per status change").
--
-- Within each priority the index entries of one agent sit as runs
-- [blocked][complete][in_progress][queued], so a claim moves an entry from the start
-- of the queued run to the end of the in_progress run next to it, and a completion to
-- the end of the complete run: usually the same leaf page, where status-first keys
-- wrote two. Listings walk the ten priorities in order (`priority IN (1, ..., 10)`),
-- a seek each, and still read only the page they return. Counts by (agent, priority)
-- give every total — a priority filter's too, which used to count index entries — from
-- at most ten rows per agent.
DROP INDEX tasks_by_agent_status;
DROP INDEX tasks_by_status;
CREATE INDEX tasks_by_agent_priority_status ON tasks (agent_id, priority, status);
CREATE INDEX tasks_by_priority_status ON tasks (priority, status);

CREATE TABLE counts (
    agent_id    TEXT    NOT NULL REFERENCES agents (agent_id),
    priority    INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 10),
    queued      INTEGER NOT NULL DEFAULT 0 CHECK (queued >= 0),
    in_progress INTEGER NOT NULL DEFAULT 0 CHECK (in_progress >= 0),
    complete    INTEGER NOT NULL DEFAULT 0 CHECK (complete >= 0),
    blocked     INTEGER NOT NULL DEFAULT 0 CHECK (blocked >= 0),
    PRIMARY KEY (agent_id, priority)
) STRICT, WITHOUT ROWID;

INSERT INTO counts (agent_id, priority, queued, in_progress, complete, blocked)
SELECT agent_id, priority, sum(status = 'queued'), sum(status = 'in_progress'),
       sum(status = 'complete'), sum(status = 'blocked')
FROM tasks GROUP BY agent_id, priority;

DROP TRIGGER tasks_counted_on_update;
DROP TRIGGER tasks_counted_on_delete;

-- A status change moves the task between the counts of its priority; a priority change
-- (with or without a status change) between two priorities' counts. New tasks are
-- counted by the statement that inserts them (one upsert per priority of a batch,
-- tasks::create), not by a trigger per row. Two triggers, so that the hot path (a
-- claim, a completion) runs one UPDATE and nothing else.
CREATE TRIGGER tasks_counted_on_status AFTER UPDATE OF status ON tasks
    WHEN OLD.status IS NOT NEW.status AND OLD.priority IS NEW.priority
BEGIN
    UPDATE counts SET
        queued = queued - (OLD.status = 'queued') + (NEW.status = 'queued'),
        in_progress = in_progress - (OLD.status = 'in_progress') + (NEW.status = 'in_progress'),
        complete = complete - (OLD.status = 'complete') + (NEW.status = 'complete'),
        blocked = blocked - (OLD.status = 'blocked') + (NEW.status = 'blocked')
    WHERE agent_id = OLD.agent_id AND priority = OLD.priority;
END;

CREATE TRIGGER tasks_counted_on_priority AFTER UPDATE OF priority ON tasks
    WHEN OLD.priority IS NOT NEW.priority
BEGIN
    UPDATE counts SET
        queued = queued - (OLD.status = 'queued'),
        in_progress = in_progress - (OLD.status = 'in_progress'),
        complete = complete - (OLD.status = 'complete'),
        blocked = blocked - (OLD.status = 'blocked')
    WHERE agent_id = OLD.agent_id AND priority = OLD.priority;
    INSERT INTO counts (agent_id, priority, queued, in_progress, complete, blocked)
    VALUES (NEW.agent_id, NEW.priority, NEW.status = 'queued', NEW.status = 'in_progress',
            NEW.status = 'complete', NEW.status = 'blocked')
    ON CONFLICT (agent_id, priority) DO UPDATE SET
        queued = queued + excluded.queued, in_progress = in_progress + excluded.in_progress,
        complete = complete + excluded.complete, blocked = blocked + excluded.blocked;
END;

CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks BEGIN
    UPDATE counts SET
        queued = queued - (OLD.status = 'queued'),
        in_progress = in_progress - (OLD.status = 'in_progress'),
        complete = complete - (OLD.status = 'complete'),
        blocked = blocked - (OLD.status = 'blocked')
    WHERE agent_id = OLD.agent_id AND priority = OLD.priority;
END;

-- The agents' own counts are no longer kept.
ALTER TABLE agents DROP COLUMN queued;
ALTER TABLE agents DROP COLUMN in_progress;
ALTER TABLE agents DROP COLUMN complete;
ALTER TABLE agents DROP COLUMN blocked;
