//! `backlog_call` answers every Part I operation with the same bytes as the dedicated
//! function: results, `null` from a claim with nothing queued, and error objects.
//!
//! Two stores get the same calls in the same order, one through the dedicated
//! functions and one through `backlog_call`; every answer is compared. Timestamps are
//! the only values that may differ (two calls can straddle a second), so they are
//! masked in the answers of writes; reads of the same state are compared byte for byte.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;

use agent_backlog_capi::*;

struct Handle(*mut BacklogStore);

impl Handle {
    fn open() -> Handle {
        let path = CString::new(":memory:").unwrap();
        let mut store = ptr::null_mut();
        let mut error: *mut c_char = ptr::null_mut();
        // SAFETY: a valid string and writable out-parameters.
        let code = unsafe { backlog_open(path.as_ptr(), &mut store, &mut error) };
        assert_eq!(code, 0);
        Handle(store)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        backlog_close(self.0);
    }
}

fn take(f: impl FnOnce(*mut *mut c_char) -> c_int) -> (c_int, String) {
    let mut out: *mut c_char = ptr::null_mut();
    let code = f(&mut out);
    // SAFETY: the library wrote a NUL-terminated string, freed once here.
    let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    // SAFETY: `out` came from the library and is freed once.
    unsafe { backlog_string_free(out) };
    (code, text)
}

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn via_call(store: &Handle, op: &str, request: &str) -> (c_int, String) {
    let (op, request) = (c(op), c(request));
    // SAFETY: an open handle, valid strings, a writable out-parameter.
    take(|out| unsafe { backlog_call(store.0, op.as_ptr(), request.as_ptr(), out) })
}

/// The dedicated function of `op`, called with the request's parts.
fn via_function(store: &Handle, op: &str, request: &str) -> (c_int, String) {
    let r: serde_json::Value = serde_json::from_str(request).unwrap();
    let s = |key: &str| c(r[key].as_str().unwrap_or(""));
    let body = |key: &str| c(&r[key].to_string());
    let filter = |keys: &[&str]| {
        let mut map = serde_json::Map::new();
        for key in keys {
            if let Some(v) = r.get(*key) {
                map.insert((*key).to_owned(), v.clone());
            }
        }
        c(&serde_json::Value::Object(map).to_string())
    };
    let h = store.0;
    // SAFETY (every arm): an open handle, valid NUL-terminated strings that outlive the
    // call, and the writable out-parameter that `take` provides.
    match op {
        "list_tasks" => {
            let (a, q) = (s("agent_id"), filter(&["status", "limit", "offset"]));
            take(|out| unsafe { backlog_list_tasks(h, a.as_ptr(), q.as_ptr(), out) })
        }
        "create_task" => {
            let (a, t) = (s("agent_id"), body("task"));
            take(|out| unsafe { backlog_create_task(h, a.as_ptr(), t.as_ptr(), out) })
        }
        "create_tasks" => {
            let (a, t) = (s("agent_id"), body("tasks"));
            take(|out| unsafe { backlog_create_tasks(h, a.as_ptr(), t.as_ptr(), out) })
        }
        "get_task" => {
            let (a, t) = (s("agent_id"), s("task_id"));
            take(|out| unsafe { backlog_get_task(h, a.as_ptr(), t.as_ptr(), out) })
        }
        "update_task" => {
            let (a, t, p) = (s("agent_id"), s("task_id"), body("patch"));
            take(|out| unsafe { backlog_update_task(h, a.as_ptr(), t.as_ptr(), p.as_ptr(), out) })
        }
        "delete_task" => {
            let (a, t) = (s("agent_id"), s("task_id"));
            take(|out| unsafe { backlog_delete_task(h, a.as_ptr(), t.as_ptr(), out) })
        }
        "query_tasks" => {
            let q = filter(&["status", "priority", "agent_id", "limit", "offset"]);
            take(|out| unsafe { backlog_query_tasks(h, q.as_ptr(), out) })
        }
        "summary" => {
            let a = s("agent_id");
            take(|out| unsafe { backlog_summary(h, a.as_ptr(), out) })
        }
        "claim_next" => {
            let a = s("agent_id");
            take(|out| unsafe { backlog_claim_next(h, a.as_ptr(), out) })
        }
        "set_prefix" => {
            let (a, p) = (s("agent_id"), s("prefix"));
            take(|out| unsafe { backlog_set_prefix(h, a.as_ptr(), p.as_ptr(), out) })
        }
        other => panic!("no dedicated function for {other}"),
    }
}

/// Masks RFC 3339 timestamps (`2026-03-28T10:00:00Z`) as `T`.
fn mask_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let stamp = bytes.len() - i >= 20
            && bytes[i..i + 20].iter().enumerate().all(|(k, b)| match k {
                4 | 7 => *b == b'-',
                10 => *b == b'T',
                13 | 16 => *b == b':',
                19 => *b == b'Z',
                _ => b.is_ascii_digit(),
            });
        if stamp {
            out.push('T');
            i += 20;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

#[test]
fn backlog_call_answers_as_the_dedicated_functions() {
    #[rustfmt::skip]
    let steps: &[(&str, &str)] = &[
        ("set_prefix", r#"{"agent_id":"growth-bot","prefix":"GRW"}"#),
        ("set_prefix", r#"{"agent_id":"other","prefix":"GRW"}"#),
        ("create_task", r#"{"agent_id":"marketing-lead","task":{"title":"Write 3 LinkedIn posts","description":"Focus on ROI...","priority":3}}"#),
        ("create_task", r#"{"agent_id":"marketing-lead","task":{"title":"  Audit pricing  "}}"#),
        ("create_task", r#"{"agent_id":"marketing-lead","task":{"title":"x","priority":11}}"#),
        ("create_task", r#"{"agent_id":"bad agent","task":{"title":"x"}}"#),
        ("create_tasks", r#"{"agent_id":"growth-bot","tasks":[{"title":"a"},{"title":"b","priority":1}]}"#),
        ("create_tasks", r#"{"agent_id":"growth-bot","tasks":[{"title":"a"},{"title":" "}]}"#),
        ("create_tasks", r#"{"agent_id":"growth-bot","tasks":[]}"#),
        ("list_tasks", r#"{"agent_id":"marketing-lead"}"#),
        ("list_tasks", r#"{"agent_id":"marketing-lead","status":"queued","limit":1,"offset":1}"#),
        ("list_tasks", r#"{"agent_id":"marketing-lead","status":"done"}"#),
        ("query_tasks", r#"{}"#),
        ("query_tasks", r#"{"priority":3,"agent_id":"marketing-lead"}"#),
        ("query_tasks", r#"{"limit":-1}"#),
        ("get_task", r#"{"agent_id":"marketing-lead","task_id":"MKT-001"}"#),
        ("get_task", r#"{"agent_id":"marketing-lead","task_id":"MKT-099"}"#),
        ("get_task", r#"{"agent_id":"marketing-lead","task_id":"mkt-1"}"#),
        ("claim_next", r#"{"agent_id":"marketing-lead"}"#),
        ("update_task", r#"{"agent_id":"marketing-lead","task_id":"MKT-001","patch":{"status":"complete","result":"3 posts"}}"#),
        ("update_task", r#"{"agent_id":"marketing-lead","task_id":"MKT-001","patch":{"status":"in_progress"}}"#),
        ("update_task", r#"{"agent_id":"marketing-lead","task_id":"MKT-002","patch":{"status":"blocked","blocker":"needs data"}}"#),
        ("update_task", r#"{"agent_id":"marketing-lead","task_id":"MKT-002","patch":{"status":"blocked"}}"#),
        ("update_task", r#"{"agent_id":"marketing-lead","task_id":"MKT-002","patch":{}}"#),
        ("update_task", r#"{"agent_id":"marketing-lead","task_id":"MKT-002","patch":{"description":null,"priority":1}}"#),
        ("summary", r#"{"agent_id":"marketing-lead"}"#),
        ("summary", r#"{"agent_id":"nobody"}"#),
        ("claim_next", r#"{"agent_id":"marketing-lead"}"#),
        ("claim_next", r#"{"agent_id":"growth-bot"}"#),
        ("delete_task", r#"{"agent_id":"growth-bot","task_id":"GRW-001"}"#),
        ("delete_task", r#"{"agent_id":"growth-bot","task_id":"GRW-001"}"#),
        ("query_tasks", r#"{"status":"in_progress"}"#),
        ("set_prefix", r#"{"agent_id":"marketing-lead","prefix":"NEW"}"#),
    ];
    let (dedicated, by_name) = (Handle::open(), Handle::open());
    let mut seen = std::collections::BTreeSet::new();
    for (op, request) in steps {
        let a = via_function(&dedicated, op, request);
        let b = via_call(&by_name, op, request);
        assert_eq!(a.0, b.0, "{op} {request}: {} / {}", a.1, b.1);
        assert_eq!(mask_times(&a.1), mask_times(&b.1), "{op} {request}");
        seen.insert((*op, a.0 == 0));
        // The state is the same: a read of it is byte-identical.
        let all = via_function(&dedicated, "query_tasks", "{}");
        assert_eq!(all, via_call(&dedicated, "query_tasks", "{}"));
        assert_eq!(
            mask_times(&all.1),
            mask_times(&via_call(&by_name, "query_tasks", "{}").1)
        );
    }
    // Every Part I operation (those with a function of their own) was compared, in
    // success and in failure.
    const PART_ONE: [&str; 10] = [
        "list_tasks",
        "create_task",
        "get_task",
        "update_task",
        "delete_task",
        "query_tasks",
        "summary",
        "claim_next",
        "create_tasks",
        "set_prefix",
    ];
    for op in agent_backlog::ops::OPERATIONS
        .iter()
        .filter(|op| PART_ONE.contains(&op.name))
    {
        assert!(
            seen.contains(&(op.name, true)),
            "{} never succeeded",
            op.name
        );
        if op.name != "summary" && op.name != "claim_next" {
            assert!(seen.contains(&(op.name, false)), "{} never failed", op.name);
        }
    }
}

#[test]
fn backlog_call_refuses_what_is_not_a_request() {
    let store = Handle::open();
    for (op, request, needle) in [
        ("nap", "{}", "operation must be one of"),
        ("summary", "[]", "must be a JSON object"),
        ("summary", "{}", "agent_id is required"),
        (
            "summary",
            r#"{"agent_id":"a","extra":1}"#,
            "unknown field \"extra\"",
        ),
        (
            "summary",
            r#"{"agent_id":"a","agent_id":"b"}"#,
            "appears twice",
        ),
        (
            "update_task",
            r#"{"agent_id":"a","task_id":"A-001","patch":{"priority":1,"priority":2}}"#,
            "appears twice",
        ),
        (
            "get_task",
            r#"{"agent_id":7,"task_id":"A-001"}"#,
            "agent_id must be a string",
        ),
        ("create_task", r#"{"agent_id":"a"}"#, "task is required"),
        ("summary", "{", "must be JSON"),
    ] {
        let (code, json) = via_call(&store, op, request);
        assert_eq!(code, BACKLOG_INVALID_ARGUMENT, "{op} {request}: {json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let message = value["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{op} {request}: {message}");
    }
    // NULL operation and request: code 1, never a crash.
    // SAFETY: NULL strings are documented as code 1.
    let (code, json) = take(|out| unsafe { backlog_call(store.0, ptr::null(), ptr::null(), out) });
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(json.contains("operation must not be NULL"), "{json}");
    assert_eq!(
        take(|out| unsafe {
            let (op, req) = (c("summary"), c(r#"{"agent_id":"a"}"#));
            backlog_call(ptr::null(), op.as_ptr(), req.as_ptr(), out)
        })
        .0,
        BACKLOG_INVALID_ARGUMENT
    );
}

/// Handles are counted, never reused: a closed handle stays closed after other stores
/// are opened (an address could be given to the next store; a count never is).
#[test]
fn a_stale_handle_never_reaches_a_newer_store() {
    let first = Handle::open();
    let stale = first.0;
    drop(first);
    let newer: Vec<Handle> = (0..50).map(|_| Handle::open()).collect();
    assert!(
        newer.iter().all(|h| h.0 != stale),
        "a handle was given twice"
    );
    let (code, json) = via_call(&Handle(stale), "summary", r#"{"agent_id":"a"}"#);
    assert_eq!(code, BACKLOG_STORAGE, "{json}");
    assert!(json.contains("the store is closed"), "{json}");
    for h in &newer {
        assert_eq!(via_call(h, "summary", r#"{"agent_id":"a"}"#).0, BACKLOG_OK);
    }
}

/// A worker's loop over `backlog_call` (SPEC §10, §17): a leased claim, a renewal, a
/// finish; a token that lost its lease is code 7 with the `lease_lost` error JSON.
#[test]
fn leases_through_backlog_call_and_lease_lost_is_code_7() {
    let store = Handle::open();
    let (code, _) = via_call(
        &store,
        "create_task",
        r#"{"agent_id": "ops", "task": {"title": "Rotate keys"}}"#,
    );
    assert_eq!(code, 0);
    let (code, claim) = via_call(
        &store,
        "claim_lease",
        r#"{"agent_id": "ops", "worker": "w1", "lease_seconds": 30}"#,
    );
    assert_eq!(code, 0, "{claim}");
    let claim: serde_json::Value = serde_json::from_str(&claim).unwrap();
    let token = claim["lease"]["token"].as_str().unwrap().to_owned();
    let request = format!(r#"{{"token": "{token}", "lease_seconds": 60}}"#);
    let (code, lease) = via_call(&store, "renew_lease", &request);
    assert_eq!(code, 0, "{lease}");
    assert!(lease.starts_with(&format!(
        r#"{{"token":"{token}","agent_id":"ops","task_id":"OPS-001""#
    )));
    // Another hand moves the task: the worker's token has lost its lease.
    let (code, _) = via_call(
        &store,
        "update_task",
        r#"{"agent_id": "ops", "task_id": "OPS-001", "patch": {"status": "queued"}}"#,
    );
    assert_eq!(code, 0);
    let finish = format!(r#"{{"token": "{token}", "status": "complete", "result": "late"}}"#);
    let (code, error) = via_call(&store, "finish_lease", &finish);
    assert_eq!(code, BACKLOG_LEASE_LOST);
    assert!(
        error.starts_with(r#"{"error":{"code":"lease_lost","message":"#),
        "{error}"
    );
    let (code, lease) = via_call(
        &store,
        "get_lease",
        r#"{"agent_id": "ops", "task_id": "OPS-001"}"#,
    );
    assert_eq!((code, lease.as_str()), (0, "null"));
    let (code, waited) = via_call(
        &store,
        "wait_for_task",
        r#"{"agent_id": "ops", "worker": "w2", "timeout_seconds": 0.5}"#,
    );
    assert_eq!(code, 0);
    assert!(waited.contains(r#""fence":3,"attempt":2"#), "{waited}");
}
