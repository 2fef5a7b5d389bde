//! The PostgreSQL backend (SPEC §16): the same store on a database server that many
//! hosts share, through the synchronous `postgres` driver (pure Rust, no libpq) and
//! rustls.
//!
//! Split as the SQLite backend is: [`pool`] holds the connections and transactions,
//! [`tasks`] creates, patches, claims, edges and listings, [`leases`] leases,
//! [`feed`] the change feed, the agents list and tokens, [`watch`] waiting, and
//! [`migrations`] the schema (SQL files under `migrations/`).
//!
//! What differs from SQLite, and why:
//! - Writers run side by side. A claim takes the first ready row no other claimer
//!   holds, in one statement (`FOR UPDATE SKIP LOCKED`); every other write locks the
//!   rows it changes as it reads them.
//! - The feed's seqs are given by the last statement of each write, which holds the
//!   feed's row until the commit, so that seqs still grow with commit order.
//! - Times come from the database's clock, read once as each write begins.
//! - A task's history is read by an index on the task, not a chain of links.

mod feed;
mod leases;
mod migrations;
mod pool;
mod tasks;
mod watch;

use std::sync::Arc;
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

pub(crate) use pool::{hide_password, is_url};

/// A failure inside the backend: a PostgreSQL error, or a rule's error
/// ([`crate::backend::Fail`]).
pub(crate) type Fail = crate::backend::Fail<postgres::Error>;

pub(crate) type PgResult<T> = std::result::Result<T, Fail>;

impl From<postgres::Error> for Fail {
    fn from(err: postgres::Error) -> Self {
        Fail::Db(err)
    }
}

impl crate::backend::DbError for postgres::Error {
    fn into_error(self) -> Error {
        storage_error(self)
    }
}

/// The contract's error for a failure to connect, saying what to check.
fn connect_error(shown: &str, err: postgres::Error) -> Error {
    if err.as_db_error().is_some() {
        return storage_error(err);
    }
    Error::Storage {
        message: format!(
            "cannot connect to PostgreSQL at {shown} ({err}); check that the server is \
             running and that the URL's host, port and sslmode are right"
        ),
        source: Some(Box::new(err)),
    }
}

/// The contract's error for a PostgreSQL failure, saying what to do about it.
fn storage_error(err: postgres::Error) -> Error {
    use postgres::error::SqlState as S;
    let Some(db) = err.as_db_error() else {
        return Error::Storage {
            message: format!(
                "the connection to the PostgreSQL server was lost ({err}); retry when it is \
                 back (a write under way when it was lost may or may not have been committed)"
            ),
            source: Some(Box::new(err)),
        };
    };
    let code = db.code().clone();
    let class = &code.code()[..2];
    let what = match &code {
        c if *c == S::LOCK_NOT_AVAILABLE => {
            "the database is busy: another connection held a lock this write needs for longer \
             than the busy timeout; retry the call, or open the store with a longer busy_timeout"
        }
        c if *c == S::T_R_SERIALIZATION_FAILURE || *c == S::T_R_DEADLOCK_DETECTED => {
            "the write kept conflicting with other writers until the busy timeout; retry the call"
        }
        c if *c == S::TOO_MANY_CONNECTIONS => {
            "the PostgreSQL server has no free connection; lower pool_size in the URL or raise \
             the server's max_connections"
        }
        c if *c == S::INSUFFICIENT_PRIVILEGE => {
            "the database user lacks a privilege the store needs; grant it (docs/POSTGRES.md \
             lists them)"
        }
        c if *c == S::INVALID_CATALOG_NAME => {
            "the database named in the URL does not exist; create it (createdb) or name another"
        }
        c if *c == S::DISK_FULL => "the PostgreSQL server's disk is full; free space and retry",
        c if *c == S::CHARACTER_NOT_IN_REPERTOIRE || *c == S::UNTRANSLATABLE_CHARACTER => {
            "PostgreSQL cannot store a value of this call: text must not contain NUL characters"
        }
        _ if class == "28" => {
            "the PostgreSQL server refused the login; check the user and password in the URL"
        }
        _ if class == "57" || class == "08" => {
            "the PostgreSQL server is shutting down, starting or unreachable; retry when it is back"
        }
        _ if class == "23" => {
            return Error::Internal(format!(
                "a stored invariant was about to be violated, which is a bug in agent-backlog; \
                 nothing was written ({err})"
            ))
        }
        _ => "PostgreSQL failed",
    };
    Error::Storage {
        message: format!(
            "{what} (PostgreSQL {}: {}{})",
            db.code().code(),
            db.message(),
            db.detail().map(|d| format!("; {d}")).unwrap_or_default()
        ),
        source: Some(Box::new(err)),
    }
}

/// The PostgreSQL backend of a [`Store`](crate::Store).
pub(crate) struct Postgres {
    pool: Arc<pool::Pool>,
    watch: watch::Watch,
}

impl Postgres {
    /// Connects to the database of `url`, migrating its schema.
    pub(crate) fn open(url: &str, options: StoreOptions) -> Result<Postgres> {
        let url = pool::Url::parse(url)?;
        let pool = Arc::new(pool::Pool::new(url, options.busy_timeout)?);
        let schema = pool.raw(migrations::migrate)?;
        Ok(Postgres {
            pool,
            watch: watch::Watch::new(&schema),
        })
    }

    /// Runs a write and wakes this store's waiters when it recorded events.
    fn write<T>(&self, f: impl FnMut(&mut pool::Tx<'_>) -> PgResult<T>) -> Result<T> {
        let (value, evented) = self.pool.write(f)?;
        if evented {
            self.watch.bump();
        }
        Ok(value)
    }
}

impl Backend for Postgres {
    fn create_tasks(
        &self,
        agent_id: &str,
        rows: Vec<NewRow>,
        key: Option<Key<'_>>,
        actor: Actor<'_>,
    ) -> Result<Created> {
        if rows.is_empty() && key.is_none() {
            return self.pool.read(|_| Ok(Created::New(Vec::new())));
        }
        self.write(|tx| tasks::create(tx, agent_id, rows.clone(), key, actor))
    }

    fn set_dependency(
        &self,
        agent_id: &str,
        task_id: &str,
        depends_on: &str,
        present: bool,
        actor: Actor<'_>,
    ) -> Result<EdgeOutcome> {
        self.write(|tx| tasks::set_edge(tx, agent_id, task_id, depends_on, present, actor))
    }

    fn get_dependencies(&self, agent_id: &str, task_id: &str) -> Result<Option<DependencyGraph>> {
        self.pool.snapshot(|tx| tasks::graph(tx, agent_id, task_id))
    }

    fn get_task(&self, agent_id: &str, task_id: &str) -> Result<Option<Task>> {
        self.pool.read(|tx| tasks::load(tx, agent_id, task_id))
    }

    fn update_task(
        &self,
        agent_id: &str,
        task_id: &str,
        patch: &Patcher<'_>,
        actor: Actor<'_>,
    ) -> Result<Option<Task>> {
        self.write(|tx| tasks::update(tx, agent_id, task_id, patch, actor))
    }

    fn delete_task(&self, agent_id: &str, task_id: &str, actor: Actor<'_>) -> Result<bool> {
        self.write(|tx| tasks::delete(tx, agent_id, task_id, actor))
    }

    fn list(&self, filter: &Filter<'_>) -> Result<(Vec<Task>, u64)> {
        self.pool.snapshot(|tx| {
            let (rows, total) = tasks::page(tx, filter)?;
            let tasks = rows
                .iter()
                .map(tasks::task_from)
                .collect::<PgResult<Vec<_>>>()?;
            Ok((tasks, total))
        })
    }

    fn query(&self, filter: &Filter<'_>) -> Result<(Vec<AgentTask>, u64)> {
        self.pool.snapshot(|tx| {
            let (rows, total) = tasks::page(tx, filter)?;
            let tasks = rows
                .iter()
                .map(|row| {
                    Ok(AgentTask {
                        task: tasks::task_from(row)?,
                        agent_id: row.try_get(tasks::TASK_COLUMN_COUNT)?,
                    })
                })
                .collect::<PgResult<Vec<_>>>()?;
            Ok((tasks, total))
        })
    }

    fn summary(&self, agent_id: &str) -> Result<Summary> {
        self.pool.read(|tx| tasks::summary(tx, agent_id))
    }

    fn claim_next(&self, agent_id: &str, actor: Actor<'_>) -> Result<Option<Task>> {
        self.write(|tx| tasks::claim_next(tx, agent_id, actor))
    }

    fn set_prefix(&self, agent_id: &str, prefix: &str, actor: Actor<'_>) -> Result<PrefixOutcome> {
        self.write(|tx| tasks::set_prefix(tx, agent_id, prefix, actor))
    }

    fn claim_lease(&self, agent_id: &str, grant: &Grant<'_>) -> Result<Option<(Task, LeaseRow)>> {
        self.write(|tx| leases::claim(tx, agent_id, grant))
    }

    fn renew_lease(&self, token: &Token<'_>, lease_ms: Option<i64>) -> Result<LeaseRow> {
        self.write(|tx| leases::renew(tx, token, lease_ms))
    }

    fn finish_lease(
        &self,
        token: &Token<'_>,
        patch: &Patcher<'_>,
        next: Option<Terms>,
    ) -> Result<(Task, Option<(Task, LeaseRow)>)> {
        self.write(|tx| leases::finish(tx, token, patch, next))
    }

    fn return_lease(&self, token: &Token<'_>, patch: &Patcher<'_>) -> Result<Task> {
        self.write(|tx| leases::give_back(tx, token, patch))
    }

    fn get_lease(&self, agent_id: &str, task_id: &str) -> Result<Option<Option<LeaseRow>>> {
        self.pool.read(|tx| leases::get(tx, agent_id, task_id))
    }

    fn reap_expired(&self, agent_id: Option<&str>, actor: Actor<'_>) -> Result<Reaped> {
        self.write(|tx| leases::reap(tx, agent_id, actor))
    }

    fn task_history(&self, agent_id: &str, task_id: &str) -> Result<Option<Vec<Event>>> {
        self.pool
            .snapshot(|tx| feed::history(tx, agent_id, task_id))
    }

    fn events(&self, query: &EventsChecked) -> Result<Vec<Event>> {
        self.pool.read(|tx| feed::page(tx, query))
    }

    fn last_event_seq(&self) -> Result<i64> {
        self.pool.read(feed::last_seq)
    }

    fn prune_events(&self, before: i64) -> Result<u64> {
        self.write(|tx| feed::prune(tx, before))
    }

    fn list_agents(&self, limit: Option<u64>, offset: u64) -> Result<(Vec<AgentSummary>, u64)> {
        self.pool.snapshot(|tx| feed::agents(tx, limit, offset))
    }

    fn claimable(&self, agent_id: &str) -> Result<Claimable> {
        self.pool.read(|tx| leases::claimable(tx, agent_id))
    }

    fn change_mark(&self) -> Result<u64> {
        self.watch.mark(&self.pool)
    }

    fn wait_change(&self, mark: &mut u64, until: Instant) -> Result<bool> {
        if self.pool.is_closed() {
            return Err(Error::storage("the store is closed; open it again"));
        }
        self.watch.wait(&self.pool, mark, until)
    }

    fn create_token(
        &self,
        new: &NewToken<'_>,
        hash_of: &dyn Fn(i64) -> [u8; 32],
    ) -> Result<Option<TokenRow>> {
        self.write(|tx| feed::create_token(tx, new, hash_of))
    }

    fn list_tokens(&self) -> Result<Vec<TokenRow>> {
        self.pool.read(feed::list_tokens)
    }

    fn token(&self, id: i64) -> Result<Option<TokenRow>> {
        self.pool.read(|tx| feed::token(tx, id))
    }

    fn revoke_token(&self, id: i64) -> Result<Option<TokenRow>> {
        self.write(|tx| feed::revoke_token(tx, id))
    }

    fn wake_waiters(&self) {
        self.watch.bump();
    }

    fn close(&self) -> Result<()> {
        self.pool.close();
        self.watch.stop();
        Ok(())
    }
}
