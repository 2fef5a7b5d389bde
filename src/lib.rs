//! # agent-backlog
//!
//! Every AI agent gets a backlog: a prioritized queue of tasks that programs create
//! and agents work through (queued → in_progress → complete, or blocked), stored in
//! one embedded SQLite file that many threads and processes can share.
//!
//! The same operations, with the same JSON, are offered to Rust (this crate), to C and
//! C++ (`include/agent_backlog.h`) and to Python (`import agent_backlog`).
//!
//! ```
//! use agent_backlog::{ListQuery, NewTask, Status, Store, TaskPatch};
//!
//! let store = Store::open_in_memory()?; // or Store::open("backlogs.db")
//! store.create_task("marketing-lead",
//!     NewTask::new("Write 3 LinkedIn posts").description("Focus on ROI...").priority(3))?;
//! store.create_task("marketing-lead", NewTask::new("Audit competitor pricing pages"))?;
//!
//! // An agent's loop: claim the most urgent task, work, complete it.
//! while let Some(task) = store.claim_next("marketing-lead")? {
//!     let result = format!("done: {}", task.title);
//!     store.update_task("marketing-lead", &task.id,
//!         TaskPatch::new().status(Status::Complete).result(result))?;
//! }
//!
//! let backlog = store.list_tasks("marketing-lead", ListQuery::new())?;
//! assert_eq!(backlog.total, 2);
//! let json = serde_json::to_value(&backlog.tasks[0]).unwrap();
//! assert_eq!(json["id"], "MKT-001");
//! assert_eq!(json["status"], "complete");
//! assert_eq!(json["blocker"], serde_json::Value::Null);
//! # Ok::<(), agent_backlog::Error>(())
//! ```
//!
//! A worker that may die takes a lease instead ([`Store::claim_lease`],
//! [`Store::wait_for_task`], [`Store::finish_and_claim`]): a lease that is not renewed
//! expires, and its task goes back to the queue for another worker (see [`Lease`]).
//!
//! Errors are one enum, [`Error`], whose variants map onto the stable codes
//! `invalid_argument`, `not_found`, `invalid_transition`, `conflict`, `storage`,
//! `internal` and `lease_lost`.
// No unsafe code, but in the one module that talks to SQLite's VFS interface
// (`backend::sqlite::vfs`), which allows it for itself.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
mod backend;
mod error;
mod history;
mod lease;
mod model;
mod nowait;
pub mod ops;
mod options;
mod plan;
mod request;
mod rules;
pub mod schema;
mod store;
pub mod tools;

pub use auth::{Access, IssuedToken, Token, TokenRequest};
pub use error::{Error, ErrorCode, Result};
pub use history::{
    AgentList, AgentSummary, Event, EventKind, EventPage, EventQuery, History, Pruned,
};
pub use lease::{Claim, Finish, Finished, Lease, LeaseTerms, Reaped};
pub use model::{
    AgentTask, Deleted, ListQuery, NewTask, PrefixSet, QueryResult, Status, Summary, Task,
    TaskList, TaskPatch, TaskQuery,
};
pub use options::{Durability, StoreOptions};
pub use plan::{Dependencies, DependencyGraph, DependsOn, Idempotent, Page, TaskRef};
pub use request::{prefix_from_json, seq_from_value, MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES};
pub use rules::prefix::{derive_prefix, ABBREVIATIONS};
pub use rules::{lifecycle, validate};
#[cfg(feature = "tokio")]
pub use store::Wait;
pub use store::{Store, WaitCancel};

/// A store's location (a file path, `:memory:` or a PostgreSQL URL) as it is safe to
/// show in a log: a URL's password is replaced by `***`.
///
/// ```
/// assert_eq!(
///     agent_backlog::shown_location("postgresql://agents:s3cret@db/backlog"),
///     "postgresql://agents:***@db/backlog"
/// );
/// assert_eq!(
///     agent_backlog::shown_location("postgres://a:p@ss@db:5432/b?password=x&sslmode=require"),
///     "postgres://a:***@db:5432/b?password=***&sslmode=require"
/// );
/// assert_eq!(agent_backlog::shown_location("backlogs.db"), "backlogs.db");
/// ```
pub fn shown_location(location: &str) -> String {
    if backend::postgres::is_url(location) {
        backend::postgres::hide_password(location)
    } else {
        location.to_owned()
    }
}

/// The schema version this library writes (SQLite's `PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = backend::sqlite::LATEST;

/// The version of this library, e.g. `"0.1.0"`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
