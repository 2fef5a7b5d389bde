//! The database schema: an append-only list of migrations, versioned by
//! `PRAGMA user_version`, and marked as an agent-backlog file by `PRAGMA application_id`.
//!
//! Never edit a step that has shipped: append a new one. Opening a file runs every
//! missing step in one IMMEDIATE transaction; a file of a newer version is refused
//! before anything is written to it.

use rusqlite::{Connection, TransactionBehavior};

use super::{Fail, SqlResult};
use crate::error::Error;

/// `PRAGMA application_id` of an agent-backlog database: "ABLG".
pub const APPLICATION_ID: i32 = 0x41424C47;

/// The migrations, in order. Step `i` moves a file from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_tasks.sql"),
    include_str!("migrations/0002_counts.sql"),
    include_str!("migrations/0003_prefix_bases.sql"),
    include_str!("migrations/0004_leases.sql"),
    include_str!("migrations/0005_priority_first.sql"),
    include_str!("migrations/0006_dependencies.sql"),
    include_str!("migrations/0007_events.sql"),
    include_str!("migrations/0008_tokens.sql"),
    include_str!("migrations/0009_no_temporary_btrees.sql"),
];

/// The schema version this library writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

fn versions(conn: &Connection) -> SqlResult<(i64, i32)> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    Ok((version, app))
}

fn refused(message: impl Into<String>) -> Fail {
    Error::storage(message).into()
}

/// Refuses a file that is not ours or is newer than this library, without writing.
pub(crate) fn check(conn: &Connection) -> SqlResult<i64> {
    let (version, app) = versions(conn)?;
    if app != 0 && app != APPLICATION_ID {
        return Err(refused(format!(
            "the file is an SQLite database of another application (application_id {app:#x}), \
             not an agent-backlog database; give the path of a new file"
        )));
    }
    if version > LATEST {
        return Err(refused(format!(
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
            return Err(refused(
                "the file is an SQLite database that agent-backlog did not create (it has tables \
                 but no agent-backlog schema); give the path of a new file",
            ));
        }
    }
    Ok(version)
}

/// Brings the file to [`LATEST`] in one IMMEDIATE transaction.
pub(crate) fn migrate(conn: &mut Connection) -> SqlResult<()> {
    migrate_to(conn, LATEST)
}

/// Brings the file to `target` (used by tests to build old versions).
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> SqlResult<()> {
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
