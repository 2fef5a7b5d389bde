//! Calls that must not wait: what an event loop runs in place (SPEC §18).
//!
//! An async binding runs most calls right on its event loop, because a read or an
//! uncontended write costs tens of microseconds, and a hop to another thread costs
//! more than that. It must not run a call that would *wait* there: for a lock another
//! connection holds, for this store's writer while another thread uses it, for a
//! free read connection, for an fsync of a FULL-durability commit, or for work to
//! arrive. [`Store::try_without_waiting`] runs a call in a mode where each of those
//! places gives up at once instead, and says so; the binding then runs the call again
//! on a thread of its own, where it may wait.
//!
//! The mode is a flag of the calling thread: each place that would wait asks
//! [`active`] and, instead of waiting, calls [`would_wait`]. A call gives up only
//! before it has written anything — a write waits for its lock before its
//! transaction begins, and a FULL-durability write is refused before it starts — so
//! "would wait" always means "nothing was done".

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::Store;

thread_local! {
    /// Whether this thread runs a call that must not wait.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// Whether the call gave up where it would have waited.
    static GAVE_UP: Cell<bool> = const { Cell::new(false) };
    /// The cancel flag of the wait this thread runs for, if any
    /// ([`crate::WaitCancel::scope`]): the places that wait for a lock give up once
    /// it is set.
    static CANCEL: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Whether the wait this thread runs for was cancelled: a wait for a lock then gives
/// up at once (nothing written).
pub(crate) fn cancelled() -> bool {
    CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Acquire))
    })
}

/// Runs `f` with `flag` as this thread's cancel flag (see [`cancelled`]).
pub(crate) fn with_cancel<T>(flag: &Arc<AtomicBool>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<AtomicBool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            CANCEL.with(|c| *c.borrow_mut() = outer);
        }
    }
    let _restore = Restore(CANCEL.with(|c| c.borrow_mut().replace(Arc::clone(flag))));
    f()
}

/// Runs `f` — a caller's hook, which may run code of the caller's (a Python signal
/// handler) — outside the no-wait mode, so that the caller's own calls wait as usual
/// and do not count as this call giving up.
pub(crate) fn suspended<T>(f: impl FnOnce() -> T) -> T {
    let _mode = Mode {
        outer: ACTIVE.with(|a| a.replace(false)),
    };
    let gave_up = GAVE_UP.with(Cell::get);
    let value = f();
    GAVE_UP.with(|g| g.set(gave_up));
    value
}

/// Whether the call on this thread must not wait.
pub(crate) fn active() -> bool {
    ACTIVE.with(Cell::get)
}

/// Records that the call gave up where it would have waited, and returns the error
/// it ends with (seen only inside [`Store::try_without_waiting`]).
pub(crate) fn would_wait() -> Error {
    GAVE_UP.with(|g| g.set(true));
    Error::storage("the call would have waited, and was asked not to; nothing was done")
}

/// Notes that a wait was cut short by the no-wait mode (when it is on), without
/// changing the error the call ends with.
pub(crate) fn note_given_up() {
    if active() {
        GAVE_UP.with(|g| g.set(true));
    }
}

/// Restores the thread's flags when the call ends, also by a panic.
struct Mode {
    outer: bool,
}

impl Drop for Mode {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.outer));
    }
}

impl Store {
    /// Runs `f` on this thread such that it never waits: where it would wait — for a
    /// lock held by another connection or process, for this store's writer while
    /// another thread writes, for a free read connection, for the fsync of a
    /// [`Durability::Full`](crate::Durability::Full) commit, or (in
    /// [`Store::wait_for_task`] and a waiting [`Store::events`]) for work to arrive — it
    /// gives up at once, and this returns `None`: **nothing was done**, and the same
    /// call may be made again on a thread where it may wait.
    ///
    /// Otherwise it returns the call's own result. (A call that gave up is `None`
    /// even when `f` turned the error into a value, as a tool call does.) This is how an async binding runs
    /// the calls that cost microseconds right on its event loop and sends only the
    /// others to a thread (the Python `AsyncStore`).
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// let done = store.try_without_waiting(|s| s.create_task("ops", NewTask::new("a")));
    /// assert_eq!(done.expect("nothing to wait for")?.id, "OPS-001");
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn try_without_waiting<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Option<Result<T>> {
        let _mode = Mode {
            outer: ACTIVE.with(|a| a.replace(true)),
        };
        let gave_up = GAVE_UP.with(|g| g.replace(false));
        let result = f(self);
        let now_gave_up = GAVE_UP.with(|g| g.replace(gave_up));
        // A call that gave up did nothing, also when it turned the error into a value
        // (a tool's error object).
        (!now_gave_up).then_some(result)
    }
}
