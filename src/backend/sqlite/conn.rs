//! The connections of one SQLite store: one writer, a pool of readers, on the absolute
//! path resolved once at open; fork-aware, and closed exactly once (SPEC §8).
//!
//! - **Writes** go through the one writer connection. Threads of one store queue for
//!   it at a [`Gate`] that gives up at the caller's deadline, and the connection's
//!   busy handler (waiting for *another* connection's lock) gives up at the same
//!   deadline: a write waits at most its busy timeout, counted from when it was
//!   called, however many threads wait with it.
//! - **Reads** take a connection of their own from the pool (opening one when none is
//!   idle, up to a cap of 4 per core and at least 16; past it a read waits, within its
//!   busy timeout, for another read to give one back), so a read never waits for a
//!   write of this store, nor for another process's write lock (WAL). Readers never
//!   create the file and are `query_only`. An in-memory store has one connection,
//!   which reads share with writes (there is no other connection to wait for).
//! - **Fork.** Every call first checks that it runs in the process that opened the
//!   store; in a forked child it is a `storage` error and touches nothing. `close()`
//!   in a child takes no lock and lets go of the parent's connections without closing
//!   them (closing would release the parent's locks or delete its WAL).
//! - **Close.** Each call holds a shared guard while it uses a connection; `close()`
//!   first marks the store as closing (new calls are refused, and calls waiting for the
//!   writer, a reader or another connection's lock give up at once), then takes the
//!   guard exclusively, so it waits only for the calls already running; a second
//!   concurrent `close()` waits for the first to finish.
//! - **Left open.** A connection is never left inside a transaction: the writer ends
//!   any it finds when a call enters, and a reader in one is not put back in the pool.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use super::checkpoint::Checkpointer;
use super::watch::Watch;
use super::{migrations, Fail, SqlResult};
use crate::error::{Error, Result};
use crate::options::{Durability, StoreOptions};

/// Idle readers kept open for the next read; more are opened under load and closed
/// when they come back to a full pool.
const IDLE_READERS: usize = 8;

/// The writer connection's page cache, in KiB.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 64;

fn unpoison<T>(result: std::result::Result<T, PoisonError<T>>) -> T {
    // A panic inside an operation (caught at the C or Python boundary) poisons a lock;
    // its transaction was rolled back when it unwound, so what the lock guards is fine.
    result.unwrap_or_else(PoisonError::into_inner)
}

/// The busy message of a write that waited for the store's own writer, which other
/// calls of this store were using, past its busy timeout.
fn writer_busy() -> Error {
    Error::storage(
        "the database is busy: other calls of this store used its writer for longer than \
         the busy timeout; retry the call, or open the store with a longer busy_timeout",
    )
}

/// The message of a read that found every read connection of the store in use past
/// its busy timeout.
fn readers_busy(cap: usize) -> Error {
    Error::storage(format!(
        "the database is busy: all {cap} read connections of this store were in use for \
         longer than the busy timeout; retry the call, or open the store with a longer \
         busy_timeout"
    ))
}

pub(super) fn closed() -> Error {
    Error::storage("the store is closed; open it again to use it")
}

/// The error of a refused wait at the gate.
fn refusal(refused: Refused) -> Error {
    match refused {
        Refused::Busy => writer_busy(),
        Refused::Closed => closed(),
    }
}

/// Why a wait at the gate or the reader pool ended without a connection.
enum Refused {
    /// The deadline passed.
    Busy,
    /// The store is being closed.
    Closed,
}

/// A deadline shared between a connection's busy handler and the call using it.
struct Deadline {
    base: Instant,
    /// Nanoseconds after `base`.
    at: AtomicU64,
}

impl Deadline {
    fn new() -> Arc<Deadline> {
        Arc::new(Deadline {
            base: Instant::now(),
            at: AtomicU64::new(0),
        })
    }

    fn set(&self, deadline: Instant) {
        let nanos = deadline.saturating_duration_since(self.base).as_nanos();
        self.at
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn remaining(&self) -> Duration {
        let at = self.base + Duration::from_nanos(self.at.load(Ordering::Relaxed));
        at.saturating_duration_since(Instant::now())
    }
}

/// Waits for another connection's lock until the deadline, polling often.
///
/// SQLite's own handler sleeps 1, 2, 5, 10 … 100 ms between tries: while a process
/// sleeps, the lock it waits for is usually released and taken again many times (a
/// write holds it for a fraction of a millisecond), so several processes sharing one
/// file spent most of their time asleep. This one backs off from 20 µs to 1 ms.
fn busy_handler(
    deadline: Arc<Deadline>,
    closing: Arc<AtomicBool>,
) -> impl FnMut(i32) -> bool + Send + 'static {
    move |tries: i32| {
        let left = deadline.remaining();
        if left.is_zero() || closing.load(Ordering::Acquire) || crate::nowait::cancelled() {
            crate::nowait::note_given_up();
            return false;
        }
        let backoff = Duration::from_micros(20 << tries.clamp(0, 6)).min(Duration::from_millis(1));
        std::thread::sleep(backoff.min(left));
        true
    }
}

/// How connections to the file are opened.
#[derive(Debug, Clone)]
pub(super) struct Opener {
    /// Absolute, resolved once at open (a later `chdir` changes nothing).
    path: PathBuf,
    flags: OpenFlags,
    options: StoreOptions,
    /// Set when the store starts closing: waits for a lock give up at once.
    closing: Arc<AtomicBool>,
}

impl Opener {
    fn open(&self, flags: OpenFlags, deadline: &Arc<Deadline>) -> SqlResult<Connection> {
        let mut conn = match super::vfs::name() {
            Some(vfs) => Connection::open_with_flags_and_vfs(&self.path, flags, vfs)?,
            None => Connection::open_with_flags(&self.path, flags)?,
        };
        conn.busy_handler(Some(busy_handler(
            Arc::clone(deadline),
            Arc::clone(&self.closing),
        )))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Query planner stability: without it, a statement whose plan looked at a bound
        // value (as the bundled SQLite's planner does for `agent_id = ?` and `LIMIT ?`)
        // is re-prepared each time it is rebound, which more than doubled the cost of a
        // claim. Every plan here is chosen for the indexes, not for the values.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(conn)
    }

    /// A connection for reads: it refuses to write, and its busy handler (rarely
    /// needed in WAL mode) waits up to the busy timeout from each read's start.
    fn open_reader(&self) -> SqlResult<Reader> {
        let deadline = Deadline::new();
        // Never created by a reader: should the file vanish while the store is open, a
        // read fails rather than starting an empty database at the path.
        let conn = self.open(self.flags - OpenFlags::SQLITE_OPEN_CREATE, &deadline)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(Reader { conn, deadline })
    }
}

impl Opener {
    /// A connection that only watches for commits (`PRAGMA data_version`).
    pub(super) fn open_watcher(&self) -> SqlResult<Connection> {
        let conn = self.open(self.flags - OpenFlags::SQLITE_OPEN_CREATE, &Deadline::new())?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(conn)
    }
}

/// A pooled read connection.
struct Reader {
    conn: Connection,
    deadline: Arc<Deadline>,
}

/// Exclusive use of the writer connection, queued with a deadline.
struct Gate {
    state: Mutex<GateState>,
    freed: Condvar,
    conn: Mutex<Connection>,
    deadline: Arc<Deadline>,
    closing: Arc<AtomicBool>,
}

#[derive(Default)]
struct GateState {
    taken: bool,
    waiting: usize,
}

struct GateGuard<'a> {
    gate: &'a Gate,
    conn: Option<MutexGuard<'a, Connection>>,
}

impl Gate {
    /// Waits for the writer until `deadline`, or until the store starts closing.
    fn enter(&self, deadline: Instant) -> Result<GateGuard<'_>, Refused> {
        let mut state = unpoison(self.state.lock());
        if state.taken {
            state.waiting += 1;
            while state.taken {
                let left = deadline.saturating_duration_since(Instant::now());
                let refused = if self.closing.load(Ordering::Acquire) {
                    Some(Refused::Closed)
                } else if left.is_zero() || crate::nowait::cancelled() {
                    Some(Refused::Busy)
                } else {
                    None
                };
                if let Some(refused) = refused {
                    crate::nowait::note_given_up();
                    state.waiting -= 1;
                    return Err(refused);
                }
                state = unpoison(
                    self.freed
                        .wait_timeout(state, left)
                        .map(|(s, _)| s)
                        .map_err(|e| {
                            let (s, _) = e.into_inner();
                            PoisonError::new(s)
                        }),
                );
            }
            state.waiting -= 1;
        }
        state.taken = true;
        drop(state);
        self.deadline.set(deadline);
        let mut guard = GateGuard {
            gate: self,
            conn: Some(unpoison(self.conn.lock())),
        };
        // Every call ends its transaction (a failed commit rolls back, and so does a
        // panic's unwinding); should one ever be left open, end it here rather than
        // keep the write lock from every other connection.
        if !guard.conn().is_autocommit() {
            let _ = guard.conn().execute_batch("ROLLBACK");
        }
        Ok(guard)
    }

    /// Wakes every waiter, to see that the store is closing or their wait cancelled.
    fn wake_all(&self) {
        let _state = unpoison(self.state.lock());
        self.freed.notify_all();
    }
}

/// The read connections of a file store, at most `cap` of them open at once.
struct Readers {
    state: Mutex<ReaderState>,
    freed: Condvar,
    cap: usize,
}

#[derive(Default)]
struct ReaderState {
    idle: Vec<Reader>,
    /// Readers open, idle or in use.
    open: usize,
}

impl Readers {
    fn new() -> Readers {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Readers {
            state: Mutex::new(ReaderState::default()),
            freed: Condvar::new(),
            cap: (4 * cores).max(16),
        }
    }

    /// An idle reader, a new one while fewer than `cap` are open, or the next one to
    /// come back, waiting at most until `deadline` (waiting for a reader is never
    /// waiting for a writer).
    fn take(&self, opener: &Opener, deadline: Instant) -> Result<Reader, Error> {
        let mut state = unpoison(self.state.lock());
        loop {
            if let Some(reader) = state.idle.pop() {
                return Ok(reader);
            }
            if state.open < self.cap {
                state.open += 1;
                drop(state);
                return opener.open_reader().map_err(|e| {
                    unpoison(self.state.lock()).open -= 1;
                    self.freed.notify_one();
                    Error::from(e)
                });
            }
            if opener.closing.load(Ordering::Acquire) {
                return Err(closed());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || crate::nowait::cancelled() {
                crate::nowait::note_given_up();
                return Err(readers_busy(self.cap));
            }
            state = unpoison(
                self.freed
                    .wait_timeout(state, left)
                    .map(|(s, _)| s)
                    .map_err(|e| PoisonError::new(e.into_inner().0)),
            );
        }
    }

    /// Gives a reader back: kept for the next read unless enough are idle, or unless it
    /// was left inside a transaction (which would hold an old snapshot).
    fn give_back(&self, reader: Reader) {
        let mut state = unpoison(self.state.lock());
        if reader.conn.is_autocommit() && state.idle.len() < IDLE_READERS {
            state.idle.push(reader);
        } else {
            state.open -= 1;
            drop(state);
            drop(reader);
        }
        self.freed.notify_one();
    }
}

impl GateGuard<'_> {
    fn conn(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("held until drop")
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        self.conn.take();
        let mut state = unpoison(self.gate.state.lock());
        state.taken = false;
        if state.waiting > 0 {
            self.gate.freed.notify_one();
        }
    }
}

/// The open connections of a store.
struct Pool {
    writer: Gate,
    /// `None` in memory: reads use the writer, the only connection to that database.
    readers: Option<Readers>,
    opener: Opener,
    checkpointer: Option<Checkpointer>,
}

impl Pool {
    fn close(self) -> Result<()> {
        let readers = self.readers.map(|r| unpoison(r.state.into_inner()).idle);
        for reader in readers.into_iter().flatten() {
            // A reader holds no lock between calls: closing it cannot fail in a way
            // that loses anything, so its error is not the caller's concern.
            let _ = reader.conn.close();
        }
        // Closing the writer drops its commit hook, which stops the checkpointer.
        let closed = unpoison(self.writer.conn.into_inner())
            .close()
            .map_err(|(_, e)| Error::from(Fail::from(e)));
        if let Some(checkpointer) = self.checkpointer {
            checkpointer.join();
        }
        closed
    }
}

/// The connections of one store; see the module docs.
pub(crate) struct Connections {
    pid: u32,
    busy_timeout: Duration,
    /// Whether every commit waits for an fsync (FULL durability, on a file).
    synced_commits: bool,
    pool: RwLock<Option<Pool>>,
    /// Set when `close()` begins: new calls and waiting ones give up at once.
    closing: Arc<AtomicBool>,
    /// Held by the `close()` that closes; a concurrent `close()` waits for it.
    closer: Mutex<()>,
    /// Wakes the waiters of `wait_for_task` at every commit.
    watch: Watch,
}

impl Drop for Connections {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            // A forked child: the connections are the parent's; never close them here.
            if let Some(pool) = unpoison(self.pool.get_mut()).take() {
                std::mem::forget(pool);
            }
            self.watch.forget();
            return;
        }
        // Errors on close cannot be reported from a drop; `close()` reports them.
        let _ = self.close();
    }
}

impl Connections {
    /// Opens the writer (creating the file), checks and migrates the schema, and
    /// starts the background checkpoints of a file store.
    pub(crate) fn open(path: &std::path::Path, options: StoreOptions) -> Result<Connections> {
        let memory = path.as_os_str() == ":memory:";
        // No SQLITE_OPEN_URI; and since the bundled SQLite is built with SQLITE_USE_URI,
        // a relative name that starts with "file:" must not reach it as such. An absolute
        // path never starts with "file:", so resolving the path once settles both this
        // and a later change of the working directory.
        let path = if memory {
            path.to_path_buf()
        } else {
            std::path::absolute(path).map_err(|e| {
                Error::storage(format!(
                    "cannot resolve the database path {}: {e}",
                    path.display()
                ))
            })?
        };
        let closing = Arc::new(AtomicBool::new(false));
        let opener = Opener {
            path,
            flags: OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            options,
            closing: Arc::clone(&closing),
        };
        let deadline = Deadline::new();
        let (conn, checkpointer) = Self::open_writer(&opener, &deadline)?;
        let watch = Watch::new((!memory).then(|| opener.clone()));
        Ok(Connections {
            pid: std::process::id(),
            busy_timeout: opener.options.busy_timeout,
            synced_commits: !memory && opener.options.durability == Durability::Full,
            pool: RwLock::new(Some(Pool {
                writer: Gate {
                    state: Mutex::new(GateState::default()),
                    freed: Condvar::new(),
                    conn: Mutex::new(conn),
                    deadline,
                    closing: Arc::clone(&closing),
                },
                readers: (!memory).then(Readers::new),
                opener,
                checkpointer,
            })),
            closing,
            closer: Mutex::new(()),
            watch,
        })
    }

    fn open_writer(
        opener: &Opener,
        deadline: &Arc<Deadline>,
    ) -> Result<(Connection, Option<Checkpointer>)> {
        if opener.path.is_dir() {
            return Err(Error::storage(format!(
                "cannot open the database at {}: it is a directory; give the path of a \
                 database file inside it, such as {}",
                opener.path.display(),
                opener.path.join("backlogs.db").display()
            )));
        }
        // The open itself waits up to the busy timeout for a migration elsewhere.
        deadline.set(Instant::now() + opener.options.busy_timeout);
        let mut conn = opener.open(opener.flags, deadline).map_err(|e| {
            let err = Error::from(e);
            Error::storage(format!(
                "cannot open the database at {}: {err}",
                opener.path.display()
            ))
        })?;
        // Refuse a foreign or newer file before anything (even WAL mode) is written to
        // it; the refusal names the file.
        migrations::check(&conn).map_err(|e| match Error::from(e) {
            Error::Storage { message, source } => Error::Storage {
                message: format!("{}: {message}", opener.path.display()),
                source,
            },
            other => other,
        })?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(Fail::from)?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(Error::storage(format!(
                "the database could not be switched to WAL mode (it is in {mode} mode); \
                 use a local file system that supports shared memory"
            )));
        }
        let synchronous = match opener.options.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(Fail::from)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(Fail::from)?;
        // The writer's page cache: up to 32 MiB (SQLite's default is 2 MiB), filled only
        // as pages are read. Past about 20,000 tasks the indexes a claim and a finish
        // walk no longer fit in 2 MiB, and every write read pages back from the OS:
        // at 100,000 tasks this cut a claim + complete from 97 to 89 µs and a
        // finish_and_claim from 87 to 76 µs (docs/BENCHMARKS.md).
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(Fail::from)?;
        migrations::migrate(&mut conn)?;
        let checkpointer = if mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)
                .map_err(Fail::from)?;
            Some(
                // The checkpoint thread opens its connection a moment later: should the
                // file be gone by then, it must fail rather than create an empty one.
                Checkpointer::start(
                    &mut conn,
                    opener.path.clone(),
                    opener.flags - OpenFlags::SQLITE_OPEN_CREATE,
                    opener.options.busy_timeout,
                )
                .map_err(Fail::from)?,
            )
        } else {
            None
        };
        Ok((conn, checkpointer))
    }

    /// Refuses a call in a forked child before anything is touched, and a call on a
    /// store that is closed or closing before it waits for anything.
    fn usable(&self) -> Result<()> {
        if std::process::id() != self.pid {
            return Err(Error::storage(
                "this store was opened in a parent process before fork(); open a new store in this process",
            ));
        }
        if self.closing.load(Ordering::Acquire) {
            return Err(closed());
        }
        Ok(())
    }

    /// Checks that the store can be used now: in this process and not closed.
    pub(crate) fn check_open(&self) -> Result<()> {
        self.usable()
    }

    /// When a call that begins now stops waiting for a connection or a lock: after the
    /// busy timeout, or at once when it must not wait ([`crate::nowait`]).
    fn deadline(&self) -> Instant {
        if crate::nowait::active() {
            Instant::now()
        } else {
            Instant::now() + self.busy_timeout
        }
    }

    /// Runs `f` on the writer connection, waiting for it at most until `deadline`.
    fn with_writer<T>(
        &self,
        deadline: Instant,
        f: impl FnOnce(&mut Connection) -> SqlResult<T>,
    ) -> Result<T> {
        self.usable()?;
        let guard = unpoison(self.pool.read());
        let pool = guard.as_ref().ok_or_else(closed)?;
        let mut writer = pool.writer.enter(deadline).map_err(refusal)?;
        let conn = writer.conn();
        f(conn).map_err(|fail| super::write_error(conn, fail))
    }

    /// Runs `f` in an IMMEDIATE transaction on the writer and commits it when `f`
    /// succeeds. The call waits at most the busy timeout in all, from now.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> SqlResult<T>) -> Result<T> {
        if self.synced_commits && crate::nowait::active() {
            // Its commit waits for the disk.
            return Err(crate::nowait::would_wait());
        }
        let deadline = self.deadline();
        let value = self.with_writer(deadline, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })?;
        self.watch.bump();
        Ok(value)
    }

    /// A mark of the changes so far, for [`Connections::wait_change`].
    pub(crate) fn change_mark(&self) -> Result<u64> {
        self.usable()?;
        self.watch.mark()
    }

    /// Waits, holding no connection of the pool, until a commit after `mark` or until
    /// `until` (see `watch.rs`).
    pub(crate) fn wait_change(&self, mark: &mut u64, until: Instant) -> Result<bool> {
        self.usable()?;
        self.watch.wait(mark, until)
    }

    /// Wakes every [`Connections::wait_change`] now, as a commit would (one that
    /// changed nothing: the waiters look, find what they found before, and ask
    /// their stop hooks). A wake between a waiter's mark and its wait is not lost.
    /// Those waiting for the writer or a reader are woken too, to see whether the
    /// wait they run for was cancelled ([`crate::nowait::cancelled`]).
    pub(crate) fn wake_waiters(&self) {
        self.watch.bump();
        if let Some(pool) = unpoison(self.pool.read()).as_ref() {
            pool.writer.wake_all();
            if let Some(readers) = &pool.readers {
                let _state = unpoison(readers.state.lock());
                readers.freed.notify_all();
            }
        }
    }

    /// Runs `f` on a reader connection (the writer in memory), outside a transaction:
    /// for a read of one statement.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> SqlResult<T>) -> Result<T> {
        self.with_reader(|conn| f(conn))
    }

    /// Runs `f` in a read transaction (one snapshot) on a reader connection.
    pub(crate) fn snapshot<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> SqlResult<T>,
    ) -> Result<T> {
        self.with_reader(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    fn with_reader<T>(&self, f: impl FnOnce(&mut Connection) -> SqlResult<T>) -> Result<T> {
        let deadline = self.deadline();
        self.usable()?;
        let guard = unpoison(self.pool.read());
        let pool = guard.as_ref().ok_or_else(closed)?;
        let Some(readers) = &pool.readers else {
            let mut writer = pool.writer.enter(deadline).map_err(refusal)?;
            return f(writer.conn()).map_err(Error::from);
        };
        let mut reader = readers.take(&pool.opener, deadline)?;
        reader.deadline.set(deadline);
        let value = f(&mut reader.conn).map_err(Error::from);
        readers.give_back(reader);
        value
    }

    /// Closes every connection; see the module docs. In a forked child it lets go of
    /// them without touching anything.
    pub(crate) fn close(&self) -> Result<()> {
        if std::process::id() != self.pid {
            return Ok(());
        }
        let _closer = unpoison(self.closer.lock());
        // New calls are refused from here on, and waiting ones give up now (the gate's
        // waiters are woken to see it; busy handlers see it at their next try), so the
        // calls in flight end soon and close() does not wait out their busy timeouts.
        self.closing.store(true, Ordering::Release);
        self.watch.close();
        if let Some(pool) = unpoison(self.pool.read()).as_ref() {
            pool.writer.wake_all();
            if let Some(readers) = &pool.readers {
                let _state = unpoison(readers.state.lock());
                readers.freed.notify_all();
            }
        }
        let pool = unpoison(self.pool.write()).take();
        match pool {
            Some(pool) => pool.close(),
            None => Ok(()),
        }
    }

    /// Whether a panic left the writer's lock poisoned (tests).
    #[cfg(test)]
    pub(crate) fn writer_poisoned(&self) -> bool {
        let guard = unpoison(self.pool.read());
        guard.as_ref().is_some_and(|p| p.writer.conn.is_poisoned())
    }

    /// Runs `f` on the writer connection outside any transaction (tests).
    #[cfg(test)]
    pub(crate) fn with_writer_conn<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        self.with_writer(Instant::now() + self.busy_timeout, |c| Ok(f(c)))
            .expect("the store is open")
    }
}
