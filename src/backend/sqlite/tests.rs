//! Tests of the SQLite backend's internals: statement plans, statement caching, and
//! recovery from a panic inside a write.

use rusqlite::config::DbConfig;
use rusqlite::Connection;

use super::claims::{claim_next_sql, next_ready_sql};
use super::listing::{count_sql, page_sql};
use super::tasks::load_sql;
use super::*;
use crate::model::Status;
use crate::{ListQuery, NewTask, Store, TaskPatch};

fn plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
    let rows = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    rows.join(" | ")
}

fn memory() -> Sqlite {
    Sqlite::open(Path::new(":memory:"), StoreOptions::default()).unwrap()
}

fn row(title: &str) -> NewRow {
    NewRow {
        title: title.into(),
        description: None,
        priority: 5,
        depends_on: Vec::new(),
    }
}

fn created(db: &Sqlite, agent_id: &str, rows: Vec<NewRow>) -> Vec<Task> {
    match db.create_tasks(agent_id, rows, None, None).unwrap() {
        Created::New(tasks) => tasks,
        other => panic!("not created: {other:?}"),
    }
}

/// A panic while an operation holds the writer (caught at the C or Python boundary)
/// poisons its lock; the store recovers, and the open transaction was rolled back when
/// the panic unwound.
#[test]
fn a_panic_inside_a_write_leaves_the_store_usable() {
    let db = memory();
    created(&db, "a", vec![row("kept")]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        db.conns
            .write(|tx| {
                tasks::create(
                    tx,
                    "a",
                    vec![row("lost")],
                    &[],
                    "2026-01-01T00:00:00Z",
                    None,
                )?;
                panic!("a bug in the middle of a write");
            })
            .map(|_: ()| ())
    }));
    assert!(result.is_err());
    assert!(db.conns.writer_poisoned());
    assert_eq!(db.summary("a").unwrap().total, 1);
    assert_eq!(created(&db, "a", vec![row("next")])[0].id, "A-002");
    assert!(db.get_task("a", "A-002").unwrap().is_some());
    assert_eq!(db.query(&all()).unwrap().1, 2);
}

fn all() -> Filter<'static> {
    Filter {
        agent_id: None,
        status: None,
        priority: None,
        ready: false,
        limit: None,
        offset: 0,
    }
}

/// The statements of the hot path are prepared once: rebinding them (another agent,
/// another limit) never makes SQLite re-prepare them. Without query-planner stability
/// the claim's statement is re-prepared on every call.
#[test]
fn hot_statements_are_never_re_prepared() {
    fn reprepares(store: &Store, db: &Sqlite, qpsg: bool) -> i32 {
        db.conns.with_writer_conn(|conn| {
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, qpsg)
                .unwrap();
            conn.flush_prepared_statement_cache();
        });
        for round in 0..5 {
            let agent = format!("agent-{round}");
            store.create_task(&agent, NewTask::new("t")).unwrap();
            let t = store.claim_next(&agent).unwrap().unwrap();
            store
                .update_task(&agent, &t.id, TaskPatch::new().status(Status::Complete))
                .unwrap();
            store
                .list_tasks(&agent, ListQuery::new().limit(round + 1))
                .unwrap();
        }
        db.conns.with_writer_conn(|conn| {
            [claim_next_sql(), load_sql()]
                .iter()
                .map(|sql| {
                    conn.prepare_cached(sql)
                        .unwrap()
                        .get_status(rusqlite::StatementStatus::RePrepare)
                })
                .sum()
        })
    }
    let store = Store::open_in_memory().unwrap();
    let db = store.sqlite().expect("an SQLite store");
    assert_eq!(reprepares(&store, db, true), 0);
    assert!(
        reprepares(&store, db, false) > 0,
        "the test would not notice"
    );
}

/// Every listing, count and claim is served by an index in the order it returns, so
/// a page or a count does not grow with the backlog.
#[test]
fn every_listing_uses_an_index_in_order() {
    let db = memory();
    db.conns.with_writer_conn(|conn| {
        for bits in 0..16 {
            let ready = bits & 8 != 0;
            let filter = Filter {
                agent_id: (bits & 1 != 0 || ready).then_some("a"),
                status: (bits & 2 != 0).then_some(Status::Queued),
                priority: (bits & 4 != 0).then_some(3),
                ready,
                limit: Some(50),
                offset: 0,
            };
            let page = plan(conn, &page_sql(&filter));
            assert!(page.contains("USING INDEX"), "{bits}: {page}");
            assert!(!page.contains("TEMP B-TREE"), "{bits}: {page}");
            assert!(!page.contains("SCAN"), "{bits}: {page}");
            let count = plan(conn, &count_sql(&filter));
            assert!(!count.contains("TEMP B-TREE"), "{bits}: {count}");
            // Totals come from the counts, never from the tasks.
            assert!(
                count.contains("counts") && !count.contains("tasks"),
                "{bits}: {count}"
            );
            if filter.agent_id.is_some() {
                assert!(!count.contains("SCAN"), "{bits}: {count}");
            }
        }
        let claim = plan(conn, &next_ready_sql(""));
        assert!(
            claim.contains("INDEX tasks_by_agent_priority_status_waiting"),
            "{claim}"
        );
        assert!(!claim.contains("TEMP B-TREE"), "{claim}");
        let get = plan(conn, "SELECT id FROM tasks WHERE id = ?1 AND agent_id = ?2");
        assert!(
            get.contains("USING INDEX sqlite_autoindex_tasks_1"),
            "{get}"
        );
    });
}

/// The counts by agent and priority equal a count of the tasks after every kind of
/// write: batches of mixed priorities, claims, leased claims and their expiry, moves,
/// priority changes (also of a task whose status changes with it), deletes.
#[test]
fn counts_match_the_tasks_after_every_kind_of_write() {
    use crate::{Finish, LeaseTerms, TaskQuery};
    let store = Store::open_in_memory().unwrap();
    let db = store.sqlite().unwrap();
    let check = |when: &str| {
        db.conns.with_writer_conn(|conn| {
            type Row = (String, i64, [i64; 5]);
            let rows = |sql: &str| -> Vec<Row> {
                conn.prepare(sql)
                    .unwrap()
                    .query_map([], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
                        ))
                    })
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap()
            };
            let kept = rows(
                "SELECT agent_id, priority, queued, in_progress, complete, blocked, waiting
                 FROM counts WHERE queued + in_progress + complete + blocked > 0 ORDER BY 1, 2",
            );
            let counted = rows(
                "SELECT agent_id, priority, sum(status = 'queued'), sum(status = 'in_progress'),
                 sum(status = 'complete'), sum(status = 'blocked'), sum(waiting) FROM tasks
                 GROUP BY 1, 2 ORDER BY 1, 2",
            );
            assert_eq!(kept, counted, "after {when}");
            // Every task's unmet is the number of its dependencies not complete.
            let wrong: i64 = conn
                .query_row(
                    "SELECT count(*) FROM tasks t WHERE unmet IS NOT (
                         SELECT count(*) FROM dependencies d JOIN tasks u ON u.seq = d.depends_seq
                         WHERE d.task_seq = t.seq AND u.status <> 'complete')",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(wrong, 0, "unmet after {when}");
        });
    };
    for agent in ["a", "b"] {
        let batch = (0..30)
            .map(|i| NewTask::new(format!("t{i}")).priority(1 + i % 10))
            .collect();
        store.create_tasks(agent, batch).unwrap();
    }
    check("batches");
    let claimed = store.claim_next("a").unwrap().unwrap();
    let leased = store
        .claim_lease("a", "w", LeaseTerms::new())
        .unwrap()
        .unwrap();
    check("claims");
    store
        .update_task("a", &claimed.id, TaskPatch::new().priority(9))
        .unwrap();
    store
        .update_task(
            "a",
            &leased.task.id,
            TaskPatch::new()
                .priority(2)
                .status(Status::Blocked)
                .blocker("x"),
        )
        .unwrap();
    check("priority changes");
    let next = store
        .claim_lease("a", "w", LeaseTerms::new())
        .unwrap()
        .unwrap();
    store
        .finish_and_claim(&next.lease.token, Finish::complete(), LeaseTerms::new())
        .unwrap();
    store.delete_task("b", "B-001").unwrap();
    store.delete_task("a", &claimed.id).unwrap();
    check("finishes and deletes");
    let plan = store
        .create_tasks(
            "b",
            vec![
                NewTask::new("p").priority(3),
                NewTask::new("q").priority(4).depends_on_item(0),
                NewTask::new("r")
                    .priority(4)
                    .depends_on_item(0)
                    .depends_on("B-002"),
            ],
        )
        .unwrap();
    let [p, q, r] = [0, 1, 2].map(|i| plan.tasks[i].id.clone());
    check("a plan");
    store
        .update_task("b", &q, TaskPatch::new().priority(7))
        .unwrap();
    store.add_dependency("b", "B-002", &q).unwrap();
    check("edges and a waiting task's priority");
    store
        .update_task("b", &p, TaskPatch::new().status(Status::InProgress))
        .unwrap();
    store
        .update_task("b", &p, TaskPatch::new().status(Status::Complete))
        .unwrap();
    check("a dependency completed");
    store
        .update_task("b", &p, TaskPatch::new().status(Status::Queued))
        .unwrap();
    store.remove_dependency("b", &r, "B-002").unwrap();
    check("a reopen and a removed edge");
    store.delete_task("b", &p).unwrap();
    check("a dependency deleted");
    // A waiting task blocked with a new priority in one patch, and queued again.
    let c = store
        .create_tasks(
            "c",
            vec![NewTask::new("x"), NewTask::new("y").depends_on_item(0)],
        )
        .unwrap();
    let (x, y) = (c.tasks[0].id.clone(), c.tasks[1].id.clone());
    let both = TaskPatch::new()
        .status(Status::Blocked)
        .blocker("b")
        .priority(8);
    store.update_task("c", &y, both).unwrap();
    check("a waiting task blocked and moved to another priority at once");
    store
        .update_task("c", &y, TaskPatch::new().status(Status::Queued))
        .unwrap();
    check("a waiting task queued again");
    // A leased task whose dependency is reopened, released into the waiting run.
    store.claim_next("c").unwrap();
    store
        .update_task("c", &x, TaskPatch::new().status(Status::Complete))
        .unwrap();
    let leased = store
        .claim_lease("c", "w", LeaseTerms::new())
        .unwrap()
        .unwrap();
    assert_eq!(leased.task.id, y);
    store
        .update_task("c", &x, TaskPatch::new().status(Status::Queued))
        .unwrap();
    check("a dependency of an in_progress task reopened");
    store
        .finish_lease(&leased.lease.token, Finish::release())
        .unwrap();
    check("a task released while its dependency is open");
    assert_eq!(store.ready_tasks("c", crate::Page::new()).unwrap().total, 1);
    let by_priority = store.query_tasks(TaskQuery::new().priority(2)).unwrap();
    assert_eq!(by_priority.total, by_priority.tasks.len() as u64);
    assert_eq!(store.summary("b").unwrap().total, 31);
}

/// A constraint that a write breaks is a bug (`internal`) on a file whose schema is
/// the one the migrations write, and a corrupt file (`storage`) when a flipped bit
/// changed the text of one of its checks.
#[test]
fn a_broken_constraint_is_internal_unless_the_schema_is_damaged() {
    let dir = std::env::temp_dir().join(format!("agent-backlog-damaged-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("damaged.db");
    let store = Store::open(&path).unwrap();
    let task = store.create_task("a", NewTask::new("t")).unwrap();

    let raw = Connection::open(&path).unwrap();
    let bad_type = "INSERT INTO events (at, agent_id, type, data) VALUES (0, 'a', 'renamed', '{}')";
    let err = raw.execute(bad_type, []).unwrap_err();
    assert_eq!(write_error(&raw, Fail::Db(err)).code(), "internal");

    // A damaged row: a queued task with a result, which its CHECK forbids. The claim
    // that moves it breaks the CHECK; the rows' check finds the row.
    let other = store.create_task("b", NewTask::new("u")).unwrap();
    raw.execute_batch(&format!(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE tasks SET result = 'garbage' WHERE id = '{}';
         PRAGMA ignore_check_constraints = OFF;",
        other.id
    ))
    .unwrap();
    let err = store.claim_next("b").unwrap_err();
    assert_eq!(err.code(), "storage", "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
    raw.execute(&format!("DELETE FROM tasks WHERE id = '{}'", other.id), [])
        .unwrap();

    // The damage of a flipped bit: 'updated' became 'uplated' in the events CHECK.
    raw.execute_batch(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = replace(sql, '''updated''', '''uplated''')
         WHERE name = 'events';
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
    drop(raw);
    drop(store);
    let store = Store::open(&path).unwrap();
    let err = store
        .update_task("a", &task.id, TaskPatch::new().title("renamed"))
        .unwrap_err();
    assert_eq!(err.code(), "storage", "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
    // Nothing was written.
    assert_eq!(store.get_task("a", &task.id).unwrap().title, "t");
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
