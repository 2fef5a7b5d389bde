-- v1 of the PostgreSQL schema: the whole contract at once (the SQLite schema reached
-- the same shape in eight steps). Every invariant the SQLite schema keeps is kept here
-- the same way: CHECK constraints for the lifecycle and the leases, counts kept by
-- triggers in the transaction of every change, readiness kept per task (`unmet`).
--
-- Lease and event times are milliseconds since the epoch from the database's clock;
-- task times are RFC 3339 text, as the contract writes them.

CREATE TABLE agents (
    agent_id    text   NOT NULL PRIMARY KEY CHECK (length(agent_id) BETWEEN 1 AND 64),
    prefix      text   NOT NULL UNIQUE CHECK (length(prefix) BETWEEN 1 AND 16),
    next_number bigint NOT NULL DEFAULT 1 CHECK (next_number >= 1)
);

-- How many agents there are, for list_agents' total without counting rows (agents
-- are never deleted).
CREATE TABLE agent_count (
    one   integer NOT NULL PRIMARY KEY CHECK (one = 1),
    count bigint  NOT NULL CHECK (count >= 0)
);
INSERT INTO agent_count (one, count) VALUES (1, 0);

CREATE FUNCTION agent_backlog_agent_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agent_count SET count = count + 1 WHERE one = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER agents_counted AFTER INSERT ON agents
    FOR EACH ROW EXECUTE FUNCTION agent_backlog_agent_counted();

-- The next candidate number of each derived prefix base (SPEC §5).
CREATE TABLE prefix_bases (
    base text   NOT NULL PRIMARY KEY CHECK (length(base) BETWEEN 1 AND 16),
    next bigint NOT NULL CHECK (next >= 1)
);

CREATE TABLE tasks (
    seq         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text    NOT NULL UNIQUE,
    agent_id    text    NOT NULL REFERENCES agents (agent_id),
    title       text    NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    description text    CHECK (length(description) <= 65536),
    priority    integer NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    status      text    NOT NULL DEFAULT 'queued',
    created     text    NOT NULL,
    started     text,
    completed   text,
    result      text    CHECK (length(result) <= 1048576),
    blocker     text    CHECK (length(blocker) BETWEEN 1 AND 2000),
    -- Leases (SPEC §10): see the SQLite schema's v4 for what each column means.
    fence              bigint  NOT NULL DEFAULT 0 CHECK (fence >= 0),
    attempts           bigint  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_token        text    CHECK (length(lease_token) BETWEEN 1 AND 64),
    lease_worker       text    CHECK (length(lease_worker) BETWEEN 1 AND 128),
    lease_max_attempts bigint  CHECK (lease_max_attempts BETWEEN 1 AND 1000),
    lease_ms           bigint  CHECK (lease_ms BETWEEN 1000 AND 86400000),
    lease_granted      bigint,
    lease_expires      bigint,
    -- The number of this task's dependencies that are not complete (SPEC §13).
    unmet       bigint  NOT NULL DEFAULT 0 CHECK (unmet >= 0),
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
        ELSE false
    END),
    -- A lease is held only by an in_progress task, with every part of it present.
    CHECK (lease_expires IS NULL OR (
        status = 'in_progress' AND fence >= 1 AND attempts >= 1
        AND lease_token IS NOT NULL AND lease_worker IS NOT NULL
        AND lease_max_attempts IS NOT NULL AND lease_ms IS NOT NULL
        AND lease_granted IS NOT NULL AND lease_expires >= lease_granted
    ))
);

-- One agent's pages in priority then creation order, by status (a listing of every
-- status merges the four ranges), and the ready queue, which a claim seeks: the first
-- entry of this partial index.
CREATE INDEX tasks_by_agent_status ON tasks (agent_id, status, priority, seq);
CREATE INDEX tasks_ready ON tasks (agent_id, priority, seq)
    WHERE status = 'queued' AND unmet = 0;
-- The same across agents (the ready queue is one agent's).
CREATE INDEX tasks_by_status ON tasks (status, priority, seq);
-- Held leases by expiry: what a leased claim requeues first.
CREATE INDEX tasks_by_lease_expiry ON tasks (agent_id, lease_expires)
    WHERE lease_expires IS NOT NULL;
CREATE INDEX tasks_by_lease_expiry_all ON tasks (lease_expires)
    WHERE lease_expires IS NOT NULL;

-- Listings and claims are planned from statistics: keep them fresh as a backlog grows
-- (PostgreSQL's defaults analyze after 10 % of a table changed).
ALTER TABLE tasks SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_scale_factor = 0.05);

-- Per agent and priority, the number of tasks in each status, and of the queued ones
-- those waiting for a dependency.
CREATE TABLE counts (
    agent_id    text    NOT NULL REFERENCES agents (agent_id),
    priority    integer NOT NULL CHECK (priority BETWEEN 1 AND 10),
    queued      bigint  NOT NULL DEFAULT 0 CHECK (queued >= 0),
    in_progress bigint  NOT NULL DEFAULT 0 CHECK (in_progress >= 0),
    complete    bigint  NOT NULL DEFAULT 0 CHECK (complete >= 0),
    blocked     bigint  NOT NULL DEFAULT 0 CHECK (blocked >= 0),
    waiting     bigint  NOT NULL DEFAULT 0 CHECK (waiting BETWEEN 0 AND queued),
    PRIMARY KEY (agent_id, priority)
);

-- An edge: the task `task_seq` depends on the task `depends_seq`.
CREATE TABLE dependencies (
    task_seq    bigint NOT NULL,
    depends_seq bigint NOT NULL,
    PRIMARY KEY (task_seq, depends_seq),
    CHECK (task_seq <> depends_seq)
);
CREATE INDEX dependencies_by_depends ON dependencies (depends_seq, task_seq);

-- A deleted task that ever had a lease leaves its fence here, so that its last
-- lease's token is told `lease_lost` rather than `not_found`.
CREATE TABLE lease_tombstones (
    task_id text   NOT NULL PRIMARY KEY,
    fence   bigint NOT NULL CHECK (fence >= 1),
    worker  text
);

-- What an idempotent create returned (SPEC §12).
CREATE TABLE idempotency_keys (
    agent_id     text   NOT NULL REFERENCES agents (agent_id),
    key          text   NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request      bytea  NOT NULL CHECK (length(request) = 32),
    first_number bigint NOT NULL CHECK (first_number >= 1),
    count        bigint NOT NULL CHECK (count >= 1),
    PRIMARY KEY (agent_id, key)
);

-- The change feed (SPEC §14). `seq` is given from `feed` by the statement that
-- inserts a transaction's events, which holds the feed's row until the commit: so
-- seqs grow with commit order, and the counter never goes back (pruning deletes
-- events, never the counter). `data` is JSON text with the keys in the contract's
-- order (jsonb would reorder them).
CREATE TABLE events (
    seq      bigint NOT NULL PRIMARY KEY,
    at       bigint NOT NULL,
    agent_id text   NOT NULL,
    task_id  text,
    type     text   NOT NULL CHECK (type IN ('created', 'updated', 'claimed', 'finished',
             'lease_expired', 'deleted', 'dependency_added', 'dependency_removed', 'prefix_set')),
    actor    text,
    data     text   NOT NULL
);
CREATE INDEX events_by_agent ON events (agent_id, seq);
CREATE INDEX events_by_task ON events (task_id, seq) WHERE task_id IS NOT NULL;

CREATE TABLE feed (
    one integer NOT NULL PRIMARY KEY CHECK (one = 1),
    seq bigint  NOT NULL CHECK (seq >= 0)
);
INSERT INTO feed (one, seq) VALUES (1, 0);

-- Every commit with events tells the listeners of this schema (SPEC §11): waiting
-- workers in every process wake on it. The notification is sent at commit.
CREATE FUNCTION agent_backlog_feed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('agent_backlog:' || current_schema(), NEW.seq::text);
    RETURN NULL;
END $$;
CREATE TRIGGER feed_notify AFTER UPDATE ON feed
    FOR EACH ROW EXECUTE FUNCTION agent_backlog_feed_notify();

-- The counts follow every status, priority and readiness change, and every delete.
-- (New tasks are counted by the statement that inserts them: one upsert per priority
-- of a batch.)
-- Adds (d = 1) or takes away (d = -1) the task `t`, waiting `w` (0 or 1), in the
-- counts of its agent and priority.
CREATE FUNCTION agent_backlog_count_add(t tasks, w integer, d integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counts AS c (agent_id, priority, queued, in_progress, complete, blocked, waiting)
    VALUES (t.agent_id, t.priority, greatest(d * (t.status = 'queued')::integer, 0),
            greatest(d * (t.status = 'in_progress')::integer, 0),
            greatest(d * (t.status = 'complete')::integer, 0),
            greatest(d * (t.status = 'blocked')::integer, 0), greatest(d * w, 0))
    ON CONFLICT (agent_id, priority) DO UPDATE SET
        queued = c.queued + d * (t.status = 'queued')::integer,
        in_progress = c.in_progress + d * (t.status = 'in_progress')::integer,
        complete = c.complete + d * (t.status = 'complete')::integer,
        blocked = c.blocked + d * (t.status = 'blocked')::integer,
        waiting = c.waiting + d * w;
END $$;

CREATE FUNCTION agent_backlog_task_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_waiting integer := (OLD.status = 'queued' AND OLD.unmet > 0)::integer;
    new_waiting integer;
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE counts SET
            queued = queued - (OLD.status = 'queued')::integer,
            in_progress = in_progress - (OLD.status = 'in_progress')::integer,
            complete = complete - (OLD.status = 'complete')::integer,
            blocked = blocked - (OLD.status = 'blocked')::integer,
            waiting = waiting - old_waiting
        WHERE agent_id = OLD.agent_id AND priority = OLD.priority;
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
            UPDATE counts SET
                queued = queued - (OLD.status = 'queued')::integer + (NEW.status = 'queued')::integer,
                in_progress = in_progress - (OLD.status = 'in_progress')::integer
                    + (NEW.status = 'in_progress')::integer,
                complete = complete - (OLD.status = 'complete')::integer
                    + (NEW.status = 'complete')::integer,
                blocked = blocked - (OLD.status = 'blocked')::integer + (NEW.status = 'blocked')::integer,
                waiting = waiting - old_waiting + new_waiting
            WHERE agent_id = OLD.agent_id AND priority = OLD.priority;
        END IF;
    ELSE
        -- A move between priorities changes two rows of counts: lower priority number
        -- first, as every write that changes several rows of counts does (a batch
        -- create counts its priorities in order), so two moves never deadlock.
        IF NEW.priority < OLD.priority THEN
            PERFORM agent_backlog_count_add(NEW, new_waiting, 1);
            PERFORM agent_backlog_count_add(OLD, old_waiting, -1);
        ELSE
            PERFORM agent_backlog_count_add(OLD, old_waiting, -1);
            PERFORM agent_backlog_count_add(NEW, new_waiting, 1);
        END IF;
    END IF;
    -- A task that becomes complete is met for its dependents; one that leaves
    -- complete (a reopen) is unmet again.
    IF (OLD.status = 'complete') <> (NEW.status = 'complete') THEN
        UPDATE tasks SET unmet = unmet + CASE WHEN NEW.status = 'complete' THEN -1 ELSE 1 END
        WHERE seq IN (SELECT task_seq FROM dependencies WHERE depends_seq = NEW.seq);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_counted_on_change AFTER UPDATE OF status, priority, unmet ON tasks
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.priority IS DISTINCT FROM NEW.priority
          OR OLD.unmet IS DISTINCT FROM NEW.unmet)
    EXECUTE FUNCTION agent_backlog_task_counted();
CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION agent_backlog_task_counted();

-- The access tokens of the server (`serve --auth`); see the SQLite schema's v8.
CREATE TABLE tokens (
    id       bigint  NOT NULL PRIMARY KEY,
    name     text    NOT NULL UNIQUE,
    agent_id text,
    admin    boolean NOT NULL,
    hash     bytea   NOT NULL CHECK (length(hash) = 32),
    created  bigint  NOT NULL,
    expires  bigint,
    revoked  bigint,
    CHECK (admin = (agent_id IS NULL))
);
CREATE SEQUENCE tokens_id;
