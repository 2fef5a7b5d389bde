//! The settings of a store: [`StoreOptions`] and [`Durability`].

use std::time::Duration;

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

/// Settings for [`Store::open_with`](crate::Store::open_with).
///
/// ```
/// use std::time::Duration;
/// use agent_backlog::{Durability, Store, StoreOptions};
/// let options = StoreOptions {
///     busy_timeout: Duration::from_secs(30),
///     durability: Durability::Full,
///     actor: Some("release-bot".into()),
/// };
/// let store = Store::open_with(":memory:", options)?;
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a write waits for another connection's write lock before failing with
    /// a `storage` error. Default: 5 seconds.
    pub busy_timeout: Duration,
    /// See [`Durability`]. Default: [`Durability::Normal`].
    pub durability: Durability,
    /// Who the store's writes are recorded as in the history (SPEC §14): the `actor`
    /// of their events, unless a lease's worker acts. 1 to 128 printable characters.
    /// Default: none (`null`). [`Store::with_actor`](crate::Store::with_actor) gives
    /// a handle on the same store with another actor.
    pub actor: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Normal,
            actor: None,
        }
    }
}
