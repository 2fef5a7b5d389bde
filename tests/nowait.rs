//! What an async binding builds on (SPEC §18): calls run without waiting
//! (`Store::try_without_waiting`), waits ended at once from another thread
//! (`Store::wait_cancel`), a claim undone (`Store::return_lease`), and — with the
//! `tokio` feature — waits as futures that stop when dropped. No assertion here is
//! about how long anything took, beyond "it ended at all" with generous bounds.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use agent_backlog::{
    Durability, ErrorCode, EventKind, EventQuery, Finish, LeaseTerms, NewTask, Status, Store,
    StoreOptions,
};
use common::{snapshot, TempDir};

const AGENT: &str = "ops";

fn on_file(dir: &TempDir, options: StoreOptions) -> Store {
    Store::open_with(dir.file("b.db"), options).unwrap()
}

#[test]
fn a_call_with_nothing_to_wait_for_runs_as_usual() {
    let store = Store::open_in_memory().unwrap();
    let created = store.try_without_waiting(|s| s.create_task(AGENT, NewTask::new("a")));
    assert_eq!(created.unwrap().unwrap().id, "OPS-001");
    // An error of the call itself is the call's result, not "would wait".
    let refused = store.try_without_waiting(|s| s.get_task(AGENT, "OPS-009"));
    assert_eq!(refused.unwrap().unwrap_err().kind(), ErrorCode::NotFound);
}

#[test]
fn a_write_that_would_wait_for_another_connections_lock_gives_up_having_done_nothing() {
    let dir = TempDir::new("nowait-lock");
    let store = on_file(&dir, StoreOptions::default());
    store.create_task(AGENT, NewTask::new("a")).unwrap();
    let before = snapshot(&store);

    let holder = rusqlite::Connection::open(dir.file("b.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    assert!(store
        .try_without_waiting(|s| s.create_task(AGENT, NewTask::new("b")))
        .is_none());
    assert!(store.try_without_waiting(|s| s.claim_next(AGENT)).is_none());
    // It gave up instead of waiting out the 5 s busy timeout.
    assert!(started.elapsed() < Duration::from_secs(4));
    // Reads never wait for a writer, so they still run.
    let summary = store
        .try_without_waiting(|s| s.summary(AGENT))
        .unwrap()
        .unwrap();
    assert_eq!(summary.queued, 1);
    holder.execute_batch("ROLLBACK").unwrap();

    assert_eq!(snapshot(&store), before);
    // The same call, made again where it may wait, does it.
    assert_eq!(
        store.create_task(AGENT, NewTask::new("b")).unwrap().id,
        "OPS-002"
    );
}

#[test]
fn a_write_that_would_wait_for_this_stores_busy_writer_gives_up() {
    let dir = TempDir::new("nowait-gate");
    let store = Arc::new(on_file(&dir, StoreOptions::default()));
    store.create_task(AGENT, NewTask::new("a")).unwrap();
    // Another thread of this store holds the writer while it waits for a lock that
    // another connection holds.
    let holder = rusqlite::Connection::open(dir.file("b.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writer = Arc::clone(&store);
    let waiting = thread::spawn(move || writer.create_task(AGENT, NewTask::new("b")));
    thread::sleep(Duration::from_millis(100));
    assert!(store
        .try_without_waiting(|s| s.update_task(
            AGENT,
            "OPS-001",
            agent_backlog::TaskPatch::new().title("c")
        ))
        .is_none());
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(waiting.join().unwrap().unwrap().id, "OPS-002");
    assert_eq!(store.get_task(AGENT, "OPS-001").unwrap().title, "a");
}

#[test]
fn a_full_durability_write_is_left_to_a_thread_that_may_wait_for_the_disk() {
    let dir = TempDir::new("nowait-full");
    let store = on_file(
        &dir,
        StoreOptions {
            durability: Durability::Full,
            ..StoreOptions::default()
        },
    );
    assert!(store
        .try_without_waiting(|s| s.create_task(AGENT, NewTask::new("a")))
        .is_none());
    assert_eq!(store.summary(AGENT).unwrap().total, 0);
    assert!(store.try_without_waiting(|s| s.summary(AGENT)).is_some());
}

#[test]
fn waits_run_when_they_need_not_wait_and_give_up_when_they_would() {
    let store = Store::open_in_memory().unwrap();
    let wait = |s: &Store| s.wait_for_task(AGENT, "w1", Duration::from_secs(60), LeaseTerms::new());
    assert!(store.try_without_waiting(wait).is_none());
    store.create_task(AGENT, NewTask::new("a")).unwrap();
    let claim = store.try_without_waiting(wait).unwrap().unwrap().unwrap();
    assert_eq!(claim.task.id, "OPS-001");

    let after = store.last_event_seq().unwrap();
    let follow = |s: &Store| s.events(EventQuery::new().after(after).wait_seconds(30.0));
    assert!(store.try_without_waiting(follow).is_none());
    let page = store
        .try_without_waiting(|s| s.events(EventQuery::new().wait_seconds(60.0)))
        .unwrap()
        .unwrap();
    assert_eq!(page.events.len(), 2);
}

#[test]
fn a_cancelled_wait_returns_at_once_and_claims_nothing_afterwards() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let cancel = store.wait_cancel();
    let (waiting, stop) = (Arc::clone(&store), cancel.clone());
    let started = Instant::now();
    let t = thread::spawn(move || {
        waiting.wait_for_task_until(
            AGENT,
            "w1",
            Duration::from_secs(120),
            LeaseTerms::new(),
            &mut || stop.is_cancelled(),
        )
    });
    thread::sleep(Duration::from_millis(50));
    assert!(!cancel.is_cancelled());
    cancel.cancel();
    assert!(t.join().unwrap().unwrap().is_none());
    assert!(started.elapsed() < Duration::from_secs(60));
    // Work created afterwards is there for the next worker.
    store.create_task(AGENT, NewTask::new("a")).unwrap();
    let claim = store
        .claim_lease(AGENT, "w2", LeaseTerms::new())
        .unwrap()
        .unwrap();
    assert_eq!(claim.lease.attempt, 1);
}

#[test]
fn a_returned_claim_is_queued_again_with_its_attempt_not_counted() {
    let store = Store::open_in_memory().unwrap();
    store.create_task(AGENT, NewTask::new("a")).unwrap();
    let terms = LeaseTerms::new().max_attempts(1);
    let first = store.claim_lease(AGENT, "w1", terms).unwrap().unwrap();
    let task = store.return_lease(&first.lease.token).unwrap();
    assert_eq!((task.status, task.started), (Status::Queued, None));
    assert!(store.get_lease(AGENT, "OPS-001").unwrap().is_none());
    // The token is spent, like any finished lease's.
    let lost = store
        .finish_lease(&first.lease.token, Finish::complete())
        .unwrap_err();
    assert_eq!(lost.kind(), ErrorCode::LeaseLost);
    assert_eq!(
        store.return_lease(&first.lease.token).unwrap_err().kind(),
        ErrorCode::LeaseLost
    );
    // With max_attempts 1, a counted attempt would leave none: it was not counted.
    let second = store.claim_lease(AGENT, "w2", terms).unwrap().unwrap();
    assert_eq!((second.lease.attempt, second.lease.fence), (1, 2));
    // The history says what happened.
    let kinds: Vec<EventKind> = store
        .task_history(AGENT, "OPS-001")
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Created,
            EventKind::Claimed,
            EventKind::Finished,
            EventKind::Claimed
        ]
    );
}

#[cfg(feature = "tokio")]
mod futures {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_waiting_future_is_woken_by_a_commit_without_holding_the_runtimes_worker() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        runtime().block_on(async {
            let wait =
                store.wait_for_task_async(AGENT, "w1", Duration::from_secs(60), LeaseTerms::new());
            // The one worker thread stays free: this task runs while the wait waits.
            let producer = tokio::spawn({
                let store = Arc::clone(&store);
                async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    store.create_task(AGENT, NewTask::new("a")).unwrap()
                }
            });
            let claim = wait.await.unwrap().unwrap();
            assert_eq!(claim.task.id, producer.await.unwrap().id);
        });
    }

    #[test]
    fn a_dropped_wait_stops_and_claims_nothing() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        runtime().block_on(async {
            let wait =
                store.wait_for_task_async(AGENT, "w1", Duration::from_secs(120), LeaseTerms::new());
            let started = Instant::now();
            assert!(tokio::time::timeout(Duration::from_millis(50), wait)
                .await
                .is_err());
            let follow = store.events_async(EventQuery::new().wait_seconds(60.0));
            let r = tokio::time::timeout(Duration::from_millis(50), follow).await;
            assert!(r.is_err(), "{r:?}");
            assert!(started.elapsed() < Duration::from_secs(60));
        });
        // No wait is left to take this task.
        store.create_task(AGENT, NewTask::new("a")).unwrap();
        thread::sleep(Duration::from_millis(200));
        assert_eq!(store.summary(AGENT).unwrap().queued, 1);
    }

    #[test]
    fn a_claim_made_as_the_wait_was_dropped_goes_back_to_the_queue() {
        // Race the drop against the claim many times: whichever wins, the task ends
        // either handed over (and then completed here) or queued with no attempt
        // counted — never left leased.
        let store = Arc::new(Store::open_in_memory().unwrap());
        let rt = runtime();
        for round in 0..200u64 {
            store.create_task(AGENT, NewTask::new("a")).unwrap();
            let id = format!("OPS-{:03}", round + 1);
            let handed = rt.block_on(async {
                let wait = store.wait_for_task_async(
                    AGENT,
                    "w1",
                    Duration::from_secs(10),
                    LeaseTerms::new(),
                );
                tokio::time::timeout(Duration::from_micros(round * 5), wait).await
            });
            match handed {
                Ok(claim) => {
                    let claim = claim.unwrap().unwrap();
                    store
                        .finish_lease(&claim.lease.token, Finish::complete())
                        .unwrap();
                }
                Err(_) => {
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while store.get_task(AGENT, &id).unwrap().status != Status::Queued {
                        assert!(Instant::now() < deadline, "{id} stayed leased");
                        thread::sleep(Duration::from_millis(1));
                    }
                    let again = store
                        .claim_lease(AGENT, "w2", LeaseTerms::new())
                        .unwrap()
                        .unwrap();
                    assert_eq!(
                        (again.task.id.as_str(), again.lease.attempt),
                        (id.as_str(), 1)
                    );
                    store
                        .finish_lease(&again.lease.token, Finish::complete())
                        .unwrap();
                }
            }
        }
        assert_eq!(store.summary(AGENT).unwrap().complete, 200);
    }
}
