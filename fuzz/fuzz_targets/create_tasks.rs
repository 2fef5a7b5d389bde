//! `backlog_create_tasks` with raw bytes as `tasks_json_array`.
//!
//! A UTF-8 JSON array (at most 10,000 items) of valid create bodies must succeed with
//! consecutive IDs in the given order; anything else must be code 1 and create nothing
//! (all or nothing). Created tasks are checked against the listing and deleted again.
#![no_main]

use std::sync::Mutex;

use agent_backlog_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const AGENT: &str = "fuzz-batch";

struct State {
    store: Handle,
    next: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// The tasks the batch must create, or `None` when it must be refused.
fn expected(buffer: &[u8]) -> Option<Vec<(String, Value, i64)>> {
    let text = seen_text(buffer)?;
    if text.len() > 64 * 1024 * 1024 {
        return None;
    }
    let items: Vec<Value> = serde_json::from_str::<Value>(text)
        .ok()?
        .as_array()?
        .clone();
    if items.len() > 10_000 {
        return None;
    }
    // Duplicate keys inside an item are refused; re-serialize each item's raw text.
    let raw: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(text).ok()?;
    items
        .iter()
        .zip(raw)
        .map(|(item, raw)| {
            if has_duplicate_top_level_key(raw.get()) {
                return None;
            }
            expect_new_task(item.as_object()?)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let state = guard.get_or_insert_with(|| State {
        store: Handle::memory(),
        next: 1,
    });
    let store = &state.store;
    let buffer = c_buffer(data);
    let expected = expected(&buffer);
    let before = store.summary(AGENT).text;
    let created = store.create_many(AGENT, &buffer);
    match expected {
        None => {
            assert_eq!(created.code, BACKLOG_INVALID_ARGUMENT, "{}", created.text);
            assert_eq!(store.summary(AGENT).text, before, "a refused batch wrote");
        }
        Some(tasks) => {
            assert!(created.ok(), "refused a valid batch: {}", created.text);
            let got = check_task_list("create_tasks", &created, AGENT);
            assert_eq!(created.value["total"], tasks.len());
            assert_eq!(got.len(), tasks.len());
            let created_at = got.first().map(|t| t["created"].clone());
            for (t, (title, description, priority)) in got.iter().zip(&tasks) {
                assert_eq!(t["id"], format!("FUZ-{:03}", state.next).as_str());
                state.next += 1;
                assert_eq!(t["title"], title.as_str());
                assert_eq!(&t["description"], description);
                assert_eq!(t["priority"], *priority);
                assert_eq!(t["status"], "queued");
                assert_eq!(Some(t["created"].clone()), created_at, "one created second");
            }
            let s = check_summary("summary", &store.summary(AGENT));
            assert_eq!(s[4], tasks.len() as u64);
            let listed = check_task_list("list", &store.list(AGENT, None), AGENT);
            assert_eq!(listed.len(), tasks.len());
            // Listed by priority, then creation order.
            let key = |t: &Value| (t["priority"].as_u64(), id_number(t["id"].as_str().unwrap()));
            assert!(listed.windows(2).all(|w| key(&w[0]) < key(&w[1])), "order");
            for t in &got {
                store
                    .delete(AGENT, t["id"].as_str().unwrap())
                    .expect_ok("delete");
            }
        }
    }
});
