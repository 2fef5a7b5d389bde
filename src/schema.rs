//! The database schema: an append-only list of migrations, versioned by
//! `PRAGMA user_version`, and marked as an agent-backlog file by `PRAGMA application_id`.
//!
//! Never edit a step that has shipped: append a new one. Opening a file runs every
//! missing step in one IMMEDIATE transaction; a file of a newer version is refused
//! before anything is written to it.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// `PRAGMA application_id` of an agent-backlog database: "ABLG".
pub const APPLICATION_ID: i32 = 0x41424C47;

/// The migrations, in order. Step `i` moves a file from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: agents with their prefix and counter, and tasks whose CHECK constraints
    // encode the invariants of the lifecycle, so no code path can store an impossible task.
    r#"
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
    "#,
    // v2: per-agent counts by status, kept in the agent's row inside each write
    // transaction, so summaries and totals never count rows; and the index of the
    // cross-agent listing. Status changes and deletes are counted by triggers. New
    // tasks (always queued) are counted by the statement that takes their numbers from
    // the same row (Store::take_numbers): one update per batch instead of a trigger
    // run per row, which cost 29% of a batched insert.
    r#"
    ALTER TABLE agents ADD COLUMN queued INTEGER NOT NULL DEFAULT 0 CHECK (queued >= 0);
    ALTER TABLE agents ADD COLUMN in_progress INTEGER NOT NULL DEFAULT 0 CHECK (in_progress >= 0);
    ALTER TABLE agents ADD COLUMN complete INTEGER NOT NULL DEFAULT 0 CHECK (complete >= 0);
    ALTER TABLE agents ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked >= 0);

    UPDATE agents SET
        queued = (SELECT count(*) FROM tasks t WHERE t.agent_id = agents.agent_id AND t.status = 'queued'),
        in_progress = (SELECT count(*) FROM tasks t WHERE t.agent_id = agents.agent_id AND t.status = 'in_progress'),
        complete = (SELECT count(*) FROM tasks t WHERE t.agent_id = agents.agent_id AND t.status = 'complete'),
        blocked = (SELECT count(*) FROM tasks t WHERE t.agent_id = agents.agent_id AND t.status = 'blocked');

    CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks BEGIN
        UPDATE agents SET
            queued = queued - (OLD.status = 'queued'),
            in_progress = in_progress - (OLD.status = 'in_progress'),
            complete = complete - (OLD.status = 'complete'),
            blocked = blocked - (OLD.status = 'blocked')
        WHERE agent_id = OLD.agent_id;
    END;

    CREATE TRIGGER tasks_counted_on_update AFTER UPDATE OF status ON tasks
        WHEN OLD.status IS NOT NEW.status
    BEGIN
        UPDATE agents SET
            queued = queued - (OLD.status = 'queued') + (NEW.status = 'queued'),
            in_progress = in_progress - (OLD.status = 'in_progress') + (NEW.status = 'in_progress'),
            complete = complete - (OLD.status = 'complete') + (NEW.status = 'complete'),
            blocked = blocked - (OLD.status = 'blocked') + (NEW.status = 'blocked')
        WHERE agent_id = NEW.agent_id;
    END;

    CREATE INDEX tasks_by_status ON tasks (status, priority);
    "#,
];

/// The schema version this library writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

fn versions(conn: &Connection) -> Result<(i64, i32)> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    Ok((version, app))
}

/// Refuses a file that is not ours or is newer than this library, without writing.
pub(crate) fn check(conn: &Connection) -> Result<i64> {
    let (version, app) = versions(conn)?;
    if app != 0 && app != APPLICATION_ID {
        return Err(Error::storage(format!(
            "the file is an SQLite database of another application (application_id {app:#x}), \
             not an agent-backlog database; give the path of a new file"
        )));
    }
    if version > LATEST {
        return Err(Error::storage(format!(
            "the database has schema version {version}, newer than the {LATEST} this version of \
             agent-backlog ({}) understands; upgrade agent-backlog to open it (the file was not modified)",
            env!("CARGO_PKG_VERSION")
        )));
    }
    if version == 0 {
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 {
            return Err(Error::storage(
                "the file is an SQLite database that agent-backlog did not create (it has tables \
                 but no agent-backlog schema); give the path of a new file",
            ));
        }
    }
    Ok(version)
}

/// Brings the file to [`LATEST`] in one IMMEDIATE transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, LATEST)
}

/// Brings the file to `target` (used by tests to build old versions).
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    if check(conn)? >= target {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the write lock.
    let version = check(&tx)?;
    for (i, step) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(version as usize)
    {
        tx.execute_batch(step).map_err(|e| {
            Error::storage(format!(
                "migrating the schema to version {} failed: {e}",
                i + 1
            ))
        })?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(())
}
