//! `backlog_call` with any operation of the table and raw bytes as the request.
//!
//! The first byte picks the operation (from `agent_backlog::ops::OPERATIONS`, so a new
//! operation is fuzzed without a new target; a few values give a name that is no
//! operation), the rest is the request text. Every call must give a code from 0 to 7 but 6
//! with compact, valid JSON (the error object on failure), an unknown operation must be
//! code 1, and a refused call (code 1) must leave the store as it was.
#![no_main]

use std::sync::Mutex;

use agent_backlog::ops::OPERATIONS;
use agent_backlog_fuzz::*;
use libfuzzer_sys::fuzz_target;

static STORE: Mutex<Option<Handle>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&pick, request)) = data.split_first() else {
        return;
    };
    let mut guard = STORE.lock().unwrap_or_else(|p| p.into_inner());
    let store = guard.get_or_insert_with(Handle::memory);
    let name = OPERATIONS
        .get(pick as usize % (OPERATIONS.len() + 2))
        .map_or("no_such_operation", |op| op.name);
    // A wait may last its whole timeout (up to 300 s), which libFuzzer would report as
    // a hang; its request is parsed as claim_lease's plus timeout_seconds (tests/leases.rs).
    if name == "wait_for_task" {
        return;
    }
    let snapshot = || {
        call("query_tasks", |out| {
            let (op, req) = (cs("query_tasks"), cs("{}"));
            // SAFETY: an open handle, valid strings, a writable out-parameter.
            unsafe { backlog_call(store.ptr(), op.as_ptr(), req.as_ptr(), out) }
        })
        .text
    };
    let before = snapshot();
    let buffer = c_buffer(request);
    let op = cs(name);
    let outcome = call(name, |out| {
        // SAFETY: an open handle, NUL-terminated buffers, a writable out-parameter.
        unsafe { backlog_call(store.ptr(), op.as_ptr(), buffer.as_ptr().cast(), out) }
    });
    if name == "no_such_operation" {
        assert_eq!(outcome.code, BACKLOG_INVALID_ARGUMENT, "{}", outcome.text);
    }
    if outcome.code == BACKLOG_INVALID_ARGUMENT {
        assert_eq!(snapshot(), before, "a refused {name} wrote: {}", outcome.text);
    }
});
