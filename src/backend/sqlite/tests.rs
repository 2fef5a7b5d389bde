//! Tests of the SQLite backend's internals: statement plans, statement caching, and
//! recovery from a panic inside a write.

use rusqlite::config::DbConfig;
use rusqlite::Connection;

use super::claims::next_queued_sql;
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
    }
}

/// A panic while an operation holds the writer (caught at the C or Python boundary)
/// poisons its lock; the store recovers, and the open transaction was rolled back when
/// the panic unwound.
#[test]
fn a_panic_inside_a_write_leaves_the_store_usable() {
    let db = memory();
    db.create_tasks("a", vec![row("kept")]).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        db.conns
            .write(|tx| {
                tasks::create(tx, "a", vec![row("lost")], "2026-01-01T00:00:00Z")?;
                panic!("a bug in the middle of a write");
            })
            .map(|_: ()| ())
    }));
    assert!(result.is_err());
    assert!(db.conns.writer_poisoned());
    assert_eq!(db.summary("a").unwrap().total, 1);
    assert_eq!(
        db.create_tasks("a", vec![row("next")]).unwrap()[0].id,
        "A-002"
    );
    assert!(db.get_task("a", "A-002").unwrap().is_some());
    assert_eq!(db.query(&all()).unwrap().1, 2);
}

fn all() -> Filter<'static> {
    Filter {
        agent_id: None,
        status: None,
        priority: None,
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
            [next_queued_sql(), load_sql()]
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
        for bits in 0..8 {
            let filter = Filter {
                agent_id: (bits & 1 != 0).then_some("a"),
                status: (bits & 2 != 0).then_some(Status::Queued),
                priority: (bits & 4 != 0).then_some(3),
                limit: Some(50),
                offset: 0,
            };
            let page = plan(conn, &page_sql(&filter));
            assert!(page.contains("USING INDEX"), "{bits}: {page}");
            assert!(!page.contains("TEMP B-TREE"), "{bits}: {page}");
            assert!(!page.contains("SCAN"), "{bits}: {page}");
            let count = plan(conn, &count_sql(&filter));
            assert!(!count.contains("TEMP B-TREE"), "{bits}: {count}");
            if filter.agent_id.is_some() {
                assert!(!count.contains("SCAN"), "{bits}: {count}");
            }
            if filter.priority.is_some() {
                assert!(count.contains("COVERING INDEX"), "{bits}: {count}");
            }
        }
        let claim = plan(conn, &next_queued_sql());
        assert!(claim.contains("INDEX tasks_by_agent_status"), "{claim}");
        assert!(!claim.contains("TEMP B-TREE"), "{claim}");
        let get = plan(conn, "SELECT id FROM tasks WHERE id = ?1 AND agent_id = ?2");
        assert!(
            get.contains("USING INDEX sqlite_autoindex_tasks_1"),
            "{get}"
        );
    });
}
