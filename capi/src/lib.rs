//! The C ABI, declared in `include/agent_backlog.h`.
//!
//! The header is generated from this file alone by cbindgen (see `cbindgen.toml` and
//! `tests/header.rs`; `make header` regenerates it), so the doc comments below are
//! written for C readers: they end up in the header.
//!
//! This module only converts: C strings to `&str`, JSON text to the core's typed
//! requests (with the core's strict parsers), responses to compact JSON, and errors to
//! a code plus the error object. Every rule of the contract lives in the core.
//!
//! - **Handles.** A `BacklogStore *` is a token, never dereferenced: it is the key of a
//!   live [`Store`] in a process-wide registry. Every call looks its handle up and
//!   clones the `Arc`, so `backlog_close` in another thread cannot free a store that a
//!   call is using. A closed handle is `storage` ("the store is closed", SPEC §8: every
//!   call after `close` returns); one never opened is `invalid_argument`.
//! - **Panics.** Every exported body runs inside [`guard`] (one `catch_unwind`): a panic
//!   becomes code 6 (`internal`) with the error object, and never unwinds into C.
//! - **Strings.** Results are `CString`s handed over with `into_raw` and taken back by
//!   `backlog_string_free`; JSON never holds a raw NUL byte (serde_json escapes it).

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

use serde::Serialize;

use agent_backlog::{
    Error, ErrorCode, ListQuery, NewTask, Result, Store, StoreOptions, TaskPatch, TaskQuery,
};

/// Return code: success; the out-parameter holds the result JSON.
pub const BACKLOG_OK: c_int = 0;
/// Return code `invalid_argument`: a NULL pointer, invalid UTF-8, a handle never opened,
/// malformed JSON, an unknown field, a wrong type or a value out of range. Nothing
/// was written.
pub const BACKLOG_INVALID_ARGUMENT: c_int = 1;
/// Return code `not_found`: the task does not exist in that agent's backlog.
pub const BACKLOG_NOT_FOUND: c_int = 2;
/// Return code `invalid_transition`: a lifecycle move that is not allowed. Nothing
/// was written.
pub const BACKLOG_INVALID_TRANSITION: c_int = 3;
/// Return code `conflict`: a prefix held by another agent, or a prefix change after
/// the agent's first task.
pub const BACKLOG_CONFLICT: c_int = 4;
/// Return code `storage`: SQLite failed (busy past the timeout, disk full,
/// read-only, corrupt or foreign file, newer schema).
pub const BACKLOG_STORAGE: c_int = 5;
/// Return code `internal`: a bug in the library (a caught panic). The store stays
/// usable.
pub const BACKLOG_INTERNAL: c_int = 6;
/// Return code `lease_lost`: the lease token is no longer the task's current lease
/// (expired and requeued, claimed by another worker, or the task was moved or
/// deleted). Nothing was written.
pub const BACKLOG_LEASE_LOST: c_int = 7;

// The C codes are the core's codes; a change on either side fails to compile.
const _: () = {
    assert!(BACKLOG_INVALID_ARGUMENT == ErrorCode::InvalidArgument as c_int);
    assert!(BACKLOG_NOT_FOUND == ErrorCode::NotFound as c_int);
    assert!(BACKLOG_INVALID_TRANSITION == ErrorCode::InvalidTransition as c_int);
    assert!(BACKLOG_CONFLICT == ErrorCode::Conflict as c_int);
    assert!(BACKLOG_STORAGE == ErrorCode::Storage as c_int);
    assert!(BACKLOG_INTERNAL == ErrorCode::Internal as c_int);
    assert!(BACKLOG_LEASE_LOST == ErrorCode::LeaseLost as c_int);
};

/// An open store, created by `backlog_open` and ended by `backlog_close`.
///
/// Opaque: only ever handled through a pointer. One handle may be used from several
/// threads at once: reads run side by side, writes take turns.
pub struct BacklogStore {
    _opaque: [u8; 0],
}

/// The live stores, keyed by the number handed to C as their handle.
static STORES: RwLock<BTreeMap<usize, Arc<Store>>> = RwLock::new(BTreeMap::new());

/// The process whose threads have used the registry. In a child forked from it, the
/// registry's lock may be held by a parent thread that does not exist in the child, so
/// there the lock is only tried, for a short while, never waited for.
static OWNER: AtomicU32 = AtomicU32::new(0);

/// How long a forked child tries for the registry's lock before giving up.
const CHILD_LOCK_PATIENCE: Duration = Duration::from_millis(100);

/// Whether this process is a child forked after the registry was first used.
fn forked_child() -> bool {
    let me = std::process::id();
    match OWNER.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => false,
        Err(owner) => owner != me,
    }
}

fn forked_registry() -> Error {
    Error::Storage {
        message: "the store registry was locked by a thread of the parent process at \
                  fork(); open the stores of this process after fork() from a single \
                  thread, or before it with no thread using them"
            .into(),
        source: None,
    }
}

/// Takes the registry's lock with `lock` — or, in a forked child, tries it with `try_lock`
/// for [`CHILD_LOCK_PATIENCE`].
fn registry<G>(
    lock: impl Fn() -> std::sync::LockResult<G>,
    try_lock: impl Fn() -> std::sync::TryLockResult<G>,
) -> Result<G> {
    if !forked_child() {
        return Ok(lock().unwrap_or_else(PoisonError::into_inner));
    }
    let start = Instant::now();
    loop {
        match try_lock() {
            Ok(guard) => return Ok(guard),
            Err(TryLockError::Poisoned(poisoned)) => return Ok(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if start.elapsed() < CHILD_LOCK_PATIENCE => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => return Err(forked_registry()),
        }
    }
}

/// The number of the next handle. Handles are counted, never reused: a stale handle
/// can never reach a store opened after it was closed.
static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(1);

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// Adds a store to the registry and returns its handle: a counter disguised as a
/// pointer, never dereferenced.
fn register(store: Store) -> Result<*mut BacklogStore> {
    let number = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    registry(|| STORES.write(), || STORES.try_write())?.insert(number, Arc::new(store));
    Ok(ptr::without_provenance_mut(number))
}

/// The store behind a handle, if it is open. Never dereferences `handle`. A handle
/// that was given and closed is `storage`, as every call after `close` is (SPEC §8);
/// one never given is `invalid_argument`.
fn lookup(handle: *const BacklogStore) -> Result<Arc<Store>> {
    if handle.is_null() {
        return Err(invalid(
            "store must not be NULL: pass the handle that backlog_open gave",
        ));
    }
    let number = handle.addr();
    if let Some(store) = registry(|| STORES.read(), || STORES.try_read())?.get(&number) {
        return Ok(Arc::clone(store));
    }
    if number < NEXT_HANDLE.load(Ordering::Relaxed) {
        return Err(Error::Storage {
            message: "the store is closed (backlog_close was called on this handle); open \
                      it again with backlog_open to use it"
                .into(),
            source: None,
        });
    }
    Err(invalid(
        "store handle was never opened: pass a handle that backlog_open gave",
    ))
}

/// Borrows a C string argument as UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged
/// while the returned `&str` is used.
unsafe fn text<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(invalid(format!(
            "{name} must not be NULL: pass a NUL-terminated UTF-8 string"
        )));
    }
    // SAFETY: `ptr` is not NULL, and the caller guarantees that it points to a
    // NUL-terminated string that outlives the borrow.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|e| {
        invalid(format!(
            "{name} must be valid UTF-8, but the byte at offset {} is not",
            e.valid_up_to()
        ))
    })
}

/// Like [`text`], for an argument where NULL means "not given".
///
/// # Safety
/// As for [`text`].
unsafe fn optional_text<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's guarantee for `ptr` is the one `text` needs.
    unsafe { text(ptr, name) }.map(Some)
}

/// A response as compact JSON.
fn json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Internal(format!("a response could not be written as JSON: {e}")))
}

/// The message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

/// Runs `f`, returning `fallback` if it panics. For the exported functions that
/// return no code.
fn catch<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            forget_payload(payload);
            fallback
        }
    }
}

/// Drops a panic payload; should its destructor panic too, that payload is leaked
/// rather than unwound.
fn forget_payload(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// The guard around the body of every exported function that returns a code.
///
/// Runs `body` inside `catch_unwind` and returns the C code with the JSON text for the
/// caller: `(0, result)` on success, `(code, error object)` on an error, and
/// `(6, error object)` when `body` panics. Nothing unwinds past it.
///
/// `AssertUnwindSafe` is sound here: the only state shared between calls is the
/// handle registry (never locked across a call into the core) and each store's
/// connection, whose mutex recovers from poisoning and whose open transaction is
/// rolled back while unwinding.
///
/// Public so that tests can drive a panic through it:
///
/// ```
/// use agent_backlog_capi::{guard, BACKLOG_INTERNAL};
/// let (code, json) = guard(|| panic!("boom"));
/// assert_eq!(code, BACKLOG_INTERNAL);
/// assert!(json.starts_with(r#"{"error":{"code":"internal","message":"#));
/// assert!(json.contains("boom"));
/// ```
pub fn guard(body: impl FnOnce() -> Result<String>) -> (c_int, String) {
    let outcome = catch_unwind(AssertUnwindSafe(|| match body() {
        Ok(json) => (BACKLOG_OK, json),
        Err(err) => (err.kind() as c_int, err.to_json().to_string()),
    }));
    match outcome {
        Ok(done) => done,
        Err(payload) => {
            let err = Error::Internal(format!(
                "agent-backlog panicked ({}), which is a bug: please report it; \
                 the call was abandoned and the store is still usable",
                panic_message(&*payload)
            ));
            forget_payload(payload);
            (BACKLOG_INTERNAL, err.to_json().to_string())
        }
    }
}

/// Hands a JSON text to C as a newly allocated NUL-terminated string.
fn into_c_string(json: String) -> *mut c_char {
    CString::new(json)
        .unwrap_or_else(|_| {
            // Unreachable: serde_json escapes NUL as \u0000. Still, never panic here.
            CString::from(
                c"{\"error\":{\"code\":\"internal\",\"message\":\"a response held a NUL byte\"}}",
            )
        })
        .into_raw()
}

/// Runs `body` in the guard and writes its JSON to `*out`; returns the code.
/// A NULL `out` is code 1 and `body` does not run.
///
/// # Safety
/// `out` is NULL or valid for writing one pointer.
unsafe fn respond(out: *mut *mut c_char, body: impl FnOnce() -> Result<String>) -> c_int {
    if out.is_null() {
        return BACKLOG_INVALID_ARGUMENT;
    }
    // SAFETY: `out` is not NULL and the caller guarantees it is valid for a write.
    unsafe { out.write(ptr::null_mut()) };
    let (code, json) = guard(body);
    let json = into_c_string(json);
    // SAFETY: as above.
    unsafe { out.write(json) };
    code
}

/// The shared body of `backlog_open` and `backlog_open_with_options`.
///
/// # Safety
/// As documented on `backlog_open_with_options`.
unsafe fn open(
    path: *const c_char,
    options_json: *const c_char,
    out_store: *mut *mut BacklogStore,
    out_error: *mut *mut c_char,
) -> c_int {
    if !out_store.is_null() {
        // SAFETY: not NULL, and the caller guarantees it is valid for a write.
        unsafe { out_store.write(ptr::null_mut()) };
    }
    if out_error.is_null() {
        return BACKLOG_INVALID_ARGUMENT;
    }
    // SAFETY: not NULL, and the caller guarantees it is valid for a write.
    unsafe { out_error.write(ptr::null_mut()) };
    let (code, json) = guard(|| {
        if out_store.is_null() {
            return Err(invalid(
                "out_store must not be NULL: pass the address of a BacklogStore * variable",
            ));
        }
        // SAFETY: the caller guarantees `path` is NULL or a NUL-terminated string.
        let path = unsafe { text(path, "path") }?;
        // SAFETY: the caller guarantees `options_json` is NULL or a NUL-terminated string.
        let options = match unsafe { optional_text(options_json, "options_json") }? {
            Some(json) => StoreOptions::from_json(json)?,
            None => StoreOptions::default(),
        };
        let handle = register(Store::open_with(path, options)?)?;
        // SAFETY: `out_store` is not NULL (checked above) and valid for a write.
        unsafe { out_store.write(handle) };
        Ok(String::new())
    });
    if code != BACKLOG_OK {
        // SAFETY: `out_error` is not NULL (checked above) and valid for a write.
        unsafe { out_error.write(into_c_string(json)) };
    }
    code
}

/// Opens (creating if needed) the store at `path` with the default options: a busy
/// timeout of 5 seconds and `synchronous=NORMAL` durability.
///
/// `path` is a file path in UTF-8, `":memory:"` for a private in-memory store, or a
/// PostgreSQL URL (`postgresql://user@host/db`, `postgres://` too; see
/// docs/POSTGRES.md); `file:` URIs are not interpreted. On success returns 0, writes the new handle to
/// `*out_store` and leaves `*out_error` NULL; close the handle with `backlog_close`.
/// On failure writes NULL to `*out_store` and the error JSON to `*out_error` (free it
/// with `backlog_string_free`): code 5 (`storage`) when the file cannot be opened, is
/// not an agent-backlog database or has a newer schema (it is then left untouched).
///
/// Thread safety: may be called from any thread; the handle may be shared by threads.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string. `out_store` and `out_error` are NULL or
/// point to writable `BacklogStore *` and `char *` variables. Both out-parameters are
/// set to NULL on entry. If `out_error` is NULL the function returns 1 and writes
/// nothing else; any other NULL argument is code 1 with the error JSON.
#[no_mangle]
pub unsafe extern "C" fn backlog_open(
    path: *const c_char,
    out_store: *mut *mut BacklogStore,
    out_error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller upholds this function's `# Safety` contract, which is `open`'s.
    unsafe { open(path, ptr::null(), out_store, out_error) }
}

/// Opens (creating if needed) the store at `path` with options given as JSON:
/// `{"busy_timeout_ms"?: integer >= 0, "durability"?: "normal" | "full", "actor"?: string}`.
///
/// `options_json` may be NULL: the defaults (5000 ms, `"normal"`, no actor). `"normal"`
/// means an acknowledged write survives any crash of the process, but the last writes
/// before a power loss or OS crash may be rolled back; `"full"` also survives power
/// loss, at the cost of an fsync per write. `"actor"` (1 to 128 characters) is who the
/// store's writes are recorded as in the history (SPEC §14). Unknown fields, wrong types and malformed JSON are code 1.
/// Otherwise as `backlog_open`.
///
/// Thread safety: may be called from any thread; the handle may be shared by threads.
///
/// # Safety
/// `path` and `options_json` are NULL or NUL-terminated strings. `out_store` and
/// `out_error` are NULL or point to writable `BacklogStore *` and `char *` variables;
/// both are set to NULL on entry. If `out_error` is NULL the function returns 1 and
/// writes nothing else.
#[no_mangle]
pub unsafe extern "C" fn backlog_open_with_options(
    path: *const c_char,
    options_json: *const c_char,
    out_store: *mut *mut BacklogStore,
    out_error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller upholds this function's `# Safety` contract, which is `open`'s.
    unsafe { open(path, options_json, out_store, out_error) }
}

/// Closes a store and invalidates its handle. NULL, or a handle that is not open, is a
/// no-op.
///
/// Waits for the call running on the handle in another thread, if any, to finish, then
/// closes the database. Any later call with this handle returns code 5 ("the store
/// is closed"), as does a call that raced with the close and lost. Handles are never
/// reused, so a stale handle never reaches a store opened later.
///
/// Thread safety: may be called from any thread, also while other threads use the
/// handle: their calls either complete or fail cleanly, and the store is freed only
/// when the last of them has returned.
///
/// # Safety
/// None: any pointer value is accepted, and it is never dereferenced.
#[no_mangle]
pub extern "C" fn backlog_close(store: *mut BacklogStore) {
    catch((), || {
        // In a forked child whose registry a dead parent thread holds, the handle is let
        // go of without closing (the store is the parent's anyway).
        let Ok(mut stores) = registry(|| STORES.write(), || STORES.try_write()) else {
            return;
        };
        let removed = stores.remove(&store.addr());
        drop(stores);
        if let Some(store) = removed {
            // There is no one to report a failure to: the connection is released anyway.
            let _ = store.close();
        }
    })
}

/// Lists an agent's tasks, by priority then creation order.
///
/// `query_json` is NULL (every task) or `{"status"?, "limit"?, "offset"?}`. On success
/// writes `{"agent_id":...,"tasks":[task...],"total":N}` to `*out_json`, where `total`
/// counts every match ignoring limit and offset; an agent with no tasks gives
/// `"tasks":[]` and 0.
///
/// Returns 0, or 1 (`invalid_argument`), 5 (`storage`), 6 (`internal`); on failure
/// `*out_json` holds the error JSON.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_list_tasks(
    store: *const BacklogStore,
    agent_id: *const c_char,
    query_json: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (agent_id, query) = unsafe {
            (
                text(agent_id, "agent_id")?,
                optional_text(query_json, "query_json")?,
            )
        };
        let query = match query {
            Some(q) => ListQuery::from_json(q)?,
            None => ListQuery::new(),
        };
        json(&store.list_tasks(agent_id, query)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Creates a task in an agent's backlog.
///
/// `task_json` is `{"title": string, "description"?: string|null, "priority"?: 1..10,
/// "depends_on"?: ["MKT-001", ...]}`. On success writes the new task to `*out_json`,
/// e.g. `{"id":"MKT-001","title":...,"status":"queued",...}`.
///
/// Returns 0, or 1 (`invalid_argument`), 2 (`not_found`: a task of `depends_on` does
/// not exist), 5 (`storage`), 6 (`internal`); on failure `*out_json` holds the error
/// JSON and nothing was written.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_create_task(
    store: *const BacklogStore,
    agent_id: *const c_char,
    task_json: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (agent_id, task) =
            unsafe { (text(agent_id, "agent_id")?, text(task_json, "task_json")?) };
        json(&store.create_task(agent_id, NewTask::from_json(task)?)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Creates several tasks in an agent's backlog, all or nothing, in one transaction.
///
/// `tasks_json_array` is a JSON array of create bodies (see `backlog_create_task`), at
/// most 10,000; in an item's `depends_on` an integer names an earlier item of the
/// array by its index. On success writes `{"agent_id":...,"tasks":[task...],"total":N}`
/// with the new tasks in the given order.
///
/// Returns 0, or 1 (`invalid_argument`, naming the index of a bad item), 2
/// (`not_found`: a task of a `depends_on` does not exist), 5 (`storage`), 6
/// (`internal`); on failure `*out_json` holds the error JSON and no task was created.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_create_tasks(
    store: *const BacklogStore,
    agent_id: *const c_char,
    tasks_json_array: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (agent_id, tasks) = unsafe {
            (
                text(agent_id, "agent_id")?,
                text(tasks_json_array, "tasks_json_array")?,
            )
        };
        json(&store.create_tasks(agent_id, NewTask::list_from_json(tasks)?)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Creates a task under an idempotency key (SPEC §12): a retry is safe.
///
/// `idempotency_key` is 1 to 255 printable ASCII characters, scoped to the agent;
/// `task_json` as for `backlog_create_task`. The first call creates the task; a call
/// with the same key and the same body (after defaults and trimming) creates nothing
/// and writes the task as it is now; deleting the task frees the key.
///
/// Returns as `backlog_create_task`, and 4 (`conflict`) when the key was used with
/// another body.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_create_task_idempotent(
    store: *const BacklogStore,
    agent_id: *const c_char,
    idempotency_key: *const c_char,
    task_json: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (agent_id, key, task) = unsafe {
            (
                text(agent_id, "agent_id")?,
                text(idempotency_key, "idempotency_key")?,
                text(task_json, "task_json")?,
            )
        };
        json(&store.create_task_idempotent(agent_id, key, NewTask::from_json(task)?)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Creates several tasks under an idempotency key, all or nothing, as
/// `backlog_create_task_idempotent` does for one: a replay writes the batch's tasks
/// that still exist, as they are now, in the order created.
///
/// Returns as `backlog_create_tasks`, and 4 (`conflict`) when the key was used with
/// another body.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_create_tasks_idempotent(
    store: *const BacklogStore,
    agent_id: *const c_char,
    idempotency_key: *const c_char,
    tasks_json_array: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (agent_id, key, tasks) = unsafe {
            (
                text(agent_id, "agent_id")?,
                text(idempotency_key, "idempotency_key")?,
                text(tasks_json_array, "tasks_json_array")?,
            )
        };
        json(&store.create_tasks_idempotent(agent_id, key, NewTask::list_from_json(tasks)?)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Gets one task of an agent's backlog.
///
/// On success writes the task to `*out_json`. Returns 0, or 1 (`invalid_argument`, e.g.
/// a malformed task_id), 2 (`not_found`: no such task in this agent's backlog), 5
/// (`storage`), 6 (`internal`); on failure `*out_json` holds the error JSON.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_get_task(
    store: *const BacklogStore,
    agent_id: *const c_char,
    task_id: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (agent_id, task_id) =
            unsafe { (text(agent_id, "agent_id")?, text(task_id, "task_id")?) };
        json(&store.get_task(agent_id, task_id)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Updates a task: changes fields and moves it through the lifecycle.
///
/// `patch_json` is `{"status"?, "priority"?, "title"?, "description"?, "blocker"?,
/// "result"?}`: an absent field is unchanged; `null` clears description, blocker or
/// result; `{}` changes nothing. `blocker` only with a task that is or becomes blocked,
/// `result` only with one that is or becomes complete. On success writes the updated
/// task to `*out_json`.
///
/// Returns 0, or 1 (`invalid_argument`), 2 (`not_found`), 3 (`invalid_transition`: e.g.
/// queued to complete; the message names the allowed moves), 5 (`storage`), 6
/// (`internal`); on failure `*out_json` holds the error JSON and nothing was written.
///
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_update_task(
    store: *const BacklogStore,
    agent_id: *const c_char,
    task_id: *const c_char,
    patch_json: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (agent_id, task_id, patch) = unsafe {
            (
                text(agent_id, "agent_id")?,
                text(task_id, "task_id")?,
                text(patch_json, "patch_json")?,
            )
        };
        json(&store.update_task(agent_id, task_id, TaskPatch::from_json(patch)?)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Deletes a task for good; its number is never given again.
///
/// On success writes `{"deleted":"MKT-001"}` to `*out_json`. Returns 0, or 1
/// (`invalid_argument`), 2 (`not_found`), 5 (`storage`), 6 (`internal`); on failure
/// `*out_json` holds the error JSON.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_delete_task(
    store: *const BacklogStore,
    agent_id: *const c_char,
    task_id: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (agent_id, task_id) =
            unsafe { (text(agent_id, "agent_id")?, text(task_id, "task_id")?) };
        json(&store.delete_task(agent_id, task_id)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Lists tasks across all agents, by priority then creation order.
///
/// `query_json` is NULL (every task) or `{"status"?, "priority"? (exact), "agent_id"?,
/// "limit"?, "offset"?}`. On success writes `{"tasks":[{"agent_id":...,"id":...,...}],
/// "total":N}` to `*out_json`.
///
/// Returns 0, or 1 (`invalid_argument`), 5 (`storage`), 6 (`internal`); on failure
/// `*out_json` holds the error JSON.
///
/// # Safety
/// `store` is any pointer (it is only compared with open handles). `query_json` is NULL
/// or NUL-terminated. `out_json` is NULL or points to a writable `char *`; it is set to
/// NULL on entry. A NULL `out_json` returns 1 and writes nothing.
#[no_mangle]
pub unsafe extern "C" fn backlog_query_tasks(
    store: *const BacklogStore,
    query_json: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees `query_json` is NULL or a NUL-terminated string.
        let query = match unsafe { optional_text(query_json, "query_json") }? {
            Some(q) => TaskQuery::from_json(q)?,
            None => TaskQuery::new(),
        };
        json(&store.query_tasks(query)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Counts an agent's tasks by status.
///
/// On success writes `{"queued":a,"in_progress":b,"complete":c,"blocked":d,"total":N}`
/// to `*out_json` (all zeros for an agent with no tasks). Returns 0, or 1
/// (`invalid_argument`), 5 (`storage`), 6 (`internal`); on failure `*out_json` holds the
/// error JSON.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_summary(
    store: *const BacklogStore,
    agent_id: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees `agent_id` is NULL or a NUL-terminated string.
        let agent_id = unsafe { text(agent_id, "agent_id") }?;
        json(&store.summary(agent_id)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Atomically moves the agent's first ready task (queued, every dependency complete;
/// by priority, then creation order) to in_progress and returns it.
///
/// On success writes the claimed task to `*out_json`, or the four characters `null`
/// when nothing is ready (still a string to free). Two claimers, in two threads or two
/// processes, never get the same task. Returns 0, or 1 (`invalid_argument`), 5
/// (`storage`, e.g. busy past the timeout), 6 (`internal`); on failure `*out_json` holds
/// the error JSON.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_claim_next(
    store: *const BacklogStore,
    agent_id: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees `agent_id` is NULL or a NUL-terminated string.
        let agent_id = unsafe { text(agent_id, "agent_id") }?;
        json(&store.claim_next(agent_id)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Sets the prefix of an agent's task IDs, before its first task.
///
/// `prefix` is 1 to 8 characters A-Z 0-9 starting with a letter. On success writes
/// `{"agent_id":...,"prefix":"MKT"}` to `*out_json`. Returns 0, or 1
/// (`invalid_argument`), 4 (`conflict`: another agent holds the prefix, or the agent
/// already has tasks with another prefix), 5 (`storage`), 6 (`internal`); on failure
/// `*out_json` holds the error JSON.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_set_prefix(
    store: *const BacklogStore,
    agent_id: *const c_char,
    prefix: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (agent_id, prefix) = unsafe { (text(agent_id, "agent_id")?, text(prefix, "prefix")?) };
        json(&store.set_prefix(agent_id, prefix)?)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Runs any operation of the library by name, with a JSON request.
///
/// `operation` is the operation's name (`"list_tasks"`, `"create_task"`,
/// `"claim_next"`, ...); `request_json` is a JSON object whose keys are the operation's
/// inputs by name: `{"agent_id": "marketing-lead", "status": "queued", "limit": 10}`.
/// The patch of `update_task` sits under `"patch"`, the body of `create_task` under
/// `"task"`, the list of `create_tasks` under `"tasks"`. The result JSON is exactly
/// what the operation's own function writes. An unknown operation, an unknown key or
/// a missing input is code 1.
///
/// The lease operations (`"claim_lease"`, `"renew_lease"`, `"finish_lease"`,
/// `"finish_and_claim"`, `"get_lease"`, `"reap_expired"`, `"wait_for_task"`) are
/// reached only this way: `{"agent_id": "ops", "worker": "w1", "lease_seconds": 30}`;
/// a token that no longer holds its lease is code 7 (`lease_lost`). `wait_for_task`
/// blocks the calling thread up to its `timeout_seconds`.
///
/// Returns 0 or the code of the failure (1 to 7), as every function here.
///
/// # Safety
/// As the header's conventions say: pointers NULL or valid, strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn backlog_call(
    store: *const BacklogStore,
    operation: *const c_char,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    let body = || {
        let store = lookup(store)?;
        // SAFETY: the caller guarantees these are NULL or NUL-terminated strings.
        let (operation, request) = unsafe {
            (
                text(operation, "operation")?,
                text(request_json, "request_json")?,
            )
        };
        store.call(operation, request)
    };
    // SAFETY: the caller guarantees `out_json` is NULL or valid for one write.
    unsafe { respond(out_json, body) }
}

/// Frees a string returned by this library (a result or an error JSON). NULL is a
/// no-op.
///
/// Thread safety: may be called from any thread, not only the one that received the
/// string.
///
/// # Safety
/// `s` is NULL or a string that this library wrote to an out-parameter and that has
/// not been freed yet. Never pass the result of `backlog_version`, a string from
/// another allocator, or the same string twice.
#[no_mangle]
pub unsafe extern "C" fn backlog_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    catch((), || {
        // SAFETY: the caller guarantees `s` came from `CString::into_raw` in this
        // library (see `into_c_string`) and has not been freed.
        drop(unsafe { CString::from_raw(s) });
    })
}

/// The version of the library, e.g. `"0.1.0"`.
///
/// Returns a static NUL-terminated string: never NULL, never free it.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// None: it takes no arguments and cannot fail.
#[no_mangle]
pub extern "C" fn backlog_version() -> *const c_char {
    VERSION.as_ptr()
}

/// `crate::VERSION` as a C string.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the package version holds a NUL byte"),
    };
