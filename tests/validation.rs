//! Bad input on every operation is `invalid_argument` and writes nothing (SPEC §2, §3, §6).

mod common;

use agent_backlog::{ListQuery, NewTask, Status, Store, TaskPatch, TaskQuery};
use common::snapshot;

fn store_with_task() -> Store {
    let s = Store::open_in_memory().unwrap();
    s.create_task("marketing-lead", NewTask::new("seed"))
        .unwrap();
    s
}

fn assert_invalid<T: std::fmt::Debug>(
    s: &Store,
    what: &str,
    f: impl FnOnce(&Store) -> agent_backlog::Result<T>,
    needle: &str,
) {
    let before = snapshot(s);
    let err = f(s).expect_err(what);
    assert_eq!(err.code(), "invalid_argument", "{what}: {err}");
    assert!(err.to_string().contains(needle), "{what}: {err}");
    assert_eq!(snapshot(s), before, "{what} wrote something");
}

#[test]
fn bad_agent_ids_everywhere() {
    let s = store_with_task();
    let long = "a".repeat(65);
    for bad in [
        "",
        "-x",
        "a b",
        "a/b",
        "ümlaut",
        "x;DROP TABLE tasks",
        long.as_str(),
        "a\u{0}b",
    ] {
        assert_invalid(
            &s,
            "create",
            |s| s.create_task(bad, NewTask::new("t")),
            "agent_id",
        );
        assert_invalid(
            &s,
            "create_tasks",
            |s| s.create_tasks(bad, vec![NewTask::new("t")]),
            "agent_id",
        );
        assert_invalid(
            &s,
            "list",
            |s| s.list_tasks(bad, ListQuery::new()),
            "agent_id",
        );
        assert_invalid(&s, "get", |s| s.get_task(bad, "MKT-001"), "agent_id");
        assert_invalid(
            &s,
            "update",
            |s| s.update_task(bad, "MKT-001", TaskPatch::new()),
            "agent_id",
        );
        assert_invalid(&s, "delete", |s| s.delete_task(bad, "MKT-001"), "agent_id");
        assert_invalid(&s, "summary", |s| s.summary(bad), "agent_id");
        assert_invalid(&s, "claim", |s| s.claim_next(bad), "agent_id");
        assert_invalid(&s, "prefix", |s| s.set_prefix(bad, "ABC"), "agent_id");
        assert_invalid(
            &s,
            "query",
            |s| s.query_tasks(TaskQuery::new().agent_id(bad)),
            "agent_id",
        );
    }
    assert!(s.create_task(&"a".repeat(64), NewTask::new("t")).is_ok());
}

#[test]
fn bad_task_ids() {
    let s = store_with_task();
    for bad in [
        "",
        "MKT",
        "mkt-001",
        "MKT-1",
        "MKT-001; DELETE FROM tasks",
        "../MKT-001",
        "MKT-00x",
    ] {
        assert_invalid(&s, "get", |s| s.get_task("marketing-lead", bad), "task_id");
        assert_invalid(
            &s,
            "update",
            |s| s.update_task("marketing-lead", bad, TaskPatch::new().priority(1)),
            "task_id",
        );
        assert_invalid(
            &s,
            "delete",
            |s| s.delete_task("marketing-lead", bad),
            "task_id",
        );
    }
}

#[test]
fn bad_fields_on_create() {
    let s = store_with_task();
    let cases: Vec<(NewTask, &str)> = vec![
        (NewTask::new(""), "title must be 1 to 500"),
        (NewTask::new("  \t\n "), "title must be 1 to 500"),
        (NewTask::new("x".repeat(501)), "got 501"),
        (NewTask::new("a\0b"), "NUL"),
        (
            NewTask::new("t").priority(0),
            "priority must be an integer from 1 to 10, got 0",
        ),
        (NewTask::new("t").priority(11), "got 11"),
        (NewTask::new("t").priority(-5), "got -5"),
        (NewTask::new("t").priority(i64::MAX), "priority"),
        (
            NewTask::new("t").description("d".repeat(65_537)),
            "description must be at most 65536",
        ),
    ];
    for (task, needle) in cases {
        assert_invalid(
            &s,
            "create",
            |s| s.create_task("marketing-lead", task.clone()),
            needle,
        );
        assert_invalid(
            &s,
            "batch",
            |s| s.create_tasks("marketing-lead", vec![NewTask::new("ok"), task]),
            needle,
        );
    }
    // the counter did not move
    assert_eq!(
        s.create_task("marketing-lead", NewTask::new("next"))
            .unwrap()
            .id,
        "MKT-002"
    );
}

#[test]
fn bad_fields_on_update() {
    let s = store_with_task();
    let cases: Vec<(TaskPatch, &str)> = vec![
        (TaskPatch::new().title(" "), "title"),
        (TaskPatch::new().priority(11), "priority"),
        (
            TaskPatch::new().description("d".repeat(65_537)),
            "description",
        ),
        (
            TaskPatch::new()
                .status(Status::Blocked)
                .blocker("b".repeat(2001)),
            "blocker must be at most 2000",
        ),
        (
            TaskPatch::new().status(Status::Blocked).blocker(""),
            "blocker",
        ),
        (
            TaskPatch::new().result("r".repeat(1_048_577)),
            "result must be at most 1048576",
        ),
    ];
    for (patch, needle) in cases {
        assert_invalid(
            &s,
            "update",
            |s| s.update_task("marketing-lead", "MKT-001", patch),
            needle,
        );
    }
    // validation comes before the lookup
    assert_invalid(
        &s,
        "update missing",
        |s| s.update_task("marketing-lead", "MKT-404", TaskPatch::new().priority(0)),
        "priority",
    );
}

#[test]
fn bad_pages_and_filters() {
    let s = store_with_task();
    assert_invalid(
        &s,
        "limit",
        |s| s.list_tasks("marketing-lead", ListQuery::new().limit(-1)),
        "limit must be an integer of 0 or more, got -1",
    );
    assert_invalid(
        &s,
        "offset",
        |s| s.list_tasks("marketing-lead", ListQuery::new().offset(-1)),
        "offset",
    );
    assert_invalid(
        &s,
        "priority",
        |s| s.query_tasks(TaskQuery::new().priority(0)),
        "priority",
    );
    assert_invalid(
        &s,
        "limit",
        |s| s.query_tasks(TaskQuery::new().limit(-3)),
        "limit",
    );
}

#[test]
fn sql_looking_strings_are_just_text() {
    let s = Store::open_in_memory().unwrap();
    let evil = "'); DROP TABLE tasks; --";
    let t = s
        .create_task("x", NewTask::new(evil).description(evil))
        .unwrap();
    assert_eq!(t.title, evil);
    let u = s
        .update_task(
            "x",
            &t.id,
            TaskPatch::new().status(Status::Blocked).blocker(evil),
        )
        .unwrap();
    assert_eq!(u.blocker.as_deref(), Some(evil));
    assert_eq!(s.query_tasks(TaskQuery::new()).unwrap().total, 1);
}

#[test]
fn json_bodies_are_strict() {
    for body in [
        r#"{"title":"t","priority":3.0}"#,
        r#"{"title":"t","priority":"3"}"#,
        r#"{"title":"t","priority":true}"#,
        r#"{"title":"t","bogus":1}"#,
        r#"{"title":"t","title":"u"}"#,
        r#"{"title":null}"#,
        r#"{}"#,
        r#"[]"#,
        r#"null"#,
        r#"{"title":"t""#,
        r#"{"title":"\ud800"}"#,
    ] {
        assert_eq!(
            NewTask::from_json(body).unwrap_err().code(),
            "invalid_argument",
            "{body}"
        );
    }
    for body in [
        r#"{"status":null}"#,
        r#"{"priority":null}"#,
        r#"{"title":null}"#,
        r#"{"status":"done"}"#,
        r#"{"result":5}"#,
    ] {
        assert_eq!(
            TaskPatch::from_json(body).unwrap_err().code(),
            "invalid_argument",
            "{body}"
        );
    }
}
