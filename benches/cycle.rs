//! A worker's loop on a file, timed whole: the per-task cost of the write path, for
//! comparing builds side by side and for instruction counts under callgrind (which the
//! statistics of `ops` would blur).
//!
//! ```text
//! cargo bench --bench cycle                       # every loop, 20,000 tasks each
//! AB_CYCLE=finish_and_claim AB_CYCLE_TASKS=4000 cargo bench --bench cycle
//! ```
//!
//! Loops: `finish_and_claim` (a leased worker, one commit per task), `two_calls`
//! (`claim_next` + `update_task` to complete), `create` (single creates). Instructions
//! per task: run the binary under `valgrind --tool=callgrind` at two sizes and divide
//! the difference by the difference of the sizes (the opening and filling cancel out).

use std::time::Instant;

use agent_backlog::{Finish, LeaseTerms, NewTask, Status, Store, TaskPatch};

const AGENT: &str = "bench-agent";

fn filled(dir: &std::path::Path, tasks: usize) -> Store {
    let store = Store::open(dir.join("cycle.db")).unwrap();
    for start in (0..tasks).step_by(10_000) {
        let batch: Vec<NewTask> = (start..(start + 10_000).min(tasks))
            .map(|i| NewTask::new(format!("t{i}")).priority(1 + (i % 10) as i64))
            .collect();
        store.create_tasks(AGENT, batch).unwrap();
    }
    store
}

fn run(name: &str, tasks: usize) -> f64 {
    let dir = std::env::temp_dir().join(format!("agent-backlog-cycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = filled(&dir, if name == "create" { 0 } else { tasks });
    let start = Instant::now();
    match name {
        "finish_and_claim" => {
            let mut held = store
                .claim_lease(AGENT, "w", LeaseTerms::new())
                .unwrap()
                .map(|c| c.lease.token);
            while let Some(token) = held.take() {
                held = store
                    .finish_and_claim(&token, Finish::complete().result("done"), LeaseTerms::new())
                    .unwrap()
                    .next
                    .map(|c| c.lease.token);
            }
        }
        "two_calls" => {
            for _ in 0..tasks {
                let t = store.claim_next(AGENT).unwrap().unwrap();
                let patch = TaskPatch::new().status(Status::Complete).result("done");
                store.update_task(AGENT, &t.id, patch).unwrap();
            }
        }
        "create" => {
            for i in 0..tasks {
                store
                    .create_task(AGENT, NewTask::new(format!("c{i}")))
                    .unwrap();
            }
        }
        other => {
            panic!("AB_CYCLE: no loop named {other}; use finish_and_claim, two_calls or create")
        }
    }
    let per_task = start.elapsed().as_secs_f64() * 1e6 / tasks as f64;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    per_task
}

fn main() {
    let tasks: usize = std::env::var("AB_CYCLE_TASKS")
        .map(|s| s.parse().expect("AB_CYCLE_TASKS: a number of tasks"))
        .unwrap_or(20_000);
    let loops = match std::env::var("AB_CYCLE") {
        Ok(name) => vec![name],
        Err(_) => ["finish_and_claim", "two_calls", "create"]
            .map(String::from)
            .to_vec(),
    };
    for name in loops {
        println!(
            "{name}: {:.1} µs per task ({tasks} tasks)",
            run(&name, tasks)
        );
    }
}
