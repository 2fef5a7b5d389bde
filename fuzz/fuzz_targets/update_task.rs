//! `backlog_update_task` with raw bytes as `patch_json`, applied to one task in each
//! status (queued, in_progress, blocked, complete).
//!
//! The outcome is predicted from SPEC §2–§4 (written again in `expect_update`): the
//! code, and on success every field of the updated task; a refused patch must leave
//! the task byte for byte as it was. A task that moved out of its status is replaced
//! by a fresh one in that status, so every input meets all four.
#![no_main]

use std::sync::Mutex;

use agent_backlog_fuzz::*;
use libfuzzer_sys::fuzz_target;

const AGENT: &str = "fuzz-agent";
const SLOTS: [&str; 4] = ["queued", "in_progress", "blocked", "complete"];

struct State {
    store: Handle,
    /// The task ID in each slot.
    ids: [String; 4],
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Creates a task and moves it to `status`; returns its ID.
fn fresh(store: &Handle, status: &str) -> String {
    let task = store
        .create(
            AGENT,
            &c_buffer(br#"{"title":"slot","description":"d","priority":4}"#),
        )
        .expect_ok("create");
    let id = task["id"].as_str().unwrap().to_owned();
    let moves: &[&[u8]] = match status {
        "queued" => &[],
        "in_progress" => &[br#"{"status":"in_progress"}"#],
        "blocked" => &[br#"{"status":"blocked","blocker":"waiting"}"#],
        _ => &[
            br#"{"status":"in_progress"}"#,
            br#"{"status":"complete","result":"done"}"#,
        ],
    };
    for patch in moves {
        store.update(AGENT, &id, &c_buffer(patch)).expect_ok("move");
    }
    id
}

fuzz_target!(|data: &[u8]| {
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let state = guard.get_or_insert_with(|| {
        let store = Handle::memory();
        let ids = SLOTS.map(|s| fresh(&store, s));
        State { store, ids }
    });
    let buffer = c_buffer(data);
    let patch = request_object(
        &buffer,
        &[
            "status",
            "priority",
            "title",
            "description",
            "blocker",
            "result",
        ],
    );
    for (slot, status) in SLOTS.iter().enumerate() {
        let store = &state.store;
        let id = state.ids[slot].clone();
        let before = store.get(AGENT, &id);
        check_task("get", &before);
        let expected = match &patch {
            Some(map) => expect_update(&before.value, map),
            None => Err(BACKLOG_INVALID_ARGUMENT),
        };
        let updated = store.update(AGENT, &id, &buffer);
        match expected {
            Err(code) => {
                assert_eq!(
                    updated.code, code,
                    "{status} task: expected code {code}: {}",
                    updated.text
                );
                let after = store.get(AGENT, &id);
                assert_eq!(after.text, before.text, "a refused patch wrote");
            }
            Ok(task) => {
                assert!(updated.ok(), "{status} task: refused: {}", updated.text);
                check_task("update_task", &updated);
                check_expected_task(status, &updated.value, &task);
                let after = store.get(AGENT, &id);
                assert_eq!(after.text, updated.text, "get differs from the update");
            }
        }
        let now = store.get(AGENT, &id).value;
        if now["status"] != *status {
            store.delete(AGENT, &id).expect_ok("delete");
            state.ids[slot] = fresh(store, status);
        }
    }
    let listed = state.store.list(AGENT, None);
    let tasks = check_task_list("list", &listed, AGENT);
    let summary = check_summary("summary", &state.store.summary(AGENT));
    assert_eq!(summary, [1, 1, 1, 1, 4]);
    assert_eq!(tasks.len(), 4);
});
