//! The SQLite backend: one file (or `:memory:`) through rusqlite's bundled SQLite.
//!
//! Split by family, as rusqlite splits its `Connection`: [`conn`] holds the
//! connections, [`tasks`] writes and reads single tasks, [`listing`] pages and counts,
//! [`claims`] takes the next task, [`agents`] numbers and prefixes, [`plans`] creates
//! with dependencies and idempotency keys and keeps the edges, [`leases`] leases, and
//! [`migrations`] the schema (SQL files under `migrations/`).

mod agents;
mod checkpoint;
mod claims;
mod conn;
mod events;
mod leases;
mod listing;
mod migrations;
mod plans;
mod tasks;
mod tokens;
#[allow(unsafe_code)]
mod vfs;
mod watch;

use std::path::Path;

use std::time::Instant;

use crate::auth::{NewToken, TokenRow};
use crate::backend::{
    Actor, Backend, Claimable, Created, EdgeOutcome, Filter, Grant, Key, LeaseRow, NewRow, Patcher,
    PrefixOutcome,
};
use crate::error::{Error, Result};
use crate::history::{AgentSummary, Event};
use crate::lease::Reaped;
use crate::model::{AgentTask, Summary, Task};
use crate::options::StoreOptions;
use crate::plan::DependencyGraph;
use crate::rules::history::Checked as EventsChecked;
use crate::rules::lease::{Terms, Token};

pub(crate) use migrations::LATEST;

/// A failure inside the backend: an SQLite error, or a rule's error
/// ([`crate::backend::Fail`]).
pub(crate) type Fail = crate::backend::Fail<rusqlite::Error>;

pub(crate) type SqlResult<T> = std::result::Result<T, Fail>;

impl From<rusqlite::Error> for Fail {
    fn from(err: rusqlite::Error) -> Self {
        Fail::Db(err)
    }
}

impl crate::backend::DbError for rusqlite::Error {
    fn into_error(self) -> Error {
        storage_error(self)
    }
}

/// The contract's error for an SQLite failure, saying what to do about it.
fn storage_error(err: rusqlite::Error) -> Error {
    use rusqlite::ffi::ErrorCode as C;
    // A stored value that cannot be read back as what the STRICT schema allows
    // (not UTF-8, a wrong type, out of range) means the file was damaged.
    if matches!(
        err,
        rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(..)
    ) {
        return Error::Storage {
            message: format!(
                "the database file is corrupt (a stored value cannot be read); restore it \
                 from a backup or open another file (SQLite: {err})"
            ),
            source: Some(Box::new(err)),
        };
    }
    let what = match err.sqlite_error_code() {
        Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => {
            "the database is busy: another connection held the write lock for longer than \
             the busy timeout; retry the call, or open the store with a longer busy_timeout"
        }
        Some(C::DiskFull) => {
            "the disk is full or the file reached its size limit; free space and retry"
        }
        Some(C::ReadOnly) => {
            "the database is read-only; open a file (and folder) this process can write"
        }
        Some(C::DatabaseCorrupt) => {
            "the database file is corrupt; restore it from a backup or open another file"
        }
        Some(C::NotADatabase) => {
            "the file is not an SQLite database; give the path of an agent-backlog database or a new file"
        }
        Some(C::CannotOpen) => {
            "the database file cannot be opened; check that the path and its folder exist and are accessible"
        }
        Some(C::PermissionDenied) => {
            "access to the database file was denied; check its permissions"
        }
        Some(C::SystemIoFailure) => {
            "reading or writing the database file failed (disk full, file size limit or an \
             I/O error); free space or raise the limit, then retry"
        }
        Some(C::ConstraintViolation) => {
            return Error::Internal(format!(
                "a stored invariant was about to be violated, which is a bug in agent-backlog; nothing was written ({err})"
            ))
        }
        _ => "SQLite failed",
    };
    Error::Storage {
        message: format!("{what} (SQLite: {err})"),
        source: Some(Box::new(err)),
    }
}

/// The contract's error for a failure of a write on `conn` (after its rollback).
///
/// A constraint that fails is a bug of this crate (`internal`) — unless the file is
/// damaged: a flipped bit in the text of a `CHECK`, or in a stored row, can make a
/// correct write break a constraint. So, only on a constraint failure, the file's
/// schema is compared with the one the migrations write and the file is checked
/// (`PRAGMA integrity_check`, which reads all of it); either finding is a `storage`
/// error saying the file is corrupt.
fn write_error(conn: &rusqlite::Connection, fail: Fail) -> Error {
    match fail {
        Fail::Db(err)
            if err.sqlite_error_code() == Some(rusqlite::ffi::ErrorCode::ConstraintViolation)
                && !(schema_is_ours(conn) && rows_check(conn)) =>
        {
            Error::Storage {
                message: format!(
                    "the database file is corrupt (a write broke a constraint, and the \
                     file's schema or rows are not what agent-backlog writes); restore it \
                     from a backup or open another file (SQLite: {err})"
                ),
                source: Some(Box::new(err)),
            }
        }
        other => Error::from(other),
    }
}

/// Whether the schema of the file on `conn` is the one the migrations write (on a
/// private in-memory database). A schema that cannot be read is not.
fn schema_is_ours(conn: &rusqlite::Connection) -> bool {
    fn schema(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<(String, Option<String>)>> {
        conn.prepare(
            "SELECT name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             ORDER BY name",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
    }
    let Ok(found) = schema(conn) else {
        return false;
    };
    let Ok(mut fresh) = rusqlite::Connection::open_in_memory() else {
        return true;
    };
    if migrations::migrate(&mut fresh).is_err() {
        return true;
    }
    schema(&fresh).map_or(true, |expected| expected == found)
}

/// Whether every page of the file reads, every row keeps its table's constraints and
/// every index holds what its table does (`PRAGMA integrity_check`: a damaged index
/// entry can send a correct write to the wrong row).
fn rows_check(conn: &rusqlite::Connection) -> bool {
    conn.query_row("PRAGMA integrity_check(1)", [], |r| r.get::<_, String>(0))
        .is_ok_and(|found| found == "ok")
}

/// The SQLite backend of a [`Store`](crate::Store).
pub(crate) struct Sqlite {
    conns: conn::Connections,
}

impl Sqlite {
    /// Opens (creating if needed) the file at `path`, or a private in-memory database
    /// for `":memory:"`.
    pub(crate) fn open(path: &Path, options: StoreOptions) -> Result<Sqlite> {
        Ok(Sqlite {
            conns: conn::Connections::open(path, options)?,
        })
    }
}

impl Backend for Sqlite {
    fn create_tasks(
        &self,
        agent_id: &str,
        rows: Vec<NewRow>,
        key: Option<Key<'_>>,
        actor: Actor<'_>,
    ) -> Result<Created> {
        if rows.is_empty() && key.is_none() {
            self.conns.check_open()?;
            return Ok(Created::New(Vec::new()));
        }
        self.conns
            .write(|tx| plans::create(tx, agent_id, rows, key, &crate::backend::now(), actor))
    }

    fn set_dependency(
        &self,
        agent_id: &str,
        task_id: &str,
        depends_on: &str,
        present: bool,
        actor: Actor<'_>,
    ) -> Result<EdgeOutcome> {
        self.conns
            .write(|tx| plans::set_edge(tx, agent_id, task_id, depends_on, present, actor))
    }

    fn get_dependencies(&self, agent_id: &str, task_id: &str) -> Result<Option<DependencyGraph>> {
        self.conns
            .snapshot(|tx| plans::graph(tx, agent_id, task_id))
    }

    fn get_task(&self, agent_id: &str, task_id: &str) -> Result<Option<Task>> {
        self.conns.read(|conn| tasks::load(conn, agent_id, task_id))
    }

    fn update_task(
        &self,
        agent_id: &str,
        task_id: &str,
        patch: &Patcher<'_>,
        actor: Actor<'_>,
    ) -> Result<Option<Task>> {
        self.conns
            .write(|tx| tasks::update(tx, agent_id, task_id, patch, actor))
    }

    fn delete_task(&self, agent_id: &str, task_id: &str, actor: Actor<'_>) -> Result<bool> {
        self.conns
            .write(|tx| tasks::delete(tx, agent_id, task_id, actor))
    }

    fn list(&self, filter: &Filter<'_>) -> Result<(Vec<Task>, u64)> {
        self.conns
            .snapshot(|tx| listing::page(tx, filter, tasks::task_from_row))
    }

    fn query(&self, filter: &Filter<'_>) -> Result<(Vec<AgentTask>, u64)> {
        self.conns.snapshot(|tx| {
            listing::page(tx, filter, |row| {
                Ok(AgentTask {
                    task: tasks::task_from_row(row)?,
                    agent_id: row.get(tasks::TASK_COLUMN_COUNT)?,
                })
            })
        })
    }

    fn summary(&self, agent_id: &str) -> Result<Summary> {
        self.conns.read(|conn| listing::summary(conn, agent_id))
    }

    fn claim_next(&self, agent_id: &str, actor: Actor<'_>) -> Result<Option<Task>> {
        self.conns
            .write(|tx| claims::claim_next(tx, agent_id, &crate::backend::now(), actor))
    }

    fn set_prefix(&self, agent_id: &str, prefix: &str, actor: Actor<'_>) -> Result<PrefixOutcome> {
        self.conns
            .write(|tx| agents::set_prefix(tx, agent_id, prefix, actor))
    }

    fn claim_lease(&self, agent_id: &str, grant: &Grant<'_>) -> Result<Option<(Task, LeaseRow)>> {
        self.conns.write(|tx| leases::claim(tx, agent_id, grant))
    }

    fn renew_lease(&self, token: &Token<'_>, lease_ms: Option<i64>) -> Result<LeaseRow> {
        self.conns.write(|tx| leases::renew(tx, token, lease_ms))
    }

    fn finish_lease(
        &self,
        token: &Token<'_>,
        patch: &Patcher<'_>,
        next: Option<Terms>,
    ) -> Result<(Task, Option<(Task, LeaseRow)>)> {
        self.conns
            .write(|tx| leases::finish(tx, token, patch, next))
    }

    fn return_lease(&self, token: &Token<'_>, patch: &Patcher<'_>) -> Result<Task> {
        self.conns.write(|tx| leases::give_back(tx, token, patch))
    }

    fn get_lease(&self, agent_id: &str, task_id: &str) -> Result<Option<Option<LeaseRow>>> {
        self.conns.read(|conn| leases::get(conn, agent_id, task_id))
    }

    fn reap_expired(&self, agent_id: Option<&str>, actor: Actor<'_>) -> Result<Reaped> {
        self.conns
            .write(|tx| leases::reap(tx, agent_id, crate::backend::now_ms(), actor))
    }

    fn task_history(&self, agent_id: &str, task_id: &str) -> Result<Option<Vec<Event>>> {
        self.conns
            .snapshot(|tx| events::history(tx, agent_id, task_id))
    }

    fn events(&self, query: &EventsChecked) -> Result<Vec<Event>> {
        self.conns.read(|conn| events::page(conn, query))
    }

    fn last_event_seq(&self) -> Result<i64> {
        self.conns.read(events::last_seq)
    }

    fn prune_events(&self, before: i64) -> Result<u64> {
        self.conns.write(|tx| events::prune(tx, before))
    }

    fn list_agents(&self, limit: Option<u64>, offset: u64) -> Result<(Vec<AgentSummary>, u64)> {
        self.conns.snapshot(|tx| events::agents(tx, limit, offset))
    }

    fn claimable(&self, agent_id: &str) -> Result<Claimable> {
        self.conns.snapshot(|tx| leases::claimable(tx, agent_id))
    }

    fn change_mark(&self) -> Result<u64> {
        self.conns.change_mark()
    }

    fn wait_change(&self, mark: &mut u64, until: Instant) -> Result<bool> {
        self.conns.wait_change(mark, until)
    }

    fn create_token(
        &self,
        new: &NewToken<'_>,
        hash_of: &dyn Fn(i64) -> [u8; 32],
    ) -> Result<Option<TokenRow>> {
        self.conns.write(|tx| tokens::create(tx, new, hash_of))
    }

    fn list_tokens(&self) -> Result<Vec<TokenRow>> {
        self.conns.read(tokens::list)
    }

    fn token(&self, id: i64) -> Result<Option<TokenRow>> {
        self.conns.read(|conn| tokens::token(conn, id))
    }

    fn revoke_token(&self, id: i64) -> Result<Option<TokenRow>> {
        self.conns.write(|tx| tokens::revoke(tx, id))
    }

    fn wake_waiters(&self) {
        self.conns.wake_waiters()
    }

    fn close(&self) -> Result<()> {
        self.conns.close()
    }

    #[cfg(test)]
    fn as_sqlite(&self) -> Option<&Sqlite> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
