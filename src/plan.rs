//! The plan types of SPEC §12–§13: dependencies between tasks, the ready queue, and
//! the result of an idempotent create.
//!
//! A queued task is **ready** when every task it depends on is complete. Claims
//! ([`Store::claim_next`], [`Store::claim_lease`], [`Store::wait_for_task`]) take only
//! ready tasks; [`Store::ready_tasks`] lists them; [`Store::get_dependencies`] says
//! whether one task is. A whole plan lands in one `create_tasks` call, an item naming
//! an earlier item of the batch by its index:
//!
//! ```
//! use agent_backlog::{NewTask, Store};
//! let store = Store::open_in_memory()?;
//! let plan = store.create_tasks("marketing-lead", vec![
//!     NewTask::new("Get the launch date"),
//!     NewTask::new("Write the launch post").depends_on_item(0),
//! ])?;
//! assert_eq!(store.ready_tasks("marketing-lead", Default::default())?.total, 1);
//! let first = store.claim_next("marketing-lead")?.unwrap();
//! assert_eq!(first.id, "MKT-001");
//! // MKT-002 waits for MKT-001: nothing else is ready.
//! assert!(store.claim_next("marketing-lead")?.is_none());
//! let deps = store.get_dependencies("marketing-lead", &plan.tasks[1].id)?;
//! assert_eq!((deps.ready, deps.depends_on[0].id.as_str()), (false, "MKT-001"));
//! # Ok::<(), agent_backlog::Error>(())
//! ```
//!
//! [`Store::claim_next`]: crate::Store::claim_next
//! [`Store::claim_lease`]: crate::Store::claim_lease
//! [`Store::wait_for_task`]: crate::Store::wait_for_task
//! [`Store::ready_tasks`]: crate::Store::ready_tasks
//! [`Store::get_dependencies`]: crate::Store::get_dependencies

use serde::{Deserialize, Serialize};

use crate::model::Status;

/// A task that a new task depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DependsOn {
    /// A task of the store, by ID (of any agent).
    Task(String),
    /// An earlier item of the same `create_tasks` batch, by its index (0 is the
    /// first). Only inside `create_tasks`.
    Item(usize),
}

/// What [`Store::add_dependency`](crate::Store::add_dependency) and
/// [`Store::remove_dependency`](crate::Store::remove_dependency) return: the task's
/// dependencies after the change, in creation order.
/// `{"task_id": "MKT-005", "depends_on": ["ENG-012", "MKT-003"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependencies {
    /// The task.
    pub task_id: String,
    /// The IDs of the tasks it depends on, in creation order.
    pub depends_on: Vec<String>,
}

/// Another task, as a dependency listing shows it: `{"agent_id", "id", "status"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    /// Whose backlog it is in.
    pub agent_id: String,
    /// Its ID.
    pub id: String,
    /// Its status now.
    pub status: Status,
}

/// What [`Store::get_dependencies`](crate::Store::get_dependencies) returns:
/// `{"task_id", "ready", "depends_on": [...], "dependents": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyGraph {
    /// The task.
    pub task_id: String,
    /// Whether it is ready: queued, and every task it depends on complete.
    pub ready: bool,
    /// The tasks it depends on, in creation order.
    pub depends_on: Vec<TaskRef>,
    /// The tasks that depend on it, in creation order.
    pub dependents: Vec<TaskRef>,
}

/// A page of a listing: `{"limit"?, "offset"?}` (the ready queue's).
///
/// ```
/// use agent_backlog::Page;
/// assert_eq!(Page::from_json(r#"{"limit": 10}"#)?, Page::new().limit(10));
/// assert!(Page::from_json(r#"{"limit": -1}"#).is_ok()); // checked by the operation
/// assert!(Page::from_json(r#"{"status": "queued"}"#).is_err());
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Page {
    /// At most this many items (no limit when `None`).
    pub limit: Option<i64>,
    /// Skip this many items first.
    pub offset: Option<i64>,
}

impl Page {
    /// Every item.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `limit` items.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Skip `offset` items.
    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }
}

/// The result of an idempotent create: what the call returned, and whether it was a
/// replay of an earlier call with the same key (nothing was created) — REST answers a
/// replay with 200 and `Idempotent-Replayed: true` instead of 201.
///
/// Its JSON is the value's JSON alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotent<T> {
    /// The task (or the batch), as it is now.
    pub value: T,
    /// `true` when an earlier call with the same key and request created it.
    pub replayed: bool,
}

impl<T: Serialize> Serialize for Idempotent<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}
