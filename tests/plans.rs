//! Plans (SPEC §13): random graphs of creates, edges, claims, completions, reopens and
//! deletes against a model — the ready queue, and the events each write records
//! (SPEC §14) — and waiting for a dependency to complete.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_backlog::{EventKind, EventQuery, LeaseTerms, NewTask, Page, Status, Store, TaskPatch};
use proptest::prelude::*;
use proptest::sample::Index;

const AGENTS: [&str; 2] = ["planner", "builder"];

#[derive(Debug, Clone)]
struct Node {
    id: String,
    agent: usize,
    priority: u8,
    status: Status,
    /// The IDs it depends on.
    deps: Vec<String>,
}

#[derive(Debug, Default)]
struct Model {
    /// Every task that exists, in creation order.
    nodes: Vec<Node>,
}

impl Model {
    fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn ready(&self, n: &Node) -> bool {
        n.status == Status::Queued
            && n.deps
                .iter()
                .all(|d| self.node(d).is_none_or(|d| d.status == Status::Complete))
    }

    /// The agent's ready tasks in claim order.
    fn ready_ids(&self, agent: usize) -> Vec<String> {
        let mut ready: Vec<(u8, usize, String)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.agent == agent && self.ready(n))
            .map(|(i, n)| (n.priority, i, n.id.clone()))
            .collect();
        ready.sort();
        ready.into_iter().map(|(_, _, id)| id).collect()
    }

    /// Whether `from` depends on `to`, directly or through others.
    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = vec![from.to_owned()];
        let mut stack = vec![from.to_owned()];
        while let Some(at) = stack.pop() {
            if at == to {
                return true;
            }
            for d in self.node(&at).map(|n| n.deps.clone()).unwrap_or_default() {
                if !seen.contains(&d) {
                    seen.push(d.clone());
                    stack.push(d);
                }
            }
        }
        false
    }

    fn pick(&self, i: &Index) -> Option<Node> {
        (!self.nodes.is_empty()).then(|| self.nodes[i.index(self.nodes.len())].clone())
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A batch for an agent: each item a priority, existing tasks and earlier items.
    Create(usize, Vec<(u8, Vec<Index>, Vec<Index>)>),
    Add(Index, Index),
    Remove(Index, Index),
    Claim(usize),
    /// Moves a task one step: queued → in_progress → complete → queued (a reopen).
    Step(Index),
    Delete(Index),
}

fn op() -> impl Strategy<Value = Op> {
    let item = (
        1u8..=3,
        prop::collection::vec(any::<Index>(), 0..3),
        prop::collection::vec(any::<Index>(), 0..2),
    );
    prop_oneof![
        2 => (0..AGENTS.len(), prop::collection::vec(item, 1..4)).prop_map(|(a, items)| Op::Create(a, items)),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Op::Add(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Op::Remove(a, b)),
        3 => (0..AGENTS.len()).prop_map(Op::Claim),
        3 => any::<Index>().prop_map(Op::Step),
        1 => any::<Index>().prop_map(Op::Delete),
    ]
}

/// Applies `op` to the store and the model; returns the events the write must have
/// recorded (SPEC §14), as (type, task) in order.
fn apply(store: &Store, model: &mut Model, op: &Op) -> Vec<(EventKind, String)> {
    let mut expected = Vec::new();
    match op {
        Op::Create(agent, items) => {
            let mut tasks = Vec::new();
            let mut deps_of = Vec::new();
            for (i, (priority, existing, earlier)) in items.iter().enumerate() {
                let mut task = NewTask::new("t").priority(i64::from(*priority));
                let mut deps = Vec::new();
                for e in existing {
                    if let Some(n) = model.pick(e) {
                        task = task.depends_on(n.id.clone());
                        deps.push(n.id);
                    }
                }
                for e in earlier.iter().filter(|_| i > 0) {
                    let j = e.index(i);
                    task = task.depends_on_item(j);
                    deps.push(format!("#{j}"));
                }
                tasks.push(task);
                deps_of.push(deps);
            }
            let created = store.create_tasks(AGENTS[*agent], tasks).unwrap();
            let ids: Vec<String> = created.tasks.iter().map(|t| t.id.clone()).collect();
            for ((task, deps), (priority, _, _)) in created.tasks.iter().zip(deps_of).zip(items) {
                let mut resolved: Vec<String> = Vec::new();
                for d in deps {
                    let id = match d.strip_prefix('#') {
                        Some(j) => ids[j.parse::<usize>().unwrap()].clone(),
                        None => d,
                    };
                    if !resolved.contains(&id) {
                        resolved.push(id);
                    }
                }
                expected.push((EventKind::Created, task.id.clone()));
                for _ in &resolved {
                    expected.push((EventKind::DependencyAdded, task.id.clone()));
                }
                model.nodes.push(Node {
                    id: task.id.clone(),
                    agent: *agent,
                    priority: *priority,
                    status: Status::Queued,
                    deps: resolved,
                });
            }
        }
        Op::Add(a, b) => {
            let (Some(task), Some(dep)) = (model.pick(a), model.pick(b)) else {
                return expected;
            };
            let result = store.add_dependency(AGENTS[task.agent], &task.id, &dep.id);
            if task.id == dep.id {
                assert_eq!(result.unwrap_err().code(), "invalid_argument");
            } else if task.deps.contains(&dep.id) {
                assert!(result.is_ok());
            } else if model.reaches(&dep.id, &task.id) {
                let err = result.unwrap_err();
                assert_eq!(err.code(), "conflict", "{err}");
                let cycle = format!("{} → {}", task.id, dep.id);
                assert!(err.to_string().contains(&cycle), "{err}");
            } else {
                result.unwrap();
                expected.push((EventKind::DependencyAdded, task.id.clone()));
                let n = model.nodes.iter_mut().find(|n| n.id == task.id).unwrap();
                n.deps.push(dep.id);
            }
        }
        Op::Remove(a, b) => {
            let (Some(task), Some(dep)) = (model.pick(a), model.pick(b)) else {
                return expected;
            };
            let result = store.remove_dependency(AGENTS[task.agent], &task.id, &dep.id);
            if task.id == dep.id {
                assert_eq!(result.unwrap_err().code(), "invalid_argument");
            } else {
                result.unwrap();
                if task.deps.contains(&dep.id) {
                    expected.push((EventKind::DependencyRemoved, task.id.clone()));
                }
                let n = model.nodes.iter_mut().find(|n| n.id == task.id).unwrap();
                n.deps.retain(|d| *d != dep.id);
            }
        }
        Op::Claim(agent) => {
            let first_ready = model.ready_ids(*agent).first().cloned();
            let claimed = store.claim_next(AGENTS[*agent]).unwrap().map(|t| t.id);
            assert_eq!(claimed, first_ready);
            if let Some(id) = claimed {
                expected.push((EventKind::Claimed, id.clone()));
                let n = model.nodes.iter_mut().find(|n| n.id == id).unwrap();
                n.status = Status::InProgress;
            }
        }
        Op::Step(i) => {
            let Some(task) = model.pick(i) else {
                return expected;
            };
            let next = match task.status {
                Status::Queued => Status::InProgress,
                Status::InProgress => Status::Complete,
                _ => Status::Queued,
            };
            store
                .update_task(AGENTS[task.agent], &task.id, TaskPatch::new().status(next))
                .unwrap();
            expected.push((EventKind::Updated, task.id.clone()));
            let n = model.nodes.iter_mut().find(|n| n.id == task.id).unwrap();
            n.status = next;
        }
        Op::Delete(i) => {
            let Some(task) = model.pick(i) else {
                return expected;
            };
            store.delete_task(AGENTS[task.agent], &task.id).unwrap();
            expected.push((EventKind::Deleted, task.id.clone()));
            model.nodes.retain(|n| n.id != task.id);
            for n in &mut model.nodes {
                n.deps.retain(|d| *d != task.id);
            }
        }
    }
    expected
}

fn check(store: &Store, model: &Model) {
    for (agent, name) in AGENTS.iter().enumerate() {
        let ready = store.ready_tasks(name, Page::new()).unwrap();
        let ids: Vec<String> = ready.tasks.iter().map(|t| t.id.clone()).collect();
        let expected = model.ready_ids(agent);
        assert_eq!(
            ready.total as usize,
            expected.len(),
            "{name}: the ready total"
        );
        assert_eq!(ids, expected, "{name}: the ready queue");
        let queued = model
            .nodes
            .iter()
            .filter(|n| n.agent == agent && n.status == Status::Queued)
            .count();
        assert_eq!(store.summary(name).unwrap().queued as usize, queued);
    }
    for n in &model.nodes {
        let graph = store.get_dependencies(AGENTS[n.agent], &n.id).unwrap();
        assert_eq!(graph.ready, model.ready(n), "{}: ready", n.id);
        let deps: Vec<&str> = graph.depends_on.iter().map(|r| r.id.as_str()).collect();
        // Creation order: the order of the model's nodes.
        let expected: Vec<&str> = model
            .nodes
            .iter()
            .filter(|m| n.deps.contains(&m.id))
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(deps, expected, "{}: depends_on", n.id);
        for r in &graph.depends_on {
            assert_eq!(Some(r.status), model.node(&r.id).map(|m| m.status));
        }
        let dependents: Vec<&str> = graph.dependents.iter().map(|r| r.id.as_str()).collect();
        let expected: Vec<&str> = model
            .nodes
            .iter()
            .filter(|m| m.deps.contains(&n.id))
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(dependents, expected, "{}: dependents", n.id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// ready_tasks, claim_next, summaries and get_dependencies agree with the model
    /// after every operation, and no edge that would close a cycle is ever admitted.
    #[test]
    fn random_plans_match_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let store = Store::open_in_memory().unwrap();
        let mut model = Model::default();
        let mut seen = 0;
        for op in &ops {
            let expected = apply(&store, &mut model, op);
            check(&store, &model);
            // Exactly the op's events, in order, and nothing else (SPEC §14).
            let page = store.events(EventQuery::new().after(seen).limit(1000)).unwrap();
            let recorded: Vec<(EventKind, String)> = page
                .events
                .iter()
                .map(|e| (e.kind, e.task_id.clone().unwrap_or_default()))
                .collect();
            prop_assert_eq!(&recorded, &expected, "{:?}", op);
            for (i, e) in page.events.iter().enumerate() {
                prop_assert_eq!(e.seq, seen + 1 + i as i64, "seq without a gap");
            }
            seen = page.next;
        }
    }
}

/// A worker waiting for the agent's next task is woken by the completion of the last
/// dependency of a queued task, from another thread, well before its timeout.
#[test]
fn completing_the_last_dependency_wakes_a_waiting_worker() {
    let dir = common::TempDir::new("plans-wake");
    let path = dir.file("plans.db");
    let store = Arc::new(Store::open(&path).unwrap());
    let plan = store
        .create_tasks(
            "writer",
            vec![
                NewTask::new("Get the launch date"),
                NewTask::new("Design the banner"),
                NewTask::new("Write the post")
                    .depends_on_item(0)
                    .depends_on_item(1),
            ],
        )
        .unwrap();
    let first = store.claim_next("writer").unwrap().unwrap();
    let second = store.claim_next("writer").unwrap().unwrap();
    let waiter = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let started = Instant::now();
            let claim = store
                .wait_for_task("writer", "w2", Duration::from_secs(30), LeaseTerms::new())
                .unwrap();
            (claim, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let other = Store::open(&path).unwrap();
    let done = TaskPatch::new().status(Status::Complete);
    other
        .update_task("writer", &first.id, done.clone())
        .unwrap();
    // One dependency left: the waiter keeps waiting.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!waiter.is_finished(), "woken with a dependency still open");
    other.update_task("writer", &second.id, done).unwrap();
    let (claim, waited) = waiter.join().unwrap();
    let claim = claim.expect("the post became ready");
    assert_eq!(claim.task.id, plan.tasks[2].id);
    assert!(waited < Duration::from_secs(20), "waited {waited:?}");
}
