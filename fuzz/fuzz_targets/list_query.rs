//! `backlog_list_tasks` with raw bytes as `query_json`, on a fixed backlog.
//!
//! A UTF-8 JSON object with each key once and only status (null or one of the four),
//! limit and offset (null or an integer >= 0) must give exactly the matching page of
//! the full listing and the number of matches; anything else must be code 1.
#![no_main]

use std::sync::OnceLock;

use agent_backlog_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const AGENT: &str = "fuzz-agent";

struct Fixture {
    store: Handle,
    /// The full listing, in order.
    all: Vec<Value>,
}

// SAFETY: the handle is a token; the library synchronizes calls on it.
unsafe impl Sync for Fixture {}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// Twelve tasks: three in each status, priorities 1..=10 with repeats.
fn fixture() -> Fixture {
    let store = Handle::memory();
    for i in 0..12 {
        let body = format!(r#"{{"title":"task {i}","priority":{}}}"#, (i * 7) % 10 + 1);
        store
            .create(AGENT, &c_buffer(body.as_bytes()))
            .expect_ok("create");
    }
    let moves: [(&str, &[u8]); 6] = [
        ("FUZ-002", br#"{"status":"in_progress"}"#),
        ("FUZ-005", br#"{"status":"in_progress"}"#),
        ("FUZ-005", br#"{"status":"complete","result":"r"}"#),
        ("FUZ-008", br#"{"status":"blocked","blocker":"b"}"#),
        ("FUZ-011", br#"{"status":"in_progress"}"#),
        ("FUZ-012", br#"{"status":"blocked","blocker":"b"}"#),
    ];
    for (id, patch) in moves {
        store.update(AGENT, id, &c_buffer(patch)).expect_ok("move");
    }
    let listed = store.list(AGENT, None);
    let all = check_task_list("list", &listed, AGENT);
    assert_eq!(all.len(), 12);
    Fixture { store, all }
}

/// The page the query must give, with its total; `None` when it must be refused.
fn expected(buffer: &[u8], all: &[Value]) -> Option<(Vec<Value>, usize)> {
    let map = request_object(buffer, &["status", "limit", "offset"])?;
    let status = match map.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if STATUSES.contains(&s.as_str()) => Some(s.clone()),
        Some(_) => return None,
    };
    let count = |key: &str| match map.get(key) {
        None | Some(Value::Null) => Some(None),
        Some(v) => int_in(v, 0..=i64::MAX).map(Some),
    };
    let limit = count("limit")?;
    let offset = count("offset")?.unwrap_or(0);
    let matching: Vec<Value> = all
        .iter()
        .filter(|t| status.as_deref().is_none_or(|s| t["status"] == s))
        .cloned()
        .collect();
    let total = matching.len();
    let page = matching
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)))
        .collect();
    Some((page, total))
}

fuzz_target!(|data: &[u8]| {
    let f = FIXTURE.get_or_init(fixture);
    let buffer = c_buffer(data);
    let listed = f.store.list(AGENT, Some(&buffer));
    match expected(&buffer, &f.all) {
        None => assert_eq!(listed.code, BACKLOG_INVALID_ARGUMENT, "{}", listed.text),
        Some((page, total)) => {
            assert!(listed.ok(), "refused a valid query: {}", listed.text);
            let got = check_task_list("list", &listed, AGENT);
            assert_eq!(got, page, "the wrong page");
            assert_eq!(listed.value["total"], total, "the wrong total");
        }
    }
});
