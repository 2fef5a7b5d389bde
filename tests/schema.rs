//! Persistence, schema versions and migrations, and foreign files.

mod common;

use agent_backlog::{
    EventQuery, Finish, LeaseTerms, ListQuery, NewTask, Page, Status, Store, TaskQuery,
    SCHEMA_VERSION,
};
use common::TempDir;
use rusqlite::Connection;

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn reopening_keeps_everything() {
    let dir = TempDir::new("schema");
    let path = dir.file("b.db");
    let before = {
        let s = Store::open(&path).unwrap();
        s.set_prefix("growth", "GRW").unwrap();
        s.create_task(
            "marketing-lead",
            NewTask::new("a").description("d").priority(2),
        )
        .unwrap();
        s.create_task("marketing-lead", NewTask::new("b")).unwrap();
        s.delete_task("marketing-lead", "MKT-002").unwrap();
        s.claim_next("marketing-lead").unwrap();
        s.query_tasks(TaskQuery::new()).unwrap()
    };
    let s = Store::open(&path).unwrap();
    assert_eq!(s.query_tasks(TaskQuery::new()).unwrap(), before);
    assert_eq!(
        s.create_task("marketing-lead", NewTask::new("c"))
            .unwrap()
            .id,
        "MKT-003"
    );
    assert_eq!(
        s.create_task("growth", NewTask::new("c")).unwrap().id,
        "GRW-001"
    );
    assert_eq!(s.summary("marketing-lead").unwrap().in_progress, 1);
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    let mode: String = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_version_1_file_migrates() {
    let dir = TempDir::new("schema");
    let path = dir.file("v1.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch(include_str!("fixtures/schema_v1.sql"))
        .unwrap();
    assert_eq!(user_version(&path), 1);

    let s = Store::open(&path).unwrap();
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    // The agents of the file are counted by the migration (v7), and their tasks have
    // no history from before it: a history that is empty, not not_found.
    let agents = s.list_agents(Page::new()).unwrap();
    let names: Vec<&str> = agents.agents.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(
        (names, agents.total),
        (vec!["ghost", "marketing-lead", "support-bot"], 3)
    );
    assert_eq!(agents.agents[1].total, 3);
    assert!(s
        .task_history("marketing-lead", "MKT-001")
        .unwrap()
        .events
        .is_empty());
    assert!(s.events(EventQuery::new()).unwrap().events.is_empty());
    let summary = s.summary("marketing-lead").unwrap();
    assert_eq!(
        (
            summary.queued,
            summary.complete,
            summary.blocked,
            summary.total
        ),
        (1, 1, 1, 3)
    );
    let list = s.list_tasks("marketing-lead", ListQuery::new()).unwrap();
    let ids: Vec<_> = list.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["MKT-004", "MKT-001", "MKT-002"]);
    assert_eq!(
        list.tasks[1].result.as_deref(),
        Some("Generated 3 LinkedIn posts...")
    );
    assert_eq!(
        s.query_tasks(TaskQuery::new().priority(2)).unwrap().total,
        2
    );
    assert_eq!(
        s.create_task("marketing-lead", NewTask::new("new"))
            .unwrap()
            .id,
        "MKT-005"
    );
    assert_eq!(
        s.create_task("ghost", NewTask::new("new")).unwrap().id,
        "GHO-001"
    );
    let claimed = s.claim_next("marketing-lead").unwrap().unwrap();
    assert_eq!(
        (claimed.id.as_str(), claimed.status),
        ("MKT-002", Status::InProgress)
    );
    assert_eq!(s.summary("support-bot").unwrap().in_progress, 1);
    // Leases work on a migrated file (schema version 4), and a task that was in
    // progress before has no lease and is never reaped.
    let in_progress = s
        .list_tasks("support-bot", ListQuery::new().status(Status::InProgress))
        .unwrap()
        .tasks[0]
        .id
        .clone();
    assert_eq!(s.get_lease("support-bot", &in_progress).unwrap(), None);
    assert_eq!(s.reap_expired(None).unwrap(), Default::default());
    let claim = s
        .claim_lease("marketing-lead", "w1", LeaseTerms::new())
        .unwrap()
        .unwrap();
    assert_eq!((claim.lease.fence, claim.lease.attempt), (1, 1));
    s.finish_lease(&claim.lease.token, Finish::complete())
        .unwrap();
    // Dependencies and idempotency keys work on a migrated file (schema version 6):
    // its tasks start with no dependency, so every queued one is ready.
    s.create_task("marketing-lead", NewTask::new("after"))
        .unwrap();
    let ready = s.ready_tasks("marketing-lead", Page::new()).unwrap();
    let ids: Vec<_> = ready.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!((ids, ready.total), (vec!["MKT-006"], 1));
    s.add_dependency("marketing-lead", "MKT-006", "MKT-001")
        .unwrap();
    s.add_dependency("marketing-lead", "MKT-006", "MKT-002")
        .unwrap();
    assert_eq!(
        s.ready_tasks("marketing-lead", Page::new()).unwrap().total,
        0
    );
    assert!(s.claim_next("marketing-lead").unwrap().is_none());
    let keyed = s
        .create_task_idempotent("marketing-lead", "k", NewTask::new("keyed"))
        .unwrap();
    let again = s
        .create_task_idempotent("marketing-lead", "k", NewTask::new("keyed"))
        .unwrap();
    assert_eq!((keyed.value.id.as_str(), again.replayed), ("MKT-007", true));
    drop(s);
    // opening again is a no-op
    let s = Store::open(&path).unwrap();
    assert_eq!(s.summary("marketing-lead").unwrap().total, 6);
}

/// Version 9 rebuilds the events table: a file of version 8 keeps every event, its
/// chain of histories and the seqs after it.
#[test]
fn a_version_8_file_keeps_its_history() {
    let dir = TempDir::new("schema");
    let path = dir.file("v8.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch(include_str!("fixtures/schema_v8.sql"))
        .unwrap();
    assert_eq!(user_version(&path), 8);

    let s = Store::open(&path).unwrap();
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    let feed = s.events(EventQuery::new()).unwrap();
    let seen: Vec<(i64, Option<&str>, &str, Option<&str>)> = feed
        .events
        .iter()
        .map(|e| {
            (
                e.seq,
                e.task_id.as_deref(),
                e.kind.as_str(),
                e.actor.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, Some("ALP-001"), "created", Some("fixture")),
            (2, Some("ALP-002"), "created", Some("fixture")),
            (3, Some("ALP-002"), "dependency_added", Some("fixture")),
            (4, Some("ALP-001"), "claimed", Some("w1")),
            (5, Some("ALP-001"), "finished", Some("w1")),
            (6, Some("BET-001"), "created", Some("fixture")),
            (7, Some("BET-001"), "deleted", Some("fixture")),
            (8, Some("ALP-002"), "updated", Some("fixture")),
        ]
    );
    let seqs = |agent: &str, task: &str| -> Vec<i64> {
        s.task_history(agent, task)
            .unwrap()
            .events
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(seqs("alpha", "ALP-002"), vec![2, 3, 8]);
    assert_eq!(seqs("beta", "BET-001"), vec![6, 7]);
    // One agent's feed still comes from its index.
    let beta = s.events(EventQuery::new().agent_id("beta")).unwrap();
    assert_eq!(
        beta.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![6, 7]
    );
    // New events go on after the last one, and the type is still checked.
    s.create_task("alpha", NewTask::new("after the migration"))
        .unwrap();
    assert_eq!(
        s.events(EventQuery::new().after(8)).unwrap().events[0].seq,
        9
    );
    let conn = Connection::open(&path).unwrap();
    let bad = conn.execute(
        "INSERT INTO events (at, agent_id, type, data) VALUES (0, 'alpha', 'renamed', '{}')",
        [],
    );
    assert!(bad.is_err(), "an unknown event type was stored");
}

fn assert_refused(path: &std::path::Path, needle: &str) {
    let bytes = std::fs::read(path).unwrap();
    let err = Store::open(path).err().expect("opening must fail");
    assert_eq!(err.code(), "storage", "{err}");
    assert!(err.to_string().contains(needle), "{err}");
    assert_eq!(std::fs::read(path).unwrap(), bytes, "the file was modified");
}

#[test]
fn a_newer_file_is_refused_untouched() {
    let dir = TempDir::new("schema");
    let path = dir.file("new.db");
    Store::open(&path)
        .unwrap()
        .create_task("a", NewTask::new("t"))
        .unwrap();
    {
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    assert_refused(&path, "newer");
    assert!(!dir.file("new.db-wal").exists());
}

#[test]
fn foreign_and_broken_files_are_refused() {
    let dir = TempDir::new("schema");
    let other = dir.file("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x TEXT);")
        .unwrap();
    assert_refused(&other, "did not create");

    let app = dir.file("app.db");
    Connection::open(&app)
        .unwrap()
        .pragma_update(None, "application_id", 7)
        .unwrap();
    assert_refused(&app, "another application");

    let text = dir.file("text.db");
    std::fs::write(
        &text,
        "this is not a database, just some text that is long enough to look like a header. "
            .repeat(100),
    )
    .unwrap();
    assert_refused(&text, "not an SQLite database");
}

#[test]
fn bad_paths() {
    assert_eq!(Store::open("").err().unwrap().code(), "invalid_argument");
    let dir = TempDir::new("schema");
    let missing = dir.file("no/such/folder/b.db");
    let err = Store::open(&missing).err().unwrap();
    assert_eq!(err.code(), "storage");
    assert!(err.to_string().contains("cannot open"), "{err}");
}

/// The background checkpointer keeps the WAL bounded: thousands of one-task
/// transactions (about four WAL pages each) would grow it past 60 MiB without
/// checkpoints; with them it restarts and is trimmed to 16 MiB, and the database file
/// itself receives the pages.
#[test]
fn checkpoints_keep_the_wal_bounded() {
    let dir = TempDir::new("schema");
    let path = dir.file("wal.db");
    let store = Store::open(&path).unwrap();
    for i in 0..4000 {
        store
            .create_task("writer", NewTask::new(format!("t{i}")))
            .unwrap();
    }
    let wal = std::fs::metadata(dir.file("wal.db-wal")).unwrap().len();
    assert!(wal <= 20 * 1024 * 1024, "the WAL grew to {wal} bytes");
    let db = std::fs::metadata(&path).unwrap().len();
    assert!(
        db > 64 * 1024,
        "nothing was checkpointed into the database ({db} bytes)"
    );
    drop(store);
    assert_eq!(
        Store::open(&path)
            .unwrap()
            .summary("writer")
            .unwrap()
            .queued,
        4000
    );
}
