//! The store: the contract's operations over a backend. Each method checks its
//! inputs with the rules of [`crate::rules`], then hands the storage work to the
//! backend (see `backend/mod.rs`), in this order, so that every surface reports the
//! same error for the same bad call.

#[cfg(feature = "tokio")]
mod future;
mod history;
mod leases;
mod plans;
mod tokens;

#[cfg(feature = "tokio")]
pub use future::Wait;
pub use leases::WaitCancel;

use std::path::Path;
use std::sync::Arc;

use crate::backend::{sqlite::Sqlite, Backend, Filter, PrefixOutcome};
use crate::error::{Error, Result};
use crate::model::{
    Deleted, ListQuery, NewTask, PrefixSet, QueryResult, Status, Summary, Task, TaskList,
    TaskPatch, TaskQuery,
};
use crate::options::StoreOptions;
use crate::rules::{patch, validate};

/// A backlog store over one SQLite file.
///
/// A `Store` is `Send + Sync`: share it between threads (for example in an `Arc`).
/// Reads (get, list, query, summary) run on connections of their own and never wait
/// for a writer; writes of one `Store` take turns on its writer connection, and each
/// waits at most the busy timeout from when it was called. Many processes (and many
/// `Store`s) may open the same file at once, and every write runs in an IMMEDIATE
/// transaction.
///
/// ```
/// use agent_backlog::{NewTask, Status, Store, TaskPatch};
///
/// let store = Store::open_in_memory()?;
/// let task = store.create_task("marketing-lead", NewTask::new("Write 3 LinkedIn posts").priority(3))?;
/// assert_eq!(task.id, "MKT-001");
///
/// let claimed = store.claim_next("marketing-lead")?.expect("one task is queued");
/// assert_eq!(claimed.status, Status::InProgress);
///
/// let done = store.update_task(
///     "marketing-lead",
///     &claimed.id,
///     TaskPatch::new().status(Status::Complete).result("Generated 3 LinkedIn posts..."),
/// )?;
/// assert!(done.completed.is_some());
/// assert_eq!(store.summary("marketing-lead")?.complete, 1);
/// # Ok::<(), agent_backlog::Error>(())
/// ```
pub struct Store {
    backend: Arc<dyn Backend>,
    /// Who this handle's writes are recorded as (SPEC §14).
    actor: Option<Arc<str>>,
}

pub(crate) fn not_found(agent_id: &str, task_id: &str) -> Error {
    Error::NotFound(format!(
        "task {task_id} is not in the backlog of {agent_id}"
    ))
}

fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(Option<u64>, u64)> {
    let limit = limit
        .map(|l| validate::non_negative("limit", l).map(|l| l as u64))
        .transpose()?;
    let offset = validate::non_negative("offset", offset.unwrap_or(0))? as u64;
    Ok((limit, offset))
}

impl Store {
    /// Opens (creating if needed) the store at `path` with the default options.
    ///
    /// `":memory:"` opens a private in-memory store. A `postgresql://` (or
    /// `postgres://`) URL opens the store on a PostgreSQL server, in the first schema
    /// of the connection's `search_path` (SPEC §16, docs/POSTGRES.md); the URL's own
    /// parameters are `pool_size` and `sslrootcert`. Anything else is a plain file
    /// path: `file:` URIs are not interpreted.
    ///
    /// ```
    /// use agent_backlog::Store;
    /// let store = Store::open_in_memory()?;
    /// # drop(store);
    /// // The same API on a server: only the string changes. A URL that cannot be
    /// // read is refused before anything is contacted.
    /// let err = Store::open("postgresql://agents@db.internal/backlog?pool_size=0").err().unwrap();
    /// assert_eq!(err.code(), "invalid_argument");
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens a private in-memory store (gone when the `Store` is dropped).
    pub fn open_in_memory() -> Result<Store> {
        Store::open_with(":memory:", StoreOptions::default())
    }

    /// Opens (creating if needed) the store at `path` with these options.
    ///
    /// Fails with a `storage` error when the file (or server) cannot be opened, is not
    /// an SQLite database, belongs to another application, or has a newer schema
    /// version (it is then left untouched). An older schema is migrated in one
    /// transaction (on PostgreSQL, one per step). On PostgreSQL the busy timeout is the
    /// connections' `lock_timeout`, and durability is the server's own.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref();
        if options.busy_timeout.as_millis() > i32::MAX as u128 {
            return Err(Error::invalid(format!(
                "busy_timeout must be at most {} ms, got {} ms",
                i32::MAX,
                options.busy_timeout.as_millis()
            )));
        }
        let text = path.to_string_lossy();
        if text.is_empty() {
            return Err(Error::invalid(
                "path must name a database file, or be \":memory:\"; got an empty path",
            ));
        }
        if text.contains('\0') {
            return Err(Error::invalid("path must not contain NUL characters"));
        }
        if let Some(actor) = &options.actor {
            validate::actor(actor)?;
        }
        let actor = options.actor.as_deref().map(Arc::from);
        let backend: Arc<dyn Backend> = if crate::backend::postgres::is_url(&text) {
            Arc::new(crate::backend::postgres::Postgres::open(&text, options)?)
        } else {
            Arc::new(Sqlite::open(path, options)?)
        };
        Ok(Store { backend, actor })
    }

    /// Another handle on the same store whose writes are recorded as `actor` in the
    /// history (SPEC §14), or as nobody with `None`: how a server records the actor of
    /// each request. The handles share their connections; closing one closes the store.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// let alice = store.with_actor(Some("alice"))?;
    /// let task = alice.create_task("ops", NewTask::new("Rotate keys"))?;
    /// let history = store.task_history("ops", &task.id)?;
    /// assert_eq!(history.events[0].actor.as_deref(), Some("alice"));
    /// assert!(store.with_actor(Some("")).is_err());
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn with_actor(&self, actor: Option<&str>) -> Result<Store> {
        if let Some(actor) = actor {
            validate::actor(actor)?;
        }
        Ok(Store {
            backend: Arc::clone(&self.backend),
            actor: actor.map(Arc::from),
        })
    }

    /// Who this handle's writes are recorded as in the history.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// The SQLite backend, for tests of its internals.
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> Option<&Sqlite> {
        self.backend.as_sqlite()
    }

    /// Closes the store. Later calls, of any kind, fail with a `storage` error.
    ///
    /// Closing twice is fine, and so is closing from several threads at once: each
    /// `close()` returns once the file is closed. Calls in flight finish first. In a
    /// child process forked after the store was opened, closing takes no lock and
    /// only lets go of the parent's connections, without touching them.
    pub fn close(&self) -> Result<()> {
        self.backend.close()
    }

    /// Adds a task to the agent's backlog and returns it (`POST /api/backlogs/{agent_id}`).
    ///
    /// The ID is the agent's prefix and next number; the first task fixes the prefix.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// let t1 = store.create_task("marketing-lead", NewTask::new("Write 3 LinkedIn posts"))?;
    /// let t2 = store.create_task("marketing-lead", NewTask::new("Audit competitor pricing pages"))?;
    /// assert_eq!((t1.id.as_str(), t2.id.as_str()), ("MKT-001", "MKT-002"));
    /// assert_eq!(t2.priority, 5);
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn create_task(&self, agent_id: &str, task: NewTask) -> Result<Task> {
        self.create_one(agent_id, None, task).map(|t| t.value)
    }

    /// Adds several tasks in one transaction: all of them or, on any error, none.
    ///
    /// The result lists the new tasks in the order given; `total` is their number.
    /// An item's `depends_on` may name an earlier item by its index
    /// ([`NewTask::depends_on_item`]), so a whole plan lands in one call.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// let batch = store.create_tasks("support-bot", vec![NewTask::new("a"), NewTask::new("b").priority(1)])?;
    /// assert_eq!(batch.total, 2);
    /// assert_eq!(batch.tasks[1].id, "SUP-002");
    /// assert!(store.create_tasks("support-bot", vec![NewTask::new("c"), NewTask::new(" ")]).is_err());
    /// assert_eq!(store.summary("support-bot")?.total, 2);
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn create_tasks(&self, agent_id: &str, tasks: Vec<NewTask>) -> Result<TaskList> {
        self.create_many(agent_id, None, tasks).map(|t| t.value)
    }

    /// One task of the agent's backlog (`GET /api/backlogs/{agent_id}/{task_id}`).
    pub fn get_task(&self, agent_id: &str, task_id: &str) -> Result<Task> {
        validate::agent_id(agent_id)?;
        validate::task_id(task_id)?;
        self.backend
            .get_task(agent_id, task_id)?
            .ok_or_else(|| not_found(agent_id, task_id))
    }

    /// Changes a task (`PATCH /api/backlogs/{agent_id}/{task_id}`) and returns it.
    ///
    /// Absent fields are unchanged. A status change follows the lifecycle table:
    /// a refused move is `invalid_transition` and nothing is written. `blocker` may be
    /// given only when the task is or becomes blocked, `result` only when it is or
    /// becomes complete. An empty patch returns the task as it is.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Status, Store, TaskPatch};
    /// let store = Store::open_in_memory()?;
    /// let task = store.create_task("design", NewTask::new("Logo"))?;
    /// let blocked = store.update_task("design", &task.id, TaskPatch::new().status(Status::Blocked).blocker("waiting for brand colors"))?;
    /// assert_eq!(blocked.blocker.as_deref(), Some("waiting for brand colors"));
    /// let err = store.update_task("design", &task.id, TaskPatch::new().status(Status::Complete)).unwrap_err();
    /// assert_eq!(err.code(), "invalid_transition");
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn update_task(&self, agent_id: &str, task_id: &str, patch: TaskPatch) -> Result<Task> {
        validate::agent_id(agent_id)?;
        validate::task_id(task_id)?;
        let checked = patch::check(patch)?;
        if checked.is_empty() {
            return self.get_task(agent_id, task_id);
        }
        self.backend
            .update_task(
                agent_id,
                task_id,
                &|task, now| checked.apply(task, now),
                self.actor(),
            )?
            .ok_or_else(|| not_found(agent_id, task_id))
    }

    /// Deletes a task for good (`DELETE /api/backlogs/{agent_id}/{task_id}`).
    /// Its number is never given again.
    pub fn delete_task(&self, agent_id: &str, task_id: &str) -> Result<Deleted> {
        validate::agent_id(agent_id)?;
        validate::task_id(task_id)?;
        if self.backend.delete_task(agent_id, task_id, self.actor())? {
            Ok(Deleted {
                deleted: task_id.to_owned(),
            })
        } else {
            Err(not_found(agent_id, task_id))
        }
    }

    /// The agent's backlog, optionally filtered by status and paged
    /// (`GET /api/backlogs/{agent_id}`). Tasks come by priority, then creation order;
    /// `total` counts every match, ignoring limit and offset.
    ///
    /// ```
    /// use agent_backlog::{ListQuery, NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// store.create_task("ops", NewTask::new("low").priority(9))?;
    /// store.create_task("ops", NewTask::new("high").priority(1))?;
    /// let page = store.list_tasks("ops", ListQuery::new().limit(1))?;
    /// assert_eq!((page.tasks[0].title.as_str(), page.total), ("high", 2));
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn list_tasks(&self, agent_id: &str, query: ListQuery) -> Result<TaskList> {
        self.backlog_page(agent_id, query.status, false, query.limit, query.offset)
    }

    /// A page of one agent's backlog: every task, those of a status, or (`ready`) the
    /// ready queue.
    pub(super) fn backlog_page(
        &self,
        agent_id: &str,
        status: Option<Status>,
        ready: bool,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<TaskList> {
        validate::agent_id(agent_id)?;
        let (limit, offset) = page(limit, offset)?;
        let (tasks, total) = self.backend.list(&Filter {
            agent_id: Some(agent_id),
            status,
            priority: None,
            ready,
            limit,
            offset,
        })?;
        Ok(TaskList {
            agent_id: agent_id.to_owned(),
            tasks,
            total,
        })
    }

    /// Tasks across all agents, optionally filtered by status, exact priority and
    /// agent, and paged (`GET /api/backlogs`). Order: priority, then creation order.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store, TaskQuery};
    /// let store = Store::open_in_memory()?;
    /// store.create_task("marketing-lead", NewTask::new("Write LinkedIn posts").priority(3))?;
    /// store.create_task("support-bot", NewTask::new("Draft FAQ responses").priority(2))?;
    /// let all = store.query_tasks(TaskQuery::new())?;
    /// assert_eq!(all.tasks[0].agent_id, "support-bot");
    /// assert_eq!(store.query_tasks(TaskQuery::new().priority(3))?.total, 1);
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn query_tasks(&self, query: TaskQuery) -> Result<QueryResult> {
        if let Some(agent_id) = &query.agent_id {
            validate::agent_id(agent_id)?;
        }
        let (limit, offset) = page(query.limit, query.offset)?;
        let (tasks, total) = self.backend.query(&Filter {
            agent_id: query.agent_id.as_deref(),
            status: query.status,
            priority: query.priority.map(validate::priority).transpose()?,
            ready: false,
            limit,
            offset,
        })?;
        Ok(QueryResult { tasks, total })
    }

    /// Counts of the agent's tasks by status (`GET /api/backlogs/{agent_id}/summary`).
    /// An agent with no tasks has all zeros.
    pub fn summary(&self, agent_id: &str) -> Result<Summary> {
        validate::agent_id(agent_id)?;
        self.backend.summary(agent_id)
    }

    /// Atomically moves the agent's first ready task — queued, every dependency
    /// complete (SPEC §13) — by priority, then creation order, to in_progress and
    /// returns it; `None` when nothing is ready.
    ///
    /// It runs inside an IMMEDIATE transaction, which holds the database's write lock:
    /// two claimers, in two threads or two processes, never get the same task.
    pub fn claim_next(&self, agent_id: &str) -> Result<Option<Task>> {
        validate::agent_id(agent_id)?;
        self.backend.claim_next(agent_id, self.actor())
    }

    /// Sets the prefix of the agent's task IDs before its first task.
    ///
    /// `conflict` when another agent holds the prefix, or when the agent already has
    /// tasks with another prefix (setting the prefix it already has is accepted).
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// store.set_prefix("growth-bot", "GRW")?;
    /// assert_eq!(store.create_task("growth-bot", NewTask::new("Plan"))?.id, "GRW-001");
    /// assert_eq!(store.set_prefix("other", "GRW").unwrap_err().code(), "conflict");
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn set_prefix(&self, agent_id: &str, prefix: &str) -> Result<PrefixSet> {
        validate::agent_id(agent_id)?;
        validate::prefix(prefix)?;
        match self.backend.set_prefix(agent_id, prefix, self.actor())? {
            PrefixOutcome::Set => Ok(PrefixSet {
                agent_id: agent_id.to_owned(),
                prefix: prefix.to_owned(),
            }),
            PrefixOutcome::HeldBy(holder) => Err(Error::Conflict(format!(
                "prefix {prefix} is held by agent {holder}; choose another prefix"
            ))),
            PrefixOutcome::FixedAt(held) => Err(Error::Conflict(format!(
                "the prefix of {agent_id} is fixed at {held} since its first task was created; it cannot change to {prefix}"
            ))),
        }
    }
}
