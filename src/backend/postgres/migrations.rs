//! The PostgreSQL schema and its versions (SQL files under `migrations/`).
//!
//! The store lives in the first schema of the connection's `search_path` (`public`
//! unless the URL says otherwise, e.g. `?options=-csearch_path%3Dteam_a`), which is
//! created when it does not exist. Its version is the one row of
//! `agent_backlog_version`. Opening runs each missing step in a transaction of its
//! own, under an advisory lock, so that stores opened at once migrate once; a newer
//! version than this build knows is refused with nothing changed, and so is a schema
//! that holds a `tasks` table of another application.

use postgres::error::SqlState;
use postgres::Client;

use super::{Fail, PgResult};
use crate::error::Error;

/// The steps, in order: step `i` brings the schema to version `i + 1`.
const STEPS: &[&str] = &[
    include_str!("migrations/0001_schema.sql"),
    include_str!("migrations/0002_counts_by_session.sql"),
    include_str!("migrations/0003_task_checks_in_one_function.sql"),
    include_str!("migrations/0004_agent_ids_in_byte_order.sql"),
    include_str!("migrations/0005_deleted_tasks.sql"),
];

/// The schema version this build writes.
pub(crate) const LATEST: i64 = STEPS.len() as i64;

/// The advisory lock that migrations of any store on the server take.
const LOCK: i64 = 7_236_115_115;

/// Migrates the store's schema to [`LATEST`] and returns the schema's name.
pub(super) fn migrate(client: &mut Client) -> PgResult<String> {
    let schema = ensure_schema(client)?;
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])?;
        let version = version(&mut tx)?;
        if version > LATEST {
            return Err(Fail::Rule(Error::storage(format!(
                "the database's schema {schema:?} is at version {version} of agent-backlog's \
                 PostgreSQL schema, newer than this build knows ({LATEST}); upgrade \
                 agent-backlog to open it (nothing was changed)"
            ))));
        }
        if version == LATEST {
            tx.commit()?;
            return Ok(schema);
        }
        if version == 0 {
            let foreign: bool = tx
                .query_one("SELECT to_regclass('tasks') IS NOT NULL", &[])?
                .try_get(0)?;
            if foreign {
                return Err(Fail::Rule(Error::storage(format!(
                    "the schema {schema:?} holds a tasks table that is not agent-backlog's; \
                     open another database, or another schema with \
                     ?options=-csearch_path%3Dname in the URL (nothing was changed)"
                ))));
            }
            tx.batch_execute(
                "CREATE TABLE agent_backlog_version (
                     one integer NOT NULL PRIMARY KEY CHECK (one = 1),
                     version bigint NOT NULL)",
            )?;
            tx.execute("INSERT INTO agent_backlog_version VALUES (1, 0)", &[])?;
        }
        tx.batch_execute(STEPS[version as usize])?;
        tx.execute(
            "UPDATE agent_backlog_version SET version = $1 WHERE one = 1",
            &[&(version + 1)],
        )?;
        tx.commit()?;
    }
}

fn version(tx: &mut postgres::Transaction<'_>) -> PgResult<i64> {
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass('agent_backlog_version') IS NOT NULL",
            &[],
        )?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    Ok(tx
        .query_one(
            "SELECT version FROM agent_backlog_version WHERE one = 1",
            &[],
        )?
        .try_get(0)?)
}

/// The schema the store lives in: the current one, or the first of the search path,
/// created when missing.
fn ensure_schema(client: &mut Client) -> PgResult<String> {
    if let Some(schema) = client
        .query_one("SELECT current_schema()::text", &[])?
        .try_get::<_, Option<String>>(0)?
    {
        return Ok(schema);
    }
    let path: String = client
        .query_one("SELECT current_setting('search_path')", &[])?
        .try_get(0)?;
    let first = path
        .split(',')
        .map(|s| s.trim().trim_matches('"'))
        .find(|s| !s.is_empty() && *s != "$user")
        .ok_or_else(|| {
            Fail::Rule(Error::storage(format!(
                "the connection's search_path ({path:?}) names no schema to keep the store in; \
                 set one with ?options=-csearch_path%3Dname in the URL"
            )))
        })?
        .to_owned();
    let quoted = format!("\"{}\"", first.replace('"', "\"\""));
    match client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}")) {
        // Two sessions creating the schema at once: IF NOT EXISTS looks before it
        // inserts, so the second can fail on the catalog's unique index (or as a
        // duplicate schema). The schema is there either way.
        Err(e)
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                || e.code() == Some(&SqlState::DUPLICATE_SCHEMA) => {}
        other => other?,
    }
    Ok(first)
}
