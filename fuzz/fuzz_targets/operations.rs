//! Random sequences of operations through the C ABI, checked against an in-memory model.
//!
//! The input bytes are decoded into up to 64 operations (create, create_tasks, get,
//! update, delete, list, query, summary, claim, set_prefix) on four agents, one of them
//! an invalid agent_id, with values chosen from lists that mix valid and invalid ones
//! (blank and overlong titles, NULs, SQL-looking text, floats and strings as priorities,
//! refused moves, held prefixes, unknown and malformed task IDs). Each operation starts
//! on a fresh in-memory store, and every result is compared with what the model says:
//! the exact code, the exact task JSON (timestamps checked for presence, format and
//! order, then taken into the model), IDs with their prefixes and numbers, list pages,
//! totals and order, summaries, claims (a claimed task was queued; so no task is
//! claimed twice without being released). After the sequence the whole store is
//! compared with the model.
#![no_main]

use agent_backlog_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const AGENTS: [&str; 4] = ["marketing-lead", "support-bot", "supply-chain", "bad agent"];
/// The derived prefix base of each valid agent (SPEC §5).
const BASES: [&str; 3] = ["MKT", "SUP", "SUP"];

/// The input, read a byte at a time; 0 once it is used up.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.byte() as usize % choices.len()]
    }
}

/// Optional JSON fields: `None` leaves the key out; otherwise the value's JSON text.
type Field = Option<&'static str>;

const TITLES: [Field; 9] = [
    Some(r#""Write posts""#),
    Some(r#""  padded title  ""#),
    Some(r#""""#),
    Some(r#""   ""#),
    Some(r#""'); DROP TABLE tasks; --""#),
    Some(r#""a\u0000b""#),
    Some(r#""日本語 ✓""#),
    Some("5"),
    None,
];
const DESCRIPTIONS: [Field; 5] = [
    None,
    Some("null"),
    Some(r#""Focus on ROI""#),
    Some(r#""1 OR 1=1""#),
    Some(r#""\u0000""#),
];
const PRIORITIES: [Field; 11] = [
    None,
    Some("null"),
    Some("1"),
    Some("5"),
    Some("10"),
    Some("0"),
    Some("11"),
    Some("-1"),
    Some("3.0"),
    Some(r#""3""#),
    Some("true"),
];
const STATUSES_IN: [Field; 7] = [
    None,
    Some(r#""queued""#),
    Some(r#""in_progress""#),
    Some(r#""complete""#),
    Some(r#""blocked""#),
    Some(r#""Done""#),
    Some("null"),
];
const BLOCKERS: [Field; 5] = [
    None,
    Some("null"),
    Some(r#""waiting for input""#),
    Some(r#""   ""#),
    Some(r#""'; --""#),
];
const RESULTS: [Field; 4] = [
    None,
    Some("null"),
    Some(r#""done""#),
    Some(r#""'); DROP TABLE agents; --""#),
];
const PATCH_TITLES: [Field; 4] = [None, Some(r#""New title""#), Some(r#""""#), Some("null")];
const PATCH_PRIORITIES: [Field; 4] = [None, Some("2"), Some("11"), Some("null")];
const FILTER_STATUSES: [Field; 7] = [
    None,
    Some(r#""queued""#),
    Some(r#""in_progress""#),
    Some(r#""complete""#),
    Some(r#""blocked""#),
    Some("null"),
    Some(r#""queued' OR '1'='1""#),
];
const FILTER_PRIORITIES: [Field; 6] = [
    None,
    Some("1"),
    Some("5"),
    Some("10"),
    Some("0"),
    Some("null"),
];
const FILTER_AGENTS: [Field; 7] = [
    None,
    Some(r#""marketing-lead""#),
    Some(r#""support-bot""#),
    Some(r#""supply-chain""#),
    Some(r#""nobody""#),
    Some(r#""x' OR 1=1 --""#),
    Some("null"),
];
const LIMITS: [Field; 7] = [
    None,
    Some("0"),
    Some("1"),
    Some("2"),
    Some("100"),
    Some("-1"),
    Some("null"),
];
const OFFSETS: [Field; 5] = [None, Some("0"), Some("1"), Some("3"), Some("-1")];
const PREFIXES: [&str; 9] = [
    "MKT",
    "SUP",
    "SUP2",
    "OPS",
    "A",
    "ZZZZZZZZ",
    "mkt",
    "TOOLONGXX",
    "1AB",
];

/// A JSON object text from the fields that are given.
fn object(fields: &[(&str, Field)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("\"{k}\":{v}")))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn parse_object(text: &str) -> Map<String, Value> {
    serde_json::from_str::<Value>(text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

#[derive(Clone, Debug)]
struct ModelTask {
    agent: usize,
    seq: u64,
    /// The task's JSON as the contract writes it (without agent_id).
    task: Value,
}

#[derive(Default, Clone, Debug)]
struct ModelAgent {
    /// Registered (a row exists) with this prefix.
    prefix: Option<String>,
    /// The next task number.
    next: u64,
}

#[derive(Default)]
struct Model {
    agents: [ModelAgent; 3],
    tasks: Vec<ModelTask>,
    seq: u64,
}

impl Model {
    fn new() -> Model {
        let mut m = Model::default();
        for a in &mut m.agents {
            a.next = 1;
        }
        m
    }

    fn holder(&self, prefix: &str) -> Option<usize> {
        self.agents
            .iter()
            .position(|a| a.prefix.as_deref() == Some(prefix))
    }

    /// The prefix the agent's next task gets, registering it (SPEC §5).
    fn prefix_for(&mut self, agent: usize) -> String {
        if let Some(p) = &self.agents[agent].prefix {
            return p.clone();
        }
        let base = BASES[agent];
        let prefix = (1..)
            .map(|n| {
                if n == 1 {
                    base.to_owned()
                } else {
                    format!("{base}{n}")
                }
            })
            .find(|p| self.holder(p).is_none())
            .unwrap();
        self.agents[agent].prefix = Some(prefix.clone());
        prefix
    }

    fn find(&self, agent: usize, id: &str) -> Option<usize> {
        self.tasks
            .iter()
            .position(|t| t.agent == agent && t.task["id"] == id)
    }

    /// The agent's tasks (or every task), in the listing order.
    fn ordered(&self, agent: Option<usize>) -> Vec<&ModelTask> {
        let mut tasks: Vec<&ModelTask> = self
            .tasks
            .iter()
            .filter(|t| agent.is_none_or(|a| t.agent == a))
            .collect();
        tasks.sort_by_key(|t| (t.task["priority"].as_u64(), t.seq));
        tasks
    }

    fn counts(&self, agent: usize) -> [u64; 5] {
        let mut c = [0; 5];
        for t in self.tasks.iter().filter(|t| t.agent == agent) {
            let i = STATUSES
                .iter()
                .position(|s| t.task["status"] == *s)
                .unwrap();
            c[i] += 1;
            c[4] += 1;
        }
        c
    }
}

fn with_agent(t: &ModelTask) -> Value {
    let mut v = t.task.clone();
    v["agent_id"] = AGENTS[t.agent].into();
    v
}

/// Takes the timestamps the model left to the library ([`NOW`]) from the actual task.
fn settle(expected: &Value, actual: &Value) -> Value {
    let mut task = expected.clone();
    for key in ["started", "completed"] {
        if task[key] == NOW {
            task[key] = actual[key].clone();
        }
    }
    task
}

/// A page of `tasks` by the limit and offset fields of a query (already valid).
fn page<T: Clone>(tasks: &[T], q: &Map<String, Value>) -> Vec<T> {
    let offset = q.get("offset").and_then(Value::as_u64).unwrap_or(0);
    let limit = q.get("limit").and_then(Value::as_u64).unwrap_or(u64::MAX);
    tasks
        .iter()
        .skip(offset as usize)
        .take(limit.min(usize::MAX as u64) as usize)
        .cloned()
        .collect()
}

fn counts_valid(q: &Map<String, Value>) -> bool {
    ["limit", "offset"].iter().all(|k| match q.get(*k) {
        None | Some(Value::Null) => true,
        Some(v) => int_in(v, 0..=i64::MAX).is_some(),
    })
}

fn status_filter(q: &Map<String, Value>) -> Result<Option<String>, ()> {
    match q.get("status") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if STATUSES.contains(&s.as_str()) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

struct Run<'a> {
    store: Handle,
    model: Model,
    input: Input<'a>,
}

impl Run<'_> {
    /// A task ID to use with `agent`: one of the model's tasks (its own or another
    /// agent's), a well-formed ID of no task, or a malformed one.
    fn task_ref(&mut self, agent: usize) -> String {
        let b = self.input.byte();
        let n = self.model.tasks.len();
        match b % 8 {
            0 => "MKT-999".to_owned(),
            1 => ["mkt-001", "MKT-1", "MKT-001' OR '1'='1", ""][b as usize / 8 % 4].to_owned(),
            _ if n == 0 => "SUP-001".to_owned(),
            2 => self.model.tasks[b as usize / 8 % n].task["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            _ => {
                let own: Vec<&ModelTask> = self
                    .model
                    .tasks
                    .iter()
                    .filter(|t| t.agent == agent)
                    .collect();
                match own.len() {
                    0 => self.model.tasks[b as usize % n].task["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    k => own[b as usize / 8 % k].task["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                }
            }
        }
    }

    fn new_task_body(&mut self) -> String {
        let title = self.input.pick(&TITLES);
        let description = self.input.pick(&DESCRIPTIONS);
        let priority = self.input.pick(&PRIORITIES);
        object(&[
            ("title", title),
            ("description", description),
            ("priority", priority),
        ])
    }

    /// Adds a created task to the model after checking it against the body.
    fn take_created(&mut self, agent: usize, body: &Map<String, Value>, actual: &Value) {
        let (title, description, priority) = expect_new_task(body).unwrap();
        let prefix = self.model.prefix_for(agent);
        let a = &mut self.model.agents[agent];
        let id = format!("{prefix}-{:03}", a.next);
        a.next += 1;
        let created = actual["created"].clone();
        let expected = json!({
            "id": id, "title": title, "description": description, "priority": priority,
            "status": "queued", "created": created, "started": null, "completed": null,
            "result": null, "blocker": null,
        });
        assert_eq!(actual, &expected, "created task");
        self.model.seq += 1;
        self.model.tasks.push(ModelTask {
            agent,
            seq: self.model.seq,
            task: expected,
        });
    }

    fn step(&mut self) {
        let op = self.input.byte() % 11;
        let agent = self.input.byte() as usize % AGENTS.len();
        let valid_agent = agent < 3;
        let name = AGENTS[agent];
        match op {
            0 => {
                let body = self.new_task_body();
                let o = self.store.create(name, &c_buffer(body.as_bytes()));
                let map = parse_object(&body);
                if !valid_agent || expect_new_task(&map).is_none() {
                    assert_eq!(
                        o.code, BACKLOG_INVALID_ARGUMENT,
                        "create {body}: {}",
                        o.text
                    );
                } else {
                    assert!(o.ok(), "create {body}: {}", o.text);
                    check_task("create", &o);
                    self.take_created(agent, &map, &o.value);
                }
            }
            1 => {
                let n = self.input.byte() % 4;
                let bodies: Vec<String> = (0..n).map(|_| self.new_task_body()).collect();
                let text = format!("[{}]", bodies.join(","));
                let o = self.store.create_many(name, &c_buffer(text.as_bytes()));
                let maps: Vec<_> = bodies.iter().map(|b| parse_object(b)).collect();
                let valid = valid_agent && maps.iter().all(|m| expect_new_task(m).is_some());
                if !valid {
                    assert_eq!(o.code, BACKLOG_INVALID_ARGUMENT, "batch {text}: {}", o.text);
                } else {
                    assert!(o.ok(), "batch {text}: {}", o.text);
                    let got = check_task_list("create_tasks", &o, name);
                    assert_eq!(got.len(), maps.len());
                    for (map, task) in maps.iter().zip(&got) {
                        self.take_created(agent, map, task);
                    }
                }
            }
            2 => {
                let id = self.task_ref(agent);
                let o = self.store.get(name, &id);
                match self.expect_lookup(agent, &id) {
                    Err(code) => assert_eq!(o.code, code, "get {name} {id}: {}", o.text),
                    Ok(i) => {
                        check_task("get", &o);
                        assert_eq!(o.value, self.model.tasks[i].task, "get {id}");
                    }
                }
            }
            3 => self.update(agent),
            4 => {
                let id = self.task_ref(agent);
                let o = self.store.delete(name, &id);
                match self.expect_lookup(agent, &id) {
                    Err(code) => assert_eq!(o.code, code, "delete {name} {id}: {}", o.text),
                    Ok(i) => {
                        assert_eq!(o.text, format!(r#"{{"deleted":"{id}"}}"#));
                        self.model.tasks.remove(i);
                    }
                }
            }
            5 => {
                let q = object(&[
                    ("status", self.input.pick(&FILTER_STATUSES)),
                    ("limit", self.input.pick(&LIMITS)),
                    ("offset", self.input.pick(&OFFSETS)),
                ]);
                let o = self.store.list(name, Some(&c_buffer(q.as_bytes())));
                let map = parse_object(&q);
                match status_filter(&map) {
                    Ok(status) if valid_agent && counts_valid(&map) => {
                        assert!(o.ok(), "list {q}: {}", o.text);
                        let got = check_task_list("list", &o, name);
                        let all: Vec<Value> = self
                            .model
                            .ordered(Some(agent))
                            .into_iter()
                            .filter(|t| status.as_deref().is_none_or(|s| t.task["status"] == s))
                            .map(|t| t.task.clone())
                            .collect();
                        assert_eq!(o.value["total"], all.len(), "list {q}: total");
                        assert_eq!(got, page(&all, &map), "list {q}: page");
                    }
                    _ => assert_eq!(o.code, BACKLOG_INVALID_ARGUMENT, "list {q}: {}", o.text),
                }
            }
            6 => {
                let q = object(&[
                    ("status", self.input.pick(&FILTER_STATUSES)),
                    ("priority", self.input.pick(&FILTER_PRIORITIES)),
                    ("agent_id", self.input.pick(&FILTER_AGENTS)),
                    ("limit", self.input.pick(&LIMITS)),
                    ("offset", self.input.pick(&OFFSETS)),
                ]);
                let o = self.store.query(Some(&c_buffer(q.as_bytes())));
                let map = parse_object(&q);
                let priority = match map.get("priority") {
                    None | Some(Value::Null) => Ok(None),
                    Some(p) => int_in(p, 1..=10).map(Some).ok_or(()),
                };
                let agent_filter = match map.get("agent_id") {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(a)) if valid_agent_id(a) => Ok(Some(a.clone())),
                    Some(_) => Err(()),
                };
                match (status_filter(&map), priority, agent_filter) {
                    (Ok(status), Ok(priority), Ok(agent_filter)) if counts_valid(&map) => {
                        assert!(o.ok(), "query {q}: {}", o.text);
                        let got = check_query_result("query", &o);
                        let all: Vec<Value> = self
                            .model
                            .ordered(None)
                            .into_iter()
                            .filter(|t| status.as_deref().is_none_or(|s| t.task["status"] == s))
                            .filter(|t| priority.is_none_or(|p| t.task["priority"] == p))
                            .filter(|t| {
                                agent_filter.as_deref().is_none_or(|a| AGENTS[t.agent] == a)
                            })
                            .map(with_agent)
                            .collect();
                        assert_eq!(o.value["total"], all.len(), "query {q}: total");
                        assert_eq!(got, page(&all, &map), "query {q}: page");
                    }
                    _ => assert_eq!(o.code, BACKLOG_INVALID_ARGUMENT, "query {q}: {}", o.text),
                }
            }
            7 | 10 => {
                let o = self.store.summary(name);
                if valid_agent {
                    let s = check_summary("summary", &o);
                    assert_eq!(s, self.model.counts(agent), "summary of {name}");
                    if op == 10 {
                        let listed = self.store.list(name, None);
                        check_task_list("list", &listed, name);
                        assert_eq!(listed.value["total"], s[4], "summary and list disagree");
                    }
                } else {
                    assert_eq!(o.code, BACKLOG_INVALID_ARGUMENT, "{}", o.text);
                }
            }
            8 => {
                let o = self.store.claim(name);
                if !valid_agent {
                    assert_eq!(o.code, BACKLOG_INVALID_ARGUMENT, "{}", o.text);
                    return;
                }
                assert!(o.ok(), "claim {name}: {}", o.text);
                let first = self
                    .model
                    .ordered(Some(agent))
                    .into_iter()
                    .find(|t| t.task["status"] == "queued")
                    .map(|t| t.task["id"].clone());
                match first {
                    None => assert_eq!(o.text, "null", "claimed with nothing queued"),
                    Some(id) => {
                        check_task("claim", &o);
                        assert_eq!(o.value["id"], id, "claimed the wrong task");
                        let i = self.model.find(agent, id.as_str().unwrap()).unwrap();
                        let mut expected = self.model.tasks[i].task.clone();
                        assert_eq!(expected["status"], "queued", "claimed a task twice");
                        expected["status"] = "in_progress".into();
                        expected["started"] = NOW.into();
                        check_expected_task("claim", &o.value, &expected);
                        self.model.tasks[i].task = settle(&expected, &o.value);
                    }
                }
            }
            _ => {
                let prefix = self.input.pick(&PREFIXES);
                let o = self.store.set_prefix(name, prefix);
                let valid_prefix = prefix.len() <= 8
                    && prefix.starts_with(|c: char| c.is_ascii_uppercase())
                    && prefix
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
                if !valid_agent || !valid_prefix {
                    assert_eq!(
                        o.code, BACKLOG_INVALID_ARGUMENT,
                        "prefix {prefix}: {}",
                        o.text
                    );
                    return;
                }
                let a = &self.model.agents[agent];
                let expected = if a.prefix.as_deref() == Some(prefix) {
                    BACKLOG_OK
                } else if a.next > 1 || self.model.holder(prefix).is_some() {
                    // fixed since its first task, or held by another agent
                    BACKLOG_CONFLICT
                } else {
                    BACKLOG_OK
                };
                assert_eq!(o.code, expected, "set_prefix {name} {prefix}: {}", o.text);
                if o.ok() {
                    assert_eq!(o.value, json!({"agent_id": name, "prefix": prefix}));
                    self.model.agents[agent].prefix = Some(prefix.to_owned());
                }
            }
        }
    }

    /// The model's index of the task, or the code a lookup must give.
    fn expect_lookup(&self, agent: usize, id: &str) -> Result<usize, i32> {
        let well_formed = id.split_once('-').is_some_and(|(p, n)| {
            (1..=8).contains(&p.len())
                && p.starts_with(|c: char| c.is_ascii_uppercase())
                && p.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                && (3..=20).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_digit())
        });
        if agent >= 3 || !well_formed {
            return Err(BACKLOG_INVALID_ARGUMENT);
        }
        self.model.find(agent, id).ok_or(BACKLOG_NOT_FOUND)
    }

    fn update(&mut self, agent: usize) {
        let name = AGENTS[agent];
        let id = self.task_ref(agent);
        let patch = object(&[
            ("status", self.input.pick(&STATUSES_IN)),
            ("priority", self.input.pick(&PATCH_PRIORITIES)),
            ("title", self.input.pick(&PATCH_TITLES)),
            ("description", self.input.pick(&DESCRIPTIONS)),
            ("blocker", self.input.pick(&BLOCKERS)),
            ("result", self.input.pick(&RESULTS)),
        ]);
        let map = parse_object(&patch);
        let o = self.store.update(name, &id, &c_buffer(patch.as_bytes()));
        let what = format!("update {name} {id} {patch}");
        let expected = match self.expect_lookup(agent, &id) {
            Err(BACKLOG_NOT_FOUND) if !patch_is_valid(&map) => Err(BACKLOG_INVALID_ARGUMENT),
            Err(code) => Err(code),
            Ok(i) => expect_update(&self.model.tasks[i].task, &map).map(|t| (i, t)),
        };
        match expected {
            Err(code) => assert_eq!(o.code, code, "{what}: {}", o.text),
            Ok((i, task)) => {
                assert!(o.ok(), "{what}: {}", o.text);
                check_task("update", &o);
                check_expected_task(&what, &o.value, &task);
                self.model.tasks[i].task = settle(&task, &o.value);
            }
        }
    }

    /// The whole store equals the model.
    fn check_all(&self) {
        let o = self.store.query(None);
        let got = check_query_result("query", &o);
        let expected: Vec<Value> = self
            .model
            .ordered(None)
            .into_iter()
            .map(with_agent)
            .collect();
        assert_eq!(got, expected, "the store differs from the model");
        for (a, name) in AGENTS.iter().take(3).enumerate() {
            let s = check_summary("summary", &self.store.summary(name));
            assert_eq!(s, self.model.counts(a), "summary of {name}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut run = Run {
        store: Handle::memory(),
        model: Model::new(),
        input: Input { data, pos: 0 },
    };

    for _ in 0..64 {
        if run.input.done() {
            break;
        }
        run.step();
    }
    run.check_all();
});
