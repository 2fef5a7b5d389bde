//! The conformance cases of testdata/conformance/ (see its README) through the C ABI,
//! called from Rust: every operation by name through `backlog_call`, on a store opened
//! with `backlog_open(":memory:")`.
//!
//! Besides what every runner checks (tests/common/conformance.rs), each call must write
//! compact JSON to its out-parameter, and an error's JSON must be `{"error":{"code",
//! "message"}}` with the code that the return value says. `CONFORMANCE_FILTER=text`
//! runs only the cases whose name contains `text`.

#[path = "../../tests/common/conformance.rs"]
mod conformance;
#[path = "../../tests/common/pg.rs"]
mod pg;

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use agent_backlog_capi::{
    backlog_call, backlog_close, backlog_open, backlog_string_free, BacklogStore,
};
use conformance::{is_compact, At, Failure, Json, OpensAt, Outcome, Surface};

/// The codes of the C ABI by number (SPEC §9, §10).
const CODES: [&str; 8] = [
    "ok",
    "invalid_argument",
    "not_found",
    "invalid_transition",
    "conflict",
    "storage",
    "internal",
    "lease_lost",
];

/// A store opened with `backlog_open`, closed on drop.
struct CStore(*mut BacklogStore);

impl Drop for CStore {
    fn drop(&mut self) {
        backlog_close(self.0);
    }
}

/// The C ABI.
struct CAbi;

/// Opens a store by `backlog_open` on `path` (a file, `:memory:` or a URL).
fn open_c(path: &str) -> CStore {
    let text = CString::new(path).unwrap();
    let (mut store, mut error) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: a NUL-terminated path and valid out-parameters.
    let code = unsafe { backlog_open(text.as_ptr(), &mut store, &mut error) };
    assert!(
        code == 0 && !store.is_null() && error.is_null(),
        "backlog_open({path:?}) gave {code}"
    );
    CStore(store)
}

impl Surface for CAbi {
    type Store = CStore;
    const NAME: &'static str = "c";

    fn open(&self) -> CStore {
        open_c(":memory:")
    }

    fn call(&self, store: &CStore, operation: &str, request: &str) -> Outcome {
        let op = CString::new(operation).expect("an operation name without NUL");
        let req = CString::new(request).expect("a request text without NUL");
        let mut out: *mut c_char = ptr::null_mut();
        // SAFETY: NUL-terminated strings, an open handle and a valid out-parameter.
        let code = unsafe { backlog_call(store.0, op.as_ptr(), req.as_ptr(), &mut out) };
        assert!(
            !out.is_null(),
            "{operation}: code {code} and no JSON written"
        );
        // SAFETY: the library wrote a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(out) }.to_str().map(str::to_owned);
        // SAFETY: written by the library, freed once.
        unsafe { backlog_string_free(out) };
        let text = text.unwrap_or_else(|_| panic!("{operation}: the JSON is not UTF-8"));
        let name = usize::try_from(code)
            .ok()
            .and_then(|i| CODES.get(i))
            .unwrap_or_else(|| panic!("{operation}: an unknown code {code}: {text}"));
        assert!(is_compact(&text), "{operation}: not compact JSON: {text}");
        if code == 0 {
            return Ok(text);
        }
        let error = Json::parse(&text).unwrap_or_else(|e| panic!("{operation}: {e}: {text}"));
        let field = |key: &str| {
            error
                .get("error")
                .and_then(|e| e.get(key))
                .and_then(Json::as_str)
                .unwrap_or_else(|| {
                    panic!("{operation}: code {code} without the error JSON: {text}")
                })
        };
        assert_eq!(
            field("code"),
            *name,
            "{operation}: the code in the JSON: {text}"
        );
        Err(Failure {
            code: (*name).to_owned(),
            message: field("message"),
        })
    }
}

#[test]
fn conformance_through_backlog_call() {
    let dir = conformance::data_dir(env!("CARGO_MANIFEST_DIR"));
    conformance::run(&CAbi, &dir, 2);
}

impl OpensAt for CAbi {
    fn open_at(&self, location: &str) -> CStore {
        open_c(location)
    }
}

/// The C ABI on PostgreSQL: `backlog_open` with a URL, a schema of its own per case.
#[test]
fn conformance_on_postgres() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "capi");
    let dir = conformance::data_dir(env!("CARGO_MANIFEST_DIR"));
    let fresh = || schemas.fresh();
    conformance::run(
        &At {
            surface: CAbi,
            fresh,
        },
        &dir,
        4,
    );
}
