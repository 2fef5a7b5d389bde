//! Random operation sequences against a simple in-memory model of the contract.

use agent_backlog::{ListQuery, NewTask, Status, Store, Task, TaskPatch, TaskQuery};
use proptest::prelude::*;
use Status::*;

const AGENTS: [(&str, &str); 3] = [
    ("marketing-lead", "MKT"),
    ("support-bot", "SUP"),
    ("supply-chain", "SUP"),
];

#[derive(Debug, Clone, PartialEq)]
struct View {
    id: String,
    title: String,
    priority: u8,
    status: Status,
    started: bool,
    completed: bool,
    result: Option<String>,
    blocker: Option<String>,
}

fn view(t: &Task) -> View {
    View {
        id: t.id.clone(),
        title: t.title.clone(),
        priority: t.priority,
        status: t.status,
        started: t.started.is_some(),
        completed: t.completed.is_some(),
        result: t.result.clone(),
        blocker: t.blocker.clone(),
    }
}

#[derive(Debug, Default)]
struct Model {
    /// (agent index, task) in creation order.
    tasks: Vec<(usize, View)>,
    prefixes: [Option<String>; 3],
    next: [u64; 3],
}

impl Model {
    fn prefix_for(&mut self, agent: usize) -> String {
        if let Some(p) = &self.prefixes[agent] {
            return p.clone();
        }
        let base = AGENTS[agent].1;
        let taken = |p: &str, m: &Model| m.prefixes.iter().any(|x| x.as_deref() == Some(p));
        let mut n = 1;
        let p = loop {
            let c = if n == 1 {
                base.to_string()
            } else {
                format!("{base}{n}")
            };
            if !taken(&c, self) {
                break c;
            }
            n += 1;
        };
        self.prefixes[agent] = Some(p.clone());
        p
    }

    fn create(&mut self, agent: usize, title: &str, priority: i64) -> Result<View, &'static str> {
        if title.trim().is_empty() || !(1..=10).contains(&priority) {
            return Err("invalid_argument");
        }
        let prefix = self.prefix_for(agent);
        self.next[agent] += 1;
        let v = View {
            id: format!("{prefix}-{:03}", self.next[agent]),
            title: title.trim().to_string(),
            priority: priority as u8,
            status: Queued,
            started: false,
            completed: false,
            result: None,
            blocker: None,
        };
        self.tasks.push((agent, v.clone()));
        Ok(v)
    }

    fn find(&mut self, agent: usize, id: &str) -> Option<&mut View> {
        self.tasks
            .iter_mut()
            .find(|(a, t)| *a == agent && t.id == id)
            .map(|(_, t)| t)
    }

    fn sorted(&self, keep: impl Fn(usize, &View) -> bool) -> Vec<(usize, View)> {
        let mut v: Vec<(usize, usize, View)> = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, (a, t))| keep(*a, t))
            .map(|(i, (a, t))| (i, *a, t.clone()))
            .collect();
        v.sort_by_key(|(i, _, t)| (t.priority, *i));
        v.into_iter().map(|(_, a, t)| (a, t)).collect()
    }

    fn update(&mut self, agent: usize, id: &str, p: &Patch) -> Result<View, &'static str> {
        if p.priority.is_some_and(|x| !(1..=10).contains(&x)) {
            return Err("invalid_argument");
        }
        if let Some(Some(b)) = &p.blocker {
            if b.trim().is_empty() {
                return Err("invalid_argument");
            }
        }
        let Some(t) = self.find(agent, id) else {
            return Err("not_found");
        };
        let from = t.status;
        let to = p.status.unwrap_or(from);
        let allowed = from == to
            || matches!(
                (from, to),
                (Queued, InProgress)
                    | (Queued, Blocked)
                    | (InProgress, _)
                    | (Blocked, Queued)
                    | (Blocked, InProgress)
                    | (Complete, Queued)
            );
        if !allowed {
            return Err("invalid_transition");
        }
        let mut n = t.clone();
        if from != to {
            match to {
                Queued => {
                    n.started = false;
                    n.completed = false;
                    n.result = None;
                    n.blocker = None;
                }
                InProgress => {
                    n.started = true;
                    n.blocker = None;
                }
                Complete => n.completed = true,
                Blocked => {}
            }
            n.status = to;
        }
        match &p.blocker {
            Some(Some(b)) if to == Blocked => n.blocker = Some(b.clone()),
            Some(Some(_)) => return Err("invalid_argument"),
            Some(None) if to == Blocked => return Err("invalid_argument"),
            _ => {}
        }
        if to == Blocked && n.blocker.is_none() {
            return Err("invalid_argument");
        }
        match &p.result {
            Some(Some(r)) if to == Complete => n.result = Some(r.clone()),
            Some(Some(_)) => return Err("invalid_argument"),
            Some(None) => n.result = None,
            None => {}
        }
        if let Some(x) = p.priority {
            n.priority = x as u8;
        }
        *t = n.clone();
        Ok(n)
    }
}

#[derive(Debug, Clone)]
struct Patch {
    status: Option<Status>,
    priority: Option<i64>,
    blocker: Option<Option<String>>,
    result: Option<Option<String>>,
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize, String, i64),
    Batch(usize, Vec<(String, i64)>),
    Claim(usize),
    Update(usize, u64, Patch),
    Delete(usize, u64),
    List(usize, Option<Status>, i64, i64),
    Query(Option<Status>, Option<i64>, Option<usize>),
    Summary(usize),
    SetPrefix(usize, &'static str),
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Queued),
        Just(InProgress),
        Just(Complete),
        Just(Blocked)
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("  ".to_string()),
        "[a-z]{1,6}",
        " [a-z]{1,3} "
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..3usize;
    let prio = prop_oneof![1..=10i64, 1..=10i64, 1..=10i64, Just(0), Just(11)];
    let patch = (
        proptest::option::of(status()),
        proptest::option::of(prio.clone()),
        proptest::option::of(proptest::option::of(text())),
        proptest::option::of(proptest::option::of(text())),
    )
        .prop_map(|(status, priority, blocker, result)| Patch {
            status,
            priority,
            blocker,
            result,
        });
    prop_oneof![
        4 => (agent.clone(), text(), prio.clone()).prop_map(|(a, t, p)| Op::Create(a, t, p)),
        1 => (agent.clone(), proptest::collection::vec((text(), prio), 0..4)).prop_map(|(a, v)| Op::Batch(a, v)),
        3 => agent.clone().prop_map(Op::Claim),
        6 => (agent.clone(), 1..6u64, patch).prop_map(|(a, n, p)| Op::Update(a, n, p)),
        1 => (agent.clone(), 1..6u64).prop_map(|(a, n)| Op::Delete(a, n)),
        2 => (agent.clone(), proptest::option::of(status()), -1..4i64, 0..3i64).prop_map(|(a, s, l, o)| Op::List(a, s, l, o)),
        2 => (proptest::option::of(status()), proptest::option::of(1..=10i64), proptest::option::of(agent.clone())).prop_map(|(s, p, a)| Op::Query(s, p, a)),
        1 => agent.clone().prop_map(Op::Summary),
        1 => (agent, prop_oneof![Just("MKT"), Just("SUP"), Just("SUP2"), Just("ZED")]).prop_map(|(a, p)| Op::SetPrefix(a, p)),
    ]
}

fn code<T>(r: &agent_backlog::Result<T>) -> Result<(), &'static str> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(e.code()),
    }
}

fn task_id(m: &Model, agent: usize, n: u64) -> String {
    let prefix = m.prefixes[agent]
        .clone()
        .unwrap_or_else(|| AGENTS[agent].1.to_string());
    format!("{prefix}-{n:03}")
}

fn run(ops: Vec<Op>) {
    let store = Store::open_in_memory().unwrap();
    let mut m = Model::default();
    for op in ops {
        match op.clone() {
            Op::Create(a, title, p) => {
                let got = store.create_task(AGENTS[a].0, NewTask::new(title.clone()).priority(p));
                let want = m.create(a, &title, p);
                assert_eq!(got.as_ref().map(view).map_err(|e| e.code()), want, "{op:?}");
            }
            Op::Batch(a, items) => {
                let tasks = items
                    .iter()
                    .map(|(t, p)| NewTask::new(t.clone()).priority(*p))
                    .collect();
                let got = store.create_tasks(AGENTS[a].0, tasks);
                let valid = items
                    .iter()
                    .all(|(t, p)| !t.trim().is_empty() && (1..=10).contains(p));
                if valid {
                    let want: Vec<View> = items
                        .iter()
                        .map(|(t, p)| m.create(a, t, *p).unwrap())
                        .collect();
                    assert_eq!(
                        got.unwrap().tasks.iter().map(view).collect::<Vec<_>>(),
                        want
                    );
                } else {
                    assert_eq!(code(&got), Err("invalid_argument"));
                }
            }
            Op::Claim(a) => {
                let got = store.claim_next(AGENTS[a].0).unwrap().map(|t| view(&t));
                let want = m
                    .sorted(|x, t| x == a && t.status == Queued)
                    .first()
                    .map(|(_, t)| t.id.clone());
                let want = want.map(|id| {
                    m.update(
                        a,
                        &id,
                        &Patch {
                            status: Some(InProgress),
                            priority: None,
                            blocker: None,
                            result: None,
                        },
                    )
                    .unwrap()
                });
                assert_eq!(got, want, "{op:?}");
            }
            Op::Update(a, n, p) => {
                let id = task_id(&m, a, n);
                let patch = TaskPatch {
                    status: p.status,
                    priority: p.priority,
                    blocker: p.blocker.clone(),
                    result: p.result.clone(),
                    ..TaskPatch::new()
                };
                let got = store.update_task(AGENTS[a].0, &id, patch);
                let want = m.update(a, &id, &p);
                assert_eq!(got.as_ref().map(view).map_err(|e| e.code()), want, "{op:?}");
            }
            Op::Delete(a, n) => {
                let id = task_id(&m, a, n);
                let got = store.delete_task(AGENTS[a].0, &id);
                let before = m.tasks.len();
                m.tasks.retain(|(x, t)| !(*x == a && t.id == id));
                let want = if m.tasks.len() < before {
                    Ok(())
                } else {
                    Err("not_found")
                };
                assert_eq!(code(&got), want, "{op:?}");
            }
            Op::List(a, s, limit, offset) => {
                let mut q = ListQuery::new().limit(limit).offset(offset);
                q.status = s;
                let got = store.list_tasks(AGENTS[a].0, q);
                if limit < 0 {
                    assert_eq!(code(&got), Err("invalid_argument"));
                    continue;
                }
                let all = m.sorted(|x, t| x == a && s.is_none_or(|s| t.status == s));
                let got = got.unwrap();
                assert_eq!(got.total as usize, all.len());
                let want: Vec<View> = all
                    .into_iter()
                    .skip(offset as usize)
                    .take(limit as usize)
                    .map(|(_, t)| t)
                    .collect();
                assert_eq!(
                    got.tasks.iter().map(view).collect::<Vec<_>>(),
                    want,
                    "{op:?}"
                );
            }
            Op::Query(s, p, a) => {
                let q = TaskQuery {
                    status: s,
                    priority: p,
                    agent_id: a.map(|a| AGENTS[a].0.to_string()),
                    ..TaskQuery::new()
                };
                let got = store.query_tasks(q).unwrap();
                let want: Vec<(String, View)> = m
                    .sorted(|x, t| {
                        s.is_none_or(|s| t.status == s)
                            && p.is_none_or(|p| t.priority as i64 == p)
                            && a.is_none_or(|a| a == x)
                    })
                    .into_iter()
                    .map(|(x, t)| (AGENTS[x].0.to_string(), t))
                    .collect();
                let got: Vec<(String, View)> = got
                    .tasks
                    .iter()
                    .map(|t| (t.agent_id.clone(), view(&t.task)))
                    .collect();
                assert_eq!(got, want, "{op:?}");
            }
            Op::Summary(a) => {
                let got = store.summary(AGENTS[a].0).unwrap();
                let count = |s: Status| {
                    m.tasks
                        .iter()
                        .filter(|(x, t)| *x == a && t.status == s)
                        .count() as u64
                };
                assert_eq!(
                    (
                        got.queued,
                        got.in_progress,
                        got.complete,
                        got.blocked,
                        got.total
                    ),
                    (
                        count(Queued),
                        count(InProgress),
                        count(Complete),
                        count(Blocked),
                        m.tasks.iter().filter(|(x, _)| *x == a).count() as u64
                    )
                );
            }
            Op::SetPrefix(a, prefix) => {
                let got = store.set_prefix(AGENTS[a].0, prefix);
                let want = if m.prefixes[a].as_deref() == Some(prefix) {
                    Ok(())
                } else if m.next[a] > 0 || m.prefixes.iter().any(|x| x.as_deref() == Some(prefix)) {
                    Err("conflict")
                } else {
                    m.prefixes[a] = Some(prefix.to_string());
                    Ok(())
                };
                assert_eq!(code(&got), want, "{op:?}");
            }
        }
    }
    // the store's invariants hold for every task at the end
    for t in store.query_tasks(TaskQuery::new()).unwrap().tasks {
        let t = t.task;
        assert_eq!(
            t.started.is_some(),
            matches!(t.status, InProgress | Complete)
                || (t.status == Blocked && t.started.is_some())
        );
        if let (Some(s), Some(c)) = (&t.started, &t.completed) {
            assert!(s <= c);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn the_store_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
