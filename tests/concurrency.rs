//! Threads and processes sharing one store: unique, gap-free IDs and no task claimed twice.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::thread;

use agent_backlog::{NewTask, Status, Store, TaskPatch, TaskQuery};
use common::TempDir;

fn number(id: &str) -> u64 {
    id.rsplit('-').next().unwrap().parse().unwrap()
}

#[test]
fn threads_on_one_store_get_unique_gap_free_ids() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                (0..100)
                    .map(|i| {
                        store
                            .create_task(
                                "ops",
                                NewTask::new(format!("{t}-{i}")).priority(1 + (i % 10)),
                            )
                            .unwrap()
                            .id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut numbers: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .map(|id| number(&id))
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=800).collect::<Vec<_>>());
}

/// Claims until the backlog is empty, completing each task; returns what it claimed.
fn drain(store: &Store, agent: &str) -> Vec<(u8, u64, String)> {
    let mut got = Vec::new();
    while let Some(task) = store.claim_next(agent).unwrap() {
        assert_eq!(task.status, Status::InProgress);
        store
            .update_task(
                agent,
                &task.id,
                TaskPatch::new().status(Status::Complete).result("ok"),
            )
            .unwrap();
        got.push((task.priority, number(&task.id), task.id));
    }
    got
}

fn fill(store: &Store, agent: &str, n: usize) {
    let tasks = (0..n)
        .map(|i| NewTask::new(format!("task {i}")).priority(1 + (i as i64 * 7) % 10))
        .collect();
    store.create_tasks(agent, tasks).unwrap();
}

fn check_claims(claims: Vec<Vec<(u8, u64, String)>>, n: usize) {
    for worker in &claims {
        // Each worker's claims are a subsequence of the global claim order, which is
        // priority, then creation order.
        let keys: Vec<_> = worker.iter().map(|(p, n, _)| (*p, *n)).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted, "a worker's claims went out of priority order");
    }
    let all: Vec<&String> = claims.iter().flatten().map(|(_, _, id)| id).collect();
    let unique: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), n, "claimed count");
    assert_eq!(unique.len(), n, "a task was claimed twice");
}

#[test]
fn threads_on_one_store_never_claim_twice() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    fill(&store, "w", 600);
    let claims: Vec<_> = (0..6)
        .map(|_| {
            let store = Arc::clone(&store);
            thread::spawn(move || drain(&store, "w"))
        })
        .map(|h| h.join().unwrap())
        .collect();
    check_claims(claims, 600);
    assert_eq!(store.summary("w").unwrap().complete, 600);
}

#[test]
fn threads_with_their_own_connections_never_claim_twice() {
    let dir = TempDir::new("conc");
    let path = dir.file("b.db");
    fill(&Store::open(&path).unwrap(), "w", 400);
    let claims: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                // creating at the same time contends for the same write lock
                store.create_task("other", NewTask::new("x")).unwrap();
                drain(&store, "w")
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    check_claims(claims, 400);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.summary("w").unwrap().complete, 400);
    let other: Vec<u64> = store
        .query_tasks(TaskQuery::new().agent_id("other"))
        .unwrap()
        .tasks
        .iter()
        .map(|t| number(&t.task.id))
        .collect();
    assert_eq!(other, [1, 2, 3, 4]);
}

const CHILD_DB: &str = "AGENT_BACKLOG_TEST_CHILD_DB";

/// Entry point of the child processes of `processes_never_claim_twice`.
#[test]
#[ignore = "run as a child process by processes_never_claim_twice"]
fn child_claimer() {
    let path = std::env::var(CHILD_DB).expect("run by processes_never_claim_twice");
    let store = Arc::new(Store::open(&path).unwrap());
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::clone(&store);
            thread::spawn(move || drain(&store, "w"))
        })
        .collect();
    for (w, h) in workers.into_iter().enumerate() {
        for (p, n, id) in h.join().unwrap() {
            println!("CLAIM {}:{w} {p} {n} {id}", std::process::id());
        }
    }
}

#[test]
fn processes_never_claim_twice() {
    let dir = TempDir::new("procs");
    let path = dir.file("b.db");
    let n = 600;
    fill(&Store::open(&path).unwrap(), "w", n);
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "child_claimer",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DB, &path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut claims: std::collections::BTreeMap<String, Vec<(u8, u64, String)>> = Default::default();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a child failed");
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            // the harness may print "test child_claimer ... " before the first line
            if let Some(rest) = line.split("CLAIM ").nth(1) {
                let f: Vec<&str> = rest.split(' ').collect();
                claims.entry(f[0].to_owned()).or_default().push((
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].to_owned(),
                ));
            }
        }
    }
    assert!(
        claims.len() >= 2,
        "the work was not spread over several workers"
    );
    check_claims(claims.into_values().collect(), n);
    assert_eq!(
        Store::open(&path).unwrap().summary("w").unwrap().complete,
        n as u64
    );
}
