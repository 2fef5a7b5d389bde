//! The store: one SQLite file (or `:memory:`) and the operations of the contract.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior,
};

use crate::checkpoint::Checkpointer;
use crate::error::{Error, Result};
use crate::lifecycle::{self, State};
use crate::model::{
    AgentTask, Deleted, ListQuery, NewTask, PrefixSet, QueryResult, Status, Summary, Task,
    TaskList, TaskPatch, TaskQuery,
};
use crate::prefix;
use crate::request::in_batch;
use crate::schema;
use crate::validate;

/// How durable an acknowledged write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL` (the default): an acknowledged write survives any crash of
    /// the process; the last writes before a power loss or OS crash may be rolled back
    /// (the file stays consistent).
    #[default]
    Normal,
    /// `synchronous=FULL`: an acknowledged write also survives power loss and OS
    /// crashes, at the cost of an fsync on every commit.
    Full,
}

/// Settings for [`Store::open_with`].
///
/// ```
/// use std::time::Duration;
/// use agent_backlog::{Durability, Store, StoreOptions};
/// let options = StoreOptions { busy_timeout: Duration::from_secs(30), durability: Durability::Full };
/// let store = Store::open_with(":memory:", options)?;
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a write waits for another connection's write lock before failing with
    /// a `storage` error. Default: 5 seconds.
    pub busy_timeout: Duration,
    /// See [`Durability`]. Default: [`Durability::Normal`].
    pub durability: Durability,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Normal,
        }
    }
}

/// A backlog store over one SQLite file.
///
/// A `Store` is `Send + Sync`: share it between threads (for example in an `Arc`).
/// Calls on one `Store` are serialized; many processes (and many `Store`s) may open
/// the same file at once, and every write runs in an IMMEDIATE transaction.
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
    conn: Mutex<Option<Connection>>,
    /// The background checkpoint thread of a file store (none in memory).
    checkpointer: Mutex<Option<Checkpointer>>,
    pid: u32,
}

const TASK_COLUMNS: &str =
    "id, title, description, priority, status, created, started, completed, result, blocker";
const TASK_COLUMN_COUNT: usize = 10;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Drop for Store {
    fn drop(&mut self) {
        // Errors on close cannot be reported from a drop; `close()` reports them.
        let _ = self.close();
    }
}

/// Reads the task columns, in `TASK_COLUMNS` order, from the start of the row.
fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = row.get(4)?;
    let status = status.parse::<Status>().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            format!("unknown status {status:?} in the database").into(),
        )
    })?;
    let priority: u8 = row.get(3)?;
    if !(1..=10).contains(&priority) {
        return Err(rusqlite::Error::IntegralValueOutOfRange(3, priority.into()));
    }
    Ok(Task {
        id: row.get(0)?,
        title: row.get(1)?,
        description: row.get(2)?,
        priority,
        status,
        created: row.get(5)?,
        started: row.get(6)?,
        completed: row.get(7)?,
        result: row.get(8)?,
        blocker: row.get(9)?,
    })
}

fn not_found(agent_id: &str, task_id: &str) -> Error {
    Error::NotFound(format!(
        "task {task_id} is not in the backlog of {agent_id}"
    ))
}

fn format_id(prefix: &str, number: i64) -> String {
    format!("{prefix}-{number:03}")
}

/// Validated values of a create body.
struct ValidTask {
    title: String,
    description: Option<String>,
    priority: u8,
}

fn valid_task(task: NewTask) -> Result<ValidTask> {
    let title = validate::title(&task.title)?;
    if let Some(d) = &task.description {
        validate::description(d)?;
    }
    let priority = match task.priority {
        Some(p) => validate::priority(p)?,
        None => 5,
    };
    Ok(ValidTask {
        title,
        description: task.description,
        priority,
    })
}

fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64)> {
    let limit = match limit {
        Some(l) => validate::non_negative("limit", l)?,
        None => -1, // no limit
    };
    let offset = validate::non_negative("offset", offset.unwrap_or(0))?;
    Ok((limit, offset))
}

/// The filter and page of a listing. Only fixed SQL fragments are put together;
/// every value is a bound parameter.
struct Filter<'a> {
    agent_id: Option<&'a str>,
    status: Option<Status>,
    priority: Option<u8>,
    /// -1 for no limit.
    limit: i64,
    offset: i64,
}

impl Filter<'_> {
    /// The statuses listed: the one asked for, or all four.
    fn statuses(&self) -> Vec<Status> {
        match self.status {
            Some(status) => vec![status],
            None => Status::ALL.to_vec(),
        }
    }

    /// One page in priority, then creation order. Without a status filter it is a
    /// merge of one indexed arm per status, so a page reads about `limit + offset`
    /// index entries per status however large the backlog is.
    fn page_sql(&self) -> String {
        let mut extra = String::new();
        if self.agent_id.is_some() {
            extra.push_str(" AND agent_id = :agent_id");
        }
        if self.priority.is_some() {
            extra.push_str(" AND priority = :priority");
        }
        let arms: Vec<String> = self
            .statuses()
            .into_iter()
            .map(|status| {
                format!(
                    "SELECT {TASK_COLUMNS}, agent_id, seq FROM tasks WHERE status = '{status}'{extra}"
                )
            })
            .collect();
        format!(
            "{} ORDER BY priority, seq LIMIT :limit OFFSET :offset",
            arms.join(" UNION ALL ")
        )
    }

    /// The number of matches: from the per-agent counters, or, for a priority filter
    /// (which has no counter), from the matching index entries.
    fn count_sql(&self) -> String {
        let agent = if self.agent_id.is_some() {
            " AND agent_id = :agent_id"
        } else {
            ""
        };
        if self.priority.is_some() {
            let statuses: Vec<String> = self.statuses().iter().map(|s| format!("'{s}'")).collect();
            format!(
                "SELECT count(*) FROM tasks WHERE status IN ({}) AND priority = :priority{agent}",
                statuses.join(", ")
            )
        } else {
            let counted = match self.status {
                Some(status) => status.as_str(),
                None => "queued + in_progress + complete + blocked",
            };
            format!("SELECT coalesce(sum({counted}), 0) FROM agents WHERE 1{agent}")
        }
    }

    fn args(&self) -> Vec<(&str, &dyn rusqlite::ToSql)> {
        let mut args: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
        if let Some(agent_id) = &self.agent_id {
            args.push((":agent_id", agent_id));
        }
        if let Some(priority) = &self.priority {
            args.push((":priority", priority));
        }
        args
    }

    /// The page of matching rows, mapped by `map`, and the total of matches, read in
    /// one snapshot.
    fn run<T>(
        &self,
        tx: &Transaction<'_>,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<(Vec<T>, u64)> {
        let mut args = self.args();
        let total: i64 = tx
            .prepare_cached(&self.count_sql())?
            .query_row(args.as_slice(), |r| r.get(0))?;
        args.push((":limit", &self.limit));
        args.push((":offset", &self.offset));
        let rows = tx
            .prepare_cached(&self.page_sql())?
            .query_map(args.as_slice(), map)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total as u64))
    }
}

/// Waits for another connection's lock, up to `timeout`, polling often.
///
/// SQLite's own handler sleeps 1, 2, 5, 10 … 100 ms between tries: while a process
/// sleeps, the lock it waits for is usually released and taken again many times
/// (a write holds it for a fraction of a millisecond), so several processes sharing
/// one file spent most of their time asleep. This one backs off from 20 µs to 1 ms.
fn busy_handler(timeout: Duration) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = std::time::Instant::now();
    move |tries: i32| {
        if tries == 0 {
            since = std::time::Instant::now();
        }
        let waited = since.elapsed();
        if waited >= timeout {
            return false;
        }
        let backoff = Duration::from_micros(20 << tries.clamp(0, 6)).min(Duration::from_millis(1));
        std::thread::sleep(backoff.min(timeout - waited));
        true
    }
}

/// The agent's first queued task, by priority then creation order, and its row.
fn next_queued_sql() -> String {
    format!(
        "SELECT {TASK_COLUMNS}, seq FROM tasks WHERE agent_id = ?1 AND status = 'queued'
         ORDER BY priority, seq LIMIT 1"
    )
}

impl Store {
    /// Opens (creating if needed) the store at `path` with the default options.
    ///
    /// `":memory:"` opens a private in-memory store. The path is a plain file path:
    /// `file:` URIs are not interpreted.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens a private in-memory store (gone when the `Store` is dropped).
    pub fn open_in_memory() -> Result<Store> {
        Store::open_with(":memory:", StoreOptions::default())
    }

    /// Opens (creating if needed) the store at `path` with these options.
    ///
    /// Fails with a `storage` error when the file cannot be opened, is not an SQLite
    /// database, belongs to another application, or has a newer schema version (it is
    /// then left untouched). An older schema is migrated in one transaction.
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
        // No SQLITE_OPEN_URI; and since the bundled SQLite is built with SQLITE_USE_URI,
        // a relative name that starts with "file:" is made "./file:…" so that it stays a
        // plain file name (a URI could switch locking off or open another database).
        let plain;
        let path = if text.starts_with("file:") {
            plain = Path::new(".").join(path);
            plain.as_path()
        } else {
            path
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| {
            let err = Error::from(e);
            Error::storage(format!(
                "cannot open the database at {}: {err}",
                path.display()
            ))
        })?;
        conn.busy_handler(Some(busy_handler(options.busy_timeout)))?;
        conn.set_prepared_statement_cache_capacity(64);
        // Query planner stability: without it, a statement whose plan looked at a bound
        // value (as the bundled SQLite's planner does for `agent_id = ?` and `LIMIT ?`)
        // is re-prepared each time it is rebound, which more than doubled the cost of a
        // claim. Every plan here is chosen for the indexes, not for the values.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        // Refuse a foreign or newer file before anything (even WAL mode) is written to it.
        schema::check(&conn)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(Error::storage(format!(
                "the database could not be switched to WAL mode (it is in {mode} mode); \
                 use a local file system that supports shared memory"
            )));
        }
        let synchronous = match options.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        let checkpointer = if mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)?;
            Some(Checkpointer::start(
                &mut conn,
                path.to_path_buf(),
                flags,
                options.busy_timeout,
            )?)
        } else {
            None
        };
        Ok(Store {
            conn: Mutex::new(Some(conn)),
            checkpointer: Mutex::new(checkpointer),
            pid: std::process::id(),
        })
    }

    /// Closes the store. Later calls fail with a `storage` error; closing twice is fine.
    ///
    /// In a child process forked after the store was opened, closing only lets go of
    /// the parent's connection, without touching it.
    pub fn close(&self) -> Result<()> {
        let conn = self.lock().take();
        let checkpointer = self
            .checkpointer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if std::process::id() != self.pid {
            std::mem::forget(conn);
            if let Some(checkpointer) = checkpointer {
                checkpointer.forget();
            }
            return Ok(());
        }
        // Closing the connection drops its commit hook, which stops the checkpointer.
        let closed = match conn {
            Some(conn) => conn.close().map_err(|(_, e)| Error::from(e)),
            None => Ok(()),
        };
        if let Some(checkpointer) = checkpointer {
            checkpointer.join();
        }
        closed
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic inside an operation (caught at the C or Python boundary) poisons the
        // mutex; its transaction was rolled back when it unwound, so the connection is fine.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        if std::process::id() != self.pid {
            return Err(Error::storage(
                "this store was opened in a parent process before fork(); open a new store in this process",
            ));
        }
        let mut guard = self.lock();
        let conn = guard
            .as_mut()
            .ok_or_else(|| Error::storage("the store is closed; open it again to use it"))?;
        f(conn)
    }

    /// Runs `f` in an IMMEDIATE transaction and commits it when `f` succeeds.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    /// Runs `f` in a read transaction, so that its statements see one snapshot.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    /// Takes `count` consecutive task numbers for `agent_id`, registering the agent and
    /// deriving its prefix on its first task, and counts the `count` tasks about to be
    /// inserted as queued (see the schema). Returns the prefix and the first number.
    fn take_numbers(tx: &Transaction<'_>, agent_id: &str, count: i64) -> Result<(String, i64)> {
        let updated = tx
            .prepare_cached(
                "UPDATE agents SET next_number = next_number + ?2, queued = queued + ?2
                 WHERE agent_id = ?1",
            )?
            .execute(params![agent_id, count])?;
        if updated == 1 {
            let (prefix, next): (String, i64) = tx
                .prepare_cached("SELECT prefix, next_number FROM agents WHERE agent_id = ?1")?
                .query_row([agent_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            return Ok((prefix, next - count));
        }
        let base = prefix::derive_prefix(agent_id);
        let mut insert = tx.prepare_cached(
            "INSERT INTO agents (agent_id, prefix, next_number, queued) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (prefix) DO NOTHING",
        )?;
        for n in 1.. {
            let candidate = prefix::candidate(&base, n);
            if insert.execute(params![agent_id, candidate, 1 + count, count])? == 1 {
                return Ok((candidate, 1));
            }
        }
        unreachable!("an unbounded range always yields a free prefix")
    }

    fn insert(
        tx: &Transaction<'_>,
        agent_id: &str,
        id: String,
        task: ValidTask,
        created: &str,
    ) -> Result<Task> {
        tx.prepare_cached(
            "INSERT INTO tasks (id, agent_id, title, description, priority, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            id,
            agent_id,
            task.title,
            task.description,
            task.priority,
            created
        ])?;
        Ok(Task {
            id,
            title: task.title,
            description: task.description,
            priority: task.priority,
            status: Status::Queued,
            created: created.to_owned(),
            started: None,
            completed: None,
            result: None,
            blocker: None,
        })
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
        validate::agent_id(agent_id)?;
        let task = valid_task(task)?;
        self.write(|tx| {
            let (prefix, number) = Self::take_numbers(tx, agent_id, 1)?;
            Self::insert(tx, agent_id, format_id(&prefix, number), task, &now())
        })
    }

    /// Adds several tasks in one transaction: all of them or, on any error, none.
    ///
    /// The result lists the new tasks in the order given; `total` is their number.
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
        validate::agent_id(agent_id)?;
        if tasks.len() > validate::MAX_BATCH_TASKS {
            return Err(Error::invalid(format!(
                "a batch holds at most {} tasks, got {}; split it into several calls",
                validate::MAX_BATCH_TASKS,
                tasks.len()
            )));
        }
        let tasks = tasks
            .into_iter()
            .enumerate()
            .map(|(i, t)| valid_task(t).map_err(|e| in_batch(i, e)))
            .collect::<Result<Vec<_>>>()?;
        if tasks.is_empty() {
            return Ok(TaskList {
                agent_id: agent_id.to_owned(),
                tasks: Vec::new(),
                total: 0,
            });
        }
        self.write(|tx| {
            let (prefix, first) = Self::take_numbers(tx, agent_id, tasks.len() as i64)?;
            let created = now();
            let tasks = tasks
                .into_iter()
                .zip(first..)
                .map(|(task, number)| {
                    Self::insert(tx, agent_id, format_id(&prefix, number), task, &created)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(TaskList {
                agent_id: agent_id.to_owned(),
                total: tasks.len() as u64,
                tasks,
            })
        })
    }

    /// One task of the agent's backlog (`GET /api/backlogs/{agent_id}/{task_id}`).
    pub fn get_task(&self, agent_id: &str, task_id: &str) -> Result<Task> {
        validate::agent_id(agent_id)?;
        validate::task_id(task_id)?;
        self.with_conn(|conn| Self::load(conn, agent_id, task_id))
    }

    fn load(conn: &Connection, agent_id: &str, task_id: &str) -> Result<Task> {
        conn.prepare_cached(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1 AND agent_id = ?2"
        ))?
        .query_row(params![task_id, agent_id], task_from_row)
        .optional()?
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
        let title = patch.title.as_deref().map(validate::title).transpose()?;
        let priority = patch.priority.map(validate::priority).transpose()?;
        if let Some(Some(d)) = &patch.description {
            validate::description(d)?;
        }
        if let Some(Some(b)) = &patch.blocker {
            validate::blocker(b)?;
        }
        if let Some(Some(r)) = &patch.result {
            validate::result(r)?;
        }
        if patch.is_empty() {
            return self.get_task(agent_id, task_id);
        }
        self.write(|tx| {
            let mut task = Self::load(tx, agent_id, task_id)?;
            let target = patch.status.unwrap_or(task.status);
            if !lifecycle::can_move(task.status, target) {
                return Err(Error::InvalidTransition(lifecycle::refusal(
                    task_id,
                    task.status,
                    target,
                )));
            }
            let mut state = State {
                status: task.status,
                started: task.started.take(),
                completed: task.completed.take(),
                result: task.result.take(),
                blocker: task.blocker.take(),
            };
            lifecycle::apply(&mut state, target, &now());
            match patch.blocker {
                Some(Some(blocker)) if target == Status::Blocked => state.blocker = Some(blocker),
                Some(Some(_)) => {
                    return Err(Error::invalid(format!(
                        "blocker can only be given when the task is or becomes blocked, and {task_id} would be {target}; send \"status\": \"blocked\" with it"
                    )))
                }
                Some(None) if target == Status::Blocked => {
                    return Err(Error::invalid(format!(
                        "blocker cannot be cleared while {task_id} is blocked; give a new reason, or move it to queued or in_progress"
                    )))
                }
                Some(None) | None => {}
            }
            if target == Status::Blocked && state.blocker.is_none() {
                return Err(Error::invalid(format!(
                    "blocker is required to block {task_id}: give the reason in \"blocker\""
                )));
            }
            match patch.result {
                Some(Some(result)) if target == Status::Complete => state.result = Some(result),
                Some(Some(_)) => {
                    return Err(Error::invalid(format!(
                        "result can only be given when the task is or becomes complete, and {task_id} would be {target}; send \"status\": \"complete\" with it"
                    )))
                }
                Some(None) => state.result = None,
                None => {}
            }
            if let Some(title) = title {
                task.title = title;
            }
            if let Some(priority) = priority {
                task.priority = priority;
            }
            if let Some(description) = patch.description {
                task.description = description;
            }
            debug_assert!(lifecycle::holds(&state), "{state:?}");
            task.status = state.status;
            task.started = state.started;
            task.completed = state.completed;
            task.result = state.result;
            task.blocker = state.blocker;
            tx.prepare_cached(
                "UPDATE tasks SET title = ?2, description = ?3, priority = ?4, status = ?5,
                 started = ?6, completed = ?7, result = ?8, blocker = ?9 WHERE id = ?1",
            )?
            .execute(params![
                task.id,
                task.title,
                task.description,
                task.priority,
                task.status.as_str(),
                task.started,
                task.completed,
                task.result,
                task.blocker
            ])?;
            Ok(task)
        })
    }

    /// Deletes a task for good (`DELETE /api/backlogs/{agent_id}/{task_id}`).
    /// Its number is never given again.
    pub fn delete_task(&self, agent_id: &str, task_id: &str) -> Result<Deleted> {
        validate::agent_id(agent_id)?;
        validate::task_id(task_id)?;
        self.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM tasks WHERE id = ?1 AND agent_id = ?2")?
                .execute(params![task_id, agent_id])?;
            if n == 0 {
                return Err(not_found(agent_id, task_id));
            }
            Ok(Deleted {
                deleted: task_id.to_owned(),
            })
        })
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
        validate::agent_id(agent_id)?;
        let (limit, offset) = page(query.limit, query.offset)?;
        let filter = Filter {
            agent_id: Some(agent_id),
            status: query.status,
            priority: None,
            limit,
            offset,
        };
        let (tasks, total) = self.read(|tx| filter.run(tx, task_from_row))?;
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
        let filter = Filter {
            agent_id: query.agent_id.as_deref(),
            status: query.status,
            priority: query.priority.map(validate::priority).transpose()?,
            limit,
            offset,
        };
        let (tasks, total) = self.read(|tx| {
            filter.run(tx, |row| {
                Ok(AgentTask {
                    task: task_from_row(row)?,
                    agent_id: row.get(TASK_COLUMN_COUNT)?,
                })
            })
        })?;
        Ok(QueryResult { tasks, total })
    }

    /// Counts of the agent's tasks by status (`GET /api/backlogs/{agent_id}/summary`).
    /// An agent with no tasks has all zeros.
    pub fn summary(&self, agent_id: &str) -> Result<Summary> {
        validate::agent_id(agent_id)?;
        self.with_conn(|conn| {
            let counts = conn
                .prepare_cached(
                    "SELECT queued, in_progress, complete, blocked FROM agents WHERE agent_id = ?1",
                )?
                .query_row([agent_id], |r| {
                    Ok([r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
                })
                .optional()?
                .unwrap_or_default()
                .map(|n| n as u64);
            let [queued, in_progress, complete, blocked] = counts;
            Ok(Summary {
                queued,
                in_progress,
                complete,
                blocked,
                total: queued + in_progress + complete + blocked,
            })
        })
    }

    /// Atomically moves the agent's first queued task (by priority, then creation
    /// order) to in_progress and returns it; `None` when nothing is queued.
    ///
    /// It runs inside an IMMEDIATE transaction, which holds the database's write lock:
    /// two claimers, in two threads or two processes, never get the same task.
    pub fn claim_next(&self, agent_id: &str) -> Result<Option<Task>> {
        validate::agent_id(agent_id)?;
        self.write(|tx| {
            // Both statements run under the write lock of one IMMEDIATE transaction, so
            // no other claimer, in any thread or process, can see the task as queued in
            // between. (One `UPDATE … RETURNING` does the same work but costs more: its
            // results go through an ephemeral table.)
            let found = tx
                .prepare_cached(&next_queued_sql())?
                .query_row([agent_id], |row| {
                    Ok((task_from_row(row)?, row.get::<_, i64>(TASK_COLUMN_COUNT)?))
                })
                .optional()?;
            let Some((mut task, seq)) = found else {
                return Ok(None);
            };
            let started = now();
            tx.prepare_cached(
                "UPDATE tasks SET status = 'in_progress', started = ?2 WHERE seq = ?1",
            )?
            .execute(params![seq, started])?;
            task.status = Status::InProgress;
            task.started = Some(started);
            Ok(Some(task))
        })
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
        self.write(|tx| {
            let current: Option<(String, i64)> = tx
                .prepare_cached("SELECT prefix, next_number FROM agents WHERE agent_id = ?1")?
                .query_row([agent_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match current {
                Some((held, _)) if held == prefix => {}
                Some((held, next)) if next > 1 => {
                    return Err(Error::Conflict(format!(
                        "the prefix of {agent_id} is fixed at {held} since its first task was created; it cannot change to {prefix}"
                    )))
                }
                _ => {
                    let holder: Option<String> = tx
                        .prepare_cached("SELECT agent_id FROM agents WHERE prefix = ?1")?
                        .query_row([prefix], |r| r.get(0))
                        .optional()?;
                    if let Some(holder) = holder {
                        return Err(Error::Conflict(format!(
                            "prefix {prefix} is held by agent {holder}; choose another prefix"
                        )));
                    }
                    tx.prepare_cached(
                        "INSERT INTO agents (agent_id, prefix) VALUES (?1, ?2)
                         ON CONFLICT (agent_id) DO UPDATE SET prefix = excluded.prefix",
                    )?
                    .execute([agent_id, prefix])?;
                }
            }
            Ok(PrefixSet {
                agent_id: agent_id.to_owned(),
                prefix: prefix.to_owned(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        rows.join(" | ")
    }

    /// A panic while an operation holds the connection (caught at the C or Python
    /// boundary) poisons the mutex; the store recovers and its open transaction was
    /// rolled back when the panic unwound.
    #[test]
    fn a_panic_inside_a_write_leaves_the_store_usable() {
        let store = Store::open_in_memory().unwrap();
        store.create_task("a", NewTask::new("kept")).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store
                .write(|tx| {
                    Store::insert(
                        tx,
                        "a",
                        "A-999".into(),
                        valid_task(NewTask::new("lost"))?,
                        &now(),
                    )?;
                    panic!("a bug in the middle of a write");
                })
                .map(|_: ()| ())
        }));
        assert!(result.is_err());
        assert!(store.conn.is_poisoned());
        assert_eq!(store.summary("a").unwrap().total, 1);
        assert_eq!(
            store.create_task("a", NewTask::new("next")).unwrap().id,
            "A-002"
        );
        assert!(store.get_task("a", "A-999").is_err());
    }

    /// The statements of the hot path are prepared once: rebinding them (another
    /// agent, another limit) never makes SQLite re-prepare them. Without query-planner
    /// stability the claim's statement is re-prepared on every call.
    #[test]
    fn hot_statements_are_never_re_prepared() {
        fn reprepares(store: &Store, qpsg: bool) -> i32 {
            let guard = store.lock();
            let conn = guard.as_ref().unwrap();
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, qpsg)
                .unwrap();
            conn.flush_prepared_statement_cache();
            drop(guard);
            for round in 0..5 {
                let agent = format!("agent-{round}");
                store.create_task(&agent, NewTask::new("t")).unwrap();
                let t = store.claim_next(&agent).unwrap().unwrap();
                store
                    .update_task(&agent, &t.id, TaskPatch::new().status(Status::Complete))
                    .unwrap();
                store
                    .list_tasks(&agent, ListQuery::new().limit(round + 1))
                    .unwrap();
            }
            let guard = store.lock();
            let conn = guard.as_ref().unwrap();
            [
                next_queued_sql(),
                format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1 AND agent_id = ?2"),
            ]
            .iter()
            .map(|sql| {
                conn.prepare_cached(sql)
                    .unwrap()
                    .get_status(rusqlite::StatementStatus::RePrepare)
            })
            .sum()
        }
        let store = Store::open_in_memory().unwrap();
        assert_eq!(reprepares(&store, true), 0);
        assert!(reprepares(&store, false) > 0, "the test would not notice");
    }

    /// Every listing, count and claim is served by an index in the order it returns,
    /// so a page or a count does not grow with the backlog.
    #[test]
    fn every_listing_uses_an_index_in_order() {
        let store = Store::open_in_memory().unwrap();
        let guard = store.lock();
        let conn = guard.as_ref().unwrap();
        for bits in 0..8 {
            let filter = Filter {
                agent_id: (bits & 1 != 0).then_some("a"),
                status: (bits & 2 != 0).then_some(Status::Queued),
                priority: (bits & 4 != 0).then_some(3),
                limit: 50,
                offset: 0,
            };
            let page = plan(conn, &filter.page_sql());
            assert!(page.contains("USING INDEX"), "{bits}: {page}");
            assert!(!page.contains("TEMP B-TREE"), "{bits}: {page}");
            assert!(!page.contains("SCAN"), "{bits}: {page}");
            let count = plan(conn, &filter.count_sql());
            assert!(!count.contains("TEMP B-TREE"), "{bits}: {count}");
            if filter.agent_id.is_some() {
                assert!(!count.contains("SCAN"), "{bits}: {count}");
            }
            if filter.priority.is_some() {
                assert!(count.contains("COVERING INDEX"), "{bits}: {count}");
            }
        }
        let claim = plan(conn, &next_queued_sql());
        assert!(claim.contains("INDEX tasks_by_agent_status"), "{claim}");
        assert!(!claim.contains("TEMP B-TREE"), "{claim}");
        let get = plan(conn, "SELECT id FROM tasks WHERE id = ?1 AND agent_id = ?2");
        assert!(
            get.contains("USING INDEX sqlite_autoindex_tasks_1"),
            "{get}"
        );
    }
}
