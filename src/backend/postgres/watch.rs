//! Waking waiters when the database changes (SPEC §11): `LISTEN/NOTIFY`, with polling
//! as the fallback.
//!
//! Every commit with events updates the feed's row, whose trigger sends a notification
//! on the schema's channel at commit. The first waiter of a store starts a listener:
//! a thread with a connection of its own that `LISTEN`s on that channel and wakes
//! every waiter of the store at each notification. While the listener is down (the
//! server restarted), a waiter reads the feed's seq every [`POLL`] instead, and the
//! listener connects again.
//!
//! A mark is a version of this store's watch, which grows at every change seen (a
//! notification, a commit of this store, a change found by polling, a wake).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;

use super::pool::Pool;
use crate::error::Result;

/// How often a waiter reads the feed itself (the fallback of notifications).
const POLL: Duration = Duration::from_millis(500);
/// How long the listener sleeps after failing to connect before it tries again.
const RECONNECT: Duration = Duration::from_millis(250);

#[derive(Default)]
struct State {
    version: u64,
    /// The feed's seq as last read, the baseline of the next poll.
    seq: Option<i64>,
    /// Whether the listener listens now.
    listening: bool,
    /// Whether a listener thread runs.
    started: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn bump(&self) {
        lock(&self.state).version += 1;
        self.changed.notify_all();
    }
}

/// See the module docs.
pub(super) struct Watch {
    shared: Arc<Shared>,
    /// The channel of the store's schema.
    channel: String,
}

impl Watch {
    pub(super) fn new(schema: &str) -> Watch {
        Watch {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
                stop: AtomicBool::new(false),
            }),
            channel: format!("agent_backlog:{schema}"),
        }
    }

    /// A change seen by this process: a commit of this store, or a wake.
    pub(super) fn bump(&self) {
        self.shared.bump();
    }

    /// The current mark. Starts the listener first (and waits for it to listen, for a
    /// moment), so that a commit after the mark is heard.
    pub(super) fn mark(&self, pool: &Arc<Pool>) -> Result<u64> {
        self.start(pool);
        let seq = feed_seq(pool)?;
        let mut state = lock(&self.shared.state);
        if state.seq.is_some_and(|s| s < seq) {
            state.version += 1;
        }
        state.seq = Some(seq);
        Ok(state.version)
    }

    /// Waits until the version passes `mark` or until `until`.
    pub(super) fn wait(&self, pool: &Arc<Pool>, mark: &mut u64, until: Instant) -> Result<bool> {
        let mut last_poll = Instant::now();
        loop {
            let state = lock(&self.shared.state);
            if state.version > *mark {
                *mark = state.version;
                return Ok(true);
            }
            let now = Instant::now();
            if now >= until || pool.is_closed() {
                return Ok(false);
            }
            let listening = state.listening;
            let poll_at = last_poll + POLL;
            let wake_at = if listening { until } else { until.min(poll_at) };
            let (state, _) = self
                .shared
                .changed
                .wait_timeout(state, wake_at.saturating_duration_since(now).min(POLL))
                .unwrap_or_else(PoisonError::into_inner);
            let listening = state.listening;
            drop(state);
            if !listening && Instant::now() >= poll_at {
                last_poll = Instant::now();
                let seq = feed_seq(pool)?;
                let mut state = lock(&self.shared.state);
                if state.seq.is_none_or(|s| s < seq) {
                    state.seq = Some(seq);
                    state.version += 1;
                }
            }
        }
    }

    /// Starts the listener thread, once, and waits up to a second for it to listen.
    fn start(&self, pool: &Arc<Pool>) {
        let mut state = lock(&self.shared.state);
        if !state.started {
            state.started = true;
            let shared = Arc::clone(&self.shared);
            let pool = Arc::clone(pool);
            let channel = self.channel.clone();
            let spawned = std::thread::Builder::new()
                .name("agent-backlog-listen".into())
                .spawn(move || listen(&shared, &pool, &channel));
            if spawned.is_err() {
                state.started = false;
                return;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while !state.listening && Instant::now() < deadline {
            state = self
                .shared
                .changed
                .wait_timeout(state, Duration::from_millis(20))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops the listener (within its next tick).
    pub(super) fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.bump();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The feed's seq: the newest event's.
fn feed_seq(pool: &Pool) -> Result<i64> {
    pool.read(|tx| {
        Ok(tx
            .query_one("SELECT seq FROM feed WHERE one = 1", &[])?
            .try_get(0)?)
    })
}

/// The listener: connects, listens, and wakes the waiters at every notification; on a
/// failure it marks itself down (waiters poll) and connects again.
fn listen(shared: &Shared, pool: &Pool, channel: &str) {
    let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
    while !shared.stop.load(Ordering::Acquire) && !pool.is_closed() {
        let Ok(mut client) = pool.connect() else {
            std::thread::sleep(RECONNECT);
            continue;
        };
        if client.batch_execute(&format!("LISTEN {quoted}")).is_err() {
            std::thread::sleep(RECONNECT);
            continue;
        }
        {
            let mut state = lock(&shared.state);
            state.listening = true;
            // Anything committed while nobody listened is looked at again.
            state.version += 1;
        }
        shared.changed.notify_all();
        loop {
            if shared.stop.load(Ordering::Acquire) || pool.is_closed() {
                break;
            }
            let heard = client
                .notifications()
                .timeout_iter(Duration::from_millis(100))
                .next();
            match heard {
                Ok(Some(_)) => {
                    // Take every notification already here, then wake once.
                    let mut rest = client.notifications();
                    while let Ok(Some(_)) = rest.iter().next() {}
                    shared.bump();
                }
                Ok(None) if client.is_closed() => break,
                Ok(None) => {}
                Err(_) => break,
            }
        }
        lock(&shared.state).listening = false;
        shared.changed.notify_all();
    }
    lock(&shared.state).listening = false;
}
