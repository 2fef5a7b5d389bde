//! The PostgreSQL backend's own promises (SPEC §16), beyond the conformance cases that
//! run on it: many connections claiming at once never share a task, the feed has no
//! gap or repeat under concurrent writers, counts and readiness stay exact, racing
//! idempotent creates create once, a wait wakes on another store's commit, leases
//! expire by the database's clock, and bad URLs, unreachable servers and foreign or
//! newer schemas are refused with the contract's errors.
//!
//! Each test uses fresh schemas of the test server (`AGENT_BACKLOG_TEST_PG`, which
//! `make test` sets); without it the tests say so and pass.

#[path = "common/pg.rs"]
mod pg;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use agent_backlog::{EventQuery, Finish, LeaseTerms, NewTask, Status, Store, TaskPatch};

/// A few stores on one fresh schema: each has its own pool, as separate processes on
/// separate hosts would.
fn stores(schemas: &pg::Schemas, n: usize) -> Vec<Arc<Store>> {
    let url = schemas.fresh();
    (0..n)
        .map(|_| Arc::new(Store::open(&url).expect("the store opens")))
        .collect()
}

#[test]
fn claims_from_many_connections_never_share_a_task() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "claims");
    let stores = stores(&schemas, 4);
    let tasks: Vec<NewTask> = (0..400)
        .map(|i| NewTask::new(format!("t{i}")).priority(1 + i % 10))
        .collect();
    stores[0].create_tasks("ops", tasks).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&stores[t % stores.len()]);
            thread::spawn(move || {
                let mut mine = Vec::new();
                while let Some(task) = store.claim_next("ops").unwrap() {
                    store
                        .update_task("ops", &task.id, TaskPatch::new().status(Status::Complete))
                        .unwrap();
                    mine.push(task.id);
                }
                mine
            })
        })
        .collect();
    let claimed: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(claimed.len(), 400, "every task claimed once");
    assert_eq!(unique.len(), 400, "no task claimed twice");
    let summary = stores[1].summary("ops").unwrap();
    assert_eq!((summary.complete, summary.total), (400, 400));
}

#[test]
fn the_feed_has_no_gap_and_follows_commit_order_under_concurrent_writers() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "feed");
    let stores = stores(&schemas, 4);
    let handles: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(w, store)| {
            let store = Arc::clone(store);
            thread::spawn(move || {
                for i in 0..40 {
                    let agent = format!("agent-{}", (w + i) % 3);
                    let task = store
                        .create_task(&agent, NewTask::new(format!("w{w}-{i}")))
                        .unwrap();
                    if i % 2 == 0 {
                        store
                            .update_task(&agent, &task.id, TaskPatch::new().priority(1))
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page = stores[0]
            .events(EventQuery {
                after: Some(after),
                limit: Some(1000),
                ..EventQuery::default()
            })
            .unwrap();
        if page.events.is_empty() {
            break;
        }
        seqs.extend(page.events.iter().map(|e| e.seq));
        after = page.next;
    }
    // 160 creates and 80 updates: one event each, seqs 1..=240 with no gap or repeat.
    assert_eq!(seqs, (1..=240).collect::<Vec<i64>>());
    assert_eq!(stores[2].last_event_seq().unwrap(), 240);
}

#[test]
fn counts_and_readiness_stay_exact_under_concurrent_writers() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "counts");
    let stores = stores(&schemas, 3);
    let first = stores[0].create_task("ops", NewTask::new("first")).unwrap();
    let handles: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(w, store)| {
            let store = Arc::clone(store);
            let first = first.id.clone();
            thread::spawn(move || {
                for i in 0..30 {
                    let task = store
                        .create_task(
                            "ops",
                            NewTask::new(format!("{w}-{i}"))
                                .priority(1 + (i % 3) as i64)
                                .depends_on(&first),
                        )
                        .unwrap();
                    match i % 5 {
                        0 => {
                            store.delete_task("ops", &task.id).unwrap();
                        }
                        1 => {
                            store
                                .update_task("ops", &task.id, TaskPatch::new().priority(9))
                                .unwrap();
                        }
                        2 => {
                            store
                                .update_task(
                                    "ops",
                                    &task.id,
                                    TaskPatch::new().status(Status::Blocked).blocker("waits"),
                                )
                                .unwrap();
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();
    // The dependency completes while its dependents are being created.
    stores[0]
        .update_task(
            "ops",
            &first.id,
            TaskPatch::new().status(Status::InProgress),
        )
        .unwrap();
    stores[0]
        .update_task("ops", &first.id, TaskPatch::new().status(Status::Complete))
        .unwrap();
    for h in handles {
        h.join().unwrap();
    }
    // Count the rows themselves, and compare with what the store keeps.
    let mut by_status: HashMap<Status, u64> = HashMap::new();
    let mut ready = 0;
    let mut offset = 0;
    loop {
        let page = stores[1]
            .list_tasks(
                "ops",
                agent_backlog::ListQuery::new().limit(100).offset(offset),
            )
            .unwrap();
        if page.tasks.is_empty() {
            break;
        }
        for task in &page.tasks {
            *by_status.entry(task.status).or_default() += 1;
            // Every dependent's one dependency is complete: each queued one is ready.
            if task.status == Status::Queued {
                ready += 1;
            }
        }
        offset += 100;
    }
    let summary = stores[2].summary("ops").unwrap();
    assert_eq!(
        summary.queued,
        by_status.get(&Status::Queued).copied().unwrap_or(0)
    );
    assert_eq!(
        summary.complete,
        by_status.get(&Status::Complete).copied().unwrap_or(0)
    );
    assert_eq!(
        summary.blocked,
        by_status.get(&Status::Blocked).copied().unwrap_or(0)
    );
    assert_eq!(summary.total, 1 + 3 * 30 - 3 * 6);
    let ready_page = stores[0]
        .ready_tasks("ops", agent_backlog::Page::default())
        .unwrap();
    assert_eq!(ready_page.tasks.len() as u64, ready);
    assert_eq!(ready_page.total, ready);
}

#[test]
fn racing_idempotent_creates_create_once() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "keys");
    let stores = stores(&schemas, 6);
    let handles: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = Arc::clone(store);
            thread::spawn(move || {
                store
                    .create_task_idempotent("ops", "deploy-42", NewTask::new("Deploy"))
                    .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ids: HashSet<&str> = results.iter().map(|r| r.value.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "one task for one key: {ids:?}");
    assert_eq!(results.iter().filter(|r| !r.replayed).count(), 1);
    assert_eq!(stores[0].summary("ops").unwrap().total, 1);
}

#[test]
fn a_wait_wakes_on_a_commit_of_another_store() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "wait");
    let stores = stores(&schemas, 2);
    let producer = Arc::clone(&stores[1]);
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        producer
            .create_task("ops", NewTask::new("late work"))
            .unwrap();
    });
    let claim = stores[0]
        .wait_for_task("ops", "w1", Duration::from_secs(30), LeaseTerms::new())
        .unwrap()
        .expect("the wait claims the task created by the other store");
    assert_eq!(claim.task.title, "late work");
    t.join().unwrap();
    // Nothing ready: a short wait times out with nothing.
    assert!(stores[0]
        .wait_for_task("ops", "w1", Duration::from_millis(200), LeaseTerms::new())
        .unwrap()
        .is_none());
    // An expiry is a task becoming ready too: the wait sleeps until the lease's end
    // by the database's clock, then claims the task again.
    stores[1]
        .create_task("ops", NewTask::new("stalls"))
        .unwrap();
    let stalled = stores[1]
        .claim_lease("ops", "w0", LeaseTerms::new().lease_seconds(1))
        .unwrap()
        .unwrap();
    let again = stores[0]
        .wait_for_task("ops", "w1", Duration::from_secs(30), LeaseTerms::new())
        .unwrap()
        .expect("the wait claims the task whose lease expired");
    assert_eq!(again.task.id, stalled.task.id);
    assert_eq!(again.lease.attempt, 2);
}

#[test]
fn leases_expire_by_the_database_clock_and_a_late_finish_is_lost() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "leases");
    let stores = stores(&schemas, 2);
    stores[0].create_task("ops", NewTask::new("slow")).unwrap();
    let first = stores[0]
        .claim_lease("ops", "w1", LeaseTerms::new().lease_seconds(1))
        .unwrap()
        .unwrap();
    assert!(stores[1]
        .claim_lease("ops", "w2", LeaseTerms::new())
        .unwrap()
        .is_none());
    // A task queued meanwhile, of a lower priority: the claim that requeues the expired
    // lease first finds this one, and must search again and take the requeued task.
    let later = stores[0]
        .create_task("ops", NewTask::new("later").priority(9))
        .unwrap();
    thread::sleep(Duration::from_millis(1300));
    let second = stores[1]
        .claim_lease("ops", "w2", LeaseTerms::new())
        .unwrap()
        .expect("the expired lease's task is claimed again");
    assert_eq!(second.task.id, first.task.id);
    assert_eq!(second.lease.attempt, 2);
    // The row that the claim found first and did not take is free again.
    let third = stores[0]
        .claim_lease("ops", "w3", LeaseTerms::new())
        .unwrap()
        .expect("the lower-priority task is still claimable");
    assert_eq!(third.task.id, later.id);
    let late = stores[0]
        .finish_lease(
            &first.lease.token,
            Finish {
                status: Status::Complete,
                result: Some("late".into()),
                blocker: None,
            },
        )
        .unwrap_err();
    assert_eq!(late.code(), "lease_lost");
    let done = stores[1]
        .finish_lease(
            &second.lease.token,
            Finish {
                status: Status::Complete,
                result: Some("on time".into()),
                blocker: None,
            },
        )
        .unwrap();
    assert_eq!(done.result.as_deref(), Some("on time"));
}

/// Runs each statement and asserts that the schema refuses it with a CHECK violation.
fn assert_refused_by_the_schema(client: &mut postgres::Client, statements: &[String]) {
    for sql in statements {
        let err = client.batch_execute(sql).expect_err(sql);
        assert_eq!(
            err.code(),
            Some(&postgres::error::SqlState::CHECK_VIOLATION),
            "{sql}: {err}"
        );
    }
}

#[test]
fn the_schema_refuses_impossible_tasks_and_leases() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "checks");
    let (store_url, schema) = schemas.fresh_named();
    let store = Store::open(&store_url).unwrap();
    store.create_task("ops", NewTask::new("ip")).unwrap();
    let leased = store
        .claim_lease("ops", "w", LeaseTerms::new())
        .unwrap()
        .unwrap()
        .task
        .id;
    let queued = store.create_task("ops", NewTask::new("q")).unwrap().id;
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("SET search_path = \"{schema}\""))
        .unwrap();
    let before = store.get_task("ops", &queued).unwrap();
    let on = |id: &str, set: &str| format!("UPDATE tasks SET {set} WHERE id = '{id}'");
    assert_refused_by_the_schema(
        &mut client,
        &[
            // The status invariant (SPEC §4).
            on(&queued, "status = 'complete'"),
            on(&queued, "status = 'in_progress'"),
            on(&queued, "status = 'blocked'"),
            on(&queued, "status = 'done'"),
            on(&queued, "started = '2026-01-01T00:00:00Z'"),
            on(&leased, "result = 'r'"),
            on(&leased, "started = NULL, lease_expires = NULL"),
            on(
                &leased,
                "status = 'complete', completed = '2019-01-01T00:00:00Z', lease_expires = NULL",
            ),
            on(&leased, "status = 'blocked', lease_expires = NULL"),
            // The columns' lengths and ranges.
            on(&queued, "title = ''"),
            on(&queued, "title = repeat('t', 501)"),
            on(&queued, "description = repeat('d', 65537)"),
            on(&queued, "priority = 11"),
            on(&queued, "priority = 0"),
            on(&queued, "fence = -1"),
            on(&queued, "attempts = -1"),
            on(&queued, "unmet = -1"),
            // A lease only on an in_progress task, whole (SPEC §10).
            on(
                &queued,
                "fence = 1, attempts = 1, lease_token = 't', lease_worker = 'w', \
                 lease_max_attempts = 3, lease_ms = 1000, lease_granted = 0, lease_expires = 1000",
            ),
            on(&leased, "lease_token = NULL"),
            on(&leased, "lease_expires = lease_granted - 1"),
            on(&leased, "lease_ms = 999"),
            on(&leased, "lease_max_attempts = 1001"),
            on(&leased, "lease_worker = repeat('w', 129)"),
            on(&leased, "fence = 0"),
        ],
    );
    assert_eq!(store.get_task("ops", &queued).unwrap(), before);
    // What the rules allow still passes: a blocked task keeps when it was started.
    client
        .batch_execute(&on(
            &leased,
            "status = 'blocked', blocker = 'b', lease_expires = NULL",
        ))
        .unwrap();
}

#[test]
fn a_newer_or_foreign_schema_is_refused_untouched() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "schema");
    let (newer, schema) = schemas.fresh_named();
    Store::open(&newer).unwrap().close().unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "UPDATE \"{schema}\".agent_backlog_version SET version = 99"
        ))
        .unwrap();
    let err = Store::open(&newer)
        .err()
        .expect("a newer schema is refused");
    assert_eq!(err.code(), "storage");
    assert!(err.to_string().contains("newer"), "{err}");
    let version: i64 = client
        .query_one(
            &format!("SELECT version FROM \"{schema}\".agent_backlog_version"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, 99, "nothing was changed");

    let (foreign, name) = schemas.fresh_named();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{name}\"; CREATE TABLE \"{name}\".tasks (x int)"
        ))
        .unwrap();
    let err = Store::open(&foreign)
        .err()
        .expect("another application's tasks table is refused");
    assert_eq!(err.code(), "storage");
    assert!(err.to_string().contains("not agent-backlog's"), "{err}");
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "nothing was created beside it");
}

/// A step of a worker's loop: the finished task and its status, and the next task
/// claimed with its attempt and fence.
type Step = (String, Status, Option<(String, u32, u64)>);

/// A worker's loop through `finish_and_claim` where the finish changes what the claim
/// finds: a finish that makes a dependent ready, a release that puts the task back in
/// the queue, and another worker's lease that expired meanwhile. Run on a file and on
/// the server: both give the same steps.
#[test]
fn finish_and_claim_takes_what_the_finish_made_ready_as_on_sqlite() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "fac");
    let run = |store: &Store| -> Vec<Step> {
        let a = store.create_task("ops", NewTask::new("a")).unwrap();
        store.create_task("ops", NewTask::new("b")).unwrap();
        store
            .create_task("ops", NewTask::new("c").priority(1).depends_on(&a.id))
            .unwrap();
        store
            .create_task("ops", NewTask::new("d").priority(9))
            .unwrap();
        let mut token = store
            .claim_lease("ops", "w1", LeaseTerms::new())
            .unwrap()
            .unwrap()
            .lease
            .token;
        let mut steps = Vec::new();
        let mut step = |token: &str, finish: Finish| {
            let step = store
                .finish_and_claim(token, finish, LeaseTerms::new())
                .unwrap();
            let next = step
                .next
                .as_ref()
                .map(|c| (c.task.id.clone(), c.lease.attempt, c.lease.fence));
            steps.push((step.finished.id.clone(), step.finished.status, next));
            step.next.map(|c| c.lease.token).unwrap_or_default()
        };
        // Completing a makes c ready, and c comes first.
        token = step(&token, Finish::complete());
        // A release puts c back in the queue, first again: it is claimed again.
        token = step(&token, Finish::release());
        // Another worker's lease on b expires; the finish of c requeues it, and b
        // (priority 5) comes before d (priority 9).
        let other = store
            .claim_lease("ops", "w2", LeaseTerms::new().lease_seconds(1))
            .unwrap()
            .unwrap();
        assert_eq!(other.task.title, "b");
        thread::sleep(Duration::from_millis(1_150));
        token = step(&token, Finish::complete());
        step(&token, Finish::complete());
        steps
    };
    let on_file = run(&Store::open_in_memory().unwrap());
    let on_server = run(&Store::open(schemas.fresh()).unwrap());
    let id = |n: u32| format!("OPS-00{n}");
    assert_eq!(
        on_file,
        vec![
            (id(1), Status::Complete, Some((id(3), 1, 1))),
            (id(3), Status::Queued, Some((id(3), 2, 2))),
            (id(3), Status::Complete, Some((id(2), 2, 3))),
            (id(2), Status::Complete, Some((id(4), 1, 1))),
        ]
    );
    assert_eq!(on_server, on_file);
}

#[test]
fn a_version_1_schema_keeps_its_counts_in_shards_after_migrating() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "v1");
    let (v1, schema) = schemas.fresh_named();
    // A store at version 1, as a build before the shards left it: tasks made by hand,
    // counted as that build counted them, one claimed and one finished through its
    // triggers.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{schema}\"; SET search_path = \"{schema}\";
             CREATE TABLE agent_backlog_version (
                 one integer NOT NULL PRIMARY KEY CHECK (one = 1), version bigint NOT NULL);
             INSERT INTO agent_backlog_version VALUES (1, 1);
             {v1_sql}
             INSERT INTO agents (agent_id, prefix, next_number) VALUES ('ops', 'OPS', 5);
             INSERT INTO tasks (id, agent_id, title, priority, created) VALUES
                 ('OPS-001', 'ops', 'a', 2, '2026-01-01T00:00:00Z'),
                 ('OPS-002', 'ops', 'b', 2, '2026-01-01T00:00:00Z'),
                 ('OPS-003', 'ops', 'c', 2, '2026-01-01T00:00:00Z'),
                 ('OPS-004', 'ops', 'd', 7, '2026-01-01T00:00:00Z');
             INSERT INTO counts (agent_id, priority, queued) VALUES ('ops', 2, 3), ('ops', 7, 1);
             UPDATE tasks SET status = 'in_progress', started = created WHERE id <> 'OPS-001';
             UPDATE tasks SET status = 'complete', completed = created WHERE id = 'OPS-004';
             INSERT INTO events (seq, at, agent_id, task_id, type, actor, data) VALUES
                 (1, 0, 'ops', 'OPS-009', 'created', NULL, '{{\"title\":\"e\",\"priority\":5}}'),
                 (2, 0, 'ops', 'OPS-009', 'deleted', NULL, '{{}}');
             UPDATE feed SET seq = 2;",
            v1_sql = include_str!("../src/backend/postgres/migrations/0001_schema.sql"),
        ))
        .unwrap();
    let store = Store::open(&v1).expect("a version 1 store opens and migrates");
    let summary = store.summary("ops").unwrap();
    assert_eq!(
        (summary.queued, summary.in_progress, summary.complete),
        (1, 2, 1)
    );
    // Writes after the migration count in the session's shard; the sums stay exact.
    let claimed = store.claim_next("ops").unwrap().expect("OPS-001 is queued");
    assert_eq!(claimed.id, "OPS-001");
    store
        .update_task("ops", "OPS-002", TaskPatch::new().status(Status::Complete))
        .unwrap();
    store
        .update_task("ops", "OPS-003", TaskPatch::new().priority(9))
        .unwrap();
    let summary = store.summary("ops").unwrap();
    assert_eq!(
        (summary.queued, summary.in_progress, summary.complete),
        (0, 2, 2)
    );
    let complete = store
        .list_tasks(
            "ops",
            agent_backlog::ListQuery::new().status(Status::Complete),
        )
        .unwrap();
    assert_eq!(complete.total, 2);
    assert_eq!(
        store
            .list_agents(agent_backlog::Page::default())
            .unwrap()
            .agents[0]
            .total,
        4
    );
    let version: i64 = client
        .query_one("SELECT version FROM agent_backlog_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 5, "migrated to the latest version");
    // A task deleted before version 5 is remembered from its events: once they are
    // pruned, its history is empty, not `not_found`.
    store.prune_events(1_000).unwrap();
    let history = store.task_history("ops", "OPS-009").unwrap();
    assert!(history.events.is_empty(), "{history:?}");
    assert_eq!(
        store.task_history("ops", "OPS-010").unwrap_err().code(),
        "not_found"
    );
    // The tasks' rules hold after the migration too.
    assert_refused_by_the_schema(
        &mut client,
        &[format!(
            "UPDATE \"{schema}\".tasks SET status = 'complete' WHERE id = 'OPS-001'"
        )],
    );
}

#[test]
fn bad_urls_and_unreachable_servers_are_told_apart() {
    let err = Store::open("postgresql://u@127.0.0.1:5432/db?pool_size=0")
        .err()
        .unwrap();
    assert_eq!(err.code(), "invalid_argument");
    assert!(err.to_string().contains("pool_size"), "{err}");
    let err = Store::open("postgresql://u@127.0.0.1:5432/db?sslmode=sometimes")
        .err()
        .unwrap();
    assert_eq!(err.code(), "invalid_argument");
    assert!(err.to_string().contains("option `sslmode`"), "{err}");
    let err = Store::open("postgresql://u@127.0.0.1:5432/db?gssencmode=disable")
        .err()
        .unwrap();
    assert_eq!(err.code(), "invalid_argument");
    assert!(
        err.to_string().contains("unknown option `gssencmode`"),
        "{err}"
    );
    // Port 1 on loopback: nothing listens there.
    let err = Store::open("postgres://u:secret@127.0.0.1:1/db")
        .err()
        .unwrap();
    assert_eq!(err.code(), "storage");
    let message = err.to_string();
    assert!(
        message.contains("cannot connect to PostgreSQL"),
        "{message}"
    );
    assert!(
        !message.contains("secret"),
        "the password is not shown: {message}"
    );
}

#[test]
fn any_text_reaches_the_feed_as_written() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "text");
    let store = Store::open(schemas.fresh()).unwrap();
    let title = r#"it's a \'quoted\' $$ title'); DROP TABLE events; -- ✓ "x" \n"#;
    let task = store.create_task("obrien", NewTask::new(title)).unwrap();
    let actor = store.with_actor(Some("bob's bot")).unwrap();
    actor
        .update_task(
            "obrien",
            &task.id,
            TaskPatch::new().description("back\\slash"),
        )
        .unwrap();
    let history = store.task_history("obrien", &task.id).unwrap();
    assert_eq!(history.events.len(), 2);
    assert_eq!(history.events[0].data["title"], title.trim());
    assert_eq!(history.events[0].agent_id, "obrien");
    assert_eq!(history.events[1].actor.as_deref(), Some("bob's bot"));
    assert_eq!(
        store.get_task("obrien", &task.id).unwrap().title,
        title.trim()
    );
    // A batch's events are too many values to prepare and are written out in the
    // statement: values that look like its placeholders stay as written.
    let titles: Vec<String> = (0..20)
        .map(|i| format!("costs ${i} and '$1' {title}"))
        .collect();
    let batch: Vec<NewTask> = titles.iter().map(NewTask::new).collect();
    let created = store.create_tasks("obrien", batch).unwrap();
    for (task, title) in created.tasks.iter().zip(&titles) {
        let history = store.task_history("obrien", &task.id).unwrap();
        assert_eq!(history.events[0].data["title"], title.trim());
    }
}

/// The `application_name`s of the server's sessions that use TLS, and those that do not.
fn encrypted_sessions(url: &str, name: &str) -> Vec<bool> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
             WHERE a.application_name = $1",
            &[&name],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn tls_as_sslmode_says_with_the_certificate_checked_when_asked() {
    let Some(url) = pg::url() else { return };
    let Some(ca) = std::env::var("AGENT_BACKLOG_TEST_PG_CA")
        .ok()
        .filter(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("no certificate of the test server (AGENT_BACKLOG_TEST_PG_CA): TLS untested");
        return;
    };
    let schemas = pg::Schemas::new(&url, "tls");
    let plain = schemas.fresh();
    // require: encrypted, the certificate not checked (as libpq's require).
    let store = Store::open(format!(
        "{plain}&sslmode=require&application_name=tls-require"
    ))
    .expect("require opens on a server with a self-signed certificate");
    store.create_task("ops", NewTask::new("over TLS")).unwrap();
    let sessions = encrypted_sessions(&url, "tls-require");
    assert!(
        !sessions.is_empty() && sessions.iter().all(|&e| e),
        "{sessions:?}"
    );
    store.close().unwrap();
    // verify-full with the server's certificate trusted: encrypted and checked.
    let store = Store::open(format!(
        "{plain}&sslmode=verify-full&sslrootcert={ca}&application_name=tls-verified"
    ))
    .expect("verify-full opens when the certificate is trusted");
    assert_eq!(store.summary("ops").unwrap().total, 1);
    let sessions = encrypted_sessions(&url, "tls-verified");
    assert!(
        !sessions.is_empty() && sessions.iter().all(|&e| e),
        "{sessions:?}"
    );
    store.close().unwrap();
    // verify-full without it: the self-signed certificate is refused, no store.
    let err = Store::open(format!("{plain}&sslmode=verify-full"))
        .err()
        .expect("an untrusted certificate is refused");
    assert_eq!(err.code(), "storage");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    // A certificate file that does not exist is named.
    let err = Store::open(format!(
        "{plain}&sslmode=require&sslrootcert=/nonexistent.pem"
    ))
    .err()
    .unwrap();
    assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
}

#[test]
fn a_chosen_prefix_racing_a_new_agents_derived_one_never_fails() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "prefix");
    let stores = stores(&schemas, 2);
    for round in 0..20 {
        // `ops-{round}` derives OPS (or its next candidate); `chooser-{round}` asks for
        // that same prefix at the same moment.
        let creator = Arc::clone(&stores[0]);
        let chooser = Arc::clone(&stores[1]);
        let wanted = if round == 0 {
            "OPS".to_owned()
        } else {
            format!("OPS{}", round + 1)
        };
        let t =
            thread::spawn(move || creator.create_task(&format!("ops-{round}"), NewTask::new("x")));
        let chosen = chooser.set_prefix(&format!("chooser-{round}"), &wanted);
        let created = t.join().unwrap().expect("the new agent's create succeeds");
        match chosen {
            Ok(set) => assert_ne!(created.id.split('-').next(), Some(set.prefix.as_str())),
            Err(e) => assert_eq!(e.code(), "conflict", "{e}"),
        }
    }
}

/// Makes the next update of a task abort as a conflict (the trigger of
/// [`a_write_aborted_as_a_conflict_runs_again_with_all_it_was_given`]).
fn conflict_at_next_update(client: &mut postgres::Client) {
    client
        .batch_execute("SELECT setval('conflicts', 1, false)")
        .unwrap();
}

/// Asserts that the conflict was raised and an update ran after it.
fn assert_ran_again(client: &mut postgres::Client) {
    let updates: i64 = client
        .query_one("SELECT last_value FROM conflicts", &[])
        .unwrap()
        .get(0);
    assert!(updates >= 2, "no update ran after the conflict ({updates})");
}

/// A write that PostgreSQL aborts as a conflict (a deadlock or a serialization failure)
/// runs again from the start, and the second run stores everything the call was given:
/// the result of a finish, the blocker of a block, a new title and description. A
/// trigger made for the test aborts the first update of a task after each reset of
/// its sequence, as the server would abort the loser of a deadlock.
#[test]
fn a_write_aborted_as_a_conflict_runs_again_with_all_it_was_given() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "retry");
    let (store_url, schema) = schemas.fresh_named();
    let store = Store::open(&store_url).unwrap();
    let ids: Vec<String> = [
        "finished",
        "finished then next",
        "next",
        "returned",
        "updated",
    ]
    .into_iter()
    .map(|title| store.create_task("ops", NewTask::new(title)).unwrap().id)
    .collect();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "SET search_path = \"{schema}\";
             CREATE SEQUENCE conflicts;
             CREATE FUNCTION conflict_once() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF nextval('conflicts') = 1 THEN
                     RAISE EXCEPTION 'a conflict made by the test'
                         USING ERRCODE = 'serialization_failure';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER conflict_once BEFORE UPDATE ON tasks
                 FOR EACH ROW EXECUTE FUNCTION conflict_once();"
        ))
        .unwrap();
    let complete = |result: &str| Finish {
        status: Status::Complete,
        result: Some(result.into()),
        blocker: None,
    };
    let claim = || {
        store
            .claim_lease("ops", "w", LeaseTerms::new())
            .unwrap()
            .unwrap()
    };

    let first = claim();
    conflict_at_next_update(&mut client);
    let done = store
        .finish_lease(&first.lease.token, complete("the result"))
        .unwrap();
    assert_ran_again(&mut client);
    assert_eq!(done.result.as_deref(), Some("the result"));

    let second = claim();
    conflict_at_next_update(&mut client);
    let handed_on = store
        .finish_and_claim(
            &second.lease.token,
            complete("the second result"),
            LeaseTerms::new(),
        )
        .unwrap();
    assert_ran_again(&mut client);
    assert_eq!(
        handed_on.finished.result.as_deref(),
        Some("the second result")
    );
    let next = handed_on.next.expect("the next task is claimed");
    assert_eq!(next.task.id, ids[2]);

    conflict_at_next_update(&mut client);
    let blocked = store
        .finish_lease(
            &next.lease.token,
            Finish {
                status: Status::Blocked,
                result: None,
                blocker: Some("waits for a person".into()),
            },
        )
        .unwrap();
    assert_ran_again(&mut client);
    assert_eq!(blocked.blocker.as_deref(), Some("waits for a person"));

    let fourth = claim();
    assert_eq!(fourth.task.id, ids[3]);
    conflict_at_next_update(&mut client);
    let returned = store.return_lease(&fourth.lease.token).unwrap();
    assert_ran_again(&mut client);
    assert_eq!(returned.status, Status::Queued);

    conflict_at_next_update(&mut client);
    let changed = store
        .update_task(
            "ops",
            &ids[4],
            TaskPatch::new()
                .title("renamed")
                .description("a new description")
                .status(Status::Blocked)
                .blocker("on hold"),
        )
        .unwrap();
    assert_ran_again(&mut client);
    assert_eq!(changed.title, "renamed");
    assert_eq!(changed.description.as_deref(), Some("a new description"));
    assert_eq!(changed.blocker.as_deref(), Some("on hold"));

    // What the calls stored is what they returned.
    for task in [&done, &handed_on.finished, &blocked, &returned, &changed] {
        assert_eq!(&store.get_task("ops", &task.id).unwrap(), task);
    }
}

/// The URL of database `name` on the server of `url`.
fn url_of_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let server = base.rsplit_once('/').expect("a URL names its database").0;
    format!("{server}/{name}{query}")
}

/// `list_agents` gives agents by agent_id byte by byte on every database, as on a file:
/// here on a database whose collation is a language's (ICU `en-US`, which ignores case
/// and skips `-` at first), where the same calls list the same pages as SQLite's.
#[test]
fn agents_are_listed_in_the_same_order_whatever_the_databases_collation() {
    let Some(url) = pg::url() else { return };
    let name = format!("t_collation_{}", std::process::id());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0
                 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
        ))
        .unwrap();
    let database_url = url_of_database(&url, &name);
    let mut client = postgres::Client::connect(&database_url, postgres::NoTls).unwrap();
    let language_order: bool = client
        .query_one("SELECT 'alpha' < 'Zeta'", &[])
        .unwrap()
        .get(0);
    assert!(language_order, "the database sorts as English does");

    let on_server = Store::open(&database_url).unwrap();
    let on_file = Store::open(":memory:").unwrap();
    for store in [&on_server, &on_file] {
        for agent in ["alpha", "Zeta", "ops-b", "opsa", "Beta", "ops_c"] {
            store.create_task(agent, NewTask::new("t")).unwrap();
        }
    }
    let every = agent_backlog::Page::new();
    let listed = on_server.list_agents(every).unwrap();
    let ids: Vec<&str> = listed.agents.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(ids, ["Beta", "Zeta", "alpha", "ops-b", "ops_c", "opsa"]);
    assert_eq!(listed, on_file.list_agents(every).unwrap());
    let page = agent_backlog::Page {
        limit: Some(2),
        offset: Some(3),
    };
    assert_eq!(
        on_server.list_agents(page).unwrap(),
        on_file.list_agents(page).unwrap()
    );

    drop(on_server);
    drop(client);
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();
}

/// A server that ends the store's sessions (as a restart does: "terminating connection
/// due to administrator command") costs no call an error: the call that finds its
/// connection gone runs again on a new one, and the other idle connections, from
/// before, are not handed out again.
#[test]
fn calls_carry_on_when_the_server_ends_every_session() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "ended");
    let name = format!("ended_{}", std::process::id());
    let store_url = format!("{}&pool_size=4&application_name={name}", schemas.fresh());
    let store = Arc::new(Store::open(&store_url).unwrap());
    store.create_task("ops", NewTask::new("first")).unwrap();
    // Several connections open and idle.
    thread::scope(|scope| {
        for _ in 0..4 {
            let store = Arc::clone(&store);
            scope.spawn(move || {
                for _ in 0..20 {
                    store.summary("ops").unwrap();
                }
            });
        }
    });
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    for round in 0..2 {
        let ended: i64 = admin
            .query_one(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = $1) t",
                &[&name],
            )
            .unwrap()
            .get(0);
        assert!(ended >= 1, "round {round}: no session of the store to end");
        // Reads, a snapshot read and writes, each on a connection from before.
        let summary = store.summary("ops").unwrap();
        assert_eq!(summary.total, 1 + round);
        store
            .list_tasks("ops", agent_backlog::ListQuery::new())
            .unwrap();
        store
            .create_task("ops", NewTask::new(format!("after {round}")))
            .unwrap();
        store.claim_next("ops").unwrap().expect("a task is queued");
    }
}

/// The URL's TLS options are read as libpq reads them: a Unix socket is never
/// encrypted whatever `sslmode` says, `sslmode=disable` ignores `sslrootcert`, and
/// `sslmode=allow` connects (asking for TLS first, as `prefer`).
#[test]
fn tls_options_are_read_as_libpq_reads_them() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "tlsopts");
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let sockets: String = admin
        .query_one("SELECT current_setting('unix_socket_directories')", &[])
        .unwrap()
        .get(0);
    let port: String = admin
        .query_one("SELECT current_setting('port')", &[])
        .unwrap()
        .get(0);
    let socket = sockets.split(',').next().unwrap().trim().to_owned();
    let fresh = schemas.fresh();
    let query = fresh.split_once('?').unwrap().1;
    let user = url.split("://").nth(1).unwrap().split('@').next().unwrap();
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let over_socket = format!(
        "postgresql://{user}@/{database}?host={socket}&port={port}&sslmode=require&{query}"
    );
    let store = Store::open(&over_socket).expect("sslmode=require over a Unix socket");
    store
        .create_task("ops", NewTask::new("over the socket"))
        .unwrap();
    let base = fresh.clone();
    for extra in [
        "sslmode=disable&sslrootcert=/nonexistent/ca.pem",
        "sslmode=allow",
    ] {
        let store = Store::open(format!("{base}&{extra}")).expect(extra);
        assert_eq!(store.summary("ops").unwrap().total, 1, "{extra}");
    }
}

/// A store on `url` (whose `pool_size` the caller sets) with this busy timeout.
fn one_connection_store(url: &str, busy_timeout: Duration) -> Arc<Store> {
    let options = agent_backlog::StoreOptions {
        busy_timeout,
        ..Default::default()
    };
    Arc::new(Store::open_with(url, options).unwrap())
}

/// A write waits at most its busy timeout from its call (SPEC §8), also when it first
/// waited for a connection of the pool: its wait for a row lock is what is left. Two
/// writes on a pool of one, each on a row another session holds; the second waits for
/// the first's connection, then for its own row only as long as its timeout allows.
#[test]
fn a_write_waits_at_most_its_busy_timeout_from_its_call() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "busy");
    let (store_url, schema) = schemas.fresh_named();
    let timeout = Duration::from_secs(2);
    let store = one_connection_store(&format!("{store_url}&pool_size=1"), timeout);
    let ids: Vec<String> = (0..2)
        .map(|i| {
            store
                .create_task("ops", NewTask::new(format!("t{i}")))
                .unwrap()
                .id
        })
        .collect();
    let mut holder = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut held = holder.transaction().unwrap();
    held.batch_execute(&format!(
        "SELECT 1 FROM \"{schema}\".tasks WHERE id IN ('{}', '{}') FOR UPDATE",
        ids[0], ids[1]
    ))
    .unwrap();
    let took: Vec<Duration> = thread::scope(|scope| {
        let writes: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let store = Arc::clone(&store);
                scope.spawn(move || {
                    thread::sleep(Duration::from_millis(100 * i as u64));
                    let start = std::time::Instant::now();
                    let err = store
                        .update_task("ops", id, TaskPatch::new().priority(1))
                        .unwrap_err();
                    assert_eq!(err.code(), "storage", "{err}");
                    start.elapsed()
                })
            })
            .collect();
        writes.into_iter().map(|w| w.join().unwrap()).collect()
    });
    held.rollback().unwrap();
    for took in took {
        assert!(
            took < timeout + timeout / 2,
            "a write gave up after {took:?}, past its busy timeout of {timeout:?}"
        );
    }
    // Nothing was written, and the store goes on once the rows are free.
    let task = store
        .update_task("ops", &ids[1], TaskPatch::new().priority(1))
        .unwrap();
    assert_eq!(task.priority, 1);
}

/// Reads never wait for a writer (SPEC §8), also not for the connection a waiting write
/// holds: with a pool of one held by a write that waits for a row lock, reads of the
/// same store answer at once (on a connection opened past the pool's size and let go
/// afterwards).
#[test]
fn reads_never_wait_for_the_connection_of_a_waiting_write() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "readers");
    let name = format!("readers_{}", std::process::id());
    let (store_url, schema) = schemas.fresh_named();
    let timeout = Duration::from_secs(3);
    let store = one_connection_store(
        &format!("{store_url}&pool_size=1&application_name={name}"),
        timeout,
    );
    let locked = store.create_task("ops", NewTask::new("locked")).unwrap().id;
    let free = store.create_task("ops", NewTask::new("free")).unwrap().id;
    let mut holder = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut held = holder.transaction().unwrap();
    held.batch_execute(&format!(
        "SELECT 1 FROM \"{schema}\".tasks WHERE id = '{locked}' FOR UPDATE"
    ))
    .unwrap();
    thread::scope(|scope| {
        let writer = Arc::clone(&store);
        let locked = locked.clone();
        let write = scope.spawn(move || {
            writer
                .update_task("ops", &locked, TaskPatch::new().priority(2))
                .unwrap_err()
        });
        thread::sleep(Duration::from_millis(300));
        let start = std::time::Instant::now();
        assert_eq!(store.get_task("ops", &free).unwrap().title, "free");
        assert_eq!(store.summary("ops").unwrap().total, 2);
        assert_eq!(
            store
                .list_tasks("ops", agent_backlog::ListQuery::new())
                .unwrap()
                .total,
            2
        );
        let took = start.elapsed();
        assert!(
            took < timeout / 3,
            "the reads took {took:?} while a write waited for a row lock"
        );
        let err = write.join().unwrap();
        assert_eq!(err.code(), "storage", "{err}");
    });
    held.rollback().unwrap();
    // The connection opened past the pool's size was let go: one stays.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let open: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert_eq!(open, 1, "connections of the store left open");
}
