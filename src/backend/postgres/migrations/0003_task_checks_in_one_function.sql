-- v3: a task's rules checked by one function instead of fourteen CHECK constraints.
--
-- PostgreSQL does not keep a table's CHECK constraints ready to run: every statement
-- that writes a row reads each constraint's expression from the catalog text and
-- plans it again before it checks the first row. With the fourteen constraints of
-- v1 that was about 50 µs of every UPDATE of a task (of about 60), twice per
-- finish_and_claim. A constraint that calls a function is one small expression; the
-- function's own statement is planned once per session, as PL/pgSQL caches it.
--
-- The rules are v1's, word for word: the lengths and ranges of the columns, the
-- status invariant (SPEC §4) and "a lease is held only by an in_progress task, with
-- every part of it present" (SPEC §10). A rule on a column that may be NULL holds for
-- NULL, as a column's CHECK did; anything else that came out NULL would be refused.

DO $$
DECLARE
    constraint_name name;
BEGIN
    FOR constraint_name IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'tasks'::regclass AND contype = 'c'
    LOOP
        EXECUTE format('ALTER TABLE tasks DROP CONSTRAINT %I', constraint_name);
    END LOOP;
END $$;

CREATE FUNCTION agent_backlog_task_valid(t tasks) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN coalesce(
        length(t.title) BETWEEN 1 AND 500
        AND (t.description IS NULL OR length(t.description) <= 65536)
        AND t.priority BETWEEN 1 AND 10
        AND (t.result IS NULL OR length(t.result) <= 1048576)
        AND (t.blocker IS NULL OR length(t.blocker) BETWEEN 1 AND 2000)
        AND t.fence >= 0
        AND t.attempts >= 0
        AND (t.lease_token IS NULL OR length(t.lease_token) BETWEEN 1 AND 64)
        AND (t.lease_worker IS NULL OR length(t.lease_worker) BETWEEN 1 AND 128)
        AND (t.lease_max_attempts IS NULL OR t.lease_max_attempts BETWEEN 1 AND 1000)
        AND (t.lease_ms IS NULL OR t.lease_ms BETWEEN 1000 AND 86400000)
        AND t.unmet >= 0
        AND CASE t.status
            WHEN 'queued' THEN
                t.started IS NULL AND t.completed IS NULL AND t.result IS NULL
                AND t.blocker IS NULL
            WHEN 'in_progress' THEN
                t.started IS NOT NULL AND t.completed IS NULL AND t.result IS NULL
                AND t.blocker IS NULL
            WHEN 'blocked' THEN
                t.blocker IS NOT NULL AND t.completed IS NULL AND t.result IS NULL
            WHEN 'complete' THEN
                t.started IS NOT NULL AND t.completed IS NOT NULL
                AND t.started <= t.completed AND t.blocker IS NULL
            ELSE false
        END
        AND (t.lease_expires IS NULL OR (
            t.status = 'in_progress' AND t.fence >= 1 AND t.attempts >= 1
            AND t.lease_token IS NOT NULL AND t.lease_worker IS NOT NULL
            AND t.lease_max_attempts IS NOT NULL AND t.lease_ms IS NOT NULL
            AND t.lease_granted IS NOT NULL AND t.lease_expires >= t.lease_granted
        )),
        false);
END $$;

ALTER TABLE tasks ADD CONSTRAINT tasks_valid CHECK (agent_backlog_task_valid(tasks));
