//! The task object, the typed requests and the typed responses of the contract.
//!
//! Every response type serializes to exactly the JSON shape of the contract: every key
//! present, absent values as `null`, keys in the documented order.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::plan::DependsOn;

/// Where a task is in its lifecycle.
///
/// ```
/// use agent_backlog::Status;
/// assert_eq!("in_progress".parse::<Status>()?, Status::InProgress);
/// assert_eq!(Status::Blocked.as_str(), "blocked");
/// assert_eq!(serde_json::to_string(&Status::Complete).unwrap(), r#""complete""#);
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting to be claimed.
    Queued,
    /// Claimed by an agent and being worked on.
    InProgress,
    /// Done; may carry a `result`.
    Complete,
    /// Waiting on a dependency or human input; carries a `blocker`.
    Blocked,
}

impl Status {
    /// Every status, in the order the summary lists them.
    pub const ALL: [Status; 4] = [
        Status::Queued,
        Status::InProgress,
        Status::Complete,
        Status::Blocked,
    ];

    /// The status as the contract spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::InProgress => "in_progress",
            Status::Complete => "complete",
            Status::Blocked => "blocked",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "status must be one of queued, in_progress, complete, blocked, got {s:?}"
                ))
            })
    }
}

/// One task, exactly as every surface returns it.
///
/// Timestamps are RFC 3339 strings in UTC with whole seconds and a `Z`
/// (`2026-03-28T10:00:00Z`), so they also compare correctly as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// `{PREFIX}-{NNN}`, unique in the store, never reused.
    pub id: String,
    /// Short title, 1..=500 characters, trimmed.
    pub title: String,
    /// Detailed instructions, up to 65,536 characters.
    pub description: Option<String>,
    /// 1 (highest) ..= 10 (lowest).
    pub priority: u8,
    /// Where the task is in its lifecycle.
    pub status: Status,
    /// When the task was created.
    pub created: String,
    /// When the task last entered `in_progress` (see the lifecycle table).
    pub started: Option<String>,
    /// When the task entered `complete`.
    pub completed: Option<String>,
    /// What the agent produced; only on a complete task.
    pub result: Option<String>,
    /// Why the task is blocked; only on a blocked task.
    pub blocker: Option<String>,
}

/// A task in the cross-agent listing: `agent_id` first, then the task's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTask {
    /// The agent whose backlog holds the task.
    pub agent_id: String,
    /// The task itself.
    #[serde(flatten)]
    pub task: Task,
}

/// One agent's backlog, or a page of it: the result of
/// [`Store::list_tasks`](crate::Store::list_tasks) and
/// [`Store::create_tasks`](crate::Store::create_tasks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskList {
    /// The agent whose backlog this is.
    pub agent_id: String,
    /// The tasks of this page, by priority then creation order.
    pub tasks: Vec<Task>,
    /// How many tasks match the filter, ignoring limit and offset.
    pub total: u64,
}

/// The result of [`Store::query_tasks`](crate::Store::query_tasks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResult {
    /// The tasks of this page, by priority then creation order.
    pub tasks: Vec<AgentTask>,
    /// How many tasks match the filter, ignoring limit and offset.
    pub total: u64,
}

/// Counts of one agent's tasks by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Tasks waiting to be claimed.
    pub queued: u64,
    /// Tasks being worked on.
    pub in_progress: u64,
    /// Finished tasks.
    pub complete: u64,
    /// Blocked tasks.
    pub blocked: u64,
    /// The sum of the four counts.
    pub total: u64,
}

impl Summary {
    /// The summary of these counts: queued, in_progress, complete, blocked (as a
    /// backend reads them from its kept counts; a count is never negative).
    pub(crate) fn of(counts: [i64; 4]) -> Summary {
        let [queued, in_progress, complete, blocked] = counts.map(|n| n.max(0) as u64);
        Summary {
            queued,
            in_progress,
            complete,
            blocked,
            total: queued + in_progress + complete + blocked,
        }
    }
}

/// The result of [`Store::delete_task`](crate::Store::delete_task): `{"deleted": "MKT-001"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The id of the task that was deleted.
    pub deleted: String,
}

/// The result of [`Store::set_prefix`](crate::Store::set_prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixSet {
    /// The agent whose prefix was set.
    pub agent_id: String,
    /// The prefix its task IDs carry.
    pub prefix: String,
}

/// The body of a create: `{"title", "description"?, "priority"?}`.
///
/// Build one in code with [`NewTask::new`], or parse JSON strictly with
/// [`NewTask::from_json`] (unknown fields and wrong types are refused).
///
/// ```
/// use agent_backlog::NewTask;
/// let a = NewTask::new("Write 3 LinkedIn posts").description("Focus on ROI...").priority(3);
/// let b = NewTask::from_json(r#"{"title": "Write 3 LinkedIn posts", "description": "Focus on ROI...", "priority": 3}"#)?;
/// assert_eq!(a, b);
/// assert!(NewTask::from_json(r#"{"title": "x", "priority": 3.0}"#).is_err());
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewTask {
    /// Required; 1..=500 characters after trimming (stored trimmed).
    pub title: String,
    /// Optional; up to 65,536 characters.
    pub description: Option<String>,
    /// Optional; 1..=10, default 5. Kept wide so that out-of-range input reaches
    /// validation and is reported with its value.
    pub priority: Option<i64>,
    /// The tasks it depends on (SPEC §13): it is not ready, and no claim takes it,
    /// until every one of them is complete. Empty by default.
    pub depends_on: Vec<DependsOn>,
}

impl NewTask {
    /// A task with this title, no description and the default priority.
    pub fn new(title: impl Into<String>) -> Self {
        NewTask {
            title: title.into(),
            description: None,
            priority: None,
            depends_on: Vec::new(),
        }
    }

    /// Adds a dependency on the task with this ID (of any agent).
    pub fn depends_on(mut self, task_id: impl Into<String>) -> Self {
        self.depends_on.push(DependsOn::Task(task_id.into()));
        self
    }

    /// Adds a dependency on an earlier item of the same `create_tasks` batch, by its
    /// index (0 is the first item).
    pub fn depends_on_item(mut self, index: usize) -> Self {
        self.depends_on.push(DependsOn::Item(index));
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the priority (1 highest ..= 10 lowest).
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = Some(priority);
        self
    }
}

/// The body of an update (PATCH semantics).
///
/// A `None` field is left unchanged. For the nullable fields (`description`, `blocker`,
/// `result`) `Some(None)` clears the value and `Some(Some(v))` sets it.
///
/// ```
/// use agent_backlog::{Status, TaskPatch};
/// let patch = TaskPatch::from_json(r#"{"status": "complete", "result": "Generated 3 posts", "description": null}"#)?;
/// assert_eq!(patch.status, Some(Status::Complete));
/// assert_eq!(patch.result, Some(Some("Generated 3 posts".to_string())));
/// assert_eq!(patch.description, Some(None));
/// assert_eq!(patch.priority, None);
/// assert_eq!(patch, TaskPatch::new().status(Status::Complete).result("Generated 3 posts").clear_description());
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskPatch {
    /// Move the task to this status (see the lifecycle table).
    pub status: Option<Status>,
    /// New priority, 1..=10.
    pub priority: Option<i64>,
    /// New title, 1..=500 characters after trimming.
    pub title: Option<String>,
    /// New description, or `Some(None)` to clear it.
    pub description: Option<Option<String>>,
    /// Why the task is blocked; only when it is or becomes blocked.
    pub blocker: Option<Option<String>>,
    /// What the agent produced; only when the task is or becomes complete.
    pub result: Option<Option<String>>,
}

impl TaskPatch {
    /// An empty patch, which changes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the target status.
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(Some(description.into()));
        self
    }

    /// Clears the description.
    pub fn clear_description(mut self) -> Self {
        self.description = Some(None);
        self
    }

    /// Sets the blocker (the task must be or become blocked).
    pub fn blocker(mut self, blocker: impl Into<String>) -> Self {
        self.blocker = Some(Some(blocker.into()));
        self
    }

    /// Sets the result (the task must be or become complete).
    pub fn result(mut self, result: impl Into<String>) -> Self {
        self.result = Some(Some(result.into()));
        self
    }

    /// Clears the result.
    pub fn clear_result(mut self) -> Self {
        self.result = Some(None);
        self
    }

    /// True when the patch names no field at all.
    pub fn is_empty(&self) -> bool {
        self == &TaskPatch::default()
    }
}

/// Filter and page of [`Store::list_tasks`](crate::Store::list_tasks):
/// `{"status"?, "limit"?, "offset"?}`.
///
/// ```
/// use agent_backlog::{ListQuery, Status};
/// let q = ListQuery::from_json(r#"{"status": "queued", "limit": 50}"#)?;
/// assert_eq!(q, ListQuery::new().status(Status::Queued).limit(50));
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Only tasks in this status.
    pub status: Option<Status>,
    /// At most this many tasks (no limit when `None`).
    pub limit: Option<i64>,
    /// Skip this many tasks first.
    pub offset: Option<i64>,
}

impl ListQuery {
    /// No filter, every task.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only tasks in this status.
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// At most `limit` tasks.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Skip `offset` tasks.
    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }
}

/// Filter and page of [`Store::query_tasks`](crate::Store::query_tasks):
/// `{"status"?, "priority"?, "agent_id"?, "limit"?, "offset"?}`.
///
/// ```
/// use agent_backlog::{TaskQuery, Status};
/// let q = TaskQuery::from_json(r#"{"status": "queued", "priority": 2}"#)?;
/// assert_eq!(q, TaskQuery::new().status(Status::Queued).priority(2));
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskQuery {
    /// Only tasks in this status.
    pub status: Option<Status>,
    /// Only tasks of exactly this priority.
    pub priority: Option<i64>,
    /// Only tasks of this agent.
    pub agent_id: Option<String>,
    /// At most this many tasks (no limit when `None`).
    pub limit: Option<i64>,
    /// Skip this many tasks first.
    pub offset: Option<i64>,
}

impl TaskQuery {
    /// No filter, every task of every agent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only tasks in this status.
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// Only tasks of exactly this priority.
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Only tasks of this agent.
    pub fn agent_id(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = Some(agent_id.into());
        self
    }

    /// At most `limit` tasks.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Skip `offset` tasks.
    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }
}
