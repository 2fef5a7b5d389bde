//! Helpers shared by the fuzz targets: calling the C ABI with raw bytes, and the checks
//! every call must pass.
//!
//! Every call must: return a code in 0..=7 but 6 (6, `internal`, is a caught panic: a bug);
//! write a NUL-terminated UTF-8 string to its out-parameter; that string is compact JSON
//! in exactly the contract's shape (keys in order, nothing extra), so each check below
//! rebuilds the expected text from the parsed value and compares it with the output.
//! A failed check panics, which libFuzzer reports as a crash with the input.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;

pub use agent_backlog_capi::*;
use serde_json::Value;

/// The code names, indexed by the C code.
pub const CODES: [&str; 8] = [
    "ok",
    "invalid_argument",
    "not_found",
    "invalid_transition",
    "conflict",
    "storage",
    "internal",
    "lease_lost",
];

/// Raw fuzz bytes as a C string argument: the bytes with a NUL appended. A C callee
/// reads up to the first NUL, as it would from a C caller's buffer; bytes that are not
/// UTF-8 stay as they are.
pub fn c_buffer(data: &[u8]) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(data.len() + 1);
    buffer.extend_from_slice(data);
    buffer.push(0);
    buffer
}

/// The text of a C buffer made by [`c_buffer`], as the library sees it: up to the first
/// NUL, if it is UTF-8.
pub fn seen_text(buffer: &[u8]) -> Option<&str> {
    CStr::from_bytes_until_nul(buffer).ok()?.to_str().ok()
}

/// What one call gave.
#[derive(Debug)]
pub struct Outcome {
    pub code: c_int,
    pub text: String,
    pub value: Value,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == BACKLOG_OK
    }

    pub fn code_name(&self) -> &'static str {
        CODES[self.code as usize]
    }

    /// The success value, or a panic naming the call and its error.
    pub fn expect_ok(self, what: &str) -> Value {
        assert!(self.ok(), "{what} failed: {}", self.text);
        self.value
    }
}

/// Runs a call that writes to an out-parameter and checks what every call must give.
pub fn call(what: &str, f: impl FnOnce(*mut *mut c_char) -> c_int) -> Outcome {
    let sentinel = ptr::dangling_mut::<c_char>();
    let mut out = sentinel;
    let code = f(&mut out);
    assert!(
        !out.is_null() && out != sentinel,
        "{what}: no JSON was written (code {code})"
    );
    // SAFETY: the library wrote a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(out) }
        .to_str()
        .unwrap_or_else(|e| panic!("{what}: the output is not UTF-8: {e}"))
        .to_owned();
    // SAFETY: written by the library and freed once.
    unsafe { backlog_string_free(out) };
    assert!((0..=7).contains(&code), "{what}: code {code} is no code");
    assert_ne!(
        code, BACKLOG_INTERNAL,
        "{what}: internal error (a caught panic): {text}"
    );
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: the output is not JSON ({e}): {text}"));
    if code != BACKLOG_OK {
        check_error(what, code, &value, &text);
    }
    Outcome { code, text, value }
}

/// `{"error":{"code":...,"message":...}}`, exactly, with the code of `code`.
pub fn check_error(what: &str, code: c_int, value: &Value, text: &str) {
    let message = &value["error"]["message"];
    let m = message
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no message: {text}"));
    assert!(!m.is_empty(), "{what}: empty message");
    let expected = format!(
        r#"{{"error":{{"code":"{}","message":{}}}}}"#,
        CODES[code as usize], message
    );
    assert_eq!(
        text, expected,
        "{what}: not the error object of code {code}"
    );
}

/// A C string for a fixed argument.
pub fn cs(s: &str) -> CString {
    CString::new(s).expect("no NUL in a fixed argument")
}

/// A store opened through the C ABI, closed on drop.
pub struct Handle(pub *mut BacklogStore);

impl Handle {
    /// A private in-memory store.
    pub fn memory() -> Handle {
        let path = cs(":memory:");
        let (mut store, mut error) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: valid string and out-parameters.
        let code = unsafe { backlog_open(path.as_ptr(), &mut store, &mut error) };
        assert_eq!(code, BACKLOG_OK, "cannot open an in-memory store");
        Handle(store)
    }

    pub fn ptr(&self) -> *const BacklogStore {
        self.0
    }

    pub fn create(&self, agent: &str, json: &[u8]) -> Outcome {
        let agent = cs(agent);
        // SAFETY: valid strings and out-parameter.
        call("create_task", |out| unsafe {
            backlog_create_task(self.ptr(), agent.as_ptr(), json.as_ptr().cast(), out)
        })
    }

    pub fn create_many(&self, agent: &str, json: &[u8]) -> Outcome {
        let agent = cs(agent);
        // SAFETY: as above.
        call("create_tasks", |out| unsafe {
            backlog_create_tasks(self.ptr(), agent.as_ptr(), json.as_ptr().cast(), out)
        })
    }

    pub fn get(&self, agent: &str, id: &str) -> Outcome {
        let (agent, id) = (cs(agent), cs(id));
        // SAFETY: as above.
        call("get_task", |out| unsafe {
            backlog_get_task(self.ptr(), agent.as_ptr(), id.as_ptr(), out)
        })
    }

    pub fn update(&self, agent: &str, id: &str, json: &[u8]) -> Outcome {
        let (agent, id) = (cs(agent), cs(id));
        // SAFETY: as above.
        call("update_task", |out| unsafe {
            backlog_update_task(
                self.ptr(),
                agent.as_ptr(),
                id.as_ptr(),
                json.as_ptr().cast(),
                out,
            )
        })
    }

    pub fn delete(&self, agent: &str, id: &str) -> Outcome {
        let (agent, id) = (cs(agent), cs(id));
        // SAFETY: as above.
        call("delete_task", |out| unsafe {
            backlog_delete_task(self.ptr(), agent.as_ptr(), id.as_ptr(), out)
        })
    }

    /// `json` is NULL (no filter) or a NUL-terminated buffer.
    pub fn list(&self, agent: &str, json: Option<&[u8]>) -> Outcome {
        let agent = cs(agent);
        let q = json.map_or(ptr::null(), |j| j.as_ptr().cast());
        // SAFETY: as above.
        call("list_tasks", |out| unsafe {
            backlog_list_tasks(self.ptr(), agent.as_ptr(), q, out)
        })
    }

    /// `json` is NULL (no filter) or a NUL-terminated buffer.
    pub fn query(&self, json: Option<&[u8]>) -> Outcome {
        let q = json.map_or(ptr::null(), |j| j.as_ptr().cast());
        // SAFETY: as above.
        call("query_tasks", |out| unsafe {
            backlog_query_tasks(self.ptr(), q, out)
        })
    }

    pub fn summary(&self, agent: &str) -> Outcome {
        let agent = cs(agent);
        // SAFETY: as above.
        call("summary", |out| unsafe {
            backlog_summary(self.ptr(), agent.as_ptr(), out)
        })
    }

    pub fn claim(&self, agent: &str) -> Outcome {
        let agent = cs(agent);
        // SAFETY: as above.
        call("claim_next", |out| unsafe {
            backlog_claim_next(self.ptr(), agent.as_ptr(), out)
        })
    }

    pub fn set_prefix(&self, agent: &str, prefix: &str) -> Outcome {
        let (agent, prefix) = (cs(agent), cs(prefix));
        // SAFETY: as above.
        call("set_prefix", |out| unsafe {
            backlog_set_prefix(self.ptr(), agent.as_ptr(), prefix.as_ptr(), out)
        })
    }
}

// SAFETY: a handle is a token that the library looks up in its registry; the library
// synchronizes every use of the store behind it.
unsafe impl Send for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        backlog_close(self.0);
    }
}

/// The task keys, in the contract's order.
pub const TASK_KEYS: [&str; 10] = [
    "id",
    "title",
    "description",
    "priority",
    "status",
    "created",
    "started",
    "completed",
    "result",
    "blocker",
];

/// A task's text as the contract writes it (keys in order, compact).
pub fn task_text(task: &Value) -> String {
    let fields: Vec<String> = TASK_KEYS
        .iter()
        .map(|k| format!("\"{k}\":{}", task[*k]))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// A task of the cross-agent listing: `agent_id` first.
pub fn agent_task_text(task: &Value) -> String {
    let fields: Vec<String> = std::iter::once("agent_id")
        .chain(TASK_KEYS)
        .map(|k| format!("\"{k}\":{}", task[k]))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn is_task_id(s: &str) -> bool {
    match s.split_once('-') {
        Some((prefix, number)) => {
            (1..=8).contains(&prefix.len())
                && prefix.starts_with(|c: char| c.is_ascii_uppercase())
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                && number.len() >= 3
                && number.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// The number of a task ID: `MKT-007` → 7.
pub fn id_number(id: &str) -> u64 {
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}

/// Checks a task's types, ranges and the lifecycle invariants of SPEC §4.
pub fn check_task_fields(what: &str, t: &Value) {
    let obj = t
        .as_object()
        .unwrap_or_else(|| panic!("{what}: task is not an object: {t}"));
    let id = t["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: id: {t}"));
    assert!(is_task_id(id), "{what}: bad id {id}");
    let title = t["title"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: title: {t}"));
    let n = title.chars().count();
    assert!((1..=500).contains(&n), "{what}: title of {n} characters");
    assert_eq!(title.trim(), title, "{what}: title not trimmed");
    assert!(!title.contains('\0'), "{what}: NUL in a title");
    let p = t["priority"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: priority: {t}"));
    assert!((1..=10).contains(&p), "{what}: priority {p}");
    for key in ["description", "started", "completed", "result", "blocker"] {
        assert!(t[key].is_null() || t[key].is_string(), "{what}: {key}: {t}");
    }
    for key in ["created", "started", "completed"] {
        if let Some(s) = t[key].as_str() {
            assert!(is_timestamp(s), "{what}: {key} = {s}");
        }
    }
    assert!(t["created"].is_string(), "{what}: created: {t}");
    let set = |k: &str| !t[k].is_null();
    let ok = match t["status"].as_str() {
        Some("queued") => !set("started") && !set("completed") && !set("result") && !set("blocker"),
        Some("in_progress") => {
            set("started") && !set("completed") && !set("result") && !set("blocker")
        }
        Some("blocked") => set("blocker") && !set("completed") && !set("result"),
        Some("complete") => {
            set("started")
                && set("completed")
                && !set("blocker")
                && t["started"].as_str() <= t["completed"].as_str()
        }
        _ => false,
    };
    assert!(ok, "{what}: the invariants of its status do not hold: {t}");
    if let Some(b) = t["blocker"].as_str() {
        assert!(
            !b.trim().is_empty() && b.chars().count() <= 2000,
            "{what}: blocker"
        );
    }
    let keys = if obj.contains_key("agent_id") { 11 } else { 10 };
    assert_eq!(obj.len(), keys, "{what}: keys: {t}");
}

/// A task result: shape, invariants, exact text.
pub fn check_task(what: &str, o: &Outcome) {
    check_task_fields(what, &o.value);
    assert_eq!(
        o.text,
        task_text(&o.value),
        "{what}: not the contract's text"
    );
}

/// `{"agent_id":...,"tasks":[...],"total":N}`: checks it and returns the tasks.
pub fn check_task_list(what: &str, o: &Outcome, agent: &str) -> Vec<Value> {
    let tasks = o.value["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: tasks: {}", o.text))
        .clone();
    for t in &tasks {
        check_task_fields(what, t);
    }
    let total = o.value["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: total"));
    assert!(total >= tasks.len() as u64, "{what}: total below the page");
    let texts: Vec<String> = tasks.iter().map(task_text).collect();
    let expected = format!(
        r#"{{"agent_id":{},"tasks":[{}],"total":{total}}}"#,
        Value::from(agent),
        texts.join(",")
    );
    assert_eq!(o.text, expected, "{what}: not the contract's text");
    tasks
}

/// `{"tasks":[{"agent_id",...}],"total":N}`: checks it and returns the tasks.
pub fn check_query_result(what: &str, o: &Outcome) -> Vec<Value> {
    let tasks = o.value["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: tasks: {}", o.text))
        .clone();
    for t in &tasks {
        check_task_fields(what, t);
        assert!(t["agent_id"].is_string(), "{what}: agent_id");
    }
    let total = o.value["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: total"));
    assert!(total >= tasks.len() as u64, "{what}: total below the page");
    let texts: Vec<String> = tasks.iter().map(agent_task_text).collect();
    let expected = format!(r#"{{"tasks":[{}],"total":{total}}}"#, texts.join(","));
    assert_eq!(o.text, expected, "{what}: not the contract's text");
    tasks
}

/// `{"queued":a,"in_progress":b,"complete":c,"blocked":d,"total":a+b+c+d}`.
pub fn check_summary(what: &str, o: &Outcome) -> [u64; 5] {
    let v = &o.value;
    let n = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{what}: {k}: {}", o.text))
    };
    let s = [
        n("queued"),
        n("in_progress"),
        n("complete"),
        n("blocked"),
        n("total"),
    ];
    assert_eq!(
        s[0] + s[1] + s[2] + s[3],
        s[4],
        "{what}: total is not the sum"
    );
    let expected = format!(
        r#"{{"queued":{},"in_progress":{},"complete":{},"blocked":{},"total":{}}}"#,
        s[0], s[1], s[2], s[3], s[4]
    );
    assert_eq!(o.text, expected, "{what}: not the contract's text");
    s
}

/// Whether a JSON text, as the library would see it, is an object with some key twice
/// at its top level (the library refuses those; serde_json keeps the last).
pub fn has_duplicate_top_level_key(text: &str) -> bool {
    struct Keys(bool);
    impl<'de> serde::de::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Keys, A::Error> {
                    let mut seen = Vec::new();
                    let mut dup = false;
                    while let Some(k) = m.next_key::<String>()? {
                        dup |= seen.contains(&k);
                        seen.push(k);
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                    Ok(Keys(dup))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str::<Keys>(text)
        .map(|k| k.0)
        .unwrap_or(false)
}

// -------------------------------------------------------------------------------------
// The contract's rules, written again from SPEC.md, to predict what a call must give
// -------------------------------------------------------------------------------------

/// The largest body of one task, patch, query or options (SPEC: 8 MiB).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

pub const STATUSES: [&str; 4] = ["queued", "in_progress", "complete", "blocked"];

/// The lifecycle table of SPEC §4 (a status to itself is no move and always allowed).
pub fn can_move(from: &str, to: &str) -> bool {
    from == to
        || matches!(
            (from, to),
            ("queued", "in_progress")
                | ("queued", "blocked")
                | ("in_progress", "queued")
                | ("in_progress", "complete")
                | ("in_progress", "blocked")
                | ("blocked", "queued")
                | ("blocked", "in_progress")
                | ("complete", "queued")
        )
}

/// SPEC §6.
pub fn valid_agent_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A title's rule: 1..=500 characters after trimming, no NUL. Returns it trimmed.
pub fn valid_title(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let t = s.trim();
    ((1..=500).contains(&t.chars().count()) && !s.contains('\0')).then(|| t.to_owned())
}

/// A text of at most `max` characters without NUL.
pub fn valid_text(v: &Value, max: usize) -> bool {
    v.as_str()
        .is_some_and(|s| s.chars().count() <= max && !s.contains('\0'))
}

pub fn valid_blocker(v: &Value) -> bool {
    valid_text(v, 2000) && !v.as_str().unwrap().trim().is_empty()
}

/// An integer of JSON (not a float, not past i64) in `range`.
pub fn int_in(v: &Value, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    v.as_i64().filter(|n| range.contains(n))
}

/// The object a request body must be: UTF-8, at most 8 MiB, JSON, an object with each
/// key once and only the allowed keys. `None` when the library must refuse it.
pub fn request_object(buffer: &[u8], allowed: &[&str]) -> Option<serde_json::Map<String, Value>> {
    let text = seen_text(buffer)?;
    if text.len() > MAX_BODY || has_duplicate_top_level_key(text) {
        return None;
    }
    let value: Value = serde_json::from_str(text).ok()?;
    let map = value.as_object()?.clone();
    map.keys()
        .all(|k| allowed.contains(&k.as_str()))
        .then_some(map)
}

/// What a create body gives: the title, description and priority of the new task, or
/// `None` when it must be refused (invalid_argument).
pub fn expect_new_task(map: &serde_json::Map<String, Value>) -> Option<(String, Value, i64)> {
    if !map
        .keys()
        .all(|k| ["title", "description", "priority"].contains(&k.as_str()))
    {
        return None;
    }
    let title = valid_title(map.get("title")?)?;
    let description = match map.get("description") {
        None | Some(Value::Null) => Value::Null,
        Some(d) if valid_text(d, 65_536) => d.clone(),
        Some(_) => return None,
    };
    let priority = match map.get("priority") {
        None | Some(Value::Null) => 5,
        Some(p) => int_in(p, 1..=10)?,
    };
    Some((title, description, priority))
}

/// A placeholder in an expected task: "a timestamp taken now".
pub const NOW: &str = "<now>";

/// Whether a patch object passes the checks that come before the task is looked up:
/// only known fields, each of the right type and in range.
pub fn patch_is_valid(patch: &serde_json::Map<String, Value>) -> bool {
    let allowed = [
        "status",
        "priority",
        "title",
        "description",
        "blocker",
        "result",
    ];
    let nullable = |key: &str, ok: &dyn Fn(&Value) -> bool| match patch.get(key) {
        None | Some(Value::Null) => true,
        Some(v) => ok(v),
    };
    patch.keys().all(|k| allowed.contains(&k.as_str()))
        && patch
            .get("status")
            .is_none_or(|s| s.as_str().is_some_and(|s| STATUSES.contains(&s)))
        && patch
            .get("priority")
            .is_none_or(|p| int_in(p, 1..=10).is_some())
        && patch.get("title").is_none_or(|t| valid_title(t).is_some())
        && nullable("description", &|v| valid_text(v, 65_536))
        && nullable("blocker", &valid_blocker)
        && nullable("result", &|v| valid_text(v, 1_048_576))
}

/// What `update_task` with this patch object must give for a task now equal to
/// `before`: the expected task (timestamps set by the move are [`NOW`]), or the code.
pub fn expect_update(
    before: &Value,
    patch: &serde_json::Map<String, Value>,
) -> Result<Value, c_int> {
    const INVALID: c_int = BACKLOG_INVALID_ARGUMENT;
    if !patch_is_valid(patch) {
        return Err(INVALID);
    }
    let status = patch.get("status").and_then(Value::as_str);
    let priority = patch.get("priority").and_then(Value::as_i64);
    let title = patch.get("title").and_then(valid_title);
    let description = patch.get("description").cloned();
    let blocker = patch.get("blocker").cloned();
    let result = patch.get("result").cloned();
    let mut task = before.clone();
    if patch.is_empty() {
        return Ok(task);
    }
    let from = before["status"].as_str().unwrap().to_owned();
    let to = status.unwrap_or(&from).to_owned();
    if !can_move(&from, &to) {
        return Err(BACKLOG_INVALID_TRANSITION);
    }
    if from != to {
        match to.as_str() {
            "queued" => {
                for k in ["started", "completed", "result", "blocker"] {
                    task[k] = Value::Null;
                }
            }
            "in_progress" => {
                if from == "queued" || task["started"].is_null() {
                    task["started"] = NOW.into();
                }
                task["blocker"] = Value::Null;
            }
            "complete" => {
                if task["started"].is_null() {
                    task["started"] = NOW.into();
                }
                task["completed"] = NOW.into();
            }
            _ => {
                task["completed"] = Value::Null;
                task["result"] = Value::Null;
            }
        }
        task["status"] = to.clone().into();
    }
    match blocker {
        Some(Value::Null) if to == "blocked" => return Err(INVALID),
        Some(Value::Null) | None => {}
        Some(b) if to == "blocked" => task["blocker"] = b,
        Some(_) => return Err(INVALID),
    }
    if to == "blocked" && task["blocker"].is_null() {
        return Err(INVALID);
    }
    match result {
        Some(Value::Null) => task["result"] = Value::Null,
        None => {}
        Some(r) if to == "complete" => task["result"] = r,
        Some(_) => return Err(INVALID),
    }
    if let Some(t) = title {
        task["title"] = t.into();
    }
    if let Some(p) = priority {
        task["priority"] = p.into();
    }
    if let Some(d) = description {
        task["description"] = d;
    }
    Ok(task)
}

/// Compares a task with an expected one, where [`NOW`] stands for any timestamp.
pub fn check_expected_task(what: &str, actual: &Value, expected: &Value) {
    for key in TASK_KEYS {
        let (a, e) = (&actual[key], &expected[key]);
        if e == NOW {
            assert!(a.is_string(), "{what}: {key} should be set now: {actual}");
        } else {
            assert_eq!(a, e, "{what}: {key}: expected {expected}, got {actual}");
        }
    }
}
