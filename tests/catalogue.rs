//! The catalogue of bad inputs: no input crashes the library, each gets its exact code,
//! and a refused call writes nothing.
//!
//! Two surfaces, each a table of (description, call, expected code):
//! - the Rust API (`Store` and the strict JSON parsers of the requests);
//! - the C ABI (`agent_backlog_capi`), called from Rust: NULL pointers, invalid UTF-8,
//!   closed and never-opened handles, and the same bad values as JSON text.
//!
//! Every case runs on a fresh store holding one task in each status. Afterwards the
//! store must look exactly as before (every task of `query_tasks` and the summary of
//! every agent involved, compared as JSON), and the next task created must get the next
//! number (`MKT-005`), so that a refused call cannot have taken a number or registered
//! an agent. Values that look like SQL are plain text: accepted where the field's rule
//! allows them (and then stored verbatim), `invalid_argument` where it does not.
//!
//! Bad values that a JSON request can hold — every field's range, length, format and
//! type, IDs, filters, lifecycle moves, conflicts — are cases of testdata/conformance/,
//! run on every surface (tests/conformance.rs, capi/tests/conformance.rs, the Python
//! and HTTP runners). The tables here keep what those cannot express: NULL pointers,
//! invalid UTF-8, handles, JSON text for the strict parsers (malformed, nested, oversized,
//! lone surrogates, duplicate keys in queries), the list and query parsers of the
//! per-operation C functions, and values too large for the data files.

mod common;

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;
use std::ptr;

use agent_backlog::{
    ListQuery, NewTask, Result, Status, Store, StoreOptions, TaskPatch, TaskQuery,
    MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES,
};
use agent_backlog_capi::*;
use serde::Serialize;
use serde_json::Value;

use common::TempDir;

/// A title, description, blocker or filter value that looks like SQL.
const SQL: &str = "'); DROP TABLE tasks; --";
/// The agents of the fixture, and one that has no tasks yet.
const AGENTS: [&str; 3] = ["marketing-lead", "support-bot", "new-agent"];

/// What a case must give.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// Success; the store may change only in the tasks named by the result.
    Ok,
    /// An error with this code; nothing is written.
    Err(&'static str),
}
use Want::{Err as E, Ok as OK};

const INVALID: Want = E("invalid_argument");
const STORAGE: Want = E("storage");

// -------------------------------------------------------------------------------------
// The fixture and the "nothing was written" checks, shared by both surfaces
// -------------------------------------------------------------------------------------

/// marketing-lead: MKT-001 complete, MKT-002 in_progress, MKT-003 blocked, MKT-004
/// queued; support-bot: SUP-001 queued; new-agent: no tasks.
fn fixture(store: &Store) {
    let titles = [
        "Write posts",
        "Audit pricing",
        "Plan webinar",
        "Draft newsletter",
    ];
    let tasks = titles
        .iter()
        .enumerate()
        .map(|(i, t)| NewTask::new(*t).priority(i as i64 + 1))
        .collect();
    store.create_tasks("marketing-lead", tasks).unwrap();
    store.claim_next("marketing-lead").unwrap().unwrap();
    let done = TaskPatch::new().status(Status::Complete).result("done");
    store
        .update_task("marketing-lead", "MKT-001", done)
        .unwrap();
    store.claim_next("marketing-lead").unwrap().unwrap();
    let block = TaskPatch::new()
        .status(Status::Blocked)
        .blocker("waiting for the launch date");
    store
        .update_task("marketing-lead", "MKT-003", block)
        .unwrap();
    store
        .create_task(
            "support-bot",
            NewTask::new("Draft FAQ").description("top 10"),
        )
        .unwrap();
}

/// Everything observable: every task (with its agent) by ID, and each agent's summary.
#[derive(Debug, PartialEq)]
struct Snapshot {
    tasks: std::collections::BTreeMap<String, Value>,
    summaries: Vec<Value>,
}

impl Snapshot {
    /// Built from the JSON of `query_tasks` with no filter and the agents' summaries.
    fn new(query: &str, summaries: Vec<Value>) -> Snapshot {
        let query: Value = serde_json::from_str(query).unwrap();
        let tasks = query["tasks"].as_array().unwrap();
        assert_eq!(
            query["total"],
            tasks.len(),
            "total differs from the listing"
        );
        let total: u64 = summaries.iter().map(|s| s["total"].as_u64().unwrap()).sum();
        assert_eq!(
            total,
            tasks.len() as u64,
            "summaries differ from the listing"
        );
        Snapshot {
            tasks: tasks
                .iter()
                .map(|t| (t["id"].as_str().unwrap().to_owned(), t.clone()))
                .collect(),
            summaries,
        }
    }

    fn of(store: &Store) -> Snapshot {
        let query = serde_json::to_string(&store.query_tasks(TaskQuery::new()).unwrap()).unwrap();
        let summaries = AGENTS
            .iter()
            .map(|a| serde_json::to_value(store.summary(a).unwrap()).unwrap())
            .collect();
        Snapshot::new(&query, summaries)
    }

    /// After a successful call: only the tasks whose IDs appear in `result` may differ
    /// or be new. Returns how many new tasks marketing-lead got.
    fn check_only_touched(&self, after: &Snapshot, result: &Value, what: &str) -> i64 {
        let mut touched = Vec::new();
        collect_ids(result, &mut touched);
        for (id, task) in &self.tasks {
            if !touched.contains(id) {
                assert_eq!(after.tasks.get(id), Some(task), "{what}: {id} changed");
            }
        }
        let mut new_mkt = 0;
        for id in after.tasks.keys() {
            if !self.tasks.contains_key(id) {
                assert!(touched.contains(id), "{what}: {id} appeared");
                new_mkt += i64::from(id.starts_with("MKT-"));
            }
        }
        new_mkt
    }
}

fn collect_ids(value: &Value, ids: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("id" | "deleted", Value::String(id)) => ids.push(id.clone()),
                    _ => collect_ids(v, ids),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, ids)),
        _ => {}
    }
}

/// The next task of marketing-lead gets the next number, and new-agent gets its own
/// derived prefix and number 1: no refused call took a number or registered an agent.
fn check_next_ids(create: impl Fn(&str) -> String, new_mkt: i64, what: &str) {
    assert_eq!(
        create("marketing-lead"),
        format!("MKT-{:03}", 5 + new_mkt),
        "{what}: the next ID of marketing-lead"
    );
    assert_eq!(
        create("new-agent"),
        "NEW-001",
        "{what}: the first ID of new-agent"
    );
}

// -------------------------------------------------------------------------------------
// The Rust API
// -------------------------------------------------------------------------------------

type RustCall = fn(&Store) -> Result<Value>;

fn v<T: Serialize>(result: Result<T>) -> Result<Value> {
    result.map(|t| serde_json::to_value(t).unwrap())
}

fn big(n: usize) -> String {
    "x".repeat(n)
}

/// A body over `limit` bytes that is not even JSON: only a size check can refuse it
/// with the size message.
fn oversized(limit: usize) -> String {
    "[".repeat(limit + 1)
}

fn nested(depth: usize) -> String {
    format!(
        r#"{{"title": {}1{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

fn create_json(s: &Store, body: &str) -> Result<Value> {
    v(NewTask::from_json(body).and_then(|t| s.create_task("marketing-lead", t)))
}

fn update_json(s: &Store, id: &str, body: &str) -> Result<Value> {
    v(TaskPatch::from_json(body).and_then(|p| s.update_task("marketing-lead", id, p)))
}

fn list_json(s: &Store, body: &str) -> Result<Value> {
    v(ListQuery::from_json(body).and_then(|q| s.list_tasks("marketing-lead", q)))
}

fn query_json(s: &Store, body: &str) -> Result<Value> {
    v(TaskQuery::from_json(body).and_then(|q| s.query_tasks(q)))
}

fn batch_json(s: &Store, body: &str) -> Result<Value> {
    v(NewTask::list_from_json(body).and_then(|t| s.create_tasks("marketing-lead", t)))
}

/// (description, call, expected code, text the message or result must contain).
#[rustfmt::skip]
const RUST_CASES: &[(&str, RustCall, Want, &str)] = &[
    // Values the conformance cases (testdata/conformance/) do not send: they run every
    // bad value a JSON request can hold, on every surface. What stays here is too large
    // for them, or JSON text for the strict parsers themselves: text JSON values cannot
    // hold, and the list and query parsers, which only the C ABI reaches.
    ("title of 8 MiB", |s| v(s.create_task("marketing-lead", NewTask::new(big(8 << 20)))), INVALID, "title must be 1 to 500"),
    ("batch of 10001 tasks", |s| v(s.create_tasks("marketing-lead", vec![NewTask::new("t"); 10_001])), INVALID, "at most 10000 tasks"),
    // JSON bodies through the strict parsers
    ("truncated JSON", |s| create_json(s, r#"{"title": "Write"#), INVALID, "the task must be a JSON object"),
    ("truncated after a key", |s| update_json(s, "MKT-004", r#"{"priority""#), INVALID, "the patch must be a JSON object"),
    ("empty body", |s| create_json(s, ""), INVALID, "EOF while parsing"),
    ("trailing garbage", |s| create_json(s, r#"{"title": "a"} {"#), INVALID, "trailing characters"),
    ("byte order mark", |s| create_json(s, "\u{feff}{\"title\": \"a\"}"), INVALID, "the task must be"),
    ("JSON null as a patch", |s| update_json(s, "MKT-004", "null"), INVALID, "the patch must be a JSON object"),
    ("object as a batch", |s| batch_json(s, r#"{"title": "a"}"#), INVALID, "the task list must be a JSON array"),
    ("nested 100000 deep", |s| create_json(s, &nested(100_000)), INVALID, "recursion limit"),
    ("nested objects 5000 deep in a query", |s| query_json(s, &format!("{}{}", r#"{"a":"#.repeat(5000), "}".repeat(5000))), INVALID, "recursion limit"),
    ("nested 100000 deep in a batch", |s| batch_json(s, &"[".repeat(100_000)), INVALID, "the task list must be"),
    ("duplicate title keys", |s| create_json(s, r#"{"title": "a", "title": "b"}"#), INVALID, r#"the key "title" appears twice"#),
    ("body over 8 MiB, refused by size", |s| create_json(s, &oversized(MAX_BODY_BYTES)), INVALID, "bytes; the limit is 8388608 bytes"),
    ("patch over 8 MiB, refused by size", |s| update_json(s, "MKT-004", &oversized(MAX_BODY_BYTES)), INVALID, "bytes; the limit is 8388608 bytes"),
    ("query over 8 MiB, refused by size", |s| query_json(s, &oversized(MAX_BODY_BYTES)), INVALID, "bytes; the limit is 8388608 bytes"),
    ("batch over 64 MiB, refused by size", |s| batch_json(s, &oversized(MAX_BATCH_BODY_BYTES)), INVALID, "bytes; the limit is 67108864 bytes"),
    ("lone high surrogate", |s| create_json(s, r#"{"title": "a\ud800b"}"#), INVALID, "unexpected end of hex escape"),
    ("lone low surrogate", |s| update_json(s, "MKT-004", r#"{"title": "\udc00"}"#), INVALID, "surrogate"),
    ("escaped NUL in a status filter", |s| list_json(s, r#"{"status": "queued\u0000"}"#), INVALID, "status"),
    ("priority 1e400 overflows", |s| create_json(s, r#"{"title": "a", "priority": 1e400}"#), INVALID, "number out of range"),
    ("priority 2^63", |s| query_json(s, r#"{"priority": 9223372036854775808}"#), INVALID, "priority must be an integer"),
    ("priority -0", |s| create_json(s, r#"{"title": "a", "priority": -0}"#), INVALID, "got -0.0"),
    ("limit 1e3", |s| list_json(s, r#"{"limit": 1e3}"#), INVALID, "limit must be an integer"),
    ("offset -1", |s| query_json(s, r#"{"offset": -1}"#), INVALID, "offset must be"),
    ("SQL status filter in list", |s| list_json(s, r#"{"status": "queued' OR '1'='1"}"#), INVALID, "status must be"),
    ("SQL agent_id filter in a JSON query", |s| query_json(s, r#"{"agent_id": "x' OR 1=1 --"}"#), INVALID, "agent_id must be"),
    ("agent_id filter as a number", |s| query_json(s, r#"{"agent_id": 7}"#), INVALID, "agent_id must be a string"),
    ("capitalized status", |s| list_json(s, r#"{"status": "Queued"}"#), INVALID, "status must be"),
    ("SQL as a field name", |s| query_json(s, &format!(r#"{{"{SQL}": 1}}"#)), INVALID, "unknown field"),
];

fn code_of(want: Want) -> &'static str {
    match want {
        OK => "ok",
        E(code) => code,
    }
}

/// Runs one case on a fresh fixture and checks everything.
fn run_rust_case(what: &str, call: RustCall, want: Want, needle: &str) {
    let store = Store::open_in_memory().unwrap();
    fixture(&store);
    let before = Snapshot::of(&store);
    let outcome = call(&store);
    let new_mkt = match (&outcome, want) {
        (Ok(value), OK) => {
            let text = value.to_string();
            assert!(text.contains(needle), "{what}: {needle} not in {text}");
            before.check_only_touched(&Snapshot::of(&store), value, what)
        }
        (Err(err), E(code)) => {
            assert_eq!(err.code(), code, "{what}: {err}");
            let message = err.to_string();
            assert!(
                message.contains(needle),
                "{what}: {needle:?} not in {message:?}"
            );
            assert!(
                message.len() < 1000,
                "{what}: a message of {} bytes",
                message.len()
            );
            assert_eq!(
                Snapshot::of(&store),
                before,
                "{what}: something was written"
            );
            0
        }
        (Ok(value), E(code)) => panic!("{what}: expected {code}, got success {value}"),
        (Err(err), OK) => panic!("{what}: expected success, got {}: {err}", err.code()),
    };
    let create = |agent: &str| store.create_task(agent, NewTask::new("probe")).unwrap().id;
    check_next_ids(create, new_mkt, what);
}

#[test]
fn rust_api_catalogue() {
    assert!(RUST_CASES.len() >= 25);
    let mut seen = std::collections::HashSet::new();
    let mut failed = Vec::new();
    for &(what, call, want, needle) in RUST_CASES {
        assert!(seen.insert(what), "two cases named {what}");
        if std::panic::catch_unwind(|| run_rust_case(what, call, want, needle)).is_err() {
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
    let refused = RUST_CASES.iter().filter(|c| c.2 != OK).count();
    println!(
        "Rust API catalogue: {} cases ({refused} refused, {} accepted)",
        RUST_CASES.len(),
        RUST_CASES.len() - refused
    );
}

/// Every operation on a closed store is `storage`; closing again is fine.
#[test]
fn rust_api_calls_after_close() {
    #[rustfmt::skip]
    let cases: &[(&str, RustCall)] = &[
        ("list_tasks", |s| v(s.list_tasks("marketing-lead", ListQuery::new()))),
        ("create_task", |s| v(s.create_task("marketing-lead", NewTask::new("t")))),
        ("create_tasks", |s| v(s.create_tasks("marketing-lead", vec![NewTask::new("t")]))),
        ("get_task", |s| v(s.get_task("marketing-lead", "MKT-001"))),
        ("update_task", |s| v(s.update_task("marketing-lead", "MKT-004", TaskPatch::new().priority(1)))),
        ("delete_task", |s| v(s.delete_task("marketing-lead", "MKT-001"))),
        ("query_tasks", |s| v(s.query_tasks(TaskQuery::new()))),
        ("summary", |s| v(s.summary("marketing-lead"))),
        ("claim_next", |s| v(s.claim_next("marketing-lead"))),
        ("set_prefix", |s| v(s.set_prefix("new-agent", "NEW"))),
    ];
    let dir = TempDir::new("catalogue-closed");
    let path = dir.file("closed.db");
    {
        let store = Store::open(&path).unwrap();
        fixture(&store);
    }
    let before = Snapshot::of(&Store::open(&path).unwrap());
    for &(what, call) in cases {
        let store = Store::open(&path).unwrap();
        store.close().unwrap();
        let err = call(&store).expect_err(what);
        assert_eq!(err.code(), "storage", "{what}: {err}");
        assert!(err.to_string().contains("closed"), "{what}: {err}");
        store.close().unwrap();
        // Bad input on a closed store: the input is judged first.
        let err = store.summary("a b").unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{err}");
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(Snapshot::of(&store), before);
    let create = |agent: &str| store.create_task(agent, NewTask::new("probe")).unwrap().id;
    check_next_ids(create, 0, "after close");
}

/// Paths that are no database file (empty, NUL, `file:` URIs, folders, foreign files)
/// and options out of range.
#[test]
fn rust_api_bad_paths_and_options() {
    let dir = TempDir::new("catalogue-paths");
    let d = dir.path();
    std::fs::write(
        d.join("notes.txt"),
        "not a database, just text\n".repeat(200),
    )
    .unwrap();
    std::fs::create_dir(d.join("folder")).unwrap();
    let target = d.join("target.db");
    let uri = format!("file:{}?mode=memory", target.display());
    let uri_vfs = format!("file:{}?vfs=unix-none&nolock=1", target.display());
    let missing = d.join("no/such/folder/x.db");
    let foreign = d.join("notes.txt");
    let folder = d.join("folder");
    let default = StoreOptions::default();
    let forever = StoreOptions {
        busy_timeout: std::time::Duration::MAX,
        ..default.clone()
    };
    let past_i32 = StoreOptions {
        busy_timeout: std::time::Duration::from_millis(2_147_483_648),
        ..default.clone()
    };
    let memory = Path::new(":memory:");
    let blank_actor = StoreOptions {
        actor: Some(" ".into()),
        ..default.clone()
    };
    let cases: Vec<(&str, &Path, StoreOptions, Want)> = vec![
        ("empty path", Path::new(""), default.clone(), INVALID),
        (
            "path with a NUL",
            Path::new("a\0b.db"),
            default.clone(),
            INVALID,
        ),
        (
            "file: URI of an absolute path",
            Path::new(&uri),
            default.clone(),
            STORAGE,
        ),
        (
            "file: URI switching locking off",
            Path::new(&uri_vfs),
            default.clone(),
            STORAGE,
        ),
        (
            "folder that does not exist",
            &missing,
            default.clone(),
            STORAGE,
        ),
        ("a folder", &folder, default.clone(), STORAGE),
        ("a text file", &foreign, default.clone(), STORAGE),
        ("busy timeout of Duration::MAX", memory, forever, INVALID),
        ("busy timeout past i32::MAX ms", memory, past_i32, INVALID),
        ("a blank actor", memory, blank_actor, INVALID),
    ];
    for (what, path, options, want) in cases {
        let before = std::fs::read(&foreign).unwrap();
        let outcome = Store::open_with(path, options);
        match (outcome, want) {
            (Err(err), E(code)) => assert_eq!(err.code(), code, "{what}: {err}"),
            (Ok(_), _) => panic!("{what}: opened"),
            (Err(err), OK) => panic!("{what}: {err}"),
        }
        assert!(
            !target.exists(),
            "{what}: a URI named a file that was created"
        );
        assert_eq!(
            std::fs::read(&foreign).unwrap(),
            before,
            "{what}: the file changed"
        );
    }
}

// -------------------------------------------------------------------------------------
// The C ABI, from Rust
// -------------------------------------------------------------------------------------

/// A value no pointer written by the library can have.
const SENTINEL: *mut c_char = ptr::dangling_mut::<c_char>();

/// An argument of a C call: a C string, NULL, or raw bytes (made NUL-terminated).
#[derive(Clone, Copy)]
enum Arg {
    Null,
    Str(&'static str),
    Bytes(&'static [u8]),
    /// A string built at run time.
    Built(fn() -> String),
}
use Arg::{Built, Bytes, Null, Str};

impl Arg {
    fn to_c(self) -> Option<CString> {
        match self {
            Null => None,
            Str(s) => Some(CString::new(s).expect("no NUL inside: use Bytes")),
            Bytes(b) => Some(CString::new(b).expect("no NUL inside")),
            Built(f) => Some(CString::new(f()).unwrap()),
        }
    }
}

fn p(arg: &Option<CString>) -> *const c_char {
    arg.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// The operations of the C ABI that write JSON to an out-parameter.
#[derive(Clone, Copy, Debug)]
enum Op {
    List,
    Create,
    CreateMany,
    Get,
    Update,
    Delete,
    Query,
    Summary,
    Claim,
    Prefix,
}

/// Calls `op` with up to three string arguments on `store`, writing to `out`.
///
/// # Safety
/// `out` is NULL or valid for one write.
unsafe fn c_call(
    store: *const BacklogStore,
    op: Op,
    args: [Arg; 3],
    out: *mut *mut c_char,
) -> c_int {
    let [a, b, c] = args.map(Arg::to_c);
    let (a, b, c) = (p(&a), p(&b), p(&c));
    // SAFETY: the strings live until the end of this function; `out` is the caller's.
    unsafe {
        match op {
            Op::List => backlog_list_tasks(store, a, b, out),
            Op::Create => backlog_create_task(store, a, b, out),
            Op::CreateMany => backlog_create_tasks(store, a, b, out),
            Op::Get => backlog_get_task(store, a, b, out),
            Op::Update => backlog_update_task(store, a, b, c, out),
            Op::Delete => backlog_delete_task(store, a, b, out),
            Op::Query => backlog_query_tasks(store, a, out),
            Op::Summary => backlog_summary(store, a, out),
            Op::Claim => backlog_claim_next(store, a, out),
            Op::Prefix => backlog_set_prefix(store, a, b, out),
        }
    }
}

/// Runs a call and returns its code and JSON, checking the out-parameter contract:
/// a compact JSON string, the error object of the code on failure.
fn c_run(store: *const BacklogStore, op: Op, args: [Arg; 3]) -> (c_int, Value) {
    let mut out = SENTINEL;
    // SAFETY: `out` is a valid out-parameter.
    let code = unsafe { c_call(store, op, args, &mut out) };
    assert!(!out.is_null() && out != SENTINEL, "{op:?}: no JSON written");
    // SAFETY: the library wrote a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    // SAFETY: written by the library, freed once.
    unsafe { backlog_string_free(out) };
    assert!((0..=5).contains(&code), "{op:?}: code {code}: {text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(is_compact(&text), "{op:?}: not compact JSON: {text}");
    if code != BACKLOG_OK {
        assert_eq!(value["error"]["code"], c_code_name(code), "{text}");
    }
    (code, value)
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

fn c_code_name(code: c_int) -> &'static str {
    [
        "ok",
        "invalid_argument",
        "not_found",
        "invalid_transition",
        "conflict",
        "storage",
        "internal",
    ][code as usize]
}

/// A C store opened with `backlog_open`, closed on drop.
struct CStore(*mut BacklogStore);

impl CStore {
    fn open(path: &str) -> CStore {
        let path = CString::new(path).unwrap();
        let (mut store, mut error) = (ptr::null_mut(), SENTINEL);
        // SAFETY: valid string and out-parameters.
        let code = unsafe { backlog_open(path.as_ptr(), &mut store, &mut error) };
        assert_eq!((code, error), (BACKLOG_OK, ptr::null_mut()));
        CStore(store)
    }

    fn ok(&self, op: Op, args: [Arg; 3]) -> Value {
        let (code, value) = c_run(self.0, op, args);
        assert_eq!(code, BACKLOG_OK, "{op:?}: {value}");
        value
    }

    /// The same fixture as the Rust API's, through the C ABI.
    fn fixture(&self) {
        self.ok(Op::CreateMany, [Str("marketing-lead"), Str(r#"[{"title":"Write posts","priority":1},{"title":"Audit pricing","priority":2},{"title":"Plan webinar","priority":3},{"title":"Draft newsletter","priority":4}]"#), Null]);
        self.ok(Op::Claim, [Str("marketing-lead"), Null, Null]);
        self.ok(
            Op::Update,
            [
                Str("marketing-lead"),
                Str("MKT-001"),
                Str(r#"{"status":"complete","result":"done"}"#),
            ],
        );
        self.ok(Op::Claim, [Str("marketing-lead"), Null, Null]);
        self.ok(
            Op::Update,
            [
                Str("marketing-lead"),
                Str("MKT-003"),
                Str(r#"{"status":"blocked","blocker":"waiting for the launch date"}"#),
            ],
        );
        self.ok(
            Op::Create,
            [
                Str("support-bot"),
                Str(r#"{"title":"Draft FAQ","description":"top 10"}"#),
                Null,
            ],
        );
    }

    fn snapshot(&self) -> Snapshot {
        let query = self.ok(Op::Query, [Null, Null, Null]).to_string();
        let summaries = AGENTS
            .map(|a| self.ok(Op::Summary, [Str(a), Null, Null]))
            .to_vec();
        Snapshot::new(&query, summaries)
    }

    fn next_id(&self, agent: &'static str) -> String {
        let task = self.ok(Op::Create, [Str(agent), Str(r#"{"title":"probe"}"#), Null]);
        task["id"].as_str().unwrap().to_owned()
    }
}

impl Drop for CStore {
    fn drop(&mut self) {
        backlog_close(self.0);
    }
}

/// Which handle a C case passes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum H {
    /// The open fixture store.
    Open,
    /// NULL.
    NullStore,
    /// A handle that was open and has been closed.
    Closed,
    /// An address that was never a handle.
    Bogus,
}

fn oversized_body() -> String {
    oversized(MAX_BODY_BYTES)
}

fn oversized_batch() -> String {
    oversized(MAX_BATCH_BODY_BYTES)
}

fn deep_array() -> String {
    nested(100_000)
}

fn deep_object() -> String {
    format!("{}{}", r#"{"status":"#.repeat(100_000), "}".repeat(100_000))
}

fn huge_title() -> String {
    format!(r#"{{"title":"{}"}}"#, big(MAX_BODY_BYTES - 20))
}

fn agent_1mib() -> String {
    big(1 << 20)
}

const ML: Arg = Str("marketing-lead");
const INVALID_UTF8: &str = "must be valid UTF-8";

/// One C case: (description, handle, operation, arguments, expected code, text the JSON
/// must contain).
type CCase = (&'static str, H, Op, [Arg; 3], Want, &'static str);

#[rustfmt::skip]
const C_CASES: &[CCase] = &[
    // handles
    ("NULL store in list_tasks", H::NullStore, Op::List, [ML, Null, Null], INVALID, "store must not be NULL"),
    ("NULL store in create_task", H::NullStore, Op::Create, [ML, Str(r#"{"title":"t"}"#), Null], INVALID, "store must not be NULL"),
    ("NULL store in create_tasks", H::NullStore, Op::CreateMany, [ML, Str(r#"[{"title":"t"}]"#), Null], INVALID, "store must not be NULL"),
    ("NULL store in get_task", H::NullStore, Op::Get, [ML, Str("MKT-001"), Null], INVALID, "store must not be NULL"),
    ("NULL store in update_task", H::NullStore, Op::Update, [ML, Str("MKT-004"), Str("{}")], INVALID, "store must not be NULL"),
    ("NULL store in delete_task", H::NullStore, Op::Delete, [ML, Str("MKT-001"), Null], INVALID, "store must not be NULL"),
    ("NULL store in query_tasks", H::NullStore, Op::Query, [Null, Null, Null], INVALID, "store must not be NULL"),
    ("NULL store in summary", H::NullStore, Op::Summary, [ML, Null, Null], INVALID, "store must not be NULL"),
    ("NULL store in claim_next", H::NullStore, Op::Claim, [ML, Null, Null], INVALID, "store must not be NULL"),
    ("NULL store in set_prefix", H::NullStore, Op::Prefix, [Str("new-agent"), Str("NEW"), Null], INVALID, "store must not be NULL"),
    ("closed handle in create_task", H::Closed, Op::Create, [ML, Str(r#"{"title":"t"}"#), Null], STORAGE, "the store is closed"),
    ("closed handle in claim_next", H::Closed, Op::Claim, [ML, Null, Null], STORAGE, "the store is closed"),
    ("closed handle in delete_task", H::Closed, Op::Delete, [ML, Str("MKT-001"), Null], STORAGE, "the store is closed"),
    ("never-opened handle in update_task", H::Bogus, Op::Update, [ML, Str("MKT-004"), Str(r#"{"priority":1}"#)], INVALID, "store handle was never opened"),
    ("never-opened handle in query_tasks", H::Bogus, Op::Query, [Null, Null, Null], INVALID, "store handle was never opened"),
    // NULL strings
    ("NULL agent_id in list_tasks", H::Open, Op::List, [Null, Null, Null], INVALID, "agent_id must not be NULL"),
    ("NULL agent_id in create_task", H::Open, Op::Create, [Null, Str(r#"{"title":"t"}"#), Null], INVALID, "agent_id must not be NULL"),
    ("NULL agent_id in create_tasks", H::Open, Op::CreateMany, [Null, Str("[]"), Null], INVALID, "agent_id must not be NULL"),
    ("NULL agent_id in get_task", H::Open, Op::Get, [Null, Str("MKT-001"), Null], INVALID, "agent_id must not be NULL"),
    ("NULL agent_id in update_task", H::Open, Op::Update, [Null, Str("MKT-004"), Str("{}")], INVALID, "agent_id must not be NULL"),
    ("NULL agent_id in delete_task", H::Open, Op::Delete, [Null, Str("MKT-001"), Null], INVALID, "agent_id must not be NULL"),
    ("NULL agent_id in summary", H::Open, Op::Summary, [Null, Null, Null], INVALID, "agent_id must not be NULL"),
    ("NULL agent_id in claim_next", H::Open, Op::Claim, [Null, Null, Null], INVALID, "agent_id must not be NULL"),
    ("NULL agent_id in set_prefix", H::Open, Op::Prefix, [Null, Str("NEW"), Null], INVALID, "agent_id must not be NULL"),
    ("NULL task_json", H::Open, Op::Create, [ML, Null, Null], INVALID, "task_json must not be NULL"),
    ("NULL tasks_json_array", H::Open, Op::CreateMany, [ML, Null, Null], INVALID, "tasks_json_array must not be NULL"),
    ("NULL task_id in get_task", H::Open, Op::Get, [ML, Null, Null], INVALID, "task_id must not be NULL"),
    ("NULL task_id in update_task", H::Open, Op::Update, [ML, Null, Str("{}")], INVALID, "task_id must not be NULL"),
    ("NULL task_id in delete_task", H::Open, Op::Delete, [ML, Null, Null], INVALID, "task_id must not be NULL"),
    ("NULL patch_json", H::Open, Op::Update, [ML, Str("MKT-004"), Null], INVALID, "patch_json must not be NULL"),
    ("NULL prefix", H::Open, Op::Prefix, [Str("new-agent"), Null, Null], INVALID, "prefix must not be NULL"),
    ("NULL query_json in list_tasks is no filter", H::Open, Op::List, [ML, Null, Null], OK, r#""total":4"#),
    ("NULL query_json in query_tasks is no filter", H::Open, Op::Query, [Null, Null, Null], OK, r#""total":5"#),
    // invalid UTF-8
    ("agent_id not UTF-8", H::Open, Op::Create, [Bytes(b"marketing\xff-lead"), Str(r#"{"title":"t"}"#), Null], INVALID, INVALID_UTF8),
    ("task_id with an overlong NUL", H::Open, Op::Get, [ML, Bytes(b"MKT-\xc0\x80001"), Null], INVALID, INVALID_UTF8),
    ("task_json with a byte 0xFF in a string", H::Open, Op::Create, [ML, Bytes(b"{\"title\":\"a\xffb\"}"), Null], INVALID, INVALID_UTF8),
    ("batch with a UTF-8-encoded surrogate", H::Open, Op::CreateMany, [ML, Bytes(b"[{\"title\":\"\xed\xa0\x80\"}]"), Null], INVALID, INVALID_UTF8),
    ("patch cut inside a character", H::Open, Op::Update, [ML, Str("MKT-004"), Bytes(b"{\"title\":\"\xe2\x82")], INVALID, INVALID_UTF8),
    ("list query not UTF-8", H::Open, Op::List, [ML, Bytes(b"{\"status\":\"\xfe\"}"), Null], INVALID, INVALID_UTF8),
    ("cross-agent query not UTF-8", H::Open, Op::Query, [Bytes(b"\x80"), Null, Null], INVALID, INVALID_UTF8),
    ("prefix not UTF-8", H::Open, Op::Prefix, [Str("new-agent"), Bytes(b"N\xc3"), Null], INVALID, INVALID_UTF8),
    ("summary agent_id of Latin-1", H::Open, Op::Summary, [Bytes(b"caf\xe9"), Null, Null], INVALID, INVALID_UTF8),
    // malformed, deep, duplicate, oversized JSON
    ("empty task_json", H::Open, Op::Create, [ML, Str(""), Null], INVALID, "the task must be a JSON object"),
    ("truncated task_json", H::Open, Op::Create, [ML, Str(r#"{"title":"Wri"#), Null], INVALID, "EOF while parsing"),
    ("truncated batch", H::Open, Op::CreateMany, [ML, Str(r#"[{"title":"a"},"#), Null], INVALID, "the task list must be"),
    ("truncated patch", H::Open, Op::Update, [ML, Str("MKT-004"), Str("{")], INVALID, "the patch must be"),
    ("truncated list query", H::Open, Op::List, [ML, Str(r#"{"limit":"#), Null], INVALID, "the list query must be"),
    ("truncated query", H::Open, Op::Query, [Str(r#"{"status":"queu"#), Null, Null], INVALID, "the query must be"),
    ("array nested 100000 deep", H::Open, Op::Create, [ML, Built(deep_array), Null], INVALID, "recursion limit"),
    ("object nested 100000 deep", H::Open, Op::Update, [ML, Str("MKT-004"), Built(deep_object)], INVALID, "recursion limit"),
    ("duplicate keys in a query", H::Open, Op::Query, [Str(r#"{"agent_id":"marketing-lead","agent_id":"support-bot"}"#), Null, Null], INVALID, "appears twice"),
    ("task over 8 MiB, refused by size", H::Open, Op::Create, [ML, Built(oversized_body), Null], INVALID, "the limit is 8388608 bytes"),
    ("patch over 8 MiB, refused by size", H::Open, Op::Update, [ML, Str("MKT-004"), Built(oversized_body)], INVALID, "the limit is 8388608 bytes"),
    ("list query over 8 MiB, refused by size", H::Open, Op::List, [ML, Built(oversized_body), Null], INVALID, "the limit is 8388608 bytes"),
    ("query over 8 MiB, refused by size", H::Open, Op::Query, [Built(oversized_body), Null, Null], INVALID, "the limit is 8388608 bytes"),
    ("batch over 64 MiB, refused by size", H::Open, Op::CreateMany, [ML, Built(oversized_batch), Null], INVALID, "the limit is 67108864 bytes"),
    ("title of 8 MiB within the body limit", H::Open, Op::Create, [ML, Built(huge_title), Null], INVALID, "title must be 1 to 500 characters"),
    ("agent_id of 1 MiB", H::Open, Op::Claim, [Built(agent_1mib), Null, Null], INVALID, "agent_id must be"),
    // strings and numbers
    ("lone high surrogate escape", H::Open, Op::Create, [ML, Str(r#"{"title":"\ud83d"}"#), Null], INVALID, "unexpected end of hex escape"),
    ("lone low surrogate escape", H::Open, Op::Update, [ML, Str("MKT-003"), Str(r#"{"blocker":"\udfff x"}"#)], INVALID, "surrogate"),
    ("priority false", H::Open, Op::Query, [Str(r#"{"priority":false}"#), Null, Null], INVALID, "got false"),
    ("priority 1e400 overflows", H::Open, Op::Create, [ML, Str(r#"{"title":"a","priority":1e400}"#), Null], INVALID, "number out of range"),
    ("priority 2^64 in a batch", H::Open, Op::CreateMany, [ML, Str(r#"[{"title":"a","priority":18446744073709551616}]"#), Null], INVALID, "tasks[0]: priority"),
    ("limit -1", H::Open, Op::List, [ML, Str(r#"{"limit":-1}"#), Null], INVALID, "limit must be"),
    ("offset 0.5", H::Open, Op::Query, [Str(r#"{"offset":0.5}"#), Null, Null], INVALID, "offset must be an integer"),
    // SQL-looking values
    ("SQL title is plain text", H::Open, Op::Create, [ML, Str(r#"{"title":"'); DROP TABLE tasks; --","description":"' OR 1=1 --"}"#), Null], OK, SQL),
    ("SQL blocker is plain text", H::Open, Op::Update, [ML, Str("MKT-004"), Str(r#"{"status":"blocked","blocker":"'); DROP TABLE agents; --"}"#)], OK, "DROP TABLE agents"),
    ("SQL status filter", H::Open, Op::List, [ML, Str(r#"{"status":"queued' OR '1'='1"}"#), Null], INVALID, "status must be"),
    ("SQL agent_id filter", H::Open, Op::Query, [Str(r#"{"agent_id":"' OR ''='"}"#), Null, Null], INVALID, "agent_id must be"),
    ("SQL priority filter as a string", H::Open, Op::Query, [Str(r#"{"priority":"1 OR 1=1"}"#), Null, Null], INVALID, "priority must be an integer"),
];

/// Runs one C case on a fresh fixture and checks everything.
fn run_c_case(what: &str, handle: H, op: Op, args: [Arg; 3], want: Want, needle: &str) {
    let store = CStore::open(":memory:");
    store.fixture();
    let before = store.snapshot();
    let closed = CStore::open(":memory:");
    // Far above any handle this process will have been given.
    let bogus = 0xdead_beef_usize as *const BacklogStore;
    let ptr = match handle {
        H::Open => store.0.cast_const(),
        H::NullStore => ptr::null(),
        H::Closed => {
            backlog_close(closed.0);
            closed.0.cast_const()
        }
        H::Bogus => bogus,
    };
    let (code, value) = c_run(ptr, op, args);
    assert_eq!(c_code_name(code), code_of(want), "{what}: {value}");
    let text = value.to_string();
    assert!(text.contains(needle), "{what}: {needle:?} not in {text}");
    let after = store.snapshot();
    let new_mkt = if want == OK {
        before.check_only_touched(&after, &value, what)
    } else {
        assert_eq!(after, before, "{what}: something was written");
        0
    };
    check_next_ids(
        |agent| {
            store.next_id(if agent == "new-agent" {
                "new-agent"
            } else {
                "marketing-lead"
            })
        },
        new_mkt,
        what,
    );
}

#[test]
fn c_abi_catalogue() {
    assert!(C_CASES.len() >= 40);
    let mut seen = std::collections::HashSet::new();
    let mut failed = Vec::new();
    for &(what, handle, op, args, want, needle) in C_CASES {
        assert!(seen.insert(what), "two cases named {what}");
        if std::panic::catch_unwind(|| run_c_case(what, handle, op, args, want, needle)).is_err() {
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
    println!("C ABI catalogue: {} cases", C_CASES.len());
}

/// A NULL out-parameter: code 1, and the call does nothing at all.
#[test]
fn c_abi_null_out_parameter_does_nothing() {
    #[rustfmt::skip]
    let calls: &[(Op, [Arg; 3])] = &[
        (Op::List, [ML, Null, Null]),
        (Op::Create, [ML, Str(r#"{"title":"t"}"#), Null]),
        (Op::CreateMany, [ML, Str(r#"[{"title":"t"}]"#), Null]),
        (Op::Get, [ML, Str("MKT-001"), Null]),
        (Op::Update, [ML, Str("MKT-004"), Str(r#"{"status":"in_progress"}"#)]),
        (Op::Delete, [ML, Str("MKT-001"), Null]),
        (Op::Query, [Null, Null, Null]),
        (Op::Summary, [ML, Null, Null]),
        (Op::Claim, [ML, Null, Null]),
        (Op::Prefix, [Str("new-agent"), Str("ZZZ"), Null]),
    ];
    let store = CStore::open(":memory:");
    store.fixture();
    let before = store.snapshot();
    for &(op, args) in calls {
        // SAFETY: a NULL out-parameter is allowed.
        let code = unsafe { c_call(store.0, op, args, ptr::null_mut()) };
        assert_eq!(code, BACKLOG_INVALID_ARGUMENT, "{op:?}");
        assert_eq!(store.snapshot(), before, "{op:?} wrote something");
    }
    check_next_ids(
        |agent| {
            store.next_id(if agent == "new-agent" {
                "new-agent"
            } else {
                "marketing-lead"
            })
        },
        0,
        "NULL out",
    );
}

/// `backlog_open_with_options`: bad paths and bad options JSON.
#[test]
fn c_abi_open_catalogue() {
    let dir = TempDir::new("catalogue-c-open");
    let d = dir.path().display().to_string();
    std::fs::write(
        dir.file("notes.txt"),
        "plain text, not SQLite\n".repeat(100),
    )
    .unwrap();
    let target = dir.file("target.db");
    let good = format!("{d}/good.db");
    let uri = format!("file:{}?mode=memory", target.display());
    let text_file = format!("{d}/notes.txt");
    let missing = format!("{d}/no/such/dir/x.db");
    let o = |b: &[u8]| Some(CString::new(b).unwrap());
    let good_path = || o(good.as_bytes());
    type OpenCase = (
        &'static str,
        Option<CString>,
        Option<CString>,
        Want,
        &'static str,
    );
    #[rustfmt::skip]
    let cases: Vec<OpenCase> = vec![
        ("NULL path", None, None, INVALID, "path must not be NULL"),
        ("empty path", o(b""), None, INVALID, "empty path"),
        ("path not UTF-8", o(b"/tmp/\xff.db"), None, INVALID, INVALID_UTF8),
        ("file: URI", o(uri.as_bytes()), None, STORAGE, "cannot open"),
        ("missing folder", o(missing.as_bytes()), None, STORAGE, "cannot open"),
        ("a folder", o(d.as_bytes()), None, STORAGE, ""),
        ("a text file", o(text_file.as_bytes()), None, STORAGE, "not an SQLite database"),
        ("options not UTF-8", good_path(), o(b"{\"durability\":\"\xff\"}"), INVALID, INVALID_UTF8),
        ("options empty", good_path(), o(b""), INVALID, "the options must be"),
        ("options truncated", good_path(), o(br#"{"busy_timeout_ms":"#), INVALID, "the options must be"),
        ("options as an array", good_path(), o(b"[]"), INVALID, "the options must be"),
        ("options nested deep", good_path(), o(deep_object().as_bytes()), INVALID, "recursion limit"),
        ("options duplicate keys", good_path(), o(br#"{"durability":"full","durability":"normal"}"#), INVALID, "appears twice"),
        ("options over 8 MiB", good_path(), o(oversized_body().as_bytes()), INVALID, "the limit is 8388608 bytes"),
        ("busy_timeout_ms -1", good_path(), o(br#"{"busy_timeout_ms":-1}"#), INVALID, "busy_timeout_ms must be"),
        ("busy_timeout_ms 1e400", good_path(), o(br#"{"busy_timeout_ms":1e400}"#), INVALID, "number out of range"),
        ("busy_timeout_ms \"5000\"", good_path(), o(br#"{"busy_timeout_ms":"5000"}"#), INVALID, "busy_timeout_ms must be"),
        ("busy_timeout_ms 2^64", good_path(), o(br#"{"busy_timeout_ms":18446744073709551616}"#), INVALID, "busy_timeout_ms must be"),
        ("busy_timeout_ms past i32::MAX", good_path(), o(br#"{"busy_timeout_ms":2147483648}"#), INVALID, "busy_timeout must be at most 2147483647 ms"),
        ("busy_timeout_ms i64::MAX", good_path(), o(br#"{"busy_timeout_ms":9223372036854775807}"#), INVALID, "busy_timeout must be at most"),
        ("durability FULL", good_path(), o(br#"{"durability":"FULL"}"#), INVALID, "durability must be"),
        ("durability SQL", good_path(), o(br#"{"durability":"OFF; PRAGMA journal_mode=OFF"}"#), INVALID, "durability must be"),
        ("unknown option", good_path(), o(br#"{"synchronous":"OFF"}"#), INVALID, "unknown field"),
        ("busy_timeout_ms of 24 days", o(b":memory:"), o(br#"{"busy_timeout_ms":2147483647}"#), OK, ""),
    ];
    let text_before = std::fs::read(&text_file).unwrap();
    for (what, path, options, want, needle) in cases {
        let (mut store, mut error) = (SENTINEL.cast::<BacklogStore>(), SENTINEL);
        // SAFETY: valid (or NULL) strings and valid out-parameters.
        let code =
            unsafe { backlog_open_with_options(p(&path), p(&options), &mut store, &mut error) };
        assert_eq!(c_code_name(code), code_of(want), "{what}");
        if code == BACKLOG_OK {
            assert!(error.is_null() && !store.is_null(), "{what}");
            backlog_close(store);
        } else {
            assert!(store.is_null(), "{what}: a handle was written");
            assert!(
                !error.is_null() && error != SENTINEL,
                "{what}: no error written"
            );
            // SAFETY: written by the library.
            let text = unsafe { CStr::from_ptr(error) }
                .to_str()
                .unwrap()
                .to_owned();
            // SAFETY: freed once.
            unsafe { backlog_string_free(error) };
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["error"]["code"], code_of(want), "{what}: {text}");
            assert!(text.contains(needle), "{what}: {needle:?} not in {text}");
        }
        assert!(!target.exists(), "{what}: the URI's file was created");
        assert!(
            !Path::new(&good).exists(),
            "{what}: refused options created the file"
        );
        assert_eq!(std::fs::read(&text_file).unwrap(), text_before, "{what}");
    }
    // NULL out-parameters.
    let path = CString::new(good.clone()).unwrap();
    let mut error = SENTINEL;
    // SAFETY: a NULL out_store is allowed.
    let code = unsafe { backlog_open(path.as_ptr(), ptr::null_mut(), &mut error) };
    assert_eq!(code, BACKLOG_INVALID_ARGUMENT);
    assert!(!error.is_null() && error != SENTINEL);
    // SAFETY: written by the library, freed once.
    unsafe { backlog_string_free(error) };
    let mut store = SENTINEL.cast::<BacklogStore>();
    // SAFETY: a NULL out_error is allowed.
    let code = unsafe { backlog_open(path.as_ptr(), &mut store, ptr::null_mut()) };
    assert_eq!((code, store), (BACKLOG_INVALID_ARGUMENT, ptr::null_mut()));
    assert!(
        !Path::new(&good).exists(),
        "an open with a NULL out-parameter created the file"
    );
}

/// Closing NULL, a never-opened handle and a closed handle twice does nothing, and
/// freeing NULL does nothing.
#[test]
fn c_abi_close_and_free_of_anything() {
    let store = CStore::open(":memory:");
    store.fixture();
    let before = store.snapshot();
    let other = CStore::open(":memory:");
    backlog_close(other.0);
    backlog_close(other.0);
    backlog_close(ptr::null_mut());
    backlog_close(0x1000usize as *mut BacklogStore);
    // SAFETY: NULL is allowed.
    unsafe { backlog_string_free(ptr::null_mut()) };
    assert_eq!(store.snapshot(), before);
}
