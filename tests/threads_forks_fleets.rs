//! The promises of SPEC §8 and §5 under threads, forks and fleets.
//!
//! - A read returns while a write of the same handle is still waiting for another
//!   process's write lock.
//! - Writes queued on one handle each wait at most their busy timeout, counted from
//!   their call: four of them all give up before twice the timeout.
//! - `close()` in a child forked while a thread of the parent was inside a call
//!   returns (50 forks), and later calls in the child are `storage` errors.
//! - `close()` is idempotent and concurrent-safe; after it returns the file is closed
//!   (no descriptor of this process refers to it) and every call, an empty batch
//!   included, is a `storage` error.
//! - Agents sharing a derived base (`worker-1` … `worker-N`) get WOR, WOR2, … WOR{N},
//!   skipping a candidate taken by `set_prefix`, and every one's task can be fetched,
//!   also past eight characters. `make stress` runs 100,000 of them.
//!
//! Nothing here is timed from above except by generous bounds (a call that must return
//! "soon" has seconds to do so), so a slow machine cannot fail it.

mod common;
mod reliability_common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use agent_backlog::{ListQuery, NewTask, Store, StoreOptions, TaskQuery};
use common::TempDir;
use reliability_common::{child_test, report, say, size, wait_bounded, CHILD_DEADLINE};

const ENV_DB: &str = "AGENT_BACKLOG_TFF_DB";

fn with_timeout(path: &Path, timeout: Duration) -> Store {
    Store::open_with(
        path,
        StoreOptions {
            busy_timeout: timeout,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// Entry point of the lock-holding child: `BEGIN IMMEDIATE`, "locked", then waits for
/// its stdin to close.
#[test]
#[ignore = "run as a child process by the tests of this file"]
fn lock_holder_child() {
    let path = std::env::var(ENV_DB).expect("run by the tests of this file");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE; UPDATE agents SET next_number = next_number;")
        .unwrap();
    say("locked");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    conn.execute_batch("ROLLBACK").unwrap();
}

/// The write lock, held by another process until dropped.
struct ProcessLock(Child);

impl ProcessLock {
    fn hold(path: &Path) -> ProcessLock {
        let mut child = child_test("lock_holder_child")
            .env(ENV_DB, path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let locked = lines.any(|l| l.is_ok_and(|l| report(&l) == Some("locked")));
        assert!(locked, "the lock holder did not start");
        thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        ProcessLock(child)
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        wait_bounded(&mut self.0, CHILD_DEADLINE, "the lock holder");
    }
}

fn prepared(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.file("tff.db");
    let store = Store::open(&path).unwrap();
    store
        .create_tasks(
            "reader",
            vec![NewTask::new("one"), NewTask::new("two").priority(1)],
        )
        .unwrap();
    store.close().unwrap();
    path
}

#[test]
fn reads_return_while_a_write_of_the_same_handle_waits_for_another_process() {
    let dir = TempDir::new("tff-read");
    let path = prepared(&dir);
    let store = Arc::new(with_timeout(&path, Duration::from_secs(30)));
    let lock = ProcessLock::hold(&path);
    let (started_tx, started) = mpsc::channel();
    let writer_done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&writer_done));
        thread::spawn(move || {
            started_tx.send(()).unwrap();
            let created = store.create_task("reader", NewTask::new("three"));
            done.store(true, Ordering::SeqCst);
            created
        })
    };
    started.recv().unwrap();
    // Give the writer time to enter its busy wait; the assertions hold either way.
    thread::sleep(Duration::from_millis(200));
    for round in 0..20 {
        let summary = store.summary("reader").unwrap();
        assert_eq!(summary.total, 2, "round {round}");
        let list = store.list_tasks("reader", ListQuery::new()).unwrap();
        assert_eq!(list.tasks[0].title, "two");
        assert_eq!(store.get_task("reader", "REA-001").unwrap().title, "one");
        assert_eq!(store.query_tasks(TaskQuery::new()).unwrap().total, 2);
    }
    assert!(
        !writer_done.load(Ordering::SeqCst),
        "the writer returned while the other process still held the lock"
    );
    drop(lock);
    let created = writer.join().unwrap().unwrap();
    assert_eq!(created.id, "REA-003");
}

#[test]
fn queued_writes_each_wait_at_most_their_timeout_from_the_call() {
    let dir = TempDir::new("tff-queue");
    let path = prepared(&dir);
    let timeout = Duration::from_secs(1);
    let store = Arc::new(with_timeout(&path, timeout));
    let _lock = ProcessLock::hold(&path);
    let barrier = Arc::new(Barrier::new(4));
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let outcome = store.create_task("reader", NewTask::new(format!("w{i}")));
                (start.elapsed(), outcome)
            })
        })
        .collect();
    for writer in writers {
        let (took, outcome) = writer.join().unwrap();
        let err = outcome.expect_err("the lock is held throughout");
        assert_eq!(err.code(), "storage", "{err}");
        assert!(err.to_string().contains("busy"), "{err}");
        assert!(
            took >= timeout,
            "gave up after {took:?}, before {timeout:?}"
        );
        assert!(
            took < 2 * timeout,
            "waited {took:?}: a queued write must not add its own timeout to the queue's"
        );
    }
}

/// The descriptors of this process that refer to `path` (or its -wal and -shm files).
fn open_descriptors(path: &Path) -> usize {
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| {
            target.parent() == path.parent()
                && target
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&name))
        })
        .count()
}

#[test]
fn close_is_idempotent_concurrent_and_final() {
    let dir = TempDir::new("tff-close");
    let path = prepared(&dir);
    for _ in 0..10 {
        let store = Arc::new(Store::open(&path).unwrap());
        // Open a reader or two, so that there is more than one connection to close.
        store.summary("reader").unwrap();
        store.create_task("reader", NewTask::new("more")).unwrap();
        assert!(open_descriptors(&path) > 0, "the test would not notice");
        let barrier = Arc::new(Barrier::new(2));
        let closers: Vec<_> = (0..2)
            .map(|_| {
                let (store, barrier, path) =
                    (Arc::clone(&store), Arc::clone(&barrier), path.clone());
                thread::spawn(move || {
                    barrier.wait();
                    store.close().unwrap();
                    // Once this close() has returned, the file is closed, whichever
                    // thread did the closing.
                    open_descriptors(&path)
                })
            })
            .collect();
        for closer in closers {
            assert_eq!(closer.join().unwrap(), 0);
        }
        let err = store.create_tasks("reader", Vec::new()).unwrap_err();
        assert_eq!(err.code(), "storage", "{err}");
        assert!(err.to_string().contains("closed"), "{err}");
        assert_eq!(store.summary("reader").unwrap_err().code(), "storage");
        assert_eq!(
            store
                .call("summary", r#"{"agent_id":"reader"}"#)
                .unwrap_err()
                .code(),
            "storage"
        );
        store.close().unwrap();
    }
}

#[test]
fn close_in_a_child_forked_mid_call_returns() {
    let dir = TempDir::new("tff-fork");
    let path = prepared(&dir);
    let store = Arc::new(Store::open(&path).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                store.create_task("forker", NewTask::new("t")).unwrap();
                store
                    .list_tasks("forker", ListQuery::new().limit(5))
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    for round in 0..50 {
        // SAFETY: the child only calls close() and one more store method, then leaves
        // with _exit, without running destructors or the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let closed = store.close().is_ok();
            let refused = store
                .summary("forker")
                .is_err_and(|e| e.code() == "storage");
            let code = if closed && refused { 0 } else { 1 };
            // SAFETY: ends the child at once, as a forked child of a threaded process must.
            unsafe { libc::_exit(code) };
        }
        let start = Instant::now();
        let status = loop {
            let mut status = 0;
            // SAFETY: waits for our own child, without blocking.
            let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if done == pid {
                break status;
            }
            if start.elapsed() > Duration::from_secs(20) {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("round {round}: close() in the forked child hung");
            }
            thread::sleep(Duration::from_millis(1));
        };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "round {round}: the child's close() failed or a later call was not refused ({status})"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let calls = busy.join().unwrap();
    assert!(calls > 0);
    // The parent's store is untouched by the children.
    assert_eq!(store.summary("forker").unwrap().total, calls);
}

#[test]
fn a_fleet_sharing_a_base_is_numbered_and_every_task_fetchable() {
    let agents = size(3_000, 100_000);
    let dir = TempDir::new("tff-fleet");
    let store = Store::open(dir.file("fleet.db")).unwrap();
    // A prefix taken by set_prefix is skipped, not given twice.
    store.set_prefix("someone-else", "WOR5").unwrap();
    let mut expected = Vec::with_capacity(agents);
    let mut n = 1;
    for i in 1..=agents {
        if n == 5 {
            n += 1;
        }
        let want = if n == 1 {
            "WOR".to_owned()
        } else {
            format!("WOR{n}")
        };
        n += 1;
        let task = store
            .create_task(&format!("worker-{i}"), NewTask::new("t"))
            .unwrap();
        assert_eq!(task.id, format!("{want}-001"), "agent {i}");
        expected.push((i, task.id));
    }
    for (i, id) in &expected {
        let agent = format!("worker-{i}");
        assert_eq!(&store.get_task(&agent, id).unwrap().id, id);
    }
    let (_, last) = expected.last().unwrap();
    let json = store
        .call(
            "get_task",
            &format!(r#"{{"agent_id":"worker-{agents}","task_id":"{last}"}}"#),
        )
        .unwrap();
    assert!(json.contains(last.as_str()), "{json}");
    // An ID with a 12-character prefix is well-formed; 13 is not.
    assert_eq!(
        store
            .get_task("worker-1", "ABCDEFGHIJKL-001")
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        store
            .get_task("worker-1", "ABCDEFGHIJKLM-001")
            .unwrap_err()
            .code(),
        "invalid_argument"
    );
}

/// A candidate given up by `set_prefix` is the first free one again: derivation takes
/// it before any later candidate (SPEC §5), as it did before the per-base counter.
#[test]
fn a_candidate_given_up_by_set_prefix_is_taken_again_first() {
    let store = Store::open_in_memory().unwrap();
    store.set_prefix("placeholder", "SUP").unwrap();
    assert_eq!(
        store
            .create_task("support-bot", NewTask::new("t"))
            .unwrap()
            .id,
        "SUP2-001"
    );
    store.set_prefix("placeholder", "PLH").unwrap();
    assert_eq!(
        store
            .create_task("supply-chain", NewTask::new("t"))
            .unwrap()
            .id,
        "SUP-001"
    );
    assert_eq!(
        store
            .create_task("super-agent", NewTask::new("t"))
            .unwrap()
            .id,
        "SUP3-001"
    );
    // The same for a numbered candidate.
    store.set_prefix("holder", "WOR").unwrap();
    for (agent, id) in [("worker-1", "WOR2-001"), ("worker-2", "WOR3-001")] {
        assert_eq!(store.create_task(agent, NewTask::new("t")).unwrap().id, id);
    }
    store.set_prefix("holder-2", "WOR4").unwrap();
    store.set_prefix("holder-2", "HLD").unwrap();
    assert_eq!(
        store.create_task("worker-3", NewTask::new("t")).unwrap().id,
        "WOR4-001"
    );
    assert_eq!(
        store.create_task("worker-4", NewTask::new("t")).unwrap().id,
        "WOR5-001"
    );
}

/// `close()` does not wait out the busy timeout of a write that waits for another
/// process's lock: the write gives up as the store closes, and calls that begin
/// meanwhile are refused at once.
#[test]
fn close_ends_the_waits_of_calls_in_flight() {
    let dir = TempDir::new("tff-close-wait");
    let path = prepared(&dir);
    let store = Arc::new(with_timeout(&path, Duration::from_secs(60)));
    let _lock = ProcessLock::hold(&path);
    let writers: Vec<_> = (0..3)
        .map(|i| {
            let store = Arc::clone(&store);
            thread::spawn(move || store.create_task("reader", NewTask::new(format!("w{i}"))))
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    store.close().unwrap();
    let took = start.elapsed();
    for writer in writers {
        let err = writer
            .join()
            .unwrap()
            .expect_err("the store closed under it");
        assert_eq!(err.code(), "storage", "{err}");
    }
    assert!(
        took < Duration::from_secs(30),
        "close() waited {took:?}, as long as the busy timeout of the writes"
    );
    assert!(store
        .summary("reader")
        .unwrap_err()
        .to_string()
        .contains("closed"));
}

/// Many reads at once all succeed (past the cap of read connections they wait for one
/// to come back), and a read never creates the file: once the file is gone, a new
/// read connection fails instead of starting an empty database at the path.
#[test]
fn many_reads_at_once_and_no_file_created_by_a_read() {
    let dir = TempDir::new("tff-readers");
    let path = prepared(&dir);
    let store = Arc::new(Store::open(&path).unwrap());
    let readers: Vec<_> = (0..64)
        .map(|_| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for _ in 0..20 {
                    assert_eq!(store.summary("reader").unwrap().total, 2);
                    store.list_tasks("reader", ListQuery::new()).unwrap();
                }
            })
        })
        .collect();
    for reader in readers {
        reader.join().unwrap();
    }
    drop(store);

    let store = Store::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = store.summary("reader").expect_err("the file is gone");
    assert_eq!(err.code(), "storage", "{err}");
    assert!(!path.exists(), "a read created the file again");
}
