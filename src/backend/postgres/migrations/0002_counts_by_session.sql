-- v2: each session keeps counts of its own.
--
-- In v1 every status change of an agent's tasks of one priority updated the same row
-- of counts, and held its lock until the commit: two workers of one agent waited for
-- each other at every write, and a write of several round trips (finish_and_claim)
-- held the row across them. Now a row of counts is one session's share: each
-- connection of a store takes a shard of its own when it opens (a session advisory
-- lock, released when the session ends; see `take_shard` in pool.rs) and its
-- writes change only the rows of that shard, so no two writers wait for a row of
-- counts. A reader sums the shards, as it already summed the priorities.
--
-- A shard's row is the change its sessions made, not a count: a task created in one
-- shard and claimed in another is +1 queued in the first and -1 in the second. So the
-- counts' CHECKs of v1 hold only for the sums, which the conformance and property tests
-- check against the tasks.
--
-- A session that set no shard (a connection of another tool) writes shard 0.
--
-- The trigger also looks for dependents before it updates them: most tasks have none.

ALTER TABLE counts ADD COLUMN shard integer NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 63);
ALTER TABLE counts DROP CONSTRAINT counts_pkey;
ALTER TABLE counts ADD PRIMARY KEY (agent_id, priority, shard);
ALTER TABLE counts DROP CONSTRAINT counts_queued_check;
ALTER TABLE counts DROP CONSTRAINT counts_in_progress_check;
ALTER TABLE counts DROP CONSTRAINT counts_complete_check;
ALTER TABLE counts DROP CONSTRAINT counts_blocked_check;
ALTER TABLE counts DROP CONSTRAINT counts_check; -- waiting BETWEEN 0 AND queued

-- The session's shard: set by the store on each connection it opens.
CREATE FUNCTION agent_backlog_shard() RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('agent_backlog.shard', true), '')::integer, 0)
$$;

-- Adds these changes to the session's share of the counts of an agent and priority:
-- the one statement that writes counts (the triggers below and a create's count of
-- its new tasks call it).
CREATE FUNCTION agent_backlog_count_change(agent text, prio integer, queued bigint,
    in_progress bigint, complete bigint, blocked bigint, waiting bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counts AS c (agent_id, priority, shard, queued, in_progress, complete, blocked, waiting)
    VALUES (agent, prio, agent_backlog_shard(), queued, in_progress, complete, blocked, waiting)
    ON CONFLICT (agent_id, priority, shard) DO UPDATE SET
        queued = c.queued + excluded.queued,
        in_progress = c.in_progress + excluded.in_progress,
        complete = c.complete + excluded.complete,
        blocked = c.blocked + excluded.blocked,
        waiting = c.waiting + excluded.waiting;
END $$;

-- Adds (d = 1) or takes away (d = -1) the task `t`, waiting `w` (0 or 1), in the
-- session's share of the counts of its agent and priority.
CREATE OR REPLACE FUNCTION agent_backlog_count_add(t tasks, w integer, d integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agent_backlog_count_change(t.agent_id, t.priority,
        d * (t.status = 'queued')::integer, d * (t.status = 'in_progress')::integer,
        d * (t.status = 'complete')::integer, d * (t.status = 'blocked')::integer, d * w);
END $$;

CREATE OR REPLACE FUNCTION agent_backlog_task_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_waiting integer := (OLD.status = 'queued' AND OLD.unmet > 0)::integer;
    new_waiting integer;
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM agent_backlog_count_add(OLD, old_waiting, -1);
        -- A deleted task no longer holds back its dependents; its edges go with it.
        IF OLD.status <> 'complete' THEN
            UPDATE tasks SET unmet = unmet - 1
            WHERE seq IN (SELECT task_seq FROM dependencies WHERE depends_seq = OLD.seq);
        END IF;
        DELETE FROM dependencies WHERE depends_seq = OLD.seq OR task_seq = OLD.seq;
        IF OLD.fence > 0 THEN
            INSERT INTO lease_tombstones (task_id, fence, worker)
            VALUES (OLD.id, OLD.fence + (OLD.lease_expires IS NOT NULL)::integer, OLD.lease_worker)
            ON CONFLICT (task_id) DO UPDATE SET fence = excluded.fence, worker = excluded.worker;
        END IF;
        RETURN NULL;
    END IF;
    new_waiting := (NEW.status = 'queued' AND NEW.unmet > 0)::integer;
    IF OLD.priority = NEW.priority THEN
        IF OLD.status <> NEW.status OR old_waiting <> new_waiting THEN
            PERFORM agent_backlog_count_change(OLD.agent_id, OLD.priority,
                (NEW.status = 'queued')::integer - (OLD.status = 'queued')::integer,
                (NEW.status = 'in_progress')::integer - (OLD.status = 'in_progress')::integer,
                (NEW.status = 'complete')::integer - (OLD.status = 'complete')::integer,
                (NEW.status = 'blocked')::integer - (OLD.status = 'blocked')::integer,
                new_waiting - old_waiting);
        END IF;
    ELSE
        PERFORM agent_backlog_count_add(OLD, old_waiting, -1);
        PERFORM agent_backlog_count_add(NEW, new_waiting, 1);
    END IF;
    -- A task that becomes complete is met for its dependents; one that leaves
    -- complete (a reopen) is unmet again. (Looked up first: an UPDATE that changes
    -- nothing still costs its start, about as much as the counts' upsert.)
    IF (OLD.status = 'complete') <> (NEW.status = 'complete')
        AND EXISTS (SELECT 1 FROM dependencies WHERE depends_seq = NEW.seq) THEN
        UPDATE tasks SET unmet = unmet + CASE WHEN NEW.status = 'complete' THEN -1 ELSE 1 END
        WHERE seq IN (SELECT task_seq FROM dependencies WHERE depends_seq = NEW.seq);
    END IF;
    RETURN NULL;
END $$;
