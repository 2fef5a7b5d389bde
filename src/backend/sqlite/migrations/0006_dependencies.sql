-- v6: dependencies between tasks, the ready queue, and idempotency keys (SPEC §12-§13).
--
-- Readiness is kept, never searched for: every task holds `unmet`, the number of
-- the tasks it depends on that are not complete, changed in the transaction that
-- changes an edge or a dependency's status. `waiting` (a queued task with unmet
-- dependencies) is part of the agent's queue index, so a claim seeks the first ready
-- task exactly as it sought the first queued one, however many tasks wait before it;
-- and the counts keep the number waiting, so the ready queue's total is read, not
-- counted. A store without dependencies has `waiting = 0` everywhere: its queue index
-- orders entries as v5's did.
ALTER TABLE tasks ADD COLUMN unmet INTEGER NOT NULL DEFAULT 0 CHECK (unmet >= 0);
ALTER TABLE tasks ADD COLUMN waiting INTEGER
    GENERATED ALWAYS AS (status = 'queued' AND unmet > 0) VIRTUAL;

DROP INDEX tasks_by_agent_priority_status;
CREATE INDEX tasks_by_agent_priority_status_waiting
    ON tasks (agent_id, priority, status, waiting);

-- An edge: the task `task_seq` depends on the task `depends_seq` (rows of `tasks`).
-- Keyed both ways: a task's dependencies in creation order, a task's dependents.
CREATE TABLE dependencies (
    task_seq    INTEGER NOT NULL,
    depends_seq INTEGER NOT NULL,
    PRIMARY KEY (task_seq, depends_seq),
    CHECK (task_seq <> depends_seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX dependencies_by_depends ON dependencies (depends_seq, task_seq);

ALTER TABLE counts ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0
    CHECK (waiting BETWEEN 0 AND queued);

-- The counts' triggers of v5, now also moving the number waiting.
DROP TRIGGER tasks_counted_on_status;
DROP TRIGGER tasks_counted_on_priority;
DROP TRIGGER tasks_counted_on_delete;

CREATE TRIGGER tasks_counted_on_status AFTER UPDATE OF status ON tasks
    WHEN OLD.status IS NOT NEW.status AND OLD.priority IS NEW.priority
BEGIN
    UPDATE counts SET
        queued = queued - (OLD.status = 'queued') + (NEW.status = 'queued'),
        in_progress = in_progress - (OLD.status = 'in_progress') + (NEW.status = 'in_progress'),
        complete = complete - (OLD.status = 'complete') + (NEW.status = 'complete'),
        blocked = blocked - (OLD.status = 'blocked') + (NEW.status = 'blocked'),
        waiting = waiting - OLD.waiting + NEW.waiting
    WHERE agent_id = OLD.agent_id AND priority = OLD.priority;
END;

CREATE TRIGGER tasks_counted_on_priority AFTER UPDATE OF priority ON tasks
    WHEN OLD.priority IS NOT NEW.priority
BEGIN
    UPDATE counts SET
        queued = queued - (OLD.status = 'queued'),
        in_progress = in_progress - (OLD.status = 'in_progress'),
        complete = complete - (OLD.status = 'complete'),
        blocked = blocked - (OLD.status = 'blocked'),
        waiting = waiting - OLD.waiting
    WHERE agent_id = OLD.agent_id AND priority = OLD.priority;
    INSERT INTO counts (agent_id, priority, queued, in_progress, complete, blocked, waiting)
    VALUES (NEW.agent_id, NEW.priority, NEW.status = 'queued', NEW.status = 'in_progress',
            NEW.status = 'complete', NEW.status = 'blocked', NEW.waiting)
    ON CONFLICT (agent_id, priority) DO UPDATE SET
        queued = queued + excluded.queued, in_progress = in_progress + excluded.in_progress,
        complete = complete + excluded.complete, blocked = blocked + excluded.blocked,
        waiting = waiting + excluded.waiting;
END;

CREATE TRIGGER tasks_counted_on_unmet AFTER UPDATE OF unmet ON tasks
    WHEN OLD.waiting IS NOT NEW.waiting AND OLD.status IS NEW.status
        AND OLD.priority IS NEW.priority
BEGIN
    UPDATE counts SET waiting = waiting - OLD.waiting + NEW.waiting
    WHERE agent_id = OLD.agent_id AND priority = OLD.priority;
END;

-- A deleted task leaves the counts, and its edges go with it: a dependent no longer
-- waits for it.
CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks BEGIN
    UPDATE counts SET
        queued = queued - (OLD.status = 'queued'),
        in_progress = in_progress - (OLD.status = 'in_progress'),
        complete = complete - (OLD.status = 'complete'),
        blocked = blocked - (OLD.status = 'blocked'),
        waiting = waiting - OLD.waiting
    WHERE agent_id = OLD.agent_id AND priority = OLD.priority;
    UPDATE tasks SET unmet = unmet - 1
    WHERE OLD.status IS NOT 'complete'
        AND seq IN (SELECT task_seq FROM dependencies WHERE depends_seq = OLD.seq);
    DELETE FROM dependencies WHERE depends_seq = OLD.seq;
    DELETE FROM dependencies WHERE task_seq = OLD.seq;
END;

-- A task that becomes complete is met for its dependents; one that leaves complete
-- (a reopen) is unmet again.
CREATE TRIGGER tasks_met_on_status AFTER UPDATE OF status ON tasks
    WHEN (OLD.status = 'complete') IS NOT (NEW.status = 'complete')
BEGIN
    UPDATE tasks SET unmet = unmet + (CASE WHEN NEW.status = 'complete' THEN -1 ELSE 1 END)
    WHERE seq IN (SELECT task_seq FROM dependencies WHERE depends_seq = NEW.seq);
END;

-- What an idempotent create returned: the agent's task numbers `first_number` ..
-- `first_number + count - 1`, and a SHA-256 of the request after defaults and trimming
-- (rules::plan::fingerprint), to tell a replay from another request with the same key.
CREATE TABLE idempotency_keys (
    agent_id     TEXT    NOT NULL REFERENCES agents (agent_id),
    key          TEXT    NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request      BLOB    NOT NULL CHECK (length(request) = 32),
    first_number INTEGER NOT NULL CHECK (first_number >= 1),
    count        INTEGER NOT NULL CHECK (count >= 1),
    PRIMARY KEY (agent_id, key)
) STRICT, WITHOUT ROWID;
