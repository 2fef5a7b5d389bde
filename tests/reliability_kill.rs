//! Issue 5, promise 2: no acknowledged write is lost when a process is killed.
//!
//! The kill loop. Each round starts, on one database file:
//!
//! - a **writer** (a re-execution of this test binary) that creates, batch-creates,
//!   updates (every lifecycle move, priorities, titles, descriptions of up to 20 KB so
//!   that overflow pages are written), deletes and claims tasks of one agent, and runs
//!   `PRAGMA wal_checkpoint(PASSIVE)` (every 40th: `TRUNCATE`) through a separate
//!   plain connection every few writes, so that kills also land in checkpoints;
//! - two **claimer** processes of two threads each that claim tasks of another agent,
//!   then complete or block them, and refill the backlog when it runs dry.
//!
//! Every worker reports each call on stdout in one flushed `write`: a `pending` line
//! before the call and an `ack` line (with what the call returned) only after it
//! returned. After a random number of the writer's acks the harness sends SIGKILL to
//! every child, reaps them, and checks the file:
//!
//! - a plain connection finds `PRAGMA integrity_check` ok and no foreign key violation;
//! - every acknowledged task is there in its acknowledged state, field for field;
//!   the only differences allowed are the effects of the one call each worker had in
//!   flight (a create or batch is there whole or not at all; an update is the old or
//!   the new state; a delete may or may not have happened; a claim may have moved one
//!   task to in_progress, with `started` set, per claim in flight);
//! - no task vanished and none appeared from nowhere; no task number was given twice;
//! - `summary` equals a plain `SELECT status, count(*) … GROUP BY status`.
//!
//! `make test`: 25 kills. `make stress` (`AGENT_BACKLOG_STRESS=1`): 300 kills.

mod common;
mod reliability_common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use agent_backlog::{Durability, ListQuery, NewTask, Status, Store, StoreOptions, Task, TaskPatch};
use common::TempDir;
use reliability_common::{child_test, integrity_check, say, size, Reporter, Rng};
use serde_json::{json, Value};

const WRITER: &str = "writer";
const CLAIMS: &str = "claims";
const ENV_DB: &str = "AGENT_BACKLOG_KILL_DB";
const ENV_SEED: &str = "AGENT_BACKLOG_KILL_SEED";
const ENV_ROUND: &str = "AGENT_BACKLOG_KILL_ROUND";
const ENV_FULL: &str = "AGENT_BACKLOG_KILL_FULL";

/// A task as reported and compared: its JSON, with the description (up to 20 KB)
/// replaced by its length and a hash, so that every report fits in one pipe write.
fn digest(task: &Task) -> Value {
    let mut v = serde_json::to_value(task).unwrap();
    if let Some(d) = &task.description {
        v["description"] = json!(format!("{}:{:016x}", d.len(), fnv(d.as_bytes())));
    }
    v
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn worker_name(thread: usize) -> String {
    format!("{}:{thread}", std::process::id())
}

fn pending(worker: &str, agent: &str, op: Value) {
    say(&json!({"w": worker, "agent": agent, "pending": op}).to_string());
}

fn ack(worker: &str, agent: &str, op: Value) {
    say(&json!({"w": worker, "agent": agent, "ack": op}).to_string());
}

/// A patch for `task` that the lifecycle allows, and the fields it must leave.
fn random_patch(task: &Task, n: u64, rng: &mut Rng) -> (TaskPatch, Value) {
    let mut targets: Vec<Status> = agent_backlog::lifecycle::allowed_from(task.status).to_vec();
    targets.push(task.status);
    let target = targets[rng.below(targets.len() as u64) as usize];
    let mut patch = TaskPatch::new();
    let mut expect = json!({
        "status": target.as_str(),
        "priority": task.priority,
        "title": task.title,
        "description": task.description.as_ref().map(|_| digest(task)["description"].clone()),
        "result": null,
        "blocker": null,
    });
    if target != task.status || rng.percent(30) {
        patch = patch.status(target);
    }
    match target {
        Status::Complete => {
            if target != task.status || rng.percent(50) {
                let result = format!("result {n}");
                expect["result"] = json!(result);
                patch = patch.status(target).result(result);
            } else {
                expect["result"] = json!(task.result);
            }
        }
        Status::Blocked => {
            if target != task.status || rng.percent(50) {
                let blocker = format!("blocker {n}");
                expect["blocker"] = json!(blocker);
                patch = patch.status(target).blocker(blocker);
            } else {
                expect["blocker"] = json!(task.blocker);
            }
        }
        Status::Queued | Status::InProgress => {}
    }
    if rng.percent(40) {
        let p = rng.range(1, 10) as i64;
        expect["priority"] = json!(p);
        patch = patch.priority(p);
    }
    if rng.percent(20) {
        let title = format!("retitled {n}");
        expect["title"] = json!(title);
        patch = patch.title(title);
    }
    if rng.percent(20) {
        if rng.percent(30) {
            expect["description"] = Value::Null;
            patch = patch.clear_description();
        } else {
            let d = description(rng);
            expect["description"] = json!(format!("{}:{:016x}", d.len(), fnv(d.as_bytes())));
            patch = patch.description(d);
        }
    }
    (patch, expect)
}

/// A description from empty to 20 KB (large ones go to overflow pages).
fn description(rng: &mut Rng) -> String {
    let len = match rng.below(10) {
        0..=5 => rng.below(200),
        6..=8 => rng.below(4000),
        _ => rng.below(20_000),
    } as usize;
    let c = (b'a' + rng.below(26) as u8) as char;
    std::iter::repeat_n(c, len).collect()
}

fn new_task(title: String, rng: &mut Rng) -> NewTask {
    let mut task = NewTask::new(title).priority(rng.range(1, 10) as i64);
    if rng.percent(50) {
        task = task.description(description(rng));
    }
    task
}

/// Entry point of the writer child: writes until it is killed.
#[test]
#[ignore = "run as a child process by kill_loop"]
fn kill_writer_child() {
    let path = std::env::var(ENV_DB).expect("run by kill_loop");
    let mut rng = Rng::new(std::env::var(ENV_SEED).unwrap().parse().unwrap());
    let round: u64 = std::env::var(ENV_ROUND).unwrap().parse().unwrap();
    let durability = if std::env::var_os(ENV_FULL).is_some() {
        Durability::Full
    } else {
        Durability::Normal
    };
    let store = Store::open_with(
        &path,
        StoreOptions {
            durability,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    // A plain connection of the same SQLite library, only for checkpoints.
    let checkpointer = rusqlite::Connection::open(&path).unwrap();
    checkpointer.busy_timeout(Duration::from_secs(5)).unwrap();
    let w = worker_name(0);
    let mut known: Vec<Task> = store.list_tasks(WRITER, ListQuery::new()).unwrap().tasks;
    for n in 0..100_000u64 {
        let r = rng.below(100);
        if known.is_empty() || r < 35 {
            let title = format!("w{round}-{n}");
            pending(&w, WRITER, json!({"op": "create", "titles": [title]}));
            let task = store
                .create_task(WRITER, new_task(title, &mut rng))
                .unwrap();
            ack(
                &w,
                WRITER,
                json!({"op": "create", "tasks": [digest(&task)]}),
            );
            known.push(task);
        } else if r < 42 {
            let titles: Vec<String> = (0..rng.range(2, 4))
                .map(|i| format!("w{round}-{n}-{i}"))
                .collect();
            pending(&w, WRITER, json!({"op": "create", "titles": titles}));
            let tasks = titles
                .iter()
                .map(|t| new_task(t.clone(), &mut rng))
                .collect();
            let batch = store.create_tasks(WRITER, tasks).unwrap();
            let digests: Vec<Value> = batch.tasks.iter().map(digest).collect();
            ack(&w, WRITER, json!({"op": "create", "tasks": digests}));
            known.extend(batch.tasks);
        } else if r < 85 {
            let i = rng.below(known.len() as u64) as usize;
            let (patch, expect) = random_patch(&known[i], n, &mut rng);
            let id = known[i].id.clone();
            pending(
                &w,
                WRITER,
                json!({"op": "update", "id": id, "expect": expect}),
            );
            let task = store.update_task(WRITER, &id, patch).unwrap();
            ack(&w, WRITER, json!({"op": "update", "task": digest(&task)}));
            known[i] = task;
        } else if r < 92 {
            let i = rng.below(known.len() as u64) as usize;
            let id = known[i].id.clone();
            pending(&w, WRITER, json!({"op": "delete", "id": id}));
            let deleted = store.delete_task(WRITER, &id).unwrap();
            assert_eq!(deleted.deleted, id);
            ack(&w, WRITER, json!({"op": "delete", "id": id}));
            known.swap_remove(i);
        } else {
            pending(&w, WRITER, json!({"op": "claim"}));
            let task = store.claim_next(WRITER).unwrap();
            ack(
                &w,
                WRITER,
                json!({"op": "claim", "task": task.as_ref().map(digest)}),
            );
            if let Some(task) = task {
                let at = known.iter().position(|k| k.id == task.id).unwrap();
                known[at] = task;
            }
        }
        if n % 4 == 3 {
            let mode = if n % 40 == 39 { "TRUNCATE" } else { "PASSIVE" };
            say(&json!({"w": w, "checkpoint": mode}).to_string());
            // A busy checkpoint reports it in its row; it is not an error here.
            let _: rusqlite::Result<i64> =
                checkpointer.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(0));
            say(&json!({"w": w, "checkpointed": mode}).to_string());
        }
    }
}

/// One claimer thread: claim, then complete or block; refill when nothing is queued.
fn claimer(store: &Store, w: &str, mut rng: Rng) {
    for n in 0..1_000_000u64 {
        pending(w, CLAIMS, json!({"op": "claim"}));
        let task = store.claim_next(CLAIMS).unwrap();
        ack(
            w,
            CLAIMS,
            json!({"op": "claim", "task": task.as_ref().map(digest)}),
        );
        let Some(task) = task else {
            let titles: Vec<String> = (0..10).map(|i| format!("c{w}-{n}-{i}")).collect();
            pending(w, CLAIMS, json!({"op": "create", "titles": titles}));
            let tasks = titles
                .iter()
                .map(|t| new_task(t.clone(), &mut rng))
                .collect();
            let batch = store.create_tasks(CLAIMS, tasks).unwrap();
            let digests: Vec<Value> = batch.tasks.iter().map(digest).collect();
            ack(w, CLAIMS, json!({"op": "create", "tasks": digests}));
            continue;
        };
        let (patch, mut expect) = if rng.percent(75) {
            (
                TaskPatch::new().status(Status::Complete).result(w),
                json!({"status": "complete", "result": w, "blocker": null}),
            )
        } else {
            (
                TaskPatch::new().status(Status::Blocked).blocker(w),
                json!({"status": "blocked", "result": null, "blocker": w}),
            )
        };
        let d = digest(&task);
        for field in ["priority", "title", "description"] {
            expect[field] = d[field].clone();
        }
        pending(
            w,
            CLAIMS,
            json!({"op": "update", "id": task.id, "expect": expect}),
        );
        let done = store.update_task(CLAIMS, &task.id, patch).unwrap();
        ack(w, CLAIMS, json!({"op": "update", "task": digest(&done)}));
    }
}

/// Entry point of the claimer children: two threads on one store, until killed.
#[test]
#[ignore = "run as a child process by kill_loop"]
fn kill_claimer_child() {
    let path = std::env::var(ENV_DB).expect("run by kill_loop");
    let seed: u64 = std::env::var(ENV_SEED).unwrap().parse().unwrap();
    let store = std::sync::Arc::new(Store::open(&path).unwrap());
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || claimer(&store, &worker_name(t), Rng::new(seed + t as u64)))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// The expected content of the file: every acknowledged task of each agent.
#[derive(Default)]
struct Model {
    tasks: HashMap<String, BTreeMap<String, Value>>,
    /// Every task ID ever seen: a number is never given twice.
    ever: HashSet<String>,
}

/// Where a task of the claimers' agent is in its one-way life; a later report of the
/// same task may arrive first (the workers write to different pipes), so the furthest
/// state wins.
fn stage(task: &Value) -> u8 {
    match task["status"].as_str().unwrap() {
        "queued" => 0,
        "in_progress" => 1,
        _ => 2,
    }
}

impl Model {
    fn agent(&mut self, agent: &str) -> &mut BTreeMap<String, Value> {
        self.tasks.entry(agent.to_owned()).or_default()
    }

    fn put(&mut self, agent: &str, task: &Value) {
        let id = task["id"].as_str().unwrap().to_owned();
        let tasks = self.agent(agent);
        if agent == CLAIMS {
            if let Some(old) = tasks.get(&id) {
                if stage(old) > stage(task) {
                    return;
                }
            }
        }
        tasks.insert(id, task.clone());
    }

    /// Applies one acknowledged call.
    fn apply(&mut self, agent: &str, op: &Value) {
        match op["op"].as_str().unwrap() {
            "create" => {
                for task in op["tasks"].as_array().unwrap() {
                    let id = task["id"].as_str().unwrap().to_owned();
                    assert!(
                        self.ever.insert(id.clone()),
                        "task number {id} was given twice"
                    );
                    assert_eq!(task["status"], "queued");
                    self.put(agent, task);
                }
            }
            "update" => self.put(agent, &op["task"]),
            "claim" => {
                if !op["task"].is_null() {
                    assert_eq!(op["task"]["status"], "in_progress");
                    self.put(agent, &op["task"]);
                }
            }
            "delete" => {
                let id = op["id"].as_str().unwrap();
                assert!(self.agent(agent).remove(id).is_some(), "{id} deleted twice");
            }
            other => panic!("unknown op {other}"),
        }
    }
}

/// What the kills interrupted, over the whole loop.
#[derive(Default, Debug)]
struct Figures {
    kills: usize,
    acked: usize,
    writer_in_call: usize,
    writer_in_checkpoint: usize,
    writer_between: usize,
    claims_in_flight: usize,
    in_flight_committed: usize,
    in_flight_rolled_back: usize,
    claimed_unreported: usize,
}

/// The calls in flight when the children were killed: per worker, the last `pending`
/// that no `ack` followed.
fn in_flight(lines: &[Value]) -> Vec<(String, Value)> {
    let mut last: BTreeMap<String, Option<(String, Value)>> = BTreeMap::new();
    for line in lines {
        let w = line["w"].as_str().unwrap().to_owned();
        if let Some(op) = line.get("pending") {
            last.insert(
                w,
                Some((line["agent"].as_str().unwrap().to_owned(), op.clone())),
            );
        } else if line.get("ack").is_some() {
            last.insert(w, None);
        }
    }
    last.into_values().flatten().collect()
}

fn same_except_status_and_started(a: &Value, b: &Value) -> bool {
    [
        "id",
        "title",
        "description",
        "priority",
        "created",
        "completed",
        "result",
        "blocker",
    ]
    .iter()
    .all(|f| a[f] == b[f])
}

/// The file's tasks of `agent`, as digests.
fn stored(store: &Store, agent: &str) -> BTreeMap<String, Value> {
    store
        .list_tasks(agent, ListQuery::new())
        .unwrap()
        .tasks
        .iter()
        .map(|t| (t.id.clone(), digest(t)))
        .collect()
}

/// The checks after a kill. Returns the file's content, which becomes the model.
fn verify(path: &Path, model: &mut Model, flying: &[(String, Value)], figures: &mut Figures) {
    assert_eq!(integrity_check(path), "ok", "integrity_check after a kill");
    let plain = rusqlite::Connection::open(path).unwrap();
    let violations: i64 = plain
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(violations, 0, "foreign key violations after a kill");
    let store = Store::open(path).unwrap();
    for agent in [WRITER, CLAIMS] {
        let db = stored(&store, agent);
        let expected = model.agent(agent).clone();
        let mut explained: HashSet<String> = HashSet::new();
        let mut claims_allowed = 0;
        // Tasks of an unreported batch that an unreported claim took.
        let mut unreported_from_batches = 0;
        for (_, op) in flying.iter().filter(|(a, _)| a == agent) {
            match op["op"].as_str().unwrap() {
                "create" => {
                    let titles: HashSet<&str> = op["titles"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t.as_str().unwrap())
                        .collect();
                    let made: Vec<&Value> = db
                        .values()
                        .filter(|t| titles.contains(t["title"].as_str().unwrap()))
                        .collect();
                    assert!(
                        made.is_empty() || made.len() == titles.len(),
                        "a batch create was cut by the kill: {} of {} tasks are there",
                        made.len(),
                        titles.len()
                    );
                    for t in &made {
                        let id = t["id"].as_str().unwrap().to_owned();
                        assert!(
                            model.ever.insert(id.clone()),
                            "task number {id} given twice"
                        );
                        // Another worker may have claimed (and reported) a task of a
                        // batch whose creator was killed before reporting it: then it
                        // is in the model and checked like any other.
                        if expected.contains_key(&id) {
                            continue;
                        }
                        explained.insert(id.clone());
                        if t["status"] == "in_progress" && t["started"].is_string() {
                            unreported_from_batches += 1;
                        } else {
                            assert_eq!(t["status"], "queued", "{agent}: {op} made {t}");
                        }
                    }
                    tally(figures, !made.is_empty());
                }
                "update" => {
                    let id = op["id"].as_str().unwrap();
                    let now = db.get(id).unwrap_or_else(|| panic!("{id} vanished"));
                    if Some(now) != expected.get(id) {
                        for (field, want) in op["expect"].as_object().unwrap() {
                            assert_eq!(&now[field], want, "{id}: {field} after a cut update");
                        }
                        tally(figures, true);
                    } else {
                        tally(figures, false);
                    }
                    explained.insert(id.to_owned());
                }
                "delete" => {
                    let id = op["id"].as_str().unwrap();
                    if let Some(now) = db.get(id) {
                        assert_eq!(Some(now), expected.get(id), "{id} after a cut delete");
                    }
                    tally(figures, !db.contains_key(id));
                    explained.insert(id.to_owned());
                }
                "claim" => {
                    claims_allowed += 1;
                    if agent == CLAIMS {
                        figures.claims_in_flight += 1;
                    }
                }
                other => panic!("unknown op {other}"),
            }
        }
        let mut claimed_unreported = unreported_from_batches;
        for (id, want) in &expected {
            if explained.contains(id) {
                continue;
            }
            let now = db
                .get(id)
                .unwrap_or_else(|| panic!("{agent}: acknowledged task {id} vanished"));
            if now == want {
                continue;
            }
            // A claim in flight may have committed without being reported.
            assert!(
                want["status"] == "queued"
                    && now["status"] == "in_progress"
                    && now["started"].is_string()
                    && same_except_status_and_started(now, want),
                "{agent}: {id} is not in its acknowledged state:\n  acknowledged {want}\n  stored       {now}"
            );
            claimed_unreported += 1;
        }
        assert!(
            claimed_unreported <= claims_allowed,
            "{agent}: {claimed_unreported} tasks were claimed unreported, but only \
             {claims_allowed} claims were in flight"
        );
        figures.claimed_unreported += claimed_unreported;
        figures.in_flight_committed += claimed_unreported;
        figures.in_flight_rolled_back += claims_allowed - claimed_unreported;
        for id in db.keys() {
            assert!(
                expected.contains_key(id) || explained.contains(id),
                "{agent}: {id} appeared without being created"
            );
        }

        // summary equals a plain count.
        let summary = store.summary(agent).unwrap();
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut stmt = plain
            .prepare("SELECT status, count(*) FROM tasks WHERE agent_id = ?1 GROUP BY status")
            .unwrap();
        for row in stmt
            .query_map([agent], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .unwrap()
        {
            let (status, n) = row.unwrap();
            counts.insert(status, n as u64);
        }
        let count = |s: &str| counts.get(s).copied().unwrap_or(0);
        assert_eq!(
            [
                summary.queued,
                summary.in_progress,
                summary.complete,
                summary.blocked,
                summary.total
            ],
            [
                count("queued"),
                count("in_progress"),
                count("complete"),
                count("blocked"),
                counts.values().sum()
            ],
            "{agent}: summary differs from a plain count"
        );
        assert_eq!(summary.total as usize, db.len());
        // The file is now the truth for the next round.
        *model.agent(agent) = db;
    }
    drop(store);
}

fn tally(figures: &mut Figures, committed: bool) {
    if committed {
        figures.in_flight_committed += 1;
    } else {
        figures.in_flight_rolled_back += 1;
    }
}

#[test]
fn kill_loop() {
    let rounds = size(25, 300);
    let dir = TempDir::new("kill");
    let path = dir.file("kill.db");
    let mut rng = Rng::from_env("kill_loop");
    let mut model = Model::default();
    let mut figures = Figures::default();
    {
        let store = Store::open(&path).unwrap();
        let batch = store
            .create_tasks(
                CLAIMS,
                (0..50).map(|i| NewTask::new(format!("seed {i}"))).collect(),
            )
            .unwrap();
        for t in &batch.tasks {
            model.apply(CLAIMS, &json!({"op": "create", "tasks": [digest(t)]}));
        }
        model.agent(WRITER);
    }
    let start = Instant::now();
    for round in 0..rounds {
        let mut writer_cmd = child_test("kill_writer_child");
        writer_cmd
            .env(ENV_DB, &path)
            .env(ENV_SEED, rng.next_u64().to_string())
            .env(ENV_ROUND, round.to_string());
        if round % 2 == 1 {
            writer_cmd.env(ENV_FULL, "1");
        }
        let writer = Reporter::spawn(writer_cmd);
        let claimers: Vec<Reporter> = (0..2)
            .map(|_| {
                let mut cmd = child_test("kill_claimer_child");
                cmd.env(ENV_DB, &path)
                    .env(ENV_SEED, rng.next_u64().to_string());
                Reporter::spawn(cmd)
            })
            .collect();

        // Kill after a random number of the writer's acknowledged writes, plus a random
        // fraction of a millisecond so that the kill can land anywhere in a call.
        let target = rng.range(1, 60);
        let mut seen = Vec::new();
        let mut acks = 0;
        while acks < target {
            let line = writer.next().unwrap_or_else(|| {
                panic!("round {round}: the writer stopped before it was killed")
            });
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("ack").is_some() {
                acks += 1;
            }
            seen.push(v);
        }
        std::thread::sleep(Duration::from_micros(rng.below(1500)));
        let mut lines = seen;
        let (status, rest) = writer.kill();
        assert!(
            status.code().is_none(),
            "the writer exited by itself: {status}"
        );
        lines.extend(
            rest.iter()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
        match lines.last() {
            Some(v) if v.get("pending").is_some() => figures.writer_in_call += 1,
            Some(v) if v.get("checkpoint").is_some() => figures.writer_in_checkpoint += 1,
            _ => figures.writer_between += 1,
        }
        for c in claimers {
            let (status, rest) = c.kill();
            assert!(
                status.code().is_none(),
                "a claimer exited by itself: {status}"
            );
            lines.extend(
                rest.iter()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()),
            );
        }
        figures.kills += 1;

        // The acknowledged calls, in each worker's order (workers of the same agent
        // never touch one task at the same time; see `stage`).
        for line in &lines {
            if let Some(op) = line.get("ack") {
                model.apply(line["agent"].as_str().unwrap(), op);
                figures.acked += 1;
            }
        }
        let flying = in_flight(&lines);
        verify(&path, &mut model, &flying, &mut figures);
        // Keep the claimers' backlog small: the harness removes what they finished.
        let plain = rusqlite::Connection::open(&path).unwrap();
        plain
            .execute(
                "DELETE FROM tasks WHERE agent_id = ?1 AND status IN ('complete', 'blocked')",
                [CLAIMS],
            )
            .unwrap();
        model
            .agent(CLAIMS)
            .retain(|_, t| t["status"] == "queued" || t["status"] == "in_progress");
    }
    let store = Store::open(&path).unwrap();
    let (w, c) = (
        store.summary(WRITER).unwrap(),
        store.summary(CLAIMS).unwrap(),
    );
    println!(
        "kill loop: {} kills (SIGKILL) in {:.1} s; {} acknowledged writes, none lost; the writer \
         was killed {} times in a call, {} times in a checkpoint, {} times between calls; {} \
         claims in flight; calls in flight found committed {} / without effect {}; tasks claimed \
         but unreported {}; final: writer {} tasks, claims {} tasks",
        figures.kills,
        start.elapsed().as_secs_f64(),
        figures.acked,
        figures.writer_in_call,
        figures.writer_in_checkpoint,
        figures.writer_between,
        figures.claims_in_flight,
        figures.in_flight_committed,
        figures.in_flight_rolled_back,
        figures.claimed_unreported,
        w.total,
        c.total
    );
}
