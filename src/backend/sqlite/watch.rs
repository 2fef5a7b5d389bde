//! Waking waiters when the database changes (SPEC §11), without spinning.
//!
//! - A commit of this store bumps the watch's version and wakes every waiter at once.
//! - A commit of any other connection — another store in this process, another
//!   process — is seen by polling `PRAGMA data_version` on a connection of the watch's
//!   own, every [`POLL`]. One waiter polls for all of them (the others sleep until it
//!   or a local commit wakes them), so many waiting threads cost one poll per tick.
//! - The baseline `data_version` is read when a waiter takes its mark, before it
//!   looks for work, so a commit made between that look and the first poll is seen.
//!
//! An in-memory store has no other connection, so its local commits are all there is.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::conn::Opener;
use super::SqlResult;
use crate::error::{Error, Result};

/// How often one waiter polls for commits of other connections. A wake-up comes
/// at most this long (plus a claim) after the commit that made a task ready.
pub(super) const POLL: Duration = Duration::from_millis(20);

#[derive(Default)]
struct State {
    /// Grows by one at every change seen.
    version: u64,
    /// Whether a waiter is polling for the others.
    polling: bool,
    /// Waiters inside `wait`: a commit wakes them only when there are some (a notify
    /// is a system call even when nobody waits).
    waiters: usize,
    closed: bool,
    /// The last `data_version` read, the baseline of the next poll.
    data_version: Option<i64>,
}

/// See the module docs.
pub(super) struct Watch {
    state: Mutex<State>,
    changed: Condvar,
    /// Opens the polling connection (`None` in memory).
    opener: Option<Opener>,
    conn: Mutex<Option<Connection>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Watch {
    pub(super) fn new(opener: Option<Opener>) -> Watch {
        Watch {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            opener,
            conn: Mutex::new(None),
        }
    }

    /// A commit of this store: wake every waiter.
    pub(super) fn bump(&self) {
        let mut state = lock(&self.state);
        state.version += 1;
        let waiters = state.waiters;
        drop(state);
        if waiters > 0 {
            self.changed.notify_all();
        }
    }

    /// Reads `data_version` on the watch's connection (opened on first use).
    fn data_version(&self) -> SqlResult<Option<i64>> {
        let Some(opener) = &self.opener else {
            return Ok(None);
        };
        let mut conn = lock(&self.conn);
        if conn.is_none() {
            *conn = Some(opener.open_watcher()?);
        }
        let conn = conn.as_ref().expect("opened above");
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        Ok(Some(version))
    }

    /// Folds a `data_version` just read into the state: a change from the baseline is
    /// a change of the store.
    fn seen(&self, state: &mut State, version: Option<i64>) {
        if let Some(v) = version {
            if state.data_version.is_some_and(|old| old != v) {
                state.version += 1;
                self.changed.notify_all();
            }
            state.data_version = Some(v);
        }
    }

    /// The version now, with a baseline for the polls of other connections' commits.
    pub(super) fn mark(&self) -> Result<u64> {
        let version = self.data_version().map_err(Error::from)?;
        let mut state = lock(&self.state);
        if state.closed {
            return Err(super::conn::closed());
        }
        if state.data_version.is_none() {
            state.data_version = version;
        }
        Ok(state.version)
    }

    /// Waits until the version moves past `mark` or until `until`; see the module docs.
    pub(super) fn wait(&self, mark: &mut u64, until: Instant) -> Result<bool> {
        let mut poller = false;
        let mut state = lock(&self.state);
        state.waiters += 1;
        let outcome = loop {
            if state.closed {
                break Err(super::conn::closed());
            }
            if state.version != *mark {
                *mark = state.version;
                break Ok(true);
            }
            let now = Instant::now();
            if now >= until {
                break Ok(false);
            }
            if self.opener.is_some() && !state.polling {
                state.polling = true;
                poller = true;
            }
            let nap = if poller {
                (until - now).min(POLL)
            } else {
                until - now
            };
            state = self
                .changed
                .wait_timeout(state, nap)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
            if poller && state.version == *mark && !state.closed {
                drop(state);
                let version = self.data_version();
                state = lock(&self.state);
                match version {
                    Ok(v) => self.seen(&mut state, v),
                    Err(e) => break Err(Error::from(e)),
                }
            }
        };
        state.waiters -= 1;
        if poller {
            // Another waiter takes over the polling.
            state.polling = false;
            drop(state);
            self.changed.notify_all();
        }
        outcome
    }

    /// Wakes every waiter with a `storage` error and closes the polling connection.
    pub(super) fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_all();
        if let Some(conn) = lock(&self.conn).take() {
            let _ = conn.close();
        }
    }

    /// Lets go of the polling connection without closing it (a forked child).
    pub(super) fn forget(&self) {
        if let Some(conn) = lock(&self.conn).take() {
            std::mem::forget(conn);
        }
    }
}
