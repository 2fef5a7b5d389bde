//! Issue 5, promise 3: busy is a clear, bounded error.
//!
//! While another connection holds the write lock (`BEGIN IMMEDIATE` through a plain
//! rusqlite connection, in another thread or another process), every write waits for
//! the busy timeout and then fails with a `storage` error that says the database is
//! busy and that the call can be retried; nothing is written; reads are not blocked
//! and see the last committed state. A write whose lock is released before its
//! timeout succeeds.
//!
//! Times are only ever checked from below (a call that failed on busy took at least
//! the timeout); nothing here fails because the machine is slow.

mod common;
mod reliability_common;

use std::ffi::{c_char, CStr, CString};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use agent_backlog::{Error, ListQuery, NewTask, Status, Store, StoreOptions, TaskPatch, TaskQuery};
use common::{snapshot, TempDir};
use reliability_common::{child_test, report, say, wait_bounded, CHILD_DEADLINE};

const ENV_DB: &str = "AGENT_BACKLOG_BUSY_DB";
const AGENT: &str = "busy-bot";

fn store_with_timeout(path: &Path, timeout: Duration) -> Store {
    Store::open_with(
        path,
        StoreOptions {
            busy_timeout: timeout,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// A file with three tasks of AGENT: BUS-001 queued, BUS-002 in_progress, BUS-003 queued.
fn prepared(dir: &TempDir) -> PathBuf {
    let path = dir.file("busy.db");
    let store = Store::open(&path).unwrap();
    store.set_prefix(AGENT, "BUS").unwrap();
    for title in ["first", "second", "third"] {
        store.create_task(AGENT, NewTask::new(title)).unwrap();
    }
    store
        .update_task(
            AGENT,
            "BUS-002",
            TaskPatch::new().status(Status::InProgress),
        )
        .unwrap();
    store.close().unwrap();
    path
}

/// Holds the write lock, with an uncommitted change to BUS-001's title, in a thread
/// of this process until `release` is called.
struct ThreadLock {
    release: mpsc::Sender<()>,
    released: mpsc::Receiver<Instant>,
    handle: Option<thread::JoinHandle<()>>,
}

impl ThreadLock {
    fn hold(path: &Path) -> ThreadLock {
        let path = path.to_owned();
        let (locked_tx, locked_rx) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let (released_tx, released) = mpsc::channel();
        let handle = thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "BEGIN IMMEDIATE; UPDATE tasks SET title = 'uncommitted' WHERE id = 'BUS-001';",
            )
            .unwrap();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
            let at = Instant::now();
            conn.execute_batch("ROLLBACK").unwrap();
            released_tx.send(at).unwrap();
        });
        locked_rx.recv().unwrap();
        ThreadLock {
            release,
            released,
            handle: Some(handle),
        }
    }

    /// Rolls the holder back; returns the moment just before it let go.
    fn release(mut self) -> Instant {
        self.release.send(()).unwrap();
        let at = self.released.recv().unwrap();
        self.handle.take().unwrap().join().unwrap();
        at
    }
}

impl Drop for ThreadLock {
    fn drop(&mut self) {
        let _ = self.release.send(());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Entry point of the lock-holding child process: `BEGIN IMMEDIATE` with an
/// uncommitted change, "locked" on stdout, then waits for its stdin to close.
#[test]
#[ignore = "run as a child process by the busy tests"]
fn busy_lock_holder_child() {
    let path = std::env::var(ENV_DB).expect("run by the busy tests");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "BEGIN IMMEDIATE; UPDATE tasks SET title = 'uncommitted' WHERE id = 'BUS-001';",
    )
    .unwrap();
    say("locked");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    conn.execute_batch("ROLLBACK").unwrap();
}

/// The write lock held by another process until dropped.
struct ProcessLock(Child, Option<thread::JoinHandle<()>>);

impl ProcessLock {
    fn hold(path: &Path) -> ProcessLock {
        let mut child = child_test("busy_lock_holder_child")
            .env(ENV_DB, path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let locked = lines.any(|l| l.is_ok_and(|l| report(&l) == Some("locked")));
        assert!(locked, "the lock holder did not start");
        // Keep reading, so that the child never writes to a closed pipe.
        let drain = thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        ProcessLock(child, Some(drain))
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let status = wait_bounded(&mut self.0, CHILD_DEADLINE, "the lock holder");
        if let Some(drain) = self.1.take() {
            let _ = drain.join();
        }
        if !thread::panicking() {
            assert!(status.success(), "the lock holder failed: {status}");
        }
    }
}

/// Checks a busy failure: a `storage` error saying busy and retry, after at least
/// `timeout`.
fn assert_busy<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    call: impl FnOnce() -> agent_backlog::Result<T>,
) {
    let start = Instant::now();
    let outcome = call();
    let took = start.elapsed();
    let err = match outcome {
        Err(err) => err,
        Ok(v) => panic!("{what} succeeded while another connection held the write lock: {v:?}"),
    };
    assert!(matches!(err, Error::Storage { .. }), "{what}: {err:?}");
    assert_eq!(err.code(), "storage");
    let message = err.to_string();
    assert!(
        message.contains("the database is busy"),
        "{what}: {message}"
    );
    assert!(message.contains("retry"), "{what}: {message}");
    assert!(message.contains("busy_timeout"), "{what}: {message}");
    assert!(
        took >= timeout,
        "{what} gave up after {took:?}, before its busy timeout of {timeout:?}"
    );
}

/// Every write of the API, one after another, against the held lock.
fn every_write_is_busy(store: &Store, timeout: Duration) {
    assert_busy("create_task", timeout, || {
        store.create_task(AGENT, NewTask::new("never written"))
    });
    assert_busy("create_tasks", timeout, || {
        store.create_tasks(AGENT, vec![NewTask::new("a"), NewTask::new("b")])
    });
    assert_busy("update_task", timeout, || {
        store.update_task(AGENT, "BUS-001", TaskPatch::new().priority(1))
    });
    assert_busy("delete_task", timeout, || {
        store.delete_task(AGENT, "BUS-003")
    });
    assert_busy("claim_next", timeout, || store.claim_next(AGENT));
    assert_busy("set_prefix", timeout, || {
        store.set_prefix("new-agent", "NEW")
    });
}

/// Reads go on while the lock is held, and see the committed state only.
fn reads_are_not_blocked(store: &Store) {
    let task = store.get_task(AGENT, "BUS-001").unwrap();
    assert_eq!(task.title, "first", "a read saw an uncommitted change");
    let list = store.list_tasks(AGENT, ListQuery::new()).unwrap();
    assert_eq!(list.total, 3);
    let summary = store.summary(AGENT).unwrap();
    assert_eq!((summary.queued, summary.in_progress), (2, 1));
    let all = store
        .query_tasks(TaskQuery::new().status(Status::Queued))
        .unwrap();
    assert_eq!(all.total, 2);
}

#[test]
fn short_timeout_lock_held_by_another_thread() {
    let dir = TempDir::new("busy-thread");
    let path = prepared(&dir);
    let timeout = Duration::from_millis(50);
    let store = store_with_timeout(&path, timeout);
    let before = snapshot(&store);
    let lock = ThreadLock::hold(&path);
    // Opening an existing file needs no write lock.
    let second = store_with_timeout(&path, timeout);
    every_write_is_busy(&store, timeout);
    reads_are_not_blocked(&store);
    reads_are_not_blocked(&second);
    lock.release();
    // Nothing was written by the calls that failed; the store works.
    assert_eq!(snapshot(&store), before);
    assert_eq!(
        store.create_task(AGENT, NewTask::new("after")).unwrap().id,
        "BUS-004"
    );
}

#[test]
fn long_timeout_lock_held_by_another_process() {
    let dir = TempDir::new("busy-process");
    let path = prepared(&dir);
    let timeout = Duration::from_millis(1500);
    let store = store_with_timeout(&path, timeout);
    let before = snapshot(&store);
    {
        let _lock = ProcessLock::hold(&path);
        assert_busy("create_task", timeout, || {
            store.create_task(AGENT, NewTask::new("never written"))
        });
        assert_busy("claim_next", timeout, || store.claim_next(AGENT));
        reads_are_not_blocked(&store);
        // A short timeout against the same lock.
        let short = store_with_timeout(&path, Duration::from_millis(50));
        every_write_is_busy(&short, Duration::from_millis(50));
    }
    assert_eq!(snapshot(&store), before);
    let claimed = store.claim_next(AGENT).unwrap().unwrap();
    assert_eq!(claimed.id, "BUS-001");
}

/// A writer waits for a lock that is released before its timeout, then succeeds.
#[test]
fn a_write_waits_for_the_lock_and_then_succeeds() {
    let dir = TempDir::new("busy-wait");
    let path = prepared(&dir);
    // Far longer than the test needs: reaching it would fail the test.
    let store = std::sync::Arc::new(store_with_timeout(&path, Duration::from_secs(300)));
    for op in ["create_task", "claim_next", "update_task"] {
        let lock = ThreadLock::hold(&path);
        let (started_tx, started) = mpsc::channel();
        let waiter = {
            let store = std::sync::Arc::clone(&store);
            thread::spawn(move || {
                started_tx.send(()).unwrap();
                let outcome = match op {
                    "create_task" => store
                        .create_task(AGENT, NewTask::new("waited"))
                        .map(|t| t.id),
                    "claim_next" => store.claim_next(AGENT).map(|t| t.unwrap().id),
                    _ => store
                        .update_task(AGENT, "BUS-002", TaskPatch::new().priority(2))
                        .map(|t| t.id),
                };
                (outcome, Instant::now())
            })
        };
        started.recv().unwrap();
        // Give the waiter time to reach SQLite's busy wait. Not needed for the test
        // to pass; it only makes the wait happen rather than be skipped.
        thread::sleep(Duration::from_millis(100));
        assert!(
            !waiter.is_finished(),
            "{op} finished while another connection held the write lock"
        );
        let released_at = lock.release();
        let (outcome, done_at) = waiter.join().unwrap();
        let id = outcome.unwrap_or_else(|e| panic!("{op} failed after the lock was released: {e}"));
        assert!(
            done_at >= released_at,
            "{op} returned before the lock was released"
        );
        match op {
            "create_task" => assert_eq!(id, "BUS-004"),
            "claim_next" => assert_eq!(id, "BUS-001"),
            _ => assert_eq!(id, "BUS-002"),
        }
    }
    let summary = store.summary(AGENT).unwrap();
    assert_eq!((summary.total, summary.in_progress), (4, 2));
}

/// The same error through the C ABI: code 5, the error JSON with the busy message.
#[test]
fn busy_through_the_c_abi() {
    use agent_backlog_capi::*;
    let dir = TempDir::new("busy-c");
    let path = prepared(&dir);
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let options = CString::new(r#"{"busy_timeout_ms":50}"#).unwrap();
    let mut handle = std::ptr::null_mut();
    let mut error: *mut c_char = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated strings and writable out-parameters.
    let code = unsafe {
        backlog_open_with_options(c_path.as_ptr(), options.as_ptr(), &mut handle, &mut error)
    };
    assert_eq!(code, 0);
    let lock = ThreadLock::hold(&path);
    let agent = CString::new(AGENT).unwrap();
    let body = CString::new(r#"{"title":"never written"}"#).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    let start = Instant::now();
    // SAFETY: an open handle, valid strings, a writable out-parameter.
    let code = unsafe { backlog_create_task(handle, agent.as_ptr(), body.as_ptr(), &mut out) };
    let took = start.elapsed();
    // SAFETY: the library wrote a NUL-terminated string, freed once below.
    let json = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    // SAFETY: `out` came from the library.
    unsafe { backlog_string_free(out) };
    assert_eq!(code, 5, "{json}");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["error"]["code"], "storage");
    let message = value["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the database is busy") && message.contains("retry"),
        "{message}"
    );
    assert!(took >= Duration::from_millis(50), "{took:?}");
    lock.release();
    backlog_close(handle);
}
