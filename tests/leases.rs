//! SPEC §10–§11 through the Rust API: every rule of leases, expiry, fences, attempts,
//! `lease_lost`, and waiting for work. Expiry is real time: leases of one second and
//! a sleep past them (no clock is faked), so these tests take a few seconds each and
//! assert nothing about how long anything took.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use agent_backlog::{Finish, LeaseTerms, NewTask, Status, Store, TaskPatch};
use common::TempDir;

const AGENT: &str = "marketing-lead";

fn store_with(titles: &[&str]) -> Store {
    let store = Store::open_in_memory().unwrap();
    for t in titles {
        store.create_task(AGENT, NewTask::new(*t)).unwrap();
    }
    store
}

fn one_second() -> LeaseTerms {
    LeaseTerms::new().lease_seconds(1)
}

/// Past a one-second lease.
fn outlive_lease() {
    thread::sleep(Duration::from_millis(1_150));
}

#[test]
fn a_leased_claim_is_a_claim_with_a_lease() {
    let store = store_with(&["a", "b"]);
    let claim = store
        .claim_lease(
            AGENT,
            "writer-7",
            LeaseTerms::new().lease_seconds(60).max_attempts(5),
        )
        .unwrap()
        .unwrap();
    assert_eq!(claim.task.id, "MKT-001");
    assert_eq!(claim.task.status, Status::InProgress);
    assert!(claim.task.started.is_some());
    let l = &claim.lease;
    assert_eq!(
        (l.agent_id.as_str(), l.task_id.as_str(), l.worker.as_str()),
        (AGENT, "MKT-001", "writer-7")
    );
    assert_eq!((l.fence, l.attempt, l.max_attempts), (1, 1, 5));
    assert!(l.token.starts_with("MKT-001.1.") && l.token.len() == "MKT-001.1.".len() + 16);
    let granted = chrono::DateTime::parse_from_rfc3339(&l.granted).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(&l.expires).unwrap();
    assert_eq!((expires - granted).num_milliseconds(), 60_000);
    assert!(l.granted.ends_with('Z') && l.granted.len() == "2026-12-02T10:00:00.000Z".len());
    // The JSON keys of the contract, in order.
    let json = serde_json::to_string(&claim).unwrap();
    let keys = [
        "\"task\"",
        "\"lease\"",
        "\"token\"",
        "\"agent_id\"",
        "\"task_id\"",
        "\"worker\"",
        "\"fence\"",
        "\"attempt\"",
        "\"max_attempts\"",
        "\"granted\"",
        "\"expires\"",
    ];
    let at: Vec<usize> = keys.iter().map(|k| json.rfind(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
    assert_eq!(
        store.get_lease(AGENT, "MKT-001").unwrap(),
        Some(claim.lease.clone())
    );
    assert_eq!(store.get_lease(AGENT, "MKT-002").unwrap(), None);
    assert_eq!(
        store.get_lease(AGENT, "MKT-009").unwrap_err().code(),
        "not_found"
    );
    // Two tokens are never alike.
    let second = store
        .claim_lease(AGENT, "w2", LeaseTerms::new())
        .unwrap()
        .unwrap();
    assert_ne!(second.lease.token[10..], claim.lease.token[10..]);
    assert!(store
        .claim_lease(AGENT, "w3", LeaseTerms::new())
        .unwrap()
        .is_none());
}

#[test]
fn bad_terms_are_refused_and_nothing_is_claimed() {
    let store = store_with(&["a"]);
    for (worker, terms, field) in [
        ("", LeaseTerms::new(), "worker"),
        ("-w", LeaseTerms::new(), "worker"),
        ("w 1", LeaseTerms::new(), "worker"),
        (&"w".repeat(129) as &str, LeaseTerms::new(), "worker"),
        ("w", LeaseTerms::new().lease_seconds(0), "lease_seconds"),
        (
            "w",
            LeaseTerms::new().lease_seconds(86_401),
            "lease_seconds",
        ),
        ("w", LeaseTerms::new().max_attempts(0), "max_attempts"),
        ("w", LeaseTerms::new().max_attempts(1_001), "max_attempts"),
    ] {
        let err = store.claim_lease(AGENT, worker, terms).unwrap_err();
        assert_eq!(err.code(), "invalid_argument");
        assert!(err.to_string().contains(field), "{err}");
    }
    assert!(store
        .claim_lease(
            AGENT,
            &"w".repeat(128),
            LeaseTerms::new().lease_seconds(86_400).max_attempts(1_000)
        )
        .unwrap()
        .is_some());
    let err = store
        .wait_for_task(AGENT, "w", Duration::from_secs(301), LeaseTerms::new())
        .unwrap_err();
    assert!(err.to_string().contains("timeout_seconds"), "{err}");
}

#[test]
fn renew_extends_and_finish_ends_the_lease() {
    let store = store_with(&["a"]);
    let claim = store
        .claim_lease(AGENT, "w", LeaseTerms::new().lease_seconds(30))
        .unwrap()
        .unwrap();
    let renewed = store.renew_lease(&claim.lease.token, Some(300)).unwrap();
    assert!(renewed.expires > claim.lease.expires);
    assert_eq!(
        (renewed.fence, renewed.attempt, &renewed.granted),
        (1, 1, &claim.lease.granted)
    );
    // The default is the lease's own duration, now 300 s.
    let again = store.renew_lease(&claim.lease.token, None).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(&again.expires).unwrap();
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((250..=300).contains(&left), "{left}");
    assert_eq!(
        store
            .renew_lease(&claim.lease.token, Some(0))
            .unwrap_err()
            .code(),
        "invalid_argument"
    );

    let done = store
        .finish_lease(&claim.lease.token, Finish::complete().result("3 posts"))
        .unwrap();
    assert_eq!(
        (done.status, done.result.as_deref()),
        (Status::Complete, Some("3 posts"))
    );
    assert_eq!(store.get_lease(AGENT, "MKT-001").unwrap(), None);
    // The ended lease's token is told so, and nothing changes.
    for err in [
        store.renew_lease(&claim.lease.token, None).unwrap_err(),
        store
            .finish_lease(&claim.lease.token, Finish::release())
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), "lease_lost");
        assert!(
            err.to_string().contains("MKT-001") && err.to_string().contains("fence 1"),
            "{err}"
        );
    }
    assert_eq!(store.get_task(AGENT, "MKT-001").unwrap(), done);
}

#[test]
fn finish_follows_the_lifecycle_and_refuses_bad_bodies() {
    let store = store_with(&["a"]);
    let token = store
        .claim_lease(AGENT, "w", LeaseTerms::new())
        .unwrap()
        .unwrap()
        .lease
        .token;
    let before = store.get_task(AGENT, "MKT-001").unwrap();
    for (finish, code) in [
        (Finish::new(Status::InProgress), "invalid_argument"),
        (Finish::new(Status::Blocked), "invalid_argument"),
        (Finish::release().result("x"), "invalid_argument"),
        (
            Finish::complete().result("x".repeat(1_048_577)),
            "invalid_argument",
        ),
        (Finish::blocked(" "), "invalid_argument"),
    ] {
        assert_eq!(store.finish_lease(&token, finish).unwrap_err().code(), code);
    }
    assert_eq!(store.get_task(AGENT, "MKT-001").unwrap(), before);
    assert!(store.get_lease(AGENT, "MKT-001").unwrap().is_some());
    let blocked = store
        .finish_lease(&token, Finish::blocked("needs brand colors"))
        .unwrap();
    assert_eq!(
        (blocked.status, blocked.blocker.as_deref()),
        (Status::Blocked, Some("needs brand colors"))
    );

    // Release: back in the queue with started cleared; the next lease is attempt 2.
    store
        .update_task(AGENT, "MKT-001", TaskPatch::new().status(Status::Queued))
        .unwrap();
    let t2 = store
        .claim_lease(AGENT, "w", LeaseTerms::new())
        .unwrap()
        .unwrap();
    assert_eq!((t2.lease.fence, t2.lease.attempt), (2, 2));
    let released = store
        .finish_lease(&t2.lease.token, Finish::release())
        .unwrap();
    assert_eq!(
        (released.status, released.started.clone()),
        (Status::Queued, None)
    );
}

#[test]
fn tokens_that_never_were_are_not_found_and_malformed_ones_invalid() {
    let store = store_with(&["a"]);
    let claim = store
        .claim_lease(AGENT, "w", LeaseTerms::new())
        .unwrap()
        .unwrap();
    let forged = format!(
        "{}0000000000000000",
        &claim.lease.token[..claim.lease.token.len() - 16]
    );
    for token in [
        forged.as_str(),
        "MKT-001.2.0123456789abcdef",
        "MKT-777.1.0123456789abcdef",
        "ZZZ-001.1.0123456789abcdef",
    ] {
        assert_eq!(
            store.renew_lease(token, None).unwrap_err().code(),
            "not_found",
            "{token}"
        );
    }
    for token in ["", "MKT-001", "MKT-001.1.xyz", "MKT-001.1.0123456789ABCDEF"] {
        assert_eq!(
            store
                .finish_lease(token, Finish::complete())
                .unwrap_err()
                .code(),
            "invalid_argument"
        );
    }
    assert!(store.get_lease(AGENT, "MKT-001").unwrap().is_some());
}

#[test]
fn an_expired_lease_is_requeued_and_its_token_lost() {
    let store = store_with(&["a"]);
    let first = store
        .claim_lease(AGENT, "writer-7", one_second())
        .unwrap()
        .unwrap();
    outlive_lease();
    // A pure read: still in_progress, the lease still there.
    assert_eq!(store.summary(AGENT).unwrap().in_progress, 1);
    assert!(store.get_lease(AGENT, "MKT-001").unwrap().is_some());
    // Renewing past expiry works while nobody requeued the task.
    store.renew_lease(&first.lease.token, Some(1)).unwrap();
    outlive_lease();
    let second = store
        .claim_lease(AGENT, "writer-8", LeaseTerms::new())
        .unwrap()
        .unwrap();
    assert_eq!(second.task.id, "MKT-001");
    assert_eq!(
        (second.lease.fence, second.lease.attempt),
        (3, 2),
        "expiry and the new claim each grow the fence"
    );
    let err = store
        .finish_lease(&first.lease.token, Finish::complete().result("late"))
        .unwrap_err();
    assert_eq!(err.code(), "lease_lost");
    let message = err.to_string();
    assert!(
        message.contains("MKT-001") && message.contains("fence 3") && message.contains("writer-8"),
        "{message}"
    );
    assert_eq!(
        store
            .renew_lease(&first.lease.token, None)
            .unwrap_err()
            .code(),
        "lease_lost"
    );
    let done = store
        .finish_lease(&second.lease.token, Finish::complete().result("on time"))
        .unwrap();
    assert_eq!(done.result.as_deref(), Some("on time"));
    // A token whose own finish ended the lease says so, in words the Python helper
    // (hold_lease) reads to tell a finish of the work's own from a lost lease; the
    // lost token above does not.
    const FINISHED: &str = "(the lease was already finished)";
    let again = store
        .finish_lease(&second.lease.token, Finish::complete())
        .unwrap_err();
    assert_eq!(again.code(), "lease_lost");
    assert!(again.to_string().contains(FINISHED), "{again}");
    assert!(!message.contains(FINISHED), "{message}");
}

#[test]
fn a_lease_past_its_expiry_still_finishes_until_someone_requeues_it() {
    let store = store_with(&["a"]);
    let claim = store
        .claim_lease(AGENT, "w", one_second())
        .unwrap()
        .unwrap();
    outlive_lease();
    // Nobody claimed or reaped in between: the late finish is still the lease's.
    let done = store
        .finish_lease(
            &claim.lease.token,
            Finish::complete().result("late but first"),
        )
        .unwrap();
    assert_eq!(done.result.as_deref(), Some("late but first"));
    assert_eq!(store.reap_expired(None).unwrap(), Default::default());
}

#[test]
fn reap_requeues_then_blocks_at_max_attempts() {
    let store = store_with(&["a", "b"]);
    let terms = one_second().max_attempts(2);
    store.claim_lease(AGENT, "w1", terms).unwrap().unwrap();
    store.claim_lease(AGENT, "w1", terms).unwrap().unwrap();
    outlive_lease();
    let reaped = store.reap_expired(Some(AGENT)).unwrap();
    assert_eq!(
        (reaped.requeued.clone(), reaped.blocked.clone()),
        (vec!["MKT-001".to_owned(), "MKT-002".to_owned()], vec![])
    );
    let requeued = store.get_task(AGENT, "MKT-001").unwrap();
    assert_eq!((requeued.status, requeued.started), (Status::Queued, None));
    assert_eq!(store.summary(AGENT).unwrap().queued, 2);
    // Second attempt of MKT-001 expires: max_attempts 2 reached, so blocked.
    let again = store
        .claim_lease(AGENT, "writer-7", terms)
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.task.id.as_str(), again.lease.attempt),
        ("MKT-001", 2)
    );
    outlive_lease();
    let reaped = store.reap_expired(None).unwrap();
    assert_eq!(reaped.blocked, vec!["MKT-001".to_owned()]);
    let blocked = store.get_task(AGENT, "MKT-001").unwrap();
    assert_eq!(blocked.status, Status::Blocked);
    assert_eq!(
        blocked.blocker.as_deref(),
        Some("lease expired 2 times; last worker writer-7")
    );
    assert_eq!(store.reap_expired(None).unwrap(), Default::default());
    // A reopen resets the attempts: complete it, reopen, and the next lease is attempt 1.
    store
        .update_task(
            AGENT,
            "MKT-001",
            TaskPatch::new().status(Status::InProgress),
        )
        .unwrap();
    store
        .update_task(AGENT, "MKT-001", TaskPatch::new().status(Status::Complete))
        .unwrap();
    store
        .update_task(AGENT, "MKT-001", TaskPatch::new().status(Status::Queued))
        .unwrap();
    let fresh = store
        .claim_lease(AGENT, "w", LeaseTerms::new())
        .unwrap()
        .unwrap();
    assert_eq!(
        (fresh.task.id.as_str(), fresh.lease.attempt),
        ("MKT-001", 1)
    );
}

#[test]
fn claim_lease_reaps_the_agents_expired_leases_first() {
    let store = store_with(&["a"]);
    store.create_task("other-agent", NewTask::new("x")).unwrap();
    store
        .claim_lease("other-agent", "w", one_second())
        .unwrap()
        .unwrap();
    let stale = store
        .claim_lease(AGENT, "w", one_second())
        .unwrap()
        .unwrap();
    outlive_lease();
    let next = store
        .claim_lease(AGENT, "w2", LeaseTerms::new())
        .unwrap()
        .unwrap();
    assert_eq!(next.task.id, stale.task.id);
    // Only this agent's: the other agent's expired lease is still there.
    assert_eq!(store.summary("other-agent").unwrap().in_progress, 1);
    assert_eq!(
        store.reap_expired(None).unwrap().requeued,
        vec!["OTH-001".to_owned()]
    );
}

#[test]
fn moves_by_anything_but_the_lease_lose_it() {
    let store = store_with(&["a", "b", "c"]);
    let l1 = store
        .claim_lease(AGENT, "w", LeaseTerms::new())
        .unwrap()
        .unwrap()
        .lease;
    let l2 = store
        .claim_lease(AGENT, "w", LeaseTerms::new())
        .unwrap()
        .unwrap()
        .lease;
    let l3 = store
        .claim_lease(AGENT, "w", LeaseTerms::new())
        .unwrap()
        .unwrap()
        .lease;
    // A change that is not a move keeps the lease.
    store
        .update_task(AGENT, &l1.task_id, TaskPatch::new().priority(1).title("a2"))
        .unwrap();
    store
        .update_task(
            AGENT,
            &l1.task_id,
            TaskPatch::new().status(Status::InProgress),
        )
        .unwrap();
    store.renew_lease(&l1.token, None).unwrap();
    // A move by update_task ends it and grows the fence.
    store
        .update_task(
            AGENT,
            &l1.task_id,
            TaskPatch::new().status(Status::Blocked).blocker("human"),
        )
        .unwrap();
    let err = store
        .finish_lease(&l1.token, Finish::complete())
        .unwrap_err();
    assert_eq!(err.code(), "lease_lost");
    assert!(err.to_string().contains("fence 2"), "{err}");
    assert_eq!(
        store.get_task(AGENT, &l1.task_id).unwrap().status,
        Status::Blocked
    );
    store
        .update_task(
            AGENT,
            &l2.task_id,
            TaskPatch::new().status(Status::Complete),
        )
        .unwrap();
    assert_eq!(
        store.renew_lease(&l2.token, None).unwrap_err().code(),
        "lease_lost"
    );
    // A delete: lease_lost, not not_found, and nothing comes back.
    store.delete_task(AGENT, &l3.task_id).unwrap();
    let err = store
        .finish_lease(&l3.token, Finish::complete())
        .unwrap_err();
    assert_eq!(err.code(), "lease_lost");
    assert!(err.to_string().contains("deleted"), "{err}");
    assert_eq!(
        store.get_task(AGENT, &l3.task_id).unwrap_err().code(),
        "not_found"
    );
}

#[test]
fn claim_next_and_update_task_claims_have_no_lease_and_never_expire() {
    let store = store_with(&["a", "b"]);
    let claimed = store.claim_next(AGENT).unwrap().unwrap();
    store
        .update_task(
            AGENT,
            "MKT-002",
            TaskPatch::new().status(Status::InProgress),
        )
        .unwrap();
    assert_eq!(store.get_lease(AGENT, &claimed.id).unwrap(), None);
    assert_eq!(store.get_lease(AGENT, "MKT-002").unwrap(), None);
    let other = store_with(&["x"]);
    other.claim_lease(AGENT, "w", one_second()).unwrap();
    outlive_lease();
    assert_eq!(store.reap_expired(None).unwrap(), Default::default());
    assert!(store
        .claim_lease(AGENT, "w", LeaseTerms::new())
        .unwrap()
        .is_none());
    assert_eq!(store.summary(AGENT).unwrap().in_progress, 2);
}

#[test]
fn finish_and_claim_is_one_step_of_a_workers_loop() {
    let store = store_with(&["a", "b"]);
    let first = store
        .claim_lease(AGENT, "w", LeaseTerms::new().lease_seconds(30))
        .unwrap()
        .unwrap();
    let step = store
        .finish_and_claim(
            &first.lease.token,
            Finish::complete().result("r1"),
            LeaseTerms::new().max_attempts(7),
        )
        .unwrap();
    assert_eq!(
        (step.finished.id.as_str(), step.finished.status),
        ("MKT-001", Status::Complete)
    );
    let next = step.next.unwrap();
    assert_eq!(
        (
            next.task.id.as_str(),
            next.lease.worker.as_str(),
            next.lease.max_attempts
        ),
        ("MKT-002", "w", 7)
    );
    let last = store
        .finish_and_claim(&next.lease.token, Finish::complete(), LeaseTerms::new())
        .unwrap();
    assert!(last.next.is_none());
    // A refused finish claims nothing either.
    store.create_task(AGENT, NewTask::new("c")).unwrap();
    let err = store
        .finish_and_claim(&next.lease.token, Finish::complete(), LeaseTerms::new())
        .unwrap_err();
    assert_eq!(err.code(), "lease_lost");
    assert_eq!(store.summary(AGENT).unwrap().queued, 1);
    // Its JSON: {"finished", "next"}.
    let json = serde_json::to_value(&last).unwrap();
    assert_eq!(json["next"], serde_json::Value::Null);
    assert_eq!(
        json.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["finished", "next"]
    );
}

#[test]
fn the_schema_refuses_a_lease_on_a_task_not_in_progress() {
    let dir = TempDir::new("lease-schema");
    let path = dir.file("b.db");
    let store = Store::open(&path).unwrap();
    store.create_task(AGENT, NewTask::new("a")).unwrap();
    store.close().unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let err = conn
        .execute(
            "UPDATE tasks SET fence = 1, attempts = 1, lease_token = 't', lease_worker = 'w',
             lease_max_attempts = 3, lease_ms = 1000, lease_granted = 0, lease_expires = 1000",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
}

#[test]
fn wait_for_task_wakes_on_a_commit_of_another_thread_or_store() {
    let dir = TempDir::new("lease-wait");
    let path = dir.file("b.db");
    let waiter = Arc::new(Store::open(&path).unwrap());
    // Times out with nothing, leaving nothing behind.
    assert!(waiter
        .wait_for_task(AGENT, "w", Duration::from_millis(100), LeaseTerms::new())
        .unwrap()
        .is_none());
    assert!(waiter
        .wait_for_task(AGENT, "w", Duration::ZERO, LeaseTerms::new())
        .unwrap()
        .is_none());
    // Another store on the file (another connection, as another process would be).
    for producer in [Arc::clone(&waiter), Arc::new(Store::open(&path).unwrap())] {
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            producer
                .create_task(AGENT, NewTask::new("wake up"))
                .unwrap();
        });
        let claim = waiter
            .wait_for_task(AGENT, "w", Duration::from_secs(60), LeaseTerms::new())
            .unwrap();
        assert_eq!(claim.unwrap().task.title, "wake up");
        t.join().unwrap();
    }
    // An expiry is a task becoming ready, too.
    waiter.create_task(AGENT, NewTask::new("stalled")).unwrap();
    let stalled = waiter
        .claim_lease(AGENT, "w", one_second())
        .unwrap()
        .unwrap();
    let claim = waiter
        .wait_for_task(AGENT, "w2", Duration::from_secs(60), LeaseTerms::new())
        .unwrap()
        .unwrap();
    assert_eq!(claim.task.id, stalled.task.id);
    assert_eq!(claim.lease.attempt, 2);
    // A stop hook ends the wait.
    let mut asked = 0;
    let none = waiter
        .wait_for_task_until(
            AGENT,
            "w",
            Duration::from_secs(60),
            LeaseTerms::new(),
            &mut || {
                asked += 1;
                asked > 2
            },
        )
        .unwrap();
    assert!(none.is_none());
}

#[test]
fn close_ends_a_wait_with_a_storage_error() {
    let dir = TempDir::new("lease-close");
    let store = Arc::new(Store::open(dir.file("b.db")).unwrap());
    let waiting = Arc::clone(&store);
    let t = thread::spawn(move || {
        waiting.wait_for_task(AGENT, "w", Duration::from_secs(120), LeaseTerms::new())
    });
    thread::sleep(Duration::from_millis(200));
    store.close().unwrap();
    let err = t.join().unwrap().unwrap_err();
    assert_eq!(err.code(), "storage");
}

#[test]
fn many_waiters_each_get_one_task() {
    let dir = TempDir::new("lease-waiters");
    let path = dir.file("b.db");
    let store = Arc::new(Store::open(&path).unwrap());
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&store);
            thread::spawn(move || {
                s.wait_for_task(
                    AGENT,
                    &format!("w{i}"),
                    Duration::from_secs(60),
                    LeaseTerms::new(),
                )
                .unwrap()
                .map(|c| c.task.id)
            })
        })
        .collect();
    let producer = Store::open(&path).unwrap();
    thread::sleep(Duration::from_millis(100));
    for i in 0..8 {
        producer
            .create_task(AGENT, NewTask::new(format!("t{i}")))
            .unwrap();
    }
    let mut got: Vec<String> = waiters
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 8, "{got:?}");
}
