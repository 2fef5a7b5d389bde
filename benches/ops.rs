//! Every operation of the contract at three backlog sizes, on a file and in memory,
//! next to the bare-rusqlite floor for the same work, with the ratios printed at the end.
//!
//! `cargo bench --bench ops` (all sizes) or
//! `AB_BENCH_SIZES=10000 cargo bench --bench ops` (one size). The dependency
//! benchmark (100k tasks with and without 50k edges) runs at its own size; alone:
//! `AB_BENCH_SIZES=10000 cargo bench --bench ops -- deps-`. The change feed's pages
//! at 10k and 1M events alone: `AB_BENCH_ONLY=events cargo bench --bench ops`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_backlog::{
    Finish, LeaseTerms, ListQuery, NewTask, Status, Store, StoreOptions, TaskPatch, TaskQuery,
};
use criterion::{BatchSize, Criterion};
use rusqlite::{params, Connection};

const AGENT: &str = "bench-agent";
const PAGE: i64 = 50;

fn sizes() -> Vec<usize> {
    std::env::var("AB_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("AB_BENCH_SIZES: numbers separated by commas")
        })
        .collect()
}

fn bench_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fresh_file(name: &str) -> PathBuf {
    let path = bench_dir().join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// A backlog of `n` tasks for AGENT at mixed priorities, plus a few other agents, with
/// some tasks in every status.
fn populate(store: &Store, n: usize) {
    let mut made = 0;
    while made < n {
        let batch = (n - made).min(10_000);
        let tasks = (made..made + batch)
            .map(|i| NewTask::new(format!("task {i}")).priority(1 + (i as i64 * 7) % 10))
            .collect();
        store.create_tasks(AGENT, tasks).unwrap();
        made += batch;
    }
    for agent in ["other-1", "other-2", "other-3"] {
        store
            .create_tasks(
                agent,
                (0..100).map(|i| NewTask::new(format!("o{i}"))).collect(),
            )
            .unwrap();
    }
    for i in 0..200 {
        let t = store.claim_next(AGENT).unwrap().unwrap();
        let patch = match i % 3 {
            0 => TaskPatch::new().status(Status::Complete).result("done"),
            1 => TaskPatch::new().status(Status::Blocked).blocker("waiting"),
            _ => continue,
        };
        store.update_task(AGENT, &t.id, patch).unwrap();
    }
}

/// The floor: what a careful hand-written rusqlite program does for the same work,
/// with the same durability (WAL, synchronous=NORMAL), prepared statements, one
/// transaction per call, a per-agent counter and the one index a claim needs.
struct Bare {
    conn: Connection,
    next_task: i64,
}

impl Bare {
    fn open(path: &Path, n: usize) -> Bare {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE agents (agent_id TEXT PRIMARY KEY, next_number INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE tasks (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, agent_id TEXT NOT NULL,
                 title TEXT NOT NULL, description TEXT, priority INTEGER NOT NULL, status TEXT NOT NULL,
                 created TEXT NOT NULL, started TEXT, completed TEXT, result TEXT, blocker TEXT);
             CREATE INDEX tasks_claim ON tasks (agent_id, status, priority);",
        )
        .unwrap();
        let mut bare = Bare { conn, next_task: 0 };
        bare.conn
            .execute("INSERT INTO agents VALUES (?1, 1)", [AGENT])
            .unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            bare.conn.execute_batch("BEGIN").unwrap();
            for &i in chunk {
                bare.insert(&format!("task {i}"), 1 + (i as i64 * 7) % 10);
            }
            bare.conn.execute_batch("COMMIT").unwrap();
        }
        bare
    }

    fn insert(&mut self, title: &str, priority: i64) {
        let number: i64 = self
            .conn
            .prepare_cached("UPDATE agents SET next_number = next_number + 1 WHERE agent_id = ?1 RETURNING next_number - 1")
            .unwrap()
            .query_row([AGENT], |r| r.get(0))
            .unwrap();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.conn
            .prepare_cached(
                "INSERT INTO tasks (id, agent_id, title, priority, status, created) VALUES (?1, ?2, ?3, ?4, 'queued', ?5)",
            )
            .unwrap()
            .execute(params![format!("BEN-{number:03}"), AGENT, title, priority, now])
            .unwrap();
        self.next_task += 1;
    }

    fn create(&mut self) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        self.insert("bench", 5);
        self.conn.execute_batch("COMMIT").unwrap();
    }

    fn create_batch(&mut self, n: usize) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for _ in 0..n {
            self.insert("bench", 5);
        }
        self.conn.execute_batch("COMMIT").unwrap();
    }

    fn claim_complete(&mut self) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let seq: i64 = self
            .conn
            .prepare_cached(
                "UPDATE tasks SET status = 'in_progress', started = ?2
                 WHERE seq = (SELECT seq FROM tasks WHERE agent_id = ?1 AND status = 'queued' ORDER BY priority, seq LIMIT 1)
                 RETURNING seq",
            )
            .unwrap()
            .query_row(params![AGENT, now], |r| r.get(0))
            .unwrap();
        self.conn.execute_batch("COMMIT").unwrap();
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        self.conn
            .prepare_cached(
                "UPDATE tasks SET status = 'complete', completed = ?2, result = ?3 WHERE seq = ?1",
            )
            .unwrap()
            .execute(params![seq, now, "done"])
            .unwrap();
        self.conn.execute_batch("COMMIT").unwrap();
    }
}

fn bench_store(c: &mut Criterion, storage: &str, n: usize) {
    let store = match storage {
        "file" => Store::open(fresh_file(&format!("lib-{n}.db"))).unwrap(),
        _ => Store::open_in_memory().unwrap(),
    };
    populate(&store, n);
    let mut g = c.benchmark_group(format!("{storage}-{n}"));
    g.bench_function("create_task", |b| {
        b.iter(|| {
            store
                .create_task(AGENT, NewTask::new("bench").priority(5))
                .unwrap()
        })
    });
    g.bench_function("create_tasks_100", |b| {
        b.iter_batched(
            || {
                (0..100)
                    .map(|_| NewTask::new("bench").priority(5))
                    .collect::<Vec<_>>()
            },
            |tasks| store.create_tasks(AGENT, tasks).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let id = store
        .list_tasks(AGENT, ListQuery::new().limit(1))
        .unwrap()
        .tasks[0]
        .id
        .clone();
    g.bench_function("get_task", |b| {
        b.iter(|| store.get_task(AGENT, black_box(&id)).unwrap())
    });
    let mut p = 1;
    g.bench_function("update_task_priority", |b| {
        b.iter(|| {
            p = p % 10 + 1;
            store
                .update_task(AGENT, &id, TaskPatch::new().priority(p))
                .unwrap()
        })
    });
    g.bench_function("claim_complete", |b| {
        b.iter(|| {
            let t = store.claim_next(AGENT).unwrap().unwrap();
            store
                .update_task(
                    AGENT,
                    &t.id,
                    TaskPatch::new().status(Status::Complete).result("done"),
                )
                .unwrap()
        })
    });
    // The leased cycle of SPEC §10, in two commits and in one.
    g.bench_function("claim_lease_finish", |b| {
        b.iter(|| {
            let c = store
                .claim_lease(AGENT, "bench", LeaseTerms::new())
                .unwrap()
                .unwrap();
            store
                .finish_lease(&c.lease.token, Finish::complete().result("done"))
                .unwrap()
        })
    });
    let mut held = store
        .claim_lease(AGENT, "bench", LeaseTerms::new())
        .unwrap()
        .map(|c| c.lease.token);
    g.bench_function("finish_and_claim", |b| {
        b.iter(|| {
            let token = held.take().expect("a task is held");
            let step = store
                .finish_and_claim(&token, Finish::complete().result("done"), LeaseTerms::new())
                .unwrap();
            held = step.next.map(|c| c.lease.token);
        })
    });
    g.bench_function("delete_task", |b| {
        b.iter_batched(
            || {
                store
                    .create_task(AGENT, NewTask::new("to delete"))
                    .unwrap()
                    .id
            },
            |id| store.delete_task(AGENT, &id).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("list_first_page", |b| {
        b.iter(|| {
            store
                .list_tasks(AGENT, ListQuery::new().limit(PAGE))
                .unwrap()
        })
    });
    g.bench_function("list_queued_page", |b| {
        b.iter(|| {
            store
                .list_tasks(AGENT, ListQuery::new().status(Status::Queued).limit(PAGE))
                .unwrap()
        })
    });
    g.bench_function("query_first_page", |b| {
        b.iter(|| store.query_tasks(TaskQuery::new().limit(PAGE)).unwrap())
    });
    g.bench_function("query_blocked_page", |b| {
        b.iter(|| {
            store
                .query_tasks(TaskQuery::new().status(Status::Blocked).limit(PAGE))
                .unwrap()
        })
    });
    g.bench_function("summary", |b| {
        b.iter(|| store.summary(black_box(AGENT)).unwrap())
    });
    g.bench_function("set_prefix", |b| {
        b.iter(|| store.set_prefix("prefix-agent", "PFX").unwrap())
    });
    g.finish();
}

/// Peak resident memory of this process so far, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Lists a whole backlog page by page and reports how much the peak memory grew:
/// a page holds `limit` tasks, whatever the size of the backlog.
fn page_through(n: usize) {
    let store = Store::open(fresh_file(&format!("paging-{n}.db"))).unwrap();
    populate(&store, n);
    let before = peak_rss_kib();
    let page = 10_000;
    let (mut seen, mut offset) = (0, 0);
    let start = std::time::Instant::now();
    loop {
        let list = store
            .list_tasks(
                AGENT,
                ListQuery::new()
                    .status(Status::Queued)
                    .limit(page)
                    .offset(offset),
            )
            .unwrap();
        if list.tasks.is_empty() {
            break;
        }
        seen += list.tasks.len();
        offset += list.tasks.len() as i64;
    }
    let elapsed = start.elapsed();
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        println!(
            "\npaging: {seen} queued tasks of {n} in pages of {page} in {:.1} s; peak memory grew by {:.1} MiB",
            elapsed.as_secs_f64(),
            (after - before) as f64 / 1024.0
        );
    }
}

/// Reads per second (a summary, a task, a page: three calls count as three reads) from
/// 1, 2 and 4 threads of one store while another connection holds the write lock and
/// a write of the same store waits for it (SPEC §8: reads never wait for a writer).
fn reads_under_a_held_lock() {
    let path = fresh_file("held-lock.db");
    let store = Arc::new(
        Store::open_with(
            &path,
            StoreOptions {
                busy_timeout: Duration::from_secs(120),
                ..StoreOptions::default()
            },
        )
        .unwrap(),
    );
    populate(&store, 10_000);
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.create_task(AGENT, NewTask::new("waits")))
    };
    std::thread::sleep(Duration::from_millis(100));
    println!("\nreads while another connection holds the write lock and a write of the same store waits:");
    println!("| threads | reads per second |\n|---:|---:|");
    for threads in [1, 2, 4] {
        let until = Instant::now() + Duration::from_secs(2);
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while Instant::now() < until {
                        black_box(store.summary(AGENT).unwrap());
                        black_box(store.get_task(AGENT, "BEN-001").unwrap());
                        black_box(
                            store
                                .list_tasks(AGENT, ListQuery::new().limit(PAGE))
                                .unwrap(),
                        );
                        reads += 3;
                    }
                    reads
                })
            })
            .collect();
        let reads: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        println!("| {threads} | {:.0} |", reads as f64 / 2.0);
    }
    assert!(!writer.is_finished(), "the write must still be waiting");
    holder.execute_batch("ROLLBACK").unwrap();
    writer.join().unwrap().unwrap();
}

/// What the first task of an agent costs when many agents share a derived base
/// (`worker-1` … `worker-N` all derive WOR): the median of ten agents around the 2nd,
/// the 10,000th and the N-th (SPEC §5: about the same for all).
fn fleet_first_tasks() {
    let n: usize = std::env::var("AB_BENCH_FLEET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let store = Store::open(fresh_file("fleet.db")).unwrap();
    let mut costs = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 1..=n {
        let t = Instant::now();
        store
            .create_task(&format!("worker-{i}"), NewTask::new("first"))
            .unwrap();
        costs.push(t.elapsed());
    }
    let median = |from: usize| {
        let mut window: Vec<Duration> = costs[from - 1..(from + 9).min(n)].to_vec();
        window.sort();
        window[window.len() / 2]
    };
    println!(
        "\nfirst task of an agent sharing a base with {n} others ({:.1} s in all):",
        start.elapsed().as_secs_f64()
    );
    println!("| agent | first task (median of 10) |\n|---:|---:|");
    for at in [2, 10_000.min(n - 9), n - 9] {
        println!("| {at} | {:.1} µs |", median(at).as_secs_f64() * 1e6);
    }
}

/// The shapes of the dependency benchmark (SPEC §13): 100,000 tasks, and 50,000 edges
/// or none.
const DEP_TASKS: usize = 100_000;
const DEP_SHAPES: [(&str, &str); 3] = [
    ("no_edges", "100k tasks, no edges"),
    (
        "waiting_ahead",
        "50k edges: 50k tasks at priority 1 wait for one blocked task, ahead of 50k ready ones",
    ),
    (
        "pairs",
        "50k edges: every second task waits for the one before it",
    ),
];

/// A store of [`DEP_TASKS`] tasks in one of the [`DEP_SHAPES`].
fn plan_store(shape: &str) -> Store {
    let store = Store::open(fresh_file(&format!("deps-{shape}.db"))).unwrap();
    let gate = store.create_task(AGENT, NewTask::new("gate")).unwrap().id;
    store
        .update_task(
            AGENT,
            &gate,
            TaskPatch::new().status(Status::Blocked).blocker("never"),
        )
        .unwrap();
    for start in (0..DEP_TASKS).step_by(10_000) {
        let tasks = (start..start + 10_000)
            .map(|i| {
                let task = NewTask::new(format!("task {i}"));
                match shape {
                    "waiting_ahead" if i % 2 == 0 => task.priority(1).depends_on(gate.clone()),
                    "waiting_ahead" => task.priority(5),
                    "pairs" if i % 2 == 1 => task.depends_on_item(i - start - 1),
                    _ => task,
                }
            })
            .collect();
        store.create_tasks(AGENT, tasks).unwrap();
    }
    store
}

/// claim_next + complete, and the first page of the ready queue, on 100k tasks with
/// and without 50k edges: readiness must not cost a claim a scan.
fn bench_dependencies(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("deps-{DEP_TASKS}"));
    for (shape, _) in DEP_SHAPES {
        let store = plan_store(shape);
        g.bench_function(format!("claim_complete_{shape}"), |b| {
            b.iter(|| {
                let t = store.claim_next(AGENT).unwrap().unwrap();
                store
                    .update_task(AGENT, &t.id, TaskPatch::new().status(Status::Complete))
                    .unwrap()
            })
        });
        g.bench_function(format!("ready_first_page_{shape}"), |b| {
            b.iter(|| {
                store
                    .ready_tasks(AGENT, agent_backlog::Page::new().limit(PAGE))
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn report_dependencies() {
    let group = format!("deps-{DEP_TASKS}");
    let base = median_ns(&group, "claim_complete_no_edges");
    println!("\n## Readiness: claim_next + complete with and without 50k edges (medians)\n");
    println!("| store | claim + complete | vs. no edges | ready_tasks first page |");
    println!("|---|---:|---:|---:|");
    for (shape, what) in DEP_SHAPES {
        let Some(ns) = median_ns(&group, &format!("claim_complete_{shape}")) else {
            continue;
        };
        let ratio = base.map(|b| format!("{:+.1} %", (ns / b - 1.0) * 100.0));
        let page = median_ns(&group, &format!("ready_first_page_{shape}"))
            .map(|p| format!("{:.1} µs", p / 1e3));
        println!(
            "| {what} | {:.1} µs | {} | {} |",
            ns / 1e3,
            ratio.unwrap_or_default(),
            page.unwrap_or_default()
        );
    }
}

/// A page of the change feed (SPEC §14) at 10k and 1M events: the first page after a
/// seq in the middle, of every agent and of one, must cost the same at both sizes.
fn events_paging() {
    println!("\n## A page of the change feed (median of 200, limit 100)\n");
    println!("| events | every agent | one agent (of 2) |");
    println!("|---:|---:|---:|");
    for n in [10_000usize, 1_000_000] {
        let store = Store::open(fresh_file(&format!("events-{n}.db"))).unwrap();
        let mut made = 0;
        while made < n {
            let agent = if (made / 1_000) % 2 == 0 {
                "feed-a"
            } else {
                "feed-b"
            };
            let tasks = (0..1_000).map(|i| NewTask::new(format!("e{i}"))).collect();
            store.create_tasks(agent, tasks).unwrap();
            made += 1_000;
        }
        let middle = (n / 2) as i64;
        let time = |query: &dyn Fn() -> agent_backlog::EventQuery| {
            let mut samples: Vec<Duration> = (0..200)
                .map(|_| {
                    let started = Instant::now();
                    let page = store.events(query()).unwrap();
                    assert_eq!(page.events.len(), 100);
                    started.elapsed()
                })
                .collect();
            samples.sort();
            samples[samples.len() / 2]
        };
        let all = time(&|| agent_backlog::EventQuery::new().after(middle));
        let one = time(&|| {
            agent_backlog::EventQuery::new()
                .after(middle)
                .agent_id("feed-b")
        });
        println!(
            "| {n} | {:.1} µs | {:.1} µs |",
            all.as_secs_f64() * 1e6,
            one.as_secs_f64() * 1e6
        );
    }
}

fn bench_floor(c: &mut Criterion, n: usize) {
    let mut bare = Bare::open(&fresh_file(&format!("bare-{n}.db")), n);
    let mut g = c.benchmark_group(format!("file-{n}"));
    g.bench_function("floor_create", |b| b.iter(|| bare.create()));
    g.bench_function("floor_create_100", |b| b.iter(|| bare.create_batch(100)));
    g.bench_function("floor_claim_complete", |b| b.iter(|| bare.claim_complete()));
    g.finish();
}

/// The median of one benchmark, in nanoseconds, from criterion's estimates.
fn median_ns(group: &str, name: &str) -> Option<f64> {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()?
        .join("criterion")
        .join(group)
        .join(name)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn report(sizes: &[usize]) {
    println!("\n## agent-backlog vs. the bare-rusqlite floor (medians)\n");
    println!("| operation | storage | tasks | median | per second | vs. floor |");
    println!("|---|---|---:|---:|---:|---:|");
    let ops = [
        ("create_task", Some(("floor_create", 1.0))),
        ("create_tasks_100", Some(("floor_create_100", 1.0))),
        ("claim_complete", Some(("floor_claim_complete", 1.0))),
        ("claim_lease_finish", Some(("floor_claim_complete", 1.0))),
        ("finish_and_claim", Some(("floor_claim_complete", 1.0))),
        ("get_task", None),
        ("update_task_priority", None),
        ("delete_task", None),
        ("list_first_page", None),
        ("list_queued_page", None),
        ("query_first_page", None),
        ("query_blocked_page", None),
        ("summary", None),
        ("set_prefix", None),
    ];
    for storage in ["file", "memory"] {
        for &n in sizes {
            let group = format!("{storage}-{n}");
            for (op, floor) in ops {
                let Some(ns) = median_ns(&group, op) else {
                    continue;
                };
                let ratio = floor
                    .filter(|_| storage == "file")
                    .and_then(|(f, _)| median_ns(&group, f))
                    .map(|f| format!("{:.2}×", f / ns))
                    .unwrap_or_default();
                println!(
                    "| {op} | {storage} | {n} | {:.1} µs | {:.0} | {ratio} |",
                    ns / 1e3,
                    1e9 / ns
                );
            }
            if let (Some(single), Some(batch)) = (
                median_ns(&group, "create_task"),
                median_ns(&group, "create_tasks_100"),
            ) {
                println!(
                    "| batch of 100 vs. 100 single creates | {storage} | {n} | | | {:.1}× faster |",
                    single * 100.0 / batch
                );
            }
        }
    }
}

fn main() {
    // `AB_BENCH_ONLY=events cargo bench --bench ops`: the change feed's pages alone.
    if std::env::var("AB_BENCH_ONLY").as_deref() == Ok("events") {
        events_paging();
        return;
    }
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let sizes = sizes();
    for &n in &sizes {
        bench_floor(&mut c, n);
        bench_store(&mut c, "file", n);
        bench_store(&mut c, "memory", n);
    }
    bench_dependencies(&mut c);
    c.final_summary();
    report(&sizes);
    report_dependencies();
    if let Some(&largest) = sizes.iter().max() {
        page_through(largest);
    }
    reads_under_a_held_lock();
    fleet_first_tasks();
    events_paging();
}
