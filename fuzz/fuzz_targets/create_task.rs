//! `backlog_create_task` with raw bytes as `task_json`.
//!
//! The outcome is predicted from the contract: a UTF-8 JSON object with each key once,
//! only title/description/priority, a valid title, description and priority must
//! succeed with exactly those values and the next ID; anything else must be code 1 and
//! write nothing. Each created task is read back, counted, and deleted again.
#![no_main]

use std::sync::Mutex;

use agent_backlog_fuzz::*;
use libfuzzer_sys::fuzz_target;

const AGENT: &str = "fuzz-agent";

struct State {
    store: Handle,
    /// The number the next task must get.
    next: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let state = guard.get_or_insert_with(|| State {
        store: Handle::memory(),
        next: 1,
    });
    let store = &state.store;
    let buffer = c_buffer(data);
    let expected = request_object(&buffer, &["title", "description", "priority"])
        .and_then(|map| expect_new_task(&map));
    let before = store.summary(AGENT).text;
    let created = store.create(AGENT, &buffer);
    match expected {
        None => {
            assert_eq!(created.code, BACKLOG_INVALID_ARGUMENT, "{}", created.text);
            assert_eq!(store.summary(AGENT).text, before, "a refused create wrote");
        }
        Some((title, description, priority)) => {
            assert!(created.ok(), "refused a valid task: {}", created.text);
            check_task("create_task", &created);
            let t = &created.value;
            let id = format!("FUZ-{:03}", state.next);
            state.next += 1;
            assert_eq!(t["id"], id.as_str());
            assert_eq!(t["title"], title.as_str());
            assert_eq!(t["description"], description);
            assert_eq!(t["priority"], priority);
            assert_eq!(t["status"], "queued");
            assert_eq!(store.get(AGENT, &id).text, created.text, "get differs");
            let s = check_summary("summary", &store.summary(AGENT));
            assert_eq!(s, [1, 0, 0, 0, 1]);
            let listed = store.list(AGENT, None);
            assert_eq!(check_task_list("list", &listed, AGENT).len(), 1);
            let deleted = store.delete(AGENT, &id).expect_ok("delete");
            assert_eq!(deleted, serde_json::json!({ "deleted": id }));
        }
    }
});
