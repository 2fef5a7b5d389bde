//! `backlog_query_tasks` with raw bytes as `query_json`, on a fixed store of three agents.
//!
//! A UTF-8 JSON object with each key once and only status, priority (1..=10), agent_id
//! (a valid agent_id), limit and offset (integers >= 0), each also null, must give
//! exactly the matching page of the full listing and the number of matches; anything
//! else must be code 1.
#![no_main]

use std::sync::OnceLock;

use agent_backlog_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const AGENTS: [&str; 3] = ["marketing-lead", "support-bot", "ops"];

struct Fixture {
    store: Handle,
    all: Vec<Value>,
}

// SAFETY: the handle is a token; the library synchronizes calls on it.
unsafe impl Sync for Fixture {}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> Fixture {
    let store = Handle::memory();
    for i in 0..15 {
        let agent = AGENTS[i % 3];
        let body = format!(r#"{{"title":"task {i}","priority":{}}}"#, (i * 3) % 10 + 1);
        store
            .create(agent, &c_buffer(body.as_bytes()))
            .expect_ok("create");
    }
    store.claim("marketing-lead").expect_ok("claim");
    store.claim("ops").expect_ok("claim");
    store
        .update(
            "ops",
            "OPS-002",
            &c_buffer(br#"{"status":"blocked","blocker":"b"}"#),
        )
        .expect_ok("block");
    let first = store.claim("support-bot").expect_ok("claim");
    let id = first["id"].as_str().unwrap().to_owned();
    store
        .update("support-bot", &id, &c_buffer(br#"{"status":"complete"}"#))
        .expect_ok("complete");
    let queried = store.query(None);
    let all = check_query_result("query", &queried);
    assert_eq!(all.len(), 15);
    Fixture { store, all }
}

fn expected(buffer: &[u8], all: &[Value]) -> Option<(Vec<Value>, usize)> {
    let map = request_object(
        buffer,
        &["status", "priority", "agent_id", "limit", "offset"],
    )?;
    let status = match map.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if STATUSES.contains(&s.as_str()) => Some(s.clone()),
        Some(_) => return None,
    };
    let priority = match map.get("priority") {
        None | Some(Value::Null) => None,
        Some(p) => Some(int_in(p, 1..=10)?),
    };
    let agent = match map.get("agent_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) if valid_agent_id(a) => Some(a.clone()),
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
        .filter(|t| priority.is_none_or(|p| t["priority"] == p))
        .filter(|t| agent.as_deref().is_none_or(|a| t["agent_id"] == a))
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
    let queried = f.store.query(Some(&buffer));
    match expected(&buffer, &f.all) {
        None => assert_eq!(queried.code, BACKLOG_INVALID_ARGUMENT, "{}", queried.text),
        Some((page, total)) => {
            assert!(queried.ok(), "refused a valid query: {}", queried.text);
            let got = check_query_result("query", &queried);
            assert_eq!(got, page, "the wrong page");
            assert_eq!(queried.value["total"], total, "the wrong total");
        }
    }
});
