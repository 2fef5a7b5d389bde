//! The operations of SPEC §3 and their exact JSON, through the Rust API.

use agent_backlog::{Error, ListQuery, NewTask, Status, Store, Summary, TaskPatch, TaskQuery};
use serde_json::{json, Value};

fn store() -> Store {
    Store::open_in_memory().unwrap()
}

fn is_timestamp(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.len() == 20 && s.ends_with('Z')
}

/// Replaces RFC 3339 timestamps by "T" so shapes compare exactly.
fn blank_times(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, x) in map.iter_mut() {
                    if ["created", "started", "completed"].contains(&k.as_str()) && !x.is_null() {
                        assert!(is_timestamp(x), "{k} = {x}");
                        *x = json!("T");
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// The top-level keys of a serialized JSON object, in the order written.
fn keys_in_order(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    struct Keys<'a>(&'a mut Vec<String>);
    impl<'de> serde::de::Visitor<'de> for Keys<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                self.0.push(k);
            }
            Ok(())
        }
    }
    serde::Deserializer::deserialize_map(&mut de, Keys(&mut keys)).unwrap();
    keys
}

fn to_json(v: &impl serde::Serialize) -> Value {
    blank_times(serde_json::to_value(v).unwrap())
}

#[test]
fn create_returns_the_full_task_in_order() {
    let s = store();
    let t = s
        .create_task(
            "marketing-lead",
            NewTask::new("Write 3 LinkedIn posts")
                .description("Focus on ROI...")
                .priority(3),
        )
        .unwrap();
    let text = serde_json::to_string(&t).unwrap();
    let expected = format!(
        r#"{{"id":"MKT-001","title":"Write 3 LinkedIn posts","description":"Focus on ROI...","priority":3,"status":"queued","created":"{}","started":null,"completed":null,"result":null,"blocker":null}}"#,
        t.created
    );
    assert_eq!(text, expected);
    let second = s
        .create_task(
            "marketing-lead",
            NewTask::new("Audit competitor pricing pages")
                .description("Compare top 5 competitors..."),
        )
        .unwrap();
    assert_eq!(second.id, "MKT-002");
    assert_eq!(second.priority, 5);
    assert_eq!(
        s.create_task("support-bot", NewTask::new("Draft FAQ responses"))
            .unwrap()
            .id,
        "SUP-001"
    );
}

#[test]
fn list_shape_order_filter_and_paging() {
    let s = store();
    for (title, p) in [("c", 5), ("a", 1), ("d", 5), ("b", 3), ("e", 10)] {
        s.create_task("ops", NewTask::new(title).priority(p))
            .unwrap();
    }
    let all = s.list_tasks("ops", ListQuery::new()).unwrap();
    let titles: Vec<_> = all.tasks.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["a", "b", "c", "d", "e"]);
    assert_eq!(all.total, 5);
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        text.starts_with(r#"{"agent_id":"ops","tasks":[{"id":"OPS-002","#),
        "{text}"
    );
    assert!(text.ends_with(r#"],"total":5}"#), "{text}");

    let page = s
        .list_tasks("ops", ListQuery::new().limit(2).offset(1))
        .unwrap();
    assert_eq!(
        page.tasks
            .iter()
            .map(|t| t.title.as_str())
            .collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(page.total, 5, "total ignores limit and offset");
    assert_eq!(
        s.list_tasks("ops", ListQuery::new().offset(10))
            .unwrap()
            .tasks
            .len(),
        0
    );
    assert_eq!(
        s.list_tasks("ops", ListQuery::new().limit(0))
            .unwrap()
            .total,
        5
    );

    s.claim_next("ops").unwrap();
    let queued = s
        .list_tasks("ops", ListQuery::new().status(Status::Queued))
        .unwrap();
    assert_eq!(queued.total, 4);
    assert!(queued.tasks.iter().all(|t| t.status == Status::Queued));
    let in_progress = s
        .list_tasks("ops", ListQuery::new().status(Status::InProgress))
        .unwrap();
    assert_eq!(in_progress.tasks[0].title, "a");
}

#[test]
fn unknown_agent_has_an_empty_backlog() {
    let s = store();
    let list = s.list_tasks("nobody", ListQuery::new()).unwrap();
    assert_eq!(
        to_json(&list),
        json!({"agent_id": "nobody", "tasks": [], "total": 0})
    );
    assert_eq!(s.summary("nobody").unwrap(), Summary::default());
    assert_eq!(
        serde_json::to_string(&s.summary("nobody").unwrap()).unwrap(),
        r#"{"queued":0,"in_progress":0,"complete":0,"blocked":0,"total":0}"#
    );
    assert_eq!(s.claim_next("nobody").unwrap(), None);
    assert!(matches!(
        s.get_task("nobody", "NOB-001"),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn get_update_delete_shapes() {
    let s = store();
    let t = s
        .create_task("marketing-lead", NewTask::new("Write 3 LinkedIn posts"))
        .unwrap();
    assert_eq!(s.get_task("marketing-lead", "MKT-001").unwrap(), t);
    let err = s.get_task("marketing-lead", "MKT-009").unwrap_err();
    assert_eq!(
        err.to_json(),
        json!({"error": {"code": "not_found", "message": "task MKT-009 is not in the backlog of marketing-lead"}})
    );
    // A task of another agent is not in this backlog.
    assert_eq!(
        s.get_task("support-bot", "MKT-001").unwrap_err().code(),
        "not_found"
    );
    assert_eq!(
        s.delete_task("support-bot", "MKT-001").unwrap_err().code(),
        "not_found"
    );

    let claimed = s.claim_next("marketing-lead").unwrap().unwrap();
    let done = s
        .update_task(
            "marketing-lead",
            &claimed.id,
            TaskPatch::new()
                .status(Status::Complete)
                .result("Generated 3 LinkedIn posts..."),
        )
        .unwrap();
    assert_eq!(
        to_json(&done),
        json!({"id": "MKT-001", "title": "Write 3 LinkedIn posts", "description": null, "priority": 5,
               "status": "complete", "created": "T", "started": "T", "completed": "T",
               "result": "Generated 3 LinkedIn posts...", "blocker": null})
    );
    assert_eq!(
        serde_json::to_string(&s.delete_task("marketing-lead", "MKT-001").unwrap()).unwrap(),
        r#"{"deleted":"MKT-001"}"#
    );
    assert_eq!(
        s.get_task("marketing-lead", "MKT-001").unwrap_err().code(),
        "not_found"
    );
    assert_eq!(
        s.delete_task("marketing-lead", "MKT-001")
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(s.summary("marketing-lead").unwrap().total, 0);
}

#[test]
fn patch_fields_and_empty_patch() {
    let s = store();
    let t = s
        .create_task("a", NewTask::new("t").description("d"))
        .unwrap();
    assert_eq!(s.update_task("a", &t.id, TaskPatch::new()).unwrap(), t);
    let u = s
        .update_task(
            "a",
            &t.id,
            TaskPatch::new()
                .title("  new  ")
                .priority(1)
                .clear_description(),
        )
        .unwrap();
    assert_eq!(
        (u.title.as_str(), u.priority, u.description.clone()),
        ("new", 1, None)
    );
    let u = s
        .update_task("a", &t.id, TaskPatch::new().description("again"))
        .unwrap();
    assert_eq!(u.description.as_deref(), Some("again"));
    // Setting status to the current status is not a move: other fields apply.
    let u2 = s
        .update_task(
            "a",
            &t.id,
            TaskPatch::new().status(Status::Queued).priority(7),
        )
        .unwrap();
    assert_eq!((u2.status, u2.priority), (Status::Queued, 7));
    assert_eq!(s.get_task("a", &t.id).unwrap(), u2);
}

#[test]
fn query_across_agents() {
    let s = store();
    s.create_task(
        "marketing-lead",
        NewTask::new("Write LinkedIn posts").priority(3),
    )
    .unwrap();
    s.create_task("support-bot", NewTask::new("x").priority(5))
        .unwrap();
    s.create_task("support-bot", NewTask::new("y").priority(5))
        .unwrap();
    s.create_task(
        "support-bot",
        NewTask::new("Draft FAQ responses").priority(2),
    )
    .unwrap();
    let claimed = s.claim_next("marketing-lead").unwrap().unwrap();
    s.update_task(
        "marketing-lead",
        &claimed.id,
        TaskPatch::new().status(Status::Complete),
    )
    .unwrap();

    let all = s.query_tasks(TaskQuery::new()).unwrap();
    assert_eq!(all.total, 4);
    let ids: Vec<_> = all
        .tasks
        .iter()
        .map(|t| (t.agent_id.as_str(), t.task.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("support-bot", "SUP-003"),
            ("marketing-lead", "MKT-001"),
            ("support-bot", "SUP-001"),
            ("support-bot", "SUP-002")
        ]
    );
    assert_eq!(
        keys_in_order(&serde_json::to_string(&all.tasks[0]).unwrap()),
        [
            "agent_id",
            "id",
            "title",
            "description",
            "priority",
            "status",
            "created",
            "started",
            "completed",
            "result",
            "blocker"
        ]
    );
    assert_eq!(
        s.query_tasks(TaskQuery::new().status(Status::Complete))
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        s.query_tasks(TaskQuery::new().priority(5)).unwrap().total,
        2
    );
    assert_eq!(
        s.query_tasks(TaskQuery::new().agent_id("support-bot"))
            .unwrap()
            .total,
        3
    );
    let q = s
        .query_tasks(
            TaskQuery::new()
                .agent_id("support-bot")
                .status(Status::Queued)
                .priority(5)
                .limit(1)
                .offset(1),
        )
        .unwrap();
    assert_eq!(
        (q.total, q.tasks.len(), q.tasks[0].task.id.as_str()),
        (2, 1, "SUP-002")
    );
    assert_eq!(
        s.query_tasks(TaskQuery::new().agent_id("nobody"))
            .unwrap()
            .total,
        0
    );
}

#[test]
fn summary_counts() {
    let s = store();
    for i in 0..6 {
        s.create_task("qa", NewTask::new(format!("t{i}"))).unwrap();
    }
    let a = s.claim_next("qa").unwrap().unwrap();
    let b = s.claim_next("qa").unwrap().unwrap();
    s.update_task("qa", &a.id, TaskPatch::new().status(Status::Complete))
        .unwrap();
    s.update_task(
        "qa",
        &b.id,
        TaskPatch::new().status(Status::Blocked).blocker("waiting"),
    )
    .unwrap();
    s.update_task(
        "qa",
        "QA-006",
        TaskPatch::new().status(Status::Blocked).blocker("input"),
    )
    .unwrap();
    s.delete_task("qa", "QA-005").unwrap();
    s.claim_next("qa").unwrap();
    assert_eq!(
        serde_json::to_value(s.summary("qa").unwrap()).unwrap(),
        json!({"queued": 1, "in_progress": 1, "complete": 1, "blocked": 2, "total": 5})
    );
}

#[test]
fn claim_next_takes_priority_then_age() {
    let s = store();
    s.create_task("w", NewTask::new("p5-old").priority(5))
        .unwrap();
    s.create_task("w", NewTask::new("p2").priority(2)).unwrap();
    s.create_task("w", NewTask::new("p5-new").priority(5))
        .unwrap();
    let order: Vec<String> = std::iter::from_fn(|| s.claim_next("w").unwrap())
        .map(|t| t.title)
        .collect();
    assert_eq!(order, ["p2", "p5-old", "p5-new"]);
    assert_eq!(s.claim_next("w").unwrap(), None);
    let started = s.get_task("w", "W-001").unwrap();
    assert!(started.started.is_some());
}

#[test]
fn create_tasks_is_all_or_nothing() {
    let s = store();
    let batch = s
        .create_tasks(
            "research",
            vec![NewTask::new("a"), NewTask::new("b").priority(2)],
        )
        .unwrap();
    assert_eq!(batch.agent_id, "research");
    assert_eq!(batch.total, 2);
    assert_eq!(
        batch
            .tasks
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>(),
        ["RSH-001", "RSH-002"]
    );
    let err = s
        .create_tasks(
            "research",
            vec![NewTask::new("ok"), NewTask::new("bad").priority(11)],
        )
        .unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    assert_eq!(
        err.to_string(),
        "tasks[1]: priority must be an integer from 1 to 10, got 11"
    );
    assert_eq!(s.summary("research").unwrap().total, 2);
    assert_eq!(
        s.create_task("research", NewTask::new("c")).unwrap().id,
        "RSH-003"
    );
    let empty = s.create_tasks("fresh", vec![]).unwrap();
    assert_eq!((empty.total, empty.tasks.len()), (0, 0));
    // An empty batch does not fix the prefix.
    s.set_prefix("fresh", "FRS").unwrap();
    assert_eq!(
        s.create_task("fresh", NewTask::new("x")).unwrap().id,
        "FRS-001"
    );
}

#[test]
fn batch_parsed_from_json_matches() {
    let s = store();
    let tasks =
        NewTask::list_from_json(r#"[{"title":"a","priority":2},{"title":"b","description":"d"}]"#)
            .unwrap();
    let list = s.create_tasks("finance", tasks).unwrap();
    assert_eq!(
        to_json(&list),
        json!({"agent_id": "finance", "total": 2, "tasks": [
            {"id": "FIN-001", "title": "a", "description": null, "priority": 2, "status": "queued",
             "created": "T", "started": null, "completed": null, "result": null, "blocker": null},
            {"id": "FIN-002", "title": "b", "description": "d", "priority": 5, "status": "queued",
             "created": "T", "started": null, "completed": null, "result": null, "blocker": null}]})
    );
}

#[test]
fn responses_round_trip_through_serde() {
    let s = store();
    s.create_task("a", NewTask::new("t")).unwrap();
    let list = s.query_tasks(TaskQuery::new()).unwrap();
    let text = serde_json::to_string(&list).unwrap();
    let back: agent_backlog::QueryResult = serde_json::from_str(&text).unwrap();
    assert_eq!(back, list);
}

#[test]
fn close_then_use_is_a_storage_error() {
    let s = store();
    s.create_task("a", NewTask::new("t")).unwrap();
    s.close().unwrap();
    s.close().unwrap();
    let err = s.summary("a").unwrap_err();
    assert_eq!(err.code(), "storage");
    assert!(err.to_string().contains("closed"), "{err}");
}
