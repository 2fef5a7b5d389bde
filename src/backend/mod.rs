//! The storage seam: what the core asks of a database.
//!
//! [`Store`](crate::Store) applies every rule of the contract — validation, the
//! lifecycle table, prefix derivation, the PATCH rules and the order in which errors
//! are reported — and then hands the storage work to a [`Backend`]. The trait is
//! synchronous and operation-level (claim, page, count, insert, patch in a
//! transaction), not statement-level: databases differ exactly in how a claim takes
//! its lock, how a counter is bumped, or how a page is read in one snapshot, and each
//! backend does that its own way.
//!
//! # What every backend keeps
//!
//! - **One transaction per call.** Each method that writes does all of its work in one
//!   transaction that commits before it returns `Ok`, or leaves nothing behind.
//! - **Counts.** Per agent and priority, the number of tasks in each status (queued,
//!   in_progress, complete, blocked) is stored and is exact at every commit:
//!   [`Backend::create_tasks`] adds its tasks as queued, every status or priority
//!   change moves one task from one count to another, [`Backend::delete_task`] takes
//!   it out. Summaries and every listing total (a priority filter's too) are read from
//!   these counts, at most ten per agent, never by counting rows (SPEC §8).
//! - **Numbers.** An agent's counter only goes up: a task number is never given twice,
//!   also after a delete. The agent's row (prefix, counter) is created by its
//!   first task or by `set_prefix`, and never deleted.
//! - **Prefixes.** Unique in the store. A new agent's derived prefix is the first free
//!   candidate of its base ([`prefix::candidate`]); finding it costs the same for every
//!   agent, however many already share the base (SPEC §5).
//! - **Time.** Timestamps (`created`, `started`, `completed`) come from the backend's
//!   clock, formatted as RFC 3339 UTC whole seconds (see [`now`]); lease times are
//!   milliseconds from the same clock ([`now_ms`]), and a leased claim's `started` is
//!   its `granted` in whole seconds.
//! - **Readiness.** A task is ready when it is queued and every task it depends on is
//!   complete. Each task keeps the number of its dependencies that are not complete,
//!   changed in the transaction of every edge change, status change to or from
//!   complete, and delete; a claim seeks the first ready task through an index and
//!   the ready total is kept with the counts, so neither ever walks the graph. The
//!   graph stays acyclic: an edge that would close a cycle is refused.
//! - **Idempotency keys.** Scoped to the agent; checked and recorded in the
//!   transaction that creates, so racing callers with one key create once.
//! - **Leases.** A lease is held only by an in_progress task, and the database itself
//!   refuses anything else. Every move of a leased task by anything but its lease
//!   (update_task, delete_task, expiry) ends the lease and grows the task's fence;
//!   a reopen (complete → queued) resets its attempts. Whether a token still holds
//!   its lease, and what an expiry does, are the core's rules
//!   ([`crate::rules::lease`]), called inside the transaction.
//! - **History.** Every write appends its events (SPEC §14) in its own transaction,
//!   with the data of [`crate::rules::history`], so the feed is the commits in order;
//!   a seq is never given twice, also after pruning.
//! - **Changes.** Every commit is visible to [`Backend::wait_change`] of every store on
//!   the same database, in this process or another, within a few milliseconds.
//! - **Waiting.** A write waits for a lock at most the busy timeout, counted from when
//!   the call began; a pure read never waits for a writer (SPEC §8).
//! - **Closing.** After [`Backend::close`] returns, every method fails with a
//!   `storage` error.
//!
//! [`prefix::candidate`]: crate::rules::prefix::candidate

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::time::Instant;

use crate::auth::{NewToken, TokenRow};
use crate::error::Result;
use crate::history::{AgentSummary, Event};
use crate::lease::Reaped;
use crate::model::{AgentTask, Status, Summary, Task};
use crate::plan::{DependencyGraph, DependsOn};
use crate::rules::history::Checked as EventsChecked;

/// A failure inside a backend: an error of its database (`E`), or a rule's error raised
/// inside a transaction (which rolls it back). Converted to the public [`Error`] at
/// the seam ([`DbError`]), so that no driver's type reaches the public API.
#[derive(Debug)]
pub(crate) enum Fail<E> {
    /// The database failed (its driver's error).
    Db(E),
    /// A rule of the core refused the call inside the transaction.
    Rule(crate::error::Error),
}

/// A database's error as the contract's error, saying what to do about it.
pub(crate) trait DbError {
    /// The contract's error for this failure (a `storage` error saying what to do, or
    /// `internal` for a broken invariant).
    fn into_error(self) -> crate::error::Error;
}

impl<E> From<crate::error::Error> for Fail<E> {
    fn from(err: crate::error::Error) -> Self {
        Fail::Rule(err)
    }
}

impl<E: DbError> From<Fail<E>> for crate::error::Error {
    fn from(fail: Fail<E>) -> Self {
        match fail {
            Fail::Rule(err) => err,
            Fail::Db(err) => err.into_error(),
        }
    }
}

/// Who a write is recorded as in its events (SPEC §14); lease operations record
/// their worker instead.
pub(crate) type Actor<'a> = Option<&'a str>;
use crate::rules::lease::{Terms, Token};

/// A task about to be inserted: values already validated by the core.
#[derive(Debug, Clone)]
pub(crate) struct NewRow {
    pub title: String,
    pub description: Option<String>,
    pub priority: u8,
    /// Checked by [`crate::rules::plan::depends_on`]: well-formed IDs, indices of
    /// earlier rows only, no repeats.
    pub depends_on: Vec<DependsOn>,
}

/// A task ID: the agent's prefix and the task's number, three digits at least (SPEC §5).
pub(crate) fn task_id(prefix: &str, number: i64) -> String {
    format!("{prefix}-{number:03}")
}

/// A row of a create as a backend writes it ([`NewRow::place`]).
#[derive(Debug)]
pub(crate) struct Placed {
    /// The new task, queued.
    pub task: Task,
    /// The rows of the tasks it depends on: existing tasks, then earlier rows of the
    /// batch.
    pub depends_on: Vec<i64>,
    /// How many of them are not complete (a new row never is).
    pub unmet: i64,
    /// The IDs its `dependency_added` events name, in the order of the request.
    pub dependency_ids: Vec<String>,
}

impl NewRow {
    /// This row as the queued task `id`, created at `created`. `existing` are the rows
    /// (and whether complete) of its dependencies on existing tasks, in order; `rows`
    /// and `tasks` are the rows and tasks of the batch's earlier items.
    pub(crate) fn place(
        self,
        id: String,
        created: &str,
        existing: &[(i64, bool)],
        rows: &[i64],
        tasks: &[Task],
    ) -> Placed {
        let earlier: Vec<i64> = self
            .depends_on
            .iter()
            .filter_map(|d| match d {
                DependsOn::Item(j) => rows.get(*j).copied(),
                DependsOn::Task(_) => None,
            })
            .collect();
        let unmet = earlier.len() as i64 + existing.iter().filter(|(_, met)| !met).count() as i64;
        let dependency_ids = self
            .depends_on
            .iter()
            .filter_map(|d| match d {
                DependsOn::Task(dep_id) => Some(dep_id.clone()),
                DependsOn::Item(j) => tasks.get(*j).map(|t| t.id.clone()),
            })
            .collect();
        Placed {
            task: Task {
                id,
                title: self.title,
                description: self.description,
                priority: self.priority,
                status: Status::Queued,
                created: created.to_owned(),
                started: None,
                completed: None,
                result: None,
                blocker: None,
            },
            depends_on: existing.iter().map(|(s, _)| *s).chain(earlier).collect(),
            unmet,
            dependency_ids,
        }
    }
}

/// The new tasks of a create by priority, for the one update of the counts per
/// priority that counts them.
#[derive(Debug, Default)]
pub(crate) struct NewCounts {
    queued: [i64; 10],
    waiting: [i64; 10],
}

impl NewCounts {
    /// Counts a placed row.
    pub(crate) fn add(&mut self, placed: &Placed) {
        let p = usize::from(placed.task.priority.clamp(1, 10)) - 1;
        self.queued[p] += 1;
        self.waiting[p] += i64::from(placed.unmet > 0);
    }

    /// Each priority with new tasks: the priority, how many, how many of them wait.
    pub(crate) fn by_priority(&self) -> impl Iterator<Item = (i64, i64, i64)> + '_ {
        (0..10)
            .filter(|&i| self.queued[i] > 0)
            .map(|i| (i as i64 + 1, self.queued[i], self.waiting[i]))
    }
}

/// The idempotency key of a create and the fingerprint of its request
/// ([`crate::rules::plan::fingerprint`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    pub key: &'a str,
    pub request: [u8; 32],
}

/// What a create does about its idempotency key, given what the key's earlier use left
/// (the fingerprint of that request and the tasks it created that still exist).
pub(crate) enum KeyUse {
    /// No key, or a key never used: create, and record the key.
    Fresh,
    /// Every task the key created was deleted: the key is free again; forget its
    /// record, then create and record it anew.
    Freed,
    /// The answer, with nothing to write: a replay or a key taken by another request.
    Answered(Created),
}

impl KeyUse {
    /// Decides for `key` and its earlier use, if any.
    pub(crate) fn of(key: Option<Key<'_>>, earlier: Option<(Vec<u8>, Vec<Task>)>) -> KeyUse {
        match (key, earlier) {
            (Some(key), Some((request, done))) if !done.is_empty() => {
                KeyUse::Answered(if request == key.request {
                    Created::Replayed(done)
                } else {
                    Created::KeyTaken
                })
            }
            (Some(_), Some(_)) => KeyUse::Freed,
            _ => KeyUse::Fresh,
        }
    }
}

/// Per row of a create, its dependencies on existing tasks: each one's row and whether
/// it is complete.
pub(crate) type Resolved = Vec<Vec<(i64, bool)>>;

/// Resolves every dependency of `rows` on an existing task with `find` (its row and
/// whether it is complete), before anything is written: per row, in order. A
/// dependency that is not a task of the store is the create's answer instead
/// ([`Created::Unknown`]).
pub(crate) fn resolve_dependencies<E>(
    rows: &[NewRow],
    mut find: impl FnMut(&str) -> std::result::Result<Option<(i64, bool)>, E>,
) -> std::result::Result<std::result::Result<Resolved, Created>, E> {
    let mut deps = Vec::with_capacity(rows.len());
    for (item, row) in rows.iter().enumerate() {
        let mut resolved = Vec::new();
        for dep in &row.depends_on {
            if let DependsOn::Task(id) = dep {
                match find(id)? {
                    Some(found) => resolved.push(found),
                    None => {
                        return Ok(Err(Created::Unknown {
                            item,
                            task_id: id.clone(),
                        }))
                    }
                }
            }
        }
        deps.push(resolved);
    }
    Ok(Ok(deps))
}

/// What [`Backend::create_tasks`] did.
#[derive(Debug)]
pub(crate) enum Created {
    /// The rows were inserted, in the order given.
    New(Vec<Task>),
    /// The key's earlier call with the same request created these tasks: the ones
    /// that still exist, as they are now, in the order of that call. Nothing written.
    Replayed(Vec<Task>),
    /// The key's earlier call had another request. Nothing written.
    KeyTaken,
    /// Row `item` depends on `task_id`, which is not a task of the store. Nothing
    /// written.
    Unknown { item: usize, task_id: String },
}

/// What a change to a task's dependencies found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EdgeOutcome {
    /// Done (or nothing to do): the task's dependencies now, in creation order.
    Done(Vec<String>),
    /// The task is not in the agent's backlog.
    NoTask,
    /// The dependency is not a task of the store.
    NoDependency,
    /// The edge would close this cycle, from the task back to itself. Nothing written.
    Cycle(Vec<String>),
}
/// The filter and page of a listing, already validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filter<'a> {
    pub agent_id: Option<&'a str>,
    pub status: Option<Status>,
    pub priority: Option<u8>,
    /// Only ready tasks (queued, every dependency complete): the ready queue.
    pub ready: bool,
    /// `None` for no limit.
    pub limit: Option<u64>,
    pub offset: u64,
}

/// What [`Backend::set_prefix`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PrefixOutcome {
    /// The prefix is now the agent's (or already was).
    Set,
    /// Another agent holds the prefix.
    HeldBy(String),
    /// The agent has tasks, and its prefix is fixed at this one.
    FixedAt(String),
}

/// A lease as a backend stores it (times in milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseRow {
    pub token: String,
    pub agent_id: String,
    pub task_id: String,
    pub worker: String,
    pub fence: i64,
    pub attempt: i64,
    pub max_attempts: i64,
    pub granted_ms: i64,
    pub expires_ms: i64,
}

/// What a leased claim asks for: the worker and the checked terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant<'a> {
    pub worker: &'a str,
    pub terms: Terms,
}

impl Grant<'_> {
    /// The lease this grant gives `task` (the agent's queued task whose fence was
    /// `fence` and attempts `attempts`) at `now_ms`: the next fence and attempt, a new
    /// token. The task is moved to in_progress, started at `now_ms`, as the claim that
    /// stores the lease leaves it.
    pub(crate) fn lease(
        &self,
        agent_id: &str,
        task: &mut Task,
        fence: i64,
        attempts: i64,
        now_ms: i64,
    ) -> Result<LeaseRow> {
        let fence = fence + 1;
        task.status = Status::InProgress;
        task.started = Some(seconds(now_ms));
        Ok(LeaseRow {
            token: crate::rules::lease::new_token(&task.id, fence)?,
            agent_id: agent_id.to_owned(),
            task_id: task.id.clone(),
            worker: self.worker.to_owned(),
            fence,
            attempt: attempts + 1,
            max_attempts: self.terms.max_attempts,
            granted_ms: now_ms,
            expires_ms: now_ms + self.terms.lease_ms,
        })
    }
}

/// What a waiting worker looks at before it tries to claim: whether the agent has a
/// queued task, and how long until its first held lease expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claimable {
    pub ready: bool,
    /// Milliseconds from the look until the first held lease expires (zero or less:
    /// expired), by the clock that leases expire by: the database's on a server, so
    /// that a host whose clock is ahead or behind neither spins nor oversleeps.
    pub next_expiry_in_ms: Option<i64>,
}

/// The rule that turns a loaded task into its patched form, given the backend's "now".
/// It returns the task to store, or an error that rolls the transaction back. A
/// backend may call it more than once for one call of the store (PostgreSQL runs a
/// write again from the start when the server aborts it as a conflict), so it must
/// give the same task every time: it is an `Fn`, which cannot use up the patch.
pub(crate) type Patcher<'a> = dyn Fn(Task, &str) -> Result<Task> + 'a;

/// One database behind a [`Store`](crate::Store). See the module docs for the
/// promises every implementation keeps.
pub(crate) trait Backend: Send + Sync {
    /// Inserts `rows` as queued tasks of `agent_id`, numbered consecutively from the
    /// agent's counter (registering the agent and taking its prefix on its first
    /// task), with their dependencies, all in one transaction.
    ///
    /// With a `key`: when the agent has used it and a task it created still exists,
    /// this is a replay (the same fingerprint) or the key is taken (another one);
    /// otherwise the key is (again) free, and the new tasks are recorded under it.
    fn create_tasks(
        &self,
        agent_id: &str,
        rows: Vec<NewRow>,
        key: Option<Key<'_>>,
        actor: Actor<'_>,
    ) -> Result<Created>;

    /// Makes the agent's task `task_id` depend on the task `depends_on` (any agent's)
    /// when `present`, unless that would close a cycle; otherwise removes the edge.
    /// Adding an edge that exists, or removing one that does not, changes nothing.
    /// Both tasks must exist.
    fn set_dependency(
        &self,
        agent_id: &str,
        task_id: &str,
        depends_on: &str,
        present: bool,
        actor: Actor<'_>,
    ) -> Result<EdgeOutcome>;

    /// The task's readiness, dependencies and dependents (`None` when it is not in the
    /// agent's backlog), read in one snapshot. A pure read.
    fn get_dependencies(&self, agent_id: &str, task_id: &str) -> Result<Option<DependencyGraph>>;

    /// The task, if it is in the agent's backlog. A pure read.
    fn get_task(&self, agent_id: &str, task_id: &str) -> Result<Option<Task>>;

    /// Loads the task and, in the same write transaction, stores what `patch` makes of
    /// it. `None` when the task is not in the agent's backlog (nothing written).
    fn update_task(
        &self,
        agent_id: &str,
        task_id: &str,
        patch: &Patcher<'_>,
        actor: Actor<'_>,
    ) -> Result<Option<Task>>;

    /// Deletes the task; `false` when it is not in the agent's backlog.
    fn delete_task(&self, agent_id: &str, task_id: &str, actor: Actor<'_>) -> Result<bool>;

    /// A page of one agent's tasks (the filter's `agent_id` is set) and the number of
    /// matches, read in one snapshot. Order: priority, then creation order.
    fn list(&self, filter: &Filter<'_>) -> Result<(Vec<Task>, u64)>;

    /// A page of tasks across agents, with their agent, and the number of matches,
    /// read in one snapshot. Order: priority, then creation order.
    fn query(&self, filter: &Filter<'_>) -> Result<(Vec<AgentTask>, u64)>;

    /// The agent's counts by status (zeros for an unknown agent). A pure read.
    fn summary(&self, agent_id: &str) -> Result<Summary>;

    /// Moves the agent's first ready task (priority, then creation order) to
    /// in_progress with `started` = now, atomically: two claimers anywhere never get
    /// the same task.
    fn claim_next(&self, agent_id: &str, actor: Actor<'_>) -> Result<Option<Task>>;

    /// Gives `prefix` to the agent unless another agent holds it or the agent's own
    /// prefix is fixed by its tasks.
    fn set_prefix(&self, agent_id: &str, prefix: &str, actor: Actor<'_>) -> Result<PrefixOutcome>;

    /// Requeues (or blocks, per [`rules::lease::expiry`]) every held lease of the agent
    /// whose time has passed, then moves the agent's first queued task to in_progress
    /// as [`Backend::claim_next`] does and records a lease on it for `grant`: fence
    /// and attempts + 1, a new token. One transaction.
    ///
    /// [`rules::lease::expiry`]: crate::rules::lease::expiry
    fn claim_lease(&self, agent_id: &str, grant: &Grant<'_>) -> Result<Option<(Task, LeaseRow)>>;

    /// Checks `token` against its task ([`rules::lease::check`]) and sets the lease's
    /// expiry to now + `lease_ms` (default: its own duration), which becomes its
    /// duration.
    ///
    /// [`rules::lease::check`]: crate::rules::lease::check
    fn renew_lease(&self, token: &Token<'_>, lease_ms: Option<i64>) -> Result<LeaseRow>;

    /// Checks `token`, applies `patch` to its task and ends the lease (the fence stays);
    /// then, with `next`, claims for the same agent and worker as
    /// [`Backend::claim_lease`] on those terms. One transaction.
    fn finish_lease(
        &self,
        token: &Token<'_>,
        patch: &Patcher<'_>,
        next: Option<Terms>,
    ) -> Result<(Task, Option<(Task, LeaseRow)>)>;

    /// Ends the lease of `token` with `patch` (a release) as [`Backend::finish_lease`]
    /// does, and takes back the attempt its claim counted: the claim is undone, as
    /// if it had never been made, but for the fence. One transaction.
    fn return_lease(&self, token: &Token<'_>, patch: &Patcher<'_>) -> Result<Task>;

    /// The task's held lease (`Some(None)` when it holds none, `None` when the task
    /// is not in the agent's backlog). A pure read: an expired lease not yet requeued
    /// is still returned.
    fn get_lease(&self, agent_id: &str, task_id: &str) -> Result<Option<Option<LeaseRow>>>;

    /// Ends every expired lease of the agent (of every agent with `None`), as
    /// [`Backend::claim_lease`] does first. One transaction.
    fn reap_expired(&self, agent_id: Option<&str>, actor: Actor<'_>) -> Result<Reaped>;

    /// The task's events, oldest first; `None` when it has none and is not in the
    /// agent's backlog. A pure read.
    fn task_history(&self, agent_id: &str, task_id: &str) -> Result<Option<Vec<Event>>>;

    /// A page of the change feed: the events after `query.after` (of one agent or
    /// all), oldest first. A pure read.
    fn events(&self, query: &EventsChecked) -> Result<Vec<Event>>;

    /// The seq of the newest event, 0 when there is none. A pure read.
    fn last_event_seq(&self) -> Result<i64>;

    /// Deletes the events with a seq below `before`, but never the newest one (whose
    /// seq keeps later ones from reusing any). One transaction.
    fn prune_events(&self, before: i64) -> Result<u64>;

    /// A page of the agents by agent_id, with their counts, and how many there are,
    /// read in one snapshot.
    fn list_agents(&self, limit: Option<u64>, offset: u64) -> Result<(Vec<AgentSummary>, u64)>;

    /// A pure read for a waiting worker: see [`Claimable`].
    fn claimable(&self, agent_id: &str) -> Result<Claimable>;

    /// A mark of the store's changes so far, for [`Backend::wait_change`].
    fn change_mark(&self) -> Result<u64>;

    /// Waits until a write committed after `mark` — by this store, another store of
    /// this process or another process — or until `until`, without spinning. Returns
    /// whether something changed, and moves `mark` past it.
    fn wait_change(&self, mark: &mut u64, until: Instant) -> Result<bool>;

    /// Inserts a token (see [`crate::auth`]) with the hash `hash_of` makes from its
    /// id; `None` when its name is taken. One transaction.
    fn create_token(
        &self,
        new: &NewToken<'_>,
        hash_of: &dyn Fn(i64) -> [u8; 32],
    ) -> Result<Option<TokenRow>>;

    /// Every token, oldest first. A pure read.
    fn list_tokens(&self) -> Result<Vec<TokenRow>>;

    /// The token `id`, if there is one. A pure read.
    fn token(&self, id: i64) -> Result<Option<TokenRow>>;

    /// Marks the token revoked, once; `None` when there is no such token.
    fn revoke_token(&self, id: i64) -> Result<Option<TokenRow>>;

    /// Makes every [`Backend::wait_change`] of this store return now, as a change
    /// would (also one whose `mark` was taken before this call and that has not
    /// begun to wait yet), so that each waiter looks again and asks its stop hook.
    fn wake_waiters(&self);

    /// Closes every connection. Idempotent and safe from several threads at once;
    /// after it returns, every other method fails with a `storage` error.
    fn close(&self) -> Result<()>;

    /// The SQLite backend behind this one, for tests of its internals.
    #[cfg(test)]
    fn as_sqlite(&self) -> Option<&sqlite::Sqlite> {
        None
    }
}

/// The current time as the contract writes it: RFC 3339, UTC, whole seconds, `Z`.
pub(crate) fn now() -> String {
    seconds(chrono::Utc::now().timestamp_millis())
}

/// The current time in milliseconds since the epoch (lease times).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A time in milliseconds as a task time: RFC 3339, UTC, whole seconds, `Z`.
pub(crate) fn seconds(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
