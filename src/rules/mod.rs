//! The rules of the contract, as pure functions: no SQL, no I/O.
//!
//! - [`validate`]: the value rules of every field (SPEC §2, §5, §6).
//! - [`lifecycle`]: the transition table and the timestamps of each move (SPEC §4).
//! - [`lease`]: lease values, tokens, what a token still proves, expiry (SPEC §10-§11).
//! - `history`: the data of every kind of event, and events queries (SPEC §14).
//! - `plan`: dependencies, cycles and idempotency keys (SPEC §12-§13).
//! - [`prefix`]: deriving a task-ID prefix from an agent_id (SPEC §5).
//! - [`patch`]: what a PATCH makes of a task, in the contract's order of errors (SPEC §3-§4).

pub(crate) mod history;
pub mod lease;
pub mod lifecycle;
pub(crate) mod patch;
pub(crate) mod plan;
pub mod prefix;
pub mod validate;
