//! The history types of SPEC §14: events, a task's history, a page of the change
//! feed, and the agents with their counts.
//!
//! Every write appends its events in its own transaction, so the feed is exactly the
//! store's commits, in order; an event outlives its task.
//!
//! ```
//! use agent_backlog::{EventQuery, NewTask, Status, Store, StoreOptions, TaskPatch};
//! let options = StoreOptions { actor: Some("planner".into()), ..StoreOptions::default() };
//! let store = Store::open_with(":memory:", options)?;
//! let task = store.create_task("marketing-lead", NewTask::new("Write posts"))?;
//! store.update_task("marketing-lead", &task.id, TaskPatch::new().priority(2))?;
//! let history = store.task_history("marketing-lead", &task.id)?;
//! let kinds: Vec<&str> = history.events.iter().map(|e| e.kind.as_str()).collect();
//! assert_eq!(kinds, ["created", "updated"]);
//! assert_eq!(history.events[1].actor.as_deref(), Some("planner"));
//! let page = store.events(EventQuery::new().after(history.events[0].seq))?;
//! assert_eq!((page.events.len(), page.next), (1, history.events[1].seq));
//! # Ok::<(), agent_backlog::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A task was created: `{"title", "priority"}`.
    Created,
    /// A task's fields changed: `{"changed": [fields], "from"?, "to"?}`.
    Updated,
    /// A task was claimed: `{"worker", "fence"}` (both null for `claim_next`).
    Claimed,
    /// A lease was finished: `{"to"}`.
    Finished,
    /// A lease expired and its task was requeued or blocked: `{"worker", "attempt", "to"}`.
    LeaseExpired,
    /// A task was deleted: `{}`.
    Deleted,
    /// A dependency was added: `{"depends_on"}`.
    DependencyAdded,
    /// A dependency was removed: `{"depends_on"}`.
    DependencyRemoved,
    /// `set_prefix` set an agent's prefix: `{"prefix"}` (no task).
    PrefixSet,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 9] = [
        EventKind::Created,
        EventKind::Updated,
        EventKind::Claimed,
        EventKind::Finished,
        EventKind::LeaseExpired,
        EventKind::Deleted,
        EventKind::DependencyAdded,
        EventKind::DependencyRemoved,
        EventKind::PrefixSet,
    ];

    /// The kind as the contract spells it, e.g. `"lease_expired"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Claimed => "claimed",
            EventKind::Finished => "finished",
            EventKind::LeaseExpired => "lease_expired",
            EventKind::Deleted => "deleted",
            EventKind::DependencyAdded => "dependency_added",
            EventKind::DependencyRemoved => "dependency_removed",
            EventKind::PrefixSet => "prefix_set",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::Internal(format!("an unknown event type {s:?} in the store")))
    }
}

/// One event of the history:
/// `{"seq", "at", "agent_id", "task_id", "type", "actor", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its place in the feed: grows strictly with commit order, never reused.
    pub seq: i64,
    /// When it was committed: RFC 3339, UTC, milliseconds.
    pub at: String,
    /// The backlog it belongs to.
    pub agent_id: String,
    /// The task (`None` for `prefix_set`).
    pub task_id: Option<String>,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// Who did it: a lease's worker, or the store's actor; `None` when neither is set.
    pub actor: Option<String>,
    /// The details, by kind (see [`EventKind`]).
    pub data: Value,
}

/// What [`Store::task_history`](crate::Store::task_history) returns: the task's
/// events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The task.
    pub task_id: String,
    /// Its events, oldest first.
    pub events: Vec<Event>,
}

/// A page of the change feed ([`Store::events`](crate::Store::events)):
/// `{"events": [...], "next": seq}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// The events after the page's `after`, oldest first.
    pub events: Vec<Event>,
    /// The `after` of the next page: the last event's seq, or this page's `after` when
    /// it is empty.
    pub next: i64,
}

/// What [`Store::prune_events`](crate::Store::prune_events) returns: `{"pruned": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// How many events were deleted.
    pub pruned: u64,
}

/// One agent with its counts, in [`AgentList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSummary {
    /// The agent.
    pub agent_id: String,
    /// The prefix of its task IDs.
    pub prefix: String,
    /// Its queued tasks.
    pub queued: u64,
    /// Its tasks in progress.
    pub in_progress: u64,
    /// Its complete tasks.
    pub complete: u64,
    /// Its blocked tasks.
    pub blocked: u64,
    /// All of its tasks.
    pub total: u64,
}

impl AgentSummary {
    /// An agent's line of the list: its prefix and its counts (as [`Summary::of`]
    /// takes them).
    ///
    /// [`Summary::of`]: crate::model::Summary
    pub(crate) fn of(agent_id: String, prefix: String, counts: [i64; 4]) -> AgentSummary {
        let s = crate::model::Summary::of(counts);
        AgentSummary {
            agent_id,
            prefix,
            queued: s.queued,
            in_progress: s.in_progress,
            complete: s.complete,
            blocked: s.blocked,
            total: s.total,
        }
    }
}

/// What [`Store::list_agents`](crate::Store::list_agents) returns:
/// `{"agents": [...], "total": N}`, by agent_id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentList {
    /// A page of the agents, by agent_id.
    pub agents: Vec<AgentSummary>,
    /// How many agents the store has.
    pub total: u64,
}

/// The filter and page of [`Store::events`](crate::Store::events):
/// `{"after"?, "limit"?, "agent_id"?, "wait_seconds"?}`.
///
/// ```
/// use agent_backlog::EventQuery;
/// let q = EventQuery::from_json(r#"{"after": 1042, "limit": 10, "agent_id": "ops"}"#)?;
/// assert_eq!(q, EventQuery::new().after(1042).limit(10).agent_id("ops"));
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventQuery {
    /// Only events with a larger seq (default 0: from the start).
    pub after: Option<i64>,
    /// At most this many events, 1 to 1000 (default 100).
    pub limit: Option<i64>,
    /// Only this agent's events.
    pub agent_id: Option<String>,
    /// When there is no event yet, wait up to this many seconds (0 to 60, fractions
    /// allowed; default 0) for one, as `wait_for_task` waits for a task.
    pub wait_seconds: Option<f64>,
}

impl EventQuery {
    /// From the start of the feed, 100 events, every agent, no waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only events after this seq.
    pub fn after(mut self, seq: i64) -> Self {
        self.after = Some(seq);
        self
    }

    /// At most this many events.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Only this agent's events.
    pub fn agent_id(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = Some(agent_id.into());
        self
    }

    /// Wait up to this many seconds for an event when there is none yet.
    pub fn wait_seconds(mut self, seconds: f64) -> Self {
        self.wait_seconds = Some(seconds);
        self
    }
}
