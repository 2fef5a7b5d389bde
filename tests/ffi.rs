//! The C ABI at its boundary, called from Rust: every function, every error code,
//! NULL pointers, invalid UTF-8, malformed and oversized JSON, closed handles, a
//! panic through the guard, threads sharing a handle, and the same operations through
//! the Rust API and the C ABI giving the same JSON.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;

use agent_backlog::{ListQuery, NewTask, Status, Store, TaskPatch, TaskQuery};
use agent_backlog_capi::*;

/// A string that no pointer written by the library can equal.
const SENTINEL: *mut c_char = ptr::dangling_mut::<c_char>();

/// Runs a call that writes JSON to its out-parameter; returns the code and the JSON,
/// freed with `backlog_string_free`. Checks the contract on the out-parameter: a
/// non-NULL, compact, NUL-terminated string.
fn call(f: impl FnOnce(*mut *mut c_char) -> c_int) -> (c_int, String) {
    let mut out = SENTINEL;
    let code = f(&mut out);
    assert!(!out.is_null() && out != SENTINEL, "no JSON was written");
    // SAFETY: the library wrote a NUL-terminated string to `out`.
    let json = unsafe { CStr::from_ptr(out) }
        .to_str()
        .expect("the JSON is UTF-8")
        .to_owned();
    // SAFETY: `out` came from the library and is freed once.
    unsafe { backlog_string_free(out) };
    let value: serde_json::Value = serde_json::from_str(&json).expect("the output is JSON");
    assert!(is_compact(&json), "not compact: {json}");
    if code == BACKLOG_OK {
        assert!(value.get("error").is_none(), "{json}");
    } else {
        assert_eq!(value["error"]["code"], code_name(code), "{json}");
        assert!(value["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    (code, json)
}

/// Whether a JSON text has no white space outside its strings.
fn is_compact(json: &str) -> bool {
    let (mut in_string, mut escaped) = (false, false);
    for ch in json.chars() {
        match (in_string, escaped, ch) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            (false, _, c) if c.is_whitespace() => return false,
            _ => {}
        }
    }
    true
}

fn code_name(code: c_int) -> &'static str {
    match code {
        1 => "invalid_argument",
        2 => "not_found",
        3 => "invalid_transition",
        4 => "conflict",
        5 => "storage",
        6 => "internal",
        _ => panic!("unexpected code {code}"),
    }
}

fn message(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["error"]["message"].as_str().unwrap().to_owned()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// A C string that is not UTF-8.
fn bad_utf8() -> CString {
    CString::new(vec![b'a', 0xff, 0xfe, b'z']).unwrap()
}

struct Handle(*mut BacklogStore);
// SAFETY: a handle is only a token; the library synchronizes its use.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Handle {
    fn ptr(&self) -> *const BacklogStore {
        self.0
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        backlog_close(self.0);
    }
}

fn open_options(path: &str, options: Option<&str>) -> (c_int, *mut BacklogStore, Option<String>) {
    let path = c(path);
    let options = options.map(c);
    let mut store = SENTINEL.cast::<BacklogStore>();
    let mut error = SENTINEL;
    // SAFETY: valid strings and out-parameters.
    let code = unsafe {
        backlog_open_with_options(
            path.as_ptr(),
            options.as_ref().map_or(ptr::null(), |o| o.as_ptr()),
            &mut store,
            &mut error,
        )
    };
    assert_ne!(store, SENTINEL.cast(), "out_store was not written");
    assert_ne!(error, SENTINEL, "out_error was not written");
    let error = if error.is_null() {
        None
    } else {
        // SAFETY: the library wrote a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(error) }
            .to_str()
            .unwrap()
            .to_owned();
        // SAFETY: freed once.
        unsafe { backlog_string_free(error) };
        Some(text)
    };
    assert_eq!(code == BACKLOG_OK, !store.is_null());
    assert_eq!(code == BACKLOG_OK, error.is_none());
    (code, store, error)
}

fn open_mem() -> Handle {
    let path = c(":memory:");
    let mut store = ptr::null_mut();
    let mut error = ptr::null_mut();
    // SAFETY: valid strings and out-parameters.
    let code = unsafe { backlog_open(path.as_ptr(), &mut store, &mut error) };
    assert_eq!(code, BACKLOG_OK);
    assert!(error.is_null());
    assert!(!store.is_null());
    Handle(store)
}

fn create(h: &Handle, agent: &str, body: &str) -> (c_int, String) {
    let (agent, body) = (c(agent), c(body));
    // SAFETY: valid strings; `call` passes a valid out-parameter.
    call(|out| unsafe { backlog_create_task(h.ptr(), agent.as_ptr(), body.as_ptr(), out) })
}

fn get(h: &Handle, agent: &str, id: &str) -> (c_int, String) {
    let (agent, id) = (c(agent), c(id));
    // SAFETY: as above.
    call(|out| unsafe { backlog_get_task(h.ptr(), agent.as_ptr(), id.as_ptr(), out) })
}

fn update(h: &Handle, agent: &str, id: &str, patch: &str) -> (c_int, String) {
    let (agent, id, patch) = (c(agent), c(id), c(patch));
    // SAFETY: as above.
    call(|out| unsafe {
        backlog_update_task(h.ptr(), agent.as_ptr(), id.as_ptr(), patch.as_ptr(), out)
    })
}

fn claim(h: &Handle, agent: &str) -> (c_int, String) {
    let agent = c(agent);
    // SAFETY: as above.
    call(|out| unsafe { backlog_claim_next(h.ptr(), agent.as_ptr(), out) })
}

fn summary(h: &Handle, agent: &str) -> (c_int, String) {
    let agent = c(agent);
    // SAFETY: as above.
    call(|out| unsafe { backlog_summary(h.ptr(), agent.as_ptr(), out) })
}

fn list(h: &Handle, agent: &str, query: Option<&str>) -> (c_int, String) {
    let agent = c(agent);
    let query = query.map(c);
    let q = query.as_ref().map_or(ptr::null(), |q| q.as_ptr());
    // SAFETY: as above.
    call(|out| unsafe { backlog_list_tasks(h.ptr(), agent.as_ptr(), q, out) })
}

fn query(h: &Handle, query: Option<&str>) -> (c_int, String) {
    let query = query.map(c);
    let q = query.as_ref().map_or(ptr::null(), |q| q.as_ptr());
    // SAFETY: as above.
    call(|out| unsafe { backlog_query_tasks(h.ptr(), q, out) })
}

fn field(json: &str, name: &str) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value[name].clone()
}

#[test]
fn every_function_succeeds_with_the_contract_shapes() {
    // SAFETY: backlog_version returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(backlog_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));

    let h = open_mem();
    let (agent, prefix) = (c("marketing-lead"), c("MKT"));
    // SAFETY: valid strings and out-parameter.
    let (code, json) =
        call(|out| unsafe { backlog_set_prefix(h.ptr(), agent.as_ptr(), prefix.as_ptr(), out) });
    assert_eq!(
        (code, json.as_str()),
        (0, r#"{"agent_id":"marketing-lead","prefix":"MKT"}"#)
    );

    let (code, task) = create(
        &h,
        "marketing-lead",
        r#"{"title":"Write 3 LinkedIn posts","description":"Focus on ROI...","priority":3}"#,
    );
    assert_eq!(code, 0);
    let created = field(&task, "created");
    let created = created.as_str().unwrap();
    assert_eq!(
        task,
        format!(
            r#"{{"id":"MKT-001","title":"Write 3 LinkedIn posts","description":"Focus on ROI...","priority":3,"status":"queued","created":"{created}","started":null,"completed":null,"result":null,"blocker":null}}"#
        )
    );

    let batch = c(r#"[{"title":"Audit pricing pages"},{"title":"Plan webinar","priority":9}]"#);
    // SAFETY: valid strings and out-parameter.
    let (code, json) =
        call(|out| unsafe { backlog_create_tasks(h.ptr(), agent.as_ptr(), batch.as_ptr(), out) });
    assert_eq!(code, 0);
    assert_eq!(field(&json, "total"), 2);
    assert_eq!(field(&json, "tasks")[1]["id"], "MKT-003");

    assert_eq!(get(&h, "marketing-lead", "MKT-001"), (0, task.clone()));

    let (code, json) = list(&h, "marketing-lead", None);
    assert_eq!((code, field(&json, "total")), (0, 3.into()));
    assert_eq!(field(&json, "agent_id"), "marketing-lead");
    let (code, json) = list(&h, "marketing-lead", Some(r#"{"limit":1,"offset":1}"#));
    assert_eq!(code, 0);
    assert_eq!(field(&json, "tasks")[0]["id"], "MKT-002");
    assert_eq!(field(&json, "total"), 3);

    let (code, json) = claim(&h, "marketing-lead");
    assert_eq!(code, 0);
    assert_eq!(field(&json, "id"), "MKT-001");
    assert_eq!(field(&json, "status"), "in_progress");

    let (code, json) = update(
        &h,
        "marketing-lead",
        "MKT-001",
        r#"{"status":"complete","result":"Generated 3 posts"}"#,
    );
    assert_eq!(code, 0);
    assert_eq!(field(&json, "result"), "Generated 3 posts");
    assert!(field(&json, "completed").is_string());

    let (code, json) = query(&h, Some(r#"{"status":"complete"}"#));
    assert_eq!(code, 0);
    assert!(json.starts_with(r#"{"tasks":[{"agent_id":"marketing-lead","id":"MKT-001","#));
    assert_eq!(field(&json, "total"), 1);
    let (code, json) = query(&h, None);
    assert_eq!((code, field(&json, "total")), (0, 3.into()));

    let (agent, id) = (c("marketing-lead"), c("MKT-003"));
    // SAFETY: valid strings and out-parameter.
    let (code, json) =
        call(|out| unsafe { backlog_delete_task(h.ptr(), agent.as_ptr(), id.as_ptr(), out) });
    assert_eq!((code, json.as_str()), (0, r#"{"deleted":"MKT-003"}"#));

    assert_eq!(
        summary(&h, "marketing-lead"),
        (
            0,
            r#"{"queued":1,"in_progress":0,"complete":1,"blocked":0,"total":2}"#.to_owned()
        )
    );
    assert_eq!(claim(&h, "marketing-lead").0, 0);
    assert_eq!(claim(&h, "marketing-lead"), (0, "null".to_owned()));
    assert_eq!(
        summary(&h, "nobody"),
        (
            0,
            r#"{"queued":0,"in_progress":0,"complete":0,"blocked":0,"total":0}"#.to_owned()
        )
    );
}

#[test]
fn every_error_code_with_its_error_object() {
    let h = open_mem();
    assert_eq!(create(&h, "ops", r#"{"title":"Rotate keys"}"#).0, 0);

    // 1 invalid_argument
    let (code, json) = create(&h, "ops", r#"{"title":"x","priority":11}"#);
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(message(&json).contains("priority"), "{json}");
    // 2 not_found, with the exact error object
    assert_eq!(
        get(&h, "ops", "OPS-009"),
        (
            BACKLOG_NOT_FOUND,
            r#"{"error":{"code":"not_found","message":"task OPS-009 is not in the backlog of ops"}}"#
                .to_owned()
        )
    );
    // 3 invalid_transition: queued -> complete
    let (code, json) = update(&h, "ops", "OPS-001", r#"{"status":"complete"}"#);
    assert_eq!(code, BACKLOG_INVALID_TRANSITION, "{json}");
    assert_eq!(field(&get(&h, "ops", "OPS-001").1, "status"), "queued");
    // 4 conflict: a prefix change after the first task, and a prefix held elsewhere
    let (agent, prefix) = (c("ops"), c("XYZ"));
    // SAFETY: valid strings and out-parameter.
    let (code, _) =
        call(|out| unsafe { backlog_set_prefix(h.ptr(), agent.as_ptr(), prefix.as_ptr(), out) });
    assert_eq!(code, BACKLOG_CONFLICT);
    let (agent, prefix) = (c("other"), c("OPS"));
    // SAFETY: valid strings and out-parameter.
    let (code, json) =
        call(|out| unsafe { backlog_set_prefix(h.ptr(), agent.as_ptr(), prefix.as_ptr(), out) });
    assert_eq!(code, BACKLOG_CONFLICT);
    assert!(message(&json).contains("held by agent ops"), "{json}");

    // 5 storage: a path in a folder that does not exist, and a file that is not SQLite
    let dir = std::env::temp_dir().join(format!("agent-backlog-ffi-{}", std::process::id()));
    let (code, store, error) =
        open_options(dir.join("missing/folder/x.db").to_str().unwrap(), None);
    assert_eq!((code, store), (BACKLOG_STORAGE, ptr::null_mut()));
    assert!(error.unwrap().contains(r#""code":"storage""#));
    std::fs::create_dir_all(&dir).unwrap();
    let text_file = dir.join("notes.txt");
    let content = "this is not a database, just some text ".repeat(200);
    std::fs::write(&text_file, &content).unwrap();
    let (code, _, error) = open_options(text_file.to_str().unwrap(), None);
    assert_eq!(code, BACKLOG_STORAGE, "{error:?}");
    assert_eq!(
        std::fs::read_to_string(&text_file).unwrap(),
        content,
        "the foreign file was modified"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // 6 internal: see panic_through_the_guard
}

#[test]
fn open_with_options() {
    let (code, store, _) = open_options(":memory:", None);
    assert_eq!(code, BACKLOG_OK);
    backlog_close(store);
    let (code, store, _) = open_options(
        ":memory:",
        Some(r#"{"busy_timeout_ms":250,"durability":"full"}"#),
    );
    assert_eq!(code, BACKLOG_OK);
    backlog_close(store);
    for (bad, needle) in [
        (r#"{"busy_timeout":250}"#, "unknown field"),
        (r#"{"durability":"fast"}"#, "durability"),
        (r#"{"busy_timeout_ms":-1}"#, "busy_timeout_ms"),
        (r#"{"busy_timeout_ms":1.5}"#, "busy_timeout_ms"),
        (r#"{"durability":"full""#, "options"),
        ("[]", "options"),
    ] {
        let (code, store, error) = open_options(":memory:", Some(bad));
        let error = error.unwrap();
        assert_eq!(
            (code, store),
            (BACKLOG_INVALID_ARGUMENT, ptr::null_mut()),
            "{bad}"
        );
        assert!(message(&error).contains(needle), "{bad}: {error}");
    }
    // Not a path: empty.
    let (code, _, error) = open_options("", None);
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT, "{error:?}");
}

#[test]
fn null_pointers_are_invalid_argument_never_a_crash() {
    let h = open_mem();
    let (agent, id, body, patch, prefix) = (
        c("ops"),
        c("OPS-001"),
        c(r#"{"title":"t"}"#),
        c("{}"),
        c("OPS"),
    );
    let batch = c(r#"[{"title":"t"}]"#);
    let null = ptr::null::<c_char>();
    let s = h.ptr();
    let none = ptr::null::<BacklogStore>();

    // Each case: (what is NULL, the call). Every string argument and the store in turn.
    type Case<'a> = (&'a str, Box<dyn Fn(*mut *mut c_char) -> c_int + 'a>);
    // SAFETY (every closure): the arguments are NULL or valid strings, and `out` is NULL
    // or a valid out-parameter.
    let cases: Vec<Case> = vec![
        (
            "store",
            Box::new(|o| unsafe { backlog_list_tasks(none, agent.as_ptr(), null, o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_list_tasks(s, null, null, o) }),
        ),
        (
            "store",
            Box::new(|o| unsafe { backlog_create_task(none, agent.as_ptr(), body.as_ptr(), o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_create_task(s, null, body.as_ptr(), o) }),
        ),
        (
            "task_json",
            Box::new(|o| unsafe { backlog_create_task(s, agent.as_ptr(), null, o) }),
        ),
        (
            "store",
            Box::new(|o| unsafe { backlog_create_tasks(none, agent.as_ptr(), batch.as_ptr(), o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_create_tasks(s, null, batch.as_ptr(), o) }),
        ),
        (
            "tasks_json_array",
            Box::new(|o| unsafe { backlog_create_tasks(s, agent.as_ptr(), null, o) }),
        ),
        (
            "store",
            Box::new(|o| unsafe { backlog_get_task(none, agent.as_ptr(), id.as_ptr(), o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_get_task(s, null, id.as_ptr(), o) }),
        ),
        (
            "task_id",
            Box::new(|o| unsafe { backlog_get_task(s, agent.as_ptr(), null, o) }),
        ),
        (
            "store",
            Box::new(|o| unsafe {
                backlog_update_task(none, agent.as_ptr(), id.as_ptr(), patch.as_ptr(), o)
            }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_update_task(s, null, id.as_ptr(), patch.as_ptr(), o) }),
        ),
        (
            "task_id",
            Box::new(|o| unsafe {
                backlog_update_task(s, agent.as_ptr(), null, patch.as_ptr(), o)
            }),
        ),
        (
            "patch_json",
            Box::new(|o| unsafe { backlog_update_task(s, agent.as_ptr(), id.as_ptr(), null, o) }),
        ),
        (
            "store",
            Box::new(|o| unsafe { backlog_delete_task(none, agent.as_ptr(), id.as_ptr(), o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_delete_task(s, null, id.as_ptr(), o) }),
        ),
        (
            "task_id",
            Box::new(|o| unsafe { backlog_delete_task(s, agent.as_ptr(), null, o) }),
        ),
        (
            "store",
            Box::new(|o| unsafe { backlog_query_tasks(none, null, o) }),
        ),
        (
            "store",
            Box::new(|o| unsafe { backlog_summary(none, agent.as_ptr(), o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_summary(s, null, o) }),
        ),
        (
            "store",
            Box::new(|o| unsafe { backlog_claim_next(none, agent.as_ptr(), o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_claim_next(s, null, o) }),
        ),
        (
            "store",
            Box::new(|o| unsafe { backlog_set_prefix(none, agent.as_ptr(), prefix.as_ptr(), o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_set_prefix(s, null, prefix.as_ptr(), o) }),
        ),
        (
            "prefix",
            Box::new(|o| unsafe { backlog_set_prefix(s, agent.as_ptr(), null, o) }),
        ),
    ];
    for (what, f) in &cases {
        let (code, json) = call(f);
        assert_eq!(code, BACKLOG_INVALID_ARGUMENT, "{what}: {json}");
        assert!(
            message(&json).starts_with(&format!("{what} must not be NULL")),
            "{what}: {json}"
        );
    }

    // A NULL out-parameter: code 1, and the call does nothing (no task was created).
    // SAFETY: valid strings; a NULL out-parameter is allowed.
    let code = unsafe { backlog_create_task(s, agent.as_ptr(), body.as_ptr(), ptr::null_mut()) };
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    // SAFETY: as above.
    let code = unsafe { backlog_create_tasks(s, agent.as_ptr(), batch.as_ptr(), ptr::null_mut()) };
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    // SAFETY: as above.
    let code = unsafe { backlog_set_prefix(s, agent.as_ptr(), prefix.as_ptr(), ptr::null_mut()) };
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert_eq!(field(&summary(&h, "ops").1, "total"), 0);
    assert_eq!(field(&list(&h, "ops", None).1, "total"), 0);
    let calls: [fn(*const BacklogStore) -> c_int; 7] = [
        // SAFETY (each): a NULL out-parameter is allowed; the other arguments are valid.
        |s| unsafe { backlog_list_tasks(s, c"ops".as_ptr(), ptr::null(), ptr::null_mut()) },
        |s| unsafe { backlog_get_task(s, c"ops".as_ptr(), c"OPS-001".as_ptr(), ptr::null_mut()) },
        |s| unsafe {
            backlog_update_task(
                s,
                c"ops".as_ptr(),
                c"OPS-001".as_ptr(),
                c"{}".as_ptr(),
                ptr::null_mut(),
            )
        },
        |s| unsafe {
            backlog_delete_task(s, c"ops".as_ptr(), c"OPS-001".as_ptr(), ptr::null_mut())
        },
        |s| unsafe { backlog_query_tasks(s, ptr::null(), ptr::null_mut()) },
        |s| unsafe { backlog_summary(s, c"ops".as_ptr(), ptr::null_mut()) },
        |s| unsafe { backlog_claim_next(s, c"ops".as_ptr(), ptr::null_mut()) },
    ];
    for f in calls {
        assert_eq!(f(s), BACKLOG_INVALID_ARGUMENT);
        assert_eq!(f(ptr::null()), BACKLOG_INVALID_ARGUMENT);
    }

    // backlog_open: NULL path, NULL out_store (error JSON still written), NULL out_error.
    let mut store = SENTINEL.cast::<BacklogStore>();
    let mut error = SENTINEL;
    // SAFETY: valid out-parameters, NULL path.
    let code = unsafe { backlog_open(ptr::null(), &mut store, &mut error) };
    assert_eq!((code, store), (BACKLOG_INVALID_ARGUMENT, ptr::null_mut()));
    // SAFETY: the library wrote a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(error) }
        .to_str()
        .unwrap()
        .to_owned();
    // SAFETY: freed once.
    unsafe { backlog_string_free(error) };
    assert!(
        message(&text).starts_with("path must not be NULL"),
        "{text}"
    );

    let mut error = SENTINEL;
    // SAFETY: valid path and out_error, NULL out_store.
    let code = unsafe { backlog_open(c":memory:".as_ptr(), ptr::null_mut(), &mut error) };
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    // SAFETY: the library wrote a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(error) }
        .to_str()
        .unwrap()
        .to_owned();
    // SAFETY: freed once.
    unsafe { backlog_string_free(error) };
    assert!(
        message(&text).starts_with("out_store must not be NULL"),
        "{text}"
    );

    let mut store = SENTINEL.cast::<BacklogStore>();
    // SAFETY: valid path and out_store, NULL out_error: nothing is opened.
    let code = unsafe { backlog_open(c":memory:".as_ptr(), &mut store, ptr::null_mut()) };
    assert_eq!((code, store), (BACKLOG_INVALID_ARGUMENT, ptr::null_mut()));
    // SAFETY: NULL everywhere is allowed.
    let code = unsafe {
        backlog_open_with_options(ptr::null(), ptr::null(), ptr::null_mut(), ptr::null_mut())
    };
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);

    // Free and close of NULL do nothing.
    // SAFETY: NULL is allowed.
    unsafe { backlog_string_free(ptr::null_mut()) };
    backlog_close(ptr::null_mut());
}

#[test]
fn invalid_utf8_is_invalid_argument_naming_the_argument() {
    let h = open_mem();
    assert_eq!(create(&h, "ops", r#"{"title":"t"}"#).0, 0);
    let bad = bad_utf8();
    let (agent, id) = (c("ops"), c("OPS-001"));
    let s = h.ptr();
    let b = bad.as_ptr();
    type Case<'a> = (&'a str, Box<dyn Fn(*mut *mut c_char) -> c_int + 'a>);
    // SAFETY (every closure): valid strings and out-parameter.
    let cases: Vec<Case> = vec![
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_list_tasks(s, b, ptr::null(), o) }),
        ),
        (
            "query_json",
            Box::new(|o| unsafe { backlog_list_tasks(s, agent.as_ptr(), b, o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_create_task(s, b, c"{}".as_ptr(), o) }),
        ),
        (
            "task_json",
            Box::new(|o| unsafe { backlog_create_task(s, agent.as_ptr(), b, o) }),
        ),
        (
            "tasks_json_array",
            Box::new(|o| unsafe { backlog_create_tasks(s, agent.as_ptr(), b, o) }),
        ),
        (
            "task_id",
            Box::new(|o| unsafe { backlog_get_task(s, agent.as_ptr(), b, o) }),
        ),
        (
            "patch_json",
            Box::new(|o| unsafe { backlog_update_task(s, agent.as_ptr(), id.as_ptr(), b, o) }),
        ),
        (
            "task_id",
            Box::new(|o| unsafe { backlog_delete_task(s, agent.as_ptr(), b, o) }),
        ),
        (
            "query_json",
            Box::new(|o| unsafe { backlog_query_tasks(s, b, o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_summary(s, b, o) }),
        ),
        (
            "agent_id",
            Box::new(|o| unsafe { backlog_claim_next(s, b, o) }),
        ),
        (
            "prefix",
            Box::new(|o| unsafe { backlog_set_prefix(s, agent.as_ptr(), b, o) }),
        ),
    ];
    for (what, f) in &cases {
        let (code, json) = call(f);
        assert_eq!(code, BACKLOG_INVALID_ARGUMENT, "{what}: {json}");
        assert_eq!(
            message(&json),
            format!("{what} must be valid UTF-8, but the byte at offset 1 is not")
        );
    }
    // Nothing changed: the one task is still queued.
    assert_eq!(field(&get(&h, "ops", "OPS-001").1, "status"), "queued");

    let (code, _, error) = {
        let mut store = SENTINEL.cast::<BacklogStore>();
        let mut error = SENTINEL;
        // SAFETY: valid strings and out-parameters.
        let code = unsafe { backlog_open_with_options(b, ptr::null(), &mut store, &mut error) };
        // SAFETY: the library wrote a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(error) }
            .to_str()
            .unwrap()
            .to_owned();
        // SAFETY: freed once.
        unsafe { backlog_string_free(error) };
        (code, store, text)
    };
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(
        message(&error).starts_with("path must be valid UTF-8"),
        "{error}"
    );
    let (code, _, error) = open_options(":memory:", None);
    assert_eq!((code, error), (BACKLOG_OK, None));
}

#[test]
fn malformed_unknown_and_oversized_json() {
    let h = open_mem();
    for (body, needle) in [
        (r#"{"title":"t""#, "the task must be a JSON object"),
        ("", "the task must be a JSON object"),
        ("null", "the task must be a JSON object"),
        (r#"{"title":"t","owner":"me"}"#, "unknown field \"owner\""),
        (r#"{"title":"t","priority":"3"}"#, "priority"),
        (r#"{"title":"t","priority":3.0}"#, "priority"),
        (r#"{"title":"a","title":"b"}"#, "appears twice"),
        (r#"{"title":"   "}"#, "title"),
    ] {
        let (code, json) = create(&h, "ops", body);
        assert_eq!(code, BACKLOG_INVALID_ARGUMENT, "{body}");
        assert!(message(&json).contains(needle), "{body}: {json}");
    }
    let huge = format!(r#"{{"title":"{}"}}"#, "x".repeat(9 * 1024 * 1024));
    let (code, json) = create(&h, "ops", &huge);
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(message(&json).contains("the limit is"), "{json}");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (agent, deep) = (c("ops"), c(&deep));
    // SAFETY: valid strings and out-parameter.
    let (code, _) =
        call(|out| unsafe { backlog_create_tasks(h.ptr(), agent.as_ptr(), deep.as_ptr(), out) });
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    let huge_batch = c(&format!("[{}]", " ".repeat(65 * 1024 * 1024)));
    // SAFETY: valid strings and out-parameter.
    let (code, json) = call(|out| unsafe {
        backlog_create_tasks(h.ptr(), agent.as_ptr(), huge_batch.as_ptr(), out)
    });
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(message(&json).contains("the limit is"), "{json}");

    let (code, json) = list(&h, "ops", Some(r#"{"priority":1}"#));
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(
        message(&json).starts_with("unknown field \"priority\""),
        "{json}"
    );
    let (code, json) = query(&h, Some(r#"{"status":"done"}"#));
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(
        message(&json).starts_with("status must be one of"),
        "{json}"
    );
    assert_eq!(create(&h, "ops", r#"{"title":"t"}"#).0, 0);
    let (code, json) = update(&h, "ops", "OPS-001", r#"{"status":null}"#);
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(
        message(&json).starts_with("status cannot be null"),
        "{json}"
    );
    // A NUL inside a JSON string is refused by the core, not truncated.
    let (code, _) = create(&h, "ops", r#"{"title":"a\u0000b"}"#);
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    // Nothing but the one good task was written.
    assert_eq!(field(&summary(&h, "ops").1, "total"), 1);
}

#[test]
fn closed_and_unknown_handles() {
    let h = open_mem();
    assert_eq!(create(&h, "ops", r#"{"title":"t"}"#).0, 0);
    let raw = h.0;
    backlog_close(raw);
    // Every call after the close is a storage error (SPEC §8).
    let (code, json) = summary(&h, "ops");
    assert_eq!(code, BACKLOG_STORAGE);
    assert!(
        message(&json).starts_with("the store is closed (backlog_close was called on this handle)"),
        "{json}"
    );
    assert_eq!(claim(&h, "ops").0, BACKLOG_STORAGE);
    // Closing again (here and when `h` drops) is a no-op.
    backlog_close(raw);

    // A pointer that was never a handle is refused without being dereferenced.
    let mut not_a_store = [0u8; 64];
    let fake = Handle(not_a_store.as_mut_ptr().cast());
    let (code, json) = get(&fake, "ops", "OPS-001");
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(message(&json).contains("never opened"), "{json}");
    let dangling = Handle(0xdead_beef_usize as *mut BacklogStore);
    assert_eq!(summary(&dangling, "ops").0, BACKLOG_INVALID_ARGUMENT);
    backlog_close(0xdead_beef_usize as *mut BacklogStore);
    assert_eq!(not_a_store, [0u8; 64]);

    // Other stores are unaffected by a close.
    let a = open_mem();
    let b = open_mem();
    assert_ne!(a.0, b.0);
    assert_eq!(create(&b, "ops", r#"{"title":"t"}"#).0, 0);
    drop(a);
    assert_eq!(field(&summary(&b, "ops").1, "total"), 1);
}

#[test]
fn panic_through_the_guard_is_internal_and_the_store_stays_usable() {
    let h = open_mem();
    let (code, json) = guard(|| {
        assert_eq!(create(&h, "ops", r#"{"title":"before the panic"}"#).0, 0);
        panic!("forced panic for the test");
    });
    assert_eq!(code, BACKLOG_INTERNAL);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["error"]["code"], "internal");
    assert!(
        message(&json).contains("forced panic for the test"),
        "{json}"
    );

    // A panic with a non-string payload is caught too.
    let (code, json) = guard(|| std::panic::panic_any(42_u32));
    assert_eq!(code, BACKLOG_INTERNAL);
    assert!(
        message(&json).contains("a panic without a message"),
        "{json}"
    );

    // Errors and results pass through the guard unchanged.
    assert_eq!(
        guard(|| Ok("[1]".to_owned())),
        (BACKLOG_OK, "[1]".to_owned())
    );
    let (code, _) = guard(|| Err(agent_backlog::Error::Conflict("taken".into())));
    assert_eq!(code, BACKLOG_CONFLICT);

    // The store still works: the task created before the panic is there, and more can be.
    assert_eq!(field(&summary(&h, "ops").1, "total"), 1);
    let (code, task) = create(&h, "ops", r#"{"title":"after the panic"}"#);
    assert_eq!((code, field(&task, "id")), (0, "OPS-002".into()));
    assert_eq!(field(&claim(&h, "ops").1, "title"), "before the panic");
}

#[test]
fn threads_share_one_handle_and_never_claim_a_task_twice() {
    const THREADS: usize = 4;
    const TASKS: usize = 200;
    let h = open_mem();
    let body: Vec<String> = (0..TASKS)
        .map(|i| format!(r#"{{"title":"task {i}"}}"#))
        .collect();
    let batch = c(&format!("[{}]", body.join(",")));
    let agent = c("worker");
    // SAFETY: valid strings and out-parameter.
    let (code, _) =
        call(|out| unsafe { backlog_create_tasks(h.ptr(), agent.as_ptr(), batch.as_ptr(), out) });
    assert_eq!(code, 0);

    let claimed: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let (code, json) = claim(&h, "worker");
                        assert_eq!(code, 0, "{json}");
                        if json == "null" {
                            break mine;
                        }
                        let id = field(&json, "id").as_str().unwrap().to_owned();
                        let (code, _) =
                            update(&h, "worker", &id, r#"{"status":"complete","result":"ok"}"#);
                        assert_eq!(code, 0);
                        mine.push(id);
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<String> = claimed.into_iter().flatten().collect();
    assert_eq!(all.len(), TASKS);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), TASKS, "a task was claimed twice");
    assert_eq!(
        summary(&h, "worker").1,
        format!(r#"{{"queued":0,"in_progress":0,"complete":{TASKS},"blocked":0,"total":{TASKS}}}"#)
    );
}

#[test]
fn close_while_other_threads_use_the_handle_fails_cleanly() {
    for _ in 0..20 {
        let h = open_mem();
        let closer = Handle(h.0);
        std::thread::scope(|scope| {
            let users: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        for i in 0..50 {
                            let (code, json) = create(&h, "ops", &format!(r#"{{"title":"t{i}"}}"#));
                            // Before the close: ok. After, or racing with it: closed
                            // (storage, 5), never anything else.
                            assert!([0, 5].contains(&code), "{code}: {json}");
                        }
                    })
                })
                .collect();
            std::thread::yield_now();
            drop(closer);
            for u in users {
                u.join().unwrap();
            }
        });
        assert_eq!(summary(&h, "ops").0, BACKLOG_STORAGE);
    }
}

/// Replaces every RFC 3339 timestamp (`"2026-03-28T10:00:00Z"`) with `"T"`.
fn blank_timestamps(json: &str) -> String {
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let mut i = 0;
    while i < json.len() {
        let candidate = &bytes[i..bytes.len().min(i + 22)];
        let is_stamp = candidate.len() == 22
            && candidate[0] == b'"'
            && candidate[21] == b'"'
            && candidate[11] == b'T'
            && candidate[20] == b'Z'
            && candidate[5] == b'-'
            && candidate[1..5].iter().all(u8::is_ascii_digit);
        if is_stamp {
            out.push_str("\"T\"");
            i += 22;
        } else {
            let ch = json[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// A code and the JSON that came with it.
type Outcome = (c_int, String);

fn rust_json<T: serde::Serialize>(result: agent_backlog::Result<T>) -> Outcome {
    match result {
        Ok(value) => (0, serde_json::to_string(&value).unwrap()),
        Err(err) => (err.kind() as c_int, err.to_json().to_string()),
    }
}

#[test]
fn the_rust_api_and_the_c_abi_give_the_same_json() {
    let rust = Store::open_in_memory().unwrap();
    let h = open_mem();
    let mut pairs: Vec<(&str, Outcome, Outcome)> = Vec::new();
    let agent = "marketing-lead";
    let ca = c(agent);

    let (p, cp) = ("MKT", c("MKT"));
    pairs.push((
        "set_prefix",
        rust_json(rust.set_prefix(agent, p)),
        // SAFETY: valid strings and out-parameter.
        call(|o| unsafe { backlog_set_prefix(h.ptr(), ca.as_ptr(), cp.as_ptr(), o) }),
    ));
    pairs.push((
        "set_prefix held",
        rust_json(rust.set_prefix("support-bot", "MKT")),
        // SAFETY: valid strings and out-parameter.
        call(|o| unsafe { backlog_set_prefix(h.ptr(), c"support-bot".as_ptr(), cp.as_ptr(), o) }),
    ));
    for (title, description, priority) in [
        ("Write 3 LinkedIn posts", Some("Focus on ROI..."), Some(3)),
        ("Audit competitor pricing pages", None, None),
        ("Plan the webinar", Some("Q3"), Some(1)),
    ] {
        let mut task = NewTask::new(title);
        if let Some(d) = description {
            task = task.description(d);
        }
        if let Some(p) = priority {
            task = task.priority(p);
        }
        let body =
            serde_json::json!({"title": title, "description": description, "priority": priority});
        pairs.push((
            "create_task",
            rust_json(rust.create_task(agent, task)),
            create(&h, agent, &body.to_string()),
        ));
    }
    pairs.push((
        "create_task invalid",
        rust_json(rust.create_task(agent, NewTask::new("x").priority(0))),
        create(&h, agent, r#"{"title":"x","priority":0}"#),
    ));
    let batch = r#"[{"title":"Draft FAQ responses","priority":2},{"title":"Tag tickets"}]"#;
    let cbatch = c(batch);
    pairs.push((
        "create_tasks",
        rust_json(rust.create_tasks("support-bot", NewTask::list_from_json(batch).unwrap())),
        // SAFETY: valid strings and out-parameter.
        call(|o| unsafe {
            backlog_create_tasks(h.ptr(), c"support-bot".as_ptr(), cbatch.as_ptr(), o)
        }),
    ));
    pairs.push((
        "claim_next",
        rust_json(rust.claim_next(agent)),
        claim(&h, agent),
    ));
    let patches = [
        ("MKT-003", r#"{"status":"complete","result":"Booked"}"#),
        (
            "MKT-001",
            r#"{"status":"blocked","blocker":"Waiting for brand colors"}"#,
        ),
        ("MKT-001", r#"{"status":"complete"}"#),
        (
            "MKT-001",
            r#"{"status":"queued","priority":2,"description":null}"#,
        ),
        ("MKT-002", r#"{"title":"Audit pricing pages","result":"x"}"#),
        ("MKT-009", "{}"),
        ("MKT-002", "{}"),
    ];
    for (id, patch) in patches {
        pairs.push((
            "update_task",
            rust_json(rust.update_task(agent, id, TaskPatch::from_json(patch).unwrap())),
            update(&h, agent, id, patch),
        ));
    }
    pairs.push((
        "update_task typed",
        rust_json(rust.update_task(
            agent,
            "MKT-002",
            TaskPatch::new().status(Status::InProgress),
        )),
        update(&h, agent, "MKT-002", r#"{"status":"in_progress"}"#),
    ));
    for id in ["MKT-001", "MKT-404", "bad id"] {
        pairs.push((
            "get_task",
            rust_json(rust.get_task(agent, id)),
            get(&h, agent, id),
        ));
    }
    let cid = c("MKT-002");
    pairs.push((
        "delete_task",
        rust_json(rust.delete_task(agent, "MKT-002")),
        // SAFETY: valid strings and out-parameter.
        call(|o| unsafe { backlog_delete_task(h.ptr(), ca.as_ptr(), cid.as_ptr(), o) }),
    ));
    for q in [
        None,
        Some(r#"{"status":"queued"}"#),
        Some(r#"{"limit":1,"offset":1}"#),
    ] {
        let typed = q
            .map_or(Ok(ListQuery::new()), ListQuery::from_json)
            .unwrap();
        pairs.push((
            "list_tasks",
            rust_json(rust.list_tasks(agent, typed)),
            list(&h, agent, q),
        ));
    }
    for q in [
        None,
        Some(r#"{"priority":2}"#),
        Some(r#"{"agent_id":"support-bot","status":"queued","limit":1}"#),
    ] {
        let typed = q
            .map_or(Ok(TaskQuery::new()), TaskQuery::from_json)
            .unwrap();
        pairs.push((
            "query_tasks",
            rust_json(rust.query_tasks(typed)),
            query(&h, q),
        ));
    }
    for a in [agent, "support-bot", "nobody", "-bad"] {
        pairs.push(("summary", rust_json(rust.summary(a)), summary(&h, a)));
    }
    for _ in 0..4 {
        pairs.push((
            "claim_next",
            rust_json(rust.claim_next("support-bot")),
            claim(&h, "support-bot"),
        ));
    }

    let mut codes = std::collections::BTreeSet::new();
    for (what, r, c) in &pairs {
        assert_eq!(r.0, c.0, "{what}: codes differ: {} vs {}", r.1, c.1);
        assert_eq!(blank_timestamps(&r.1), blank_timestamps(&c.1), "{what}");
        codes.insert(r.0);
    }
    // The comparison covered successes, every reachable error code, and "null".
    assert_eq!(codes.into_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert!(pairs.iter().any(|(_, r, _)| r.1 == "null"));
    assert!(blank_timestamps(&pairs[2].1 .1).contains(r#""created":"T""#));
}
