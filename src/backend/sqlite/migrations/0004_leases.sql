-- v4: leases (SPEC §10). A task's lease lives in its own row, so the CHECK below —
-- a lease is held only by an in_progress task, with every part of it present — is a
-- constraint of the schema, as the lifecycle's invariants are. `fence` grows at every
-- leased claim and at every move of a leased task by anything but its lease;
-- `attempts` counts leased claims (reset by a reopen). `lease_token` keeps the last
-- token after its lease ends, so that a late call with it is told `lease_lost`.
-- Lease times are milliseconds since the epoch; `lease_expires` is NULL when no lease
-- is held.
ALTER TABLE tasks ADD COLUMN fence INTEGER NOT NULL DEFAULT 0 CHECK (fence >= 0);
ALTER TABLE tasks ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);
ALTER TABLE tasks ADD COLUMN lease_token TEXT CHECK (length(lease_token) BETWEEN 1 AND 64);
ALTER TABLE tasks ADD COLUMN lease_worker TEXT CHECK (length(lease_worker) BETWEEN 1 AND 128);
ALTER TABLE tasks ADD COLUMN lease_max_attempts INTEGER CHECK (lease_max_attempts BETWEEN 1 AND 1000);
ALTER TABLE tasks ADD COLUMN lease_ms INTEGER CHECK (lease_ms BETWEEN 1000 AND 86400000);
ALTER TABLE tasks ADD COLUMN lease_granted INTEGER;
ALTER TABLE tasks ADD COLUMN lease_expires INTEGER CHECK (
    lease_expires IS NULL OR (
        status = 'in_progress' AND fence >= 1 AND attempts >= 1
        AND lease_token IS NOT NULL AND lease_worker IS NOT NULL
        AND lease_max_attempts IS NOT NULL AND lease_ms IS NOT NULL
        AND lease_granted IS NOT NULL AND lease_expires >= lease_granted
    )
);

-- The agent's held leases by expiry: what claim_lease requeues first, and when a
-- waiting worker must look again. Only leased tasks are in it.
CREATE INDEX tasks_by_lease_expiry ON tasks (agent_id, lease_expires)
    WHERE lease_expires IS NOT NULL;

-- A deleted task that ever had a lease leaves its fence here, so that its last
-- lease's token is told `lease_lost` rather than `not_found`. Task IDs are never
-- reused, so an entry never goes stale.
CREATE TABLE lease_tombstones (
    task_id TEXT    NOT NULL PRIMARY KEY,
    fence   INTEGER NOT NULL CHECK (fence >= 1),
    worker  TEXT
) STRICT, WITHOUT ROWID;

CREATE TRIGGER tasks_leased_deleted AFTER DELETE ON tasks WHEN OLD.fence > 0 BEGIN
    INSERT OR REPLACE INTO lease_tombstones (task_id, fence, worker)
    VALUES (OLD.id, OLD.fence + (OLD.lease_expires IS NOT NULL), OLD.lease_worker);
END;
