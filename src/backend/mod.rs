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
//! - **Counts.** Per agent, the number of tasks in each status (queued, in_progress,
//!   complete, blocked) is stored beside the agent and is exact at every commit:
//!   [`Backend::create_tasks`] adds its tasks as queued, every status change moves one
//!   task from one count to another, [`Backend::delete_task`] takes it out. Summaries
//!   and listing totals are read from these counts, never by counting rows (SPEC §8).
//! - **Numbers.** An agent's counter only goes up: a task number is never given twice,
//!   also after a delete. The agent's row (prefix, counter, counts) is created by its
//!   first task or by `set_prefix`, and never deleted.
//! - **Prefixes.** Unique in the store. A new agent's derived prefix is the first free
//!   candidate of its base ([`prefix::candidate`]); finding it costs the same for every
//!   agent, however many already share the base (SPEC §5).
//! - **Time.** Timestamps (`created`, `started`, `completed`) come from the backend's
//!   clock, formatted as RFC 3339 UTC whole seconds (see [`now`]).
//! - **Waiting.** A write waits for a lock at most the busy timeout, counted from when
//!   the call began; a pure read never waits for a writer (SPEC §8).
//! - **Closing.** After [`Backend::close`] returns, every method fails with a
//!   `storage` error.
//!
//! [`prefix::candidate`]: crate::rules::prefix::candidate

pub(crate) mod sqlite;

use crate::error::Result;
use crate::model::{AgentTask, Status, Summary, Task};

/// A task about to be inserted: values already validated by the core.
#[derive(Debug)]
pub(crate) struct NewRow {
    pub title: String,
    pub description: Option<String>,
    pub priority: u8,
}

/// The filter and page of a listing, already validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filter<'a> {
    pub agent_id: Option<&'a str>,
    pub status: Option<Status>,
    pub priority: Option<u8>,
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

/// The rule that turns a loaded task into its patched form, given the backend's "now".
/// It returns the task to store, or an error that rolls the transaction back.
pub(crate) type Patcher<'a> = dyn FnMut(Task, &str) -> Result<Task> + 'a;

/// One database behind a [`Store`](crate::Store). See the module docs for the
/// promises every implementation keeps.
pub(crate) trait Backend: Send + Sync {
    /// Inserts `rows` as queued tasks of `agent_id`, numbered consecutively from the
    /// agent's counter (registering the agent and taking its prefix on its first
    /// task), all in one transaction. Returns them in the order given.
    fn create_tasks(&self, agent_id: &str, rows: Vec<NewRow>) -> Result<Vec<Task>>;

    /// The task, if it is in the agent's backlog. A pure read.
    fn get_task(&self, agent_id: &str, task_id: &str) -> Result<Option<Task>>;

    /// Loads the task and, in the same write transaction, stores what `patch` makes of
    /// it. `None` when the task is not in the agent's backlog (nothing written).
    fn update_task(
        &self,
        agent_id: &str,
        task_id: &str,
        patch: &mut Patcher<'_>,
    ) -> Result<Option<Task>>;

    /// Deletes the task; `false` when it is not in the agent's backlog.
    fn delete_task(&self, agent_id: &str, task_id: &str) -> Result<bool>;

    /// A page of one agent's tasks (the filter's `agent_id` is set) and the number of
    /// matches, read in one snapshot. Order: priority, then creation order.
    fn list(&self, filter: &Filter<'_>) -> Result<(Vec<Task>, u64)>;

    /// A page of tasks across agents, with their agent, and the number of matches,
    /// read in one snapshot. Order: priority, then creation order.
    fn query(&self, filter: &Filter<'_>) -> Result<(Vec<AgentTask>, u64)>;

    /// The agent's counts by status (zeros for an unknown agent). A pure read.
    fn summary(&self, agent_id: &str) -> Result<Summary>;

    /// Moves the agent's first queued task (priority, then creation order) to
    /// in_progress with `started` = now, atomically: two claimers anywhere never get
    /// the same task.
    fn claim_next(&self, agent_id: &str) -> Result<Option<Task>>;

    /// Gives `prefix` to the agent unless another agent holds it or the agent's own
    /// prefix is fixed by its tasks.
    fn set_prefix(&self, agent_id: &str, prefix: &str) -> Result<PrefixOutcome>;

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
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
