//! The lease types of SPEC §10–§11: what a leased claim returns, and the terms and
//! finish bodies it takes.
//!
//! A worker that may die claims with a lease instead of [`Store::claim_next`]: the
//! lease must be renewed before it expires, or the task goes back to the queue (or,
//! after `max_attempts` leased claims, to blocked) for another worker.
//!
//! ```
//! use agent_backlog::{Finish, LeaseTerms, NewTask, Status, Store};
//! let store = Store::open_in_memory()?;
//! store.create_task("marketing-lead", NewTask::new("Write 3 LinkedIn posts"))?;
//!
//! let claim = store.claim_lease("marketing-lead", "writer-7", LeaseTerms::new().lease_seconds(60))?
//!     .expect("one task is queued");
//! assert_eq!((claim.lease.attempt, claim.lease.fence), (1, 1));
//! store.renew_lease(&claim.lease.token, None)?;
//! let done = store.finish_lease(&claim.lease.token, Finish::complete().result("3 posts"))?;
//! assert_eq!(done.status, Status::Complete);
//! // The lease has ended: its token no longer works.
//! let err = store.renew_lease(&claim.lease.token, None).unwrap_err();
//! assert_eq!(err.code(), "lease_lost");
//! # Ok::<(), agent_backlog::Error>(())
//! ```
//!
//! [`Store::claim_next`]: crate::Store::claim_next

use serde::{Deserialize, Serialize};

use crate::model::{Status, Task};

/// A lease on an in_progress task: who holds it, until when, and its token.
///
/// Keys in this order: `token, agent_id, task_id, worker, fence, attempt,
/// max_attempts, granted, expires`. Times are RFC 3339 UTC with milliseconds
/// (`2026-12-02T10:00:00.000Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Opaque and unguessable; the only way to renew or finish this lease.
    pub token: String,
    /// The agent whose backlog holds the task.
    pub agent_id: String,
    /// The leased task.
    pub task_id: String,
    /// Who holds the lease (1 to 128 characters of the agent_id alphabet).
    pub worker: String,
    /// The task's fence: it grows at every leased claim and at every move of a leased
    /// task by anything but its lease, so a larger fence is always the newer holder.
    pub fence: u64,
    /// How many leased claims this task has had, this one included (kept across
    /// requeues, reset by a reopen).
    pub attempt: u32,
    /// After this many attempts an expiry blocks the task instead of requeueing it.
    pub max_attempts: u32,
    /// When the lease was granted.
    pub granted: String,
    /// When the lease expires unless renewed.
    pub expires: String,
}

/// A leased claim: the task, now in_progress, and its lease (`{"task", "lease"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The claimed task.
    pub task: Task,
    /// Its lease.
    pub lease: Lease,
}

/// The result of [`Store::finish_and_claim`](crate::Store::finish_and_claim):
/// `{"finished": task, "next": {"task", "lease"} or null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// The task the lease held, as the finish left it.
    pub finished: Task,
    /// The next task, claimed with a lease for the same worker; `None` when nothing
    /// was ready.
    pub next: Option<Claim>,
}

/// The result of [`Store::reap_expired`](crate::Store::reap_expired): the IDs of the
/// tasks whose expired leases were ended, by what became of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reaped {
    /// Back in the queue.
    pub requeued: Vec<String>,
    /// Blocked, because their attempts reached `max_attempts`.
    pub blocked: Vec<String>,
}

impl Reaped {
    /// Records a task whose expired lease moved it to `to` (queued or blocked).
    pub(crate) fn add(&mut self, task_id: String, to: Status) {
        match to {
            Status::Blocked => self.blocked.push(task_id),
            _ => self.requeued.push(task_id),
        }
    }
}

/// The terms of a leased claim: `lease_seconds` (default 600, 1 to 86,400) and
/// `max_attempts` (default 3, 1 to 1,000). Out-of-range values are refused by the
/// store with `invalid_argument`.
///
/// ```
/// use agent_backlog::LeaseTerms;
/// let terms = LeaseTerms::new().lease_seconds(30).max_attempts(5);
/// assert_eq!((terms.lease_seconds, terms.max_attempts), (Some(30), Some(5)));
/// assert_eq!(LeaseTerms::new(), LeaseTerms::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseTerms {
    /// How long the lease lasts unless renewed, in seconds (`None`: 600).
    pub lease_seconds: Option<i64>,
    /// How many leased claims before an expiry blocks the task (`None`: 3).
    pub max_attempts: Option<i64>,
}

impl LeaseTerms {
    /// The default terms: 600 seconds, 3 attempts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lease for this many seconds.
    pub fn lease_seconds(mut self, seconds: i64) -> Self {
        self.lease_seconds = Some(seconds);
        self
    }

    /// Block the task when a lease expires on this attempt or a later one.
    pub fn max_attempts(mut self, attempts: i64) -> Self {
        self.max_attempts = Some(attempts);
        self
    }
}

/// How a lease ends: `{"status": "complete" | "queued" | "blocked", "result"?, "blocker"?}`.
///
/// `complete` may carry a result, `blocked` needs a blocker, `queued` releases the
/// task for another worker.
///
/// ```
/// use agent_backlog::{Finish, Status};
/// let f = Finish::from_json(r#"{"status": "complete", "result": "3 posts"}"#)?;
/// assert_eq!(f, Finish::complete().result("3 posts"));
/// assert_eq!(Finish::blocked("needs the brand colors").status, Status::Blocked);
/// assert_eq!(Finish::release().status, Status::Queued);
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// `Complete`, `Queued` (release) or `Blocked`; `InProgress` is refused.
    pub status: Status,
    /// What the work produced (only with `Complete`).
    pub result: Option<String>,
    /// Why the task is blocked (required with `Blocked`).
    pub blocker: Option<String>,
}

impl Finish {
    /// Ends the lease with this status.
    pub fn new(status: Status) -> Self {
        Finish {
            status,
            result: None,
            blocker: None,
        }
    }

    /// Completes the task.
    pub fn complete() -> Self {
        Finish::new(Status::Complete)
    }

    /// Puts the task back in the queue for another worker.
    pub fn release() -> Self {
        Finish::new(Status::Queued)
    }

    /// Blocks the task for this reason.
    pub fn blocked(blocker: impl Into<String>) -> Self {
        Finish {
            blocker: Some(blocker.into()),
            ..Finish::new(Status::Blocked)
        }
    }

    /// The result of a completed task.
    pub fn result(mut self, result: impl Into<String>) -> Self {
        self.result = Some(result.into());
        self
    }
}
