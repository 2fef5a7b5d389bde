//! Issue 5, promise 1: no task is ever claimed twice (the Rust variant of the race).
//!
//! One backlog of tasks at mixed priorities; several processes (re-executions of this
//! test binary), each with several threads on one shared `Store` opened with the
//! default options, claim and complete until nothing is queued, each worker logging
//! what it got to its own file. Then: the union of the logs is every task exactly
//! once, every task is complete (and its result names the worker that logged it), no
//! call failed (so no busy error reached a caller with the default 5 s timeout), and
//! each worker's claims came in priority, then creation order.
//!
//! `make test`: 500 tasks, 4 processes × 2 threads. `make stress`
//! (`AGENT_BACKLOG_STRESS=1`): 5,000 tasks, 8 processes × 2 threads.
//! The C and Python variants are `tests/c/race.c` and `tests/python/test_reliability.py`.

mod common;
mod reliability_common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use agent_backlog::{ListQuery, NewTask, Status, Store, TaskPatch};
use common::TempDir;
use reliability_common::{child_test, say, size, Reporter, Rng};

const AGENT: &str = "race";
const ENV_DB: &str = "AGENT_BACKLOG_RACE_DB";
const ENV_LOGS: &str = "AGENT_BACKLOG_RACE_LOGS";
const ENV_THREADS: &str = "AGENT_BACKLOG_RACE_THREADS";

/// The number of a task ID (`RAC-0042` → 42): its creation order within the agent.
fn number(id: &str) -> u64 {
    id.rsplit('-').next().unwrap().parse().unwrap()
}

/// One worker of a child process: claims and completes until nothing is queued,
/// logging `priority number id` for each claim to `log`. Any error fails the child.
fn worker(store: &Store, name: &str, log: &Path) -> usize {
    let mut out = std::io::BufWriter::new(std::fs::File::create(log).unwrap());
    let mut claimed = 0;
    loop {
        let task = match store.claim_next(AGENT) {
            Ok(Some(task)) => task,
            Ok(None) => break,
            Err(err) => panic!("{name}: claim_next failed: [{}] {err}", err.code()),
        };
        assert_eq!(task.status, Status::InProgress);
        assert!(task.started.is_some());
        writeln!(out, "{} {} {}", task.priority, number(&task.id), task.id).unwrap();
        if let Err(err) = store.update_task(
            AGENT,
            &task.id,
            TaskPatch::new().status(Status::Complete).result(name),
        ) {
            panic!(
                "{name}: completing {} failed: [{}] {err}",
                task.id,
                err.code()
            );
        }
        claimed += 1;
    }
    out.flush().unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
    claimed
}

/// Entry point of the race's child processes.
#[test]
#[ignore = "run as a child process by race_rust_processes_and_threads"]
fn race_child() {
    let path = std::env::var(ENV_DB).expect("run by race_rust_processes_and_threads");
    let logs = std::path::PathBuf::from(std::env::var(ENV_LOGS).unwrap());
    let threads: usize = std::env::var(ENV_THREADS).unwrap().parse().unwrap();
    let store = Arc::new(Store::open(&path).unwrap());
    // The start line: every child is open and waiting before any claims.
    say("ready");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let pid = std::process::id();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&store);
            let name = format!("p{pid}t{t}");
            let log = logs.join(format!("{name}.log"));
            thread::spawn(move || worker(&store, &name, &log))
        })
        .collect();
    for h in handles {
        h.join().expect("a worker failed");
    }
}

/// Fills the backlog: `n` tasks at pseudo-random priorities 1..=10, in batches.
fn fill(store: &Store, n: usize, rng: &mut Rng) {
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| NewTask::new(format!("race task {i}")).priority(rng.range(1, 10) as i64))
        .collect();
    for chunk in tasks.chunks(1000) {
        store.create_tasks(AGENT, chunk.to_vec()).unwrap();
    }
}

#[test]
fn race_rust_processes_and_threads() {
    let tasks = size(500, 5000);
    let processes = size(4, 8);
    let threads = 2;
    let dir = TempDir::new("race-rust");
    let path = dir.file("race.db");
    let logs = dir.file("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut rng = Rng::from_env("race_rust_processes_and_threads");
    {
        let store = Store::open(&path).unwrap();
        fill(&store, tasks, &mut rng);
        store.close().unwrap();
    }

    let mut children: Vec<Reporter> = (0..processes)
        .map(|_| {
            let mut cmd = child_test("race_child");
            cmd.env(ENV_DB, &path)
                .env(ENV_LOGS, &logs)
                .env(ENV_THREADS, threads.to_string())
                .stdin(Stdio::piped());
            Reporter::spawn(cmd)
        })
        .collect();
    for child in &children {
        assert_eq!(
            child.next().as_deref(),
            Some("ready"),
            "a race child did not start"
        );
    }
    let start = Instant::now();
    for child in &mut children {
        drop(child.child.stdin.take());
    }
    let statuses: Vec<_> = children
        .into_iter()
        .map(|c| c.finish("a race child").0)
        .collect();
    let elapsed = start.elapsed();
    for status in &statuses {
        assert!(
            status.success(),
            "a race child failed ({status}): a claim or a completion returned an error"
        );
    }

    // Each worker's log, in the order it claimed.
    let mut claims: BTreeMap<String, Vec<(u8, u64, String)>> = BTreeMap::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        let entry = entry.unwrap();
        let name = entry
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".log")
            .to_owned();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let got = text
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].to_owned(),
                )
            })
            .collect();
        claims.insert(name, got);
    }
    assert_eq!(claims.len(), processes * threads, "one log per worker");
    check_race(&path, &claims, tasks);

    let per_worker: Vec<usize> = claims.values().map(Vec::len).collect();
    println!(
        "race (Rust API): {tasks} tasks, {processes} processes x {threads} threads: {} claims, \
         0 duplicates, 0 errors, per worker {}..{}, {:.1} s",
        per_worker.iter().sum::<usize>(),
        per_worker.iter().min().unwrap(),
        per_worker.iter().max().unwrap(),
        elapsed.as_secs_f64()
    );
}

/// The checks of the race, against the workers' logs and the file.
fn check_race(path: &Path, claims: &BTreeMap<String, Vec<(u8, u64, String)>>, tasks: usize) {
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for (name, got) in claims {
        for (p, n, id) in got {
            assert_eq!(*n, number(id));
            assert!((1..=10).contains(p), "{id}: priority {p}");
            if let Some(other) = owner.insert(id, name) {
                panic!("{id} was claimed twice: by {other} and by {name}");
            }
        }
        // Every claim takes the global minimum of what is queued, and nothing is
        // added during the race, so each worker's sequence only goes up.
        for pair in got.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(
                (a.0, a.1) < (b.0, b.1),
                "{name} claimed {} (priority {}) after {} (priority {}): out of priority order",
                b.2,
                b.0,
                a.2,
                a.0
            );
        }
    }
    assert_eq!(owner.len(), tasks, "the union of the claims is every task");

    let store = Store::open(path).unwrap();
    let summary = store.summary(AGENT).unwrap();
    assert_eq!(
        (summary.complete, summary.total),
        (tasks as u64, tasks as u64),
        "{summary:?}"
    );
    let all = store.list_tasks(AGENT, ListQuery::new()).unwrap();
    assert_eq!(all.tasks.len(), tasks);
    for task in &all.tasks {
        assert_eq!(task.status, Status::Complete, "{}", task.id);
        let logged = owner.get(task.id.as_str()).copied();
        assert_eq!(
            task.result.as_deref(),
            logged,
            "{}: completed by a worker other than the one that logged the claim",
            task.id
        );
        // The priority in the log is the task's.
        let (p, _, _) = claims[logged.unwrap()]
            .iter()
            .find(|(_, _, id)| *id == task.id)
            .unwrap();
        assert_eq!(*p, task.priority);
    }
    assert_eq!(reliability_common::integrity_check(path), "ok");
}
