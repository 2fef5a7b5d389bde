//! The C ABI around fork(): a child forked while another thread of the parent is
//! inside calls on a handle can close that handle, and its other calls return, all
//! without waiting for a lock that a parent thread held at the fork (SPEC §8).

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_backlog_capi::*;

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// `backlog_call` on `handle`; the code, and the JSON freed.
fn call(handle: usize, op: &CString, request: &CString) -> i32 {
    let mut out: *mut c_char = ptr::null_mut();
    let store = ptr::without_provenance::<BacklogStore>(handle);
    // SAFETY: valid strings and out-parameter; the handle is only looked up.
    let code = unsafe { backlog_call(store, op.as_ptr(), request.as_ptr(), &mut out) };
    // SAFETY: written by the library (never NULL with a valid out-parameter).
    let _ = unsafe { CStr::from_ptr(out) };
    // SAFETY: freed once.
    unsafe { backlog_string_free(out) };
    code
}

#[test]
fn a_forked_child_closes_and_calls_without_hanging() {
    let path = c(":memory:");
    let (mut store, mut error) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid string and out-parameters.
    assert_eq!(
        unsafe { backlog_open(path.as_ptr(), &mut store, &mut error) },
        BACKLOG_OK
    );
    let handle = store.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (create, summary) = (c("create_task"), c("summary"));
            let (task, agent) = (
                c(r#"{"agent_id":"forker","task":{"title":"t"}}"#),
                c(r#"{"agent_id":"forker"}"#),
            );
            let mut calls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(call(handle, &create, &task), BACKLOG_OK);
                assert_eq!(call(handle, &summary, &agent), BACKLOG_OK);
                calls += 1;
            }
            calls
        })
    };
    let (summary, agent) = (c("summary"), c(r#"{"agent_id":"forker"}"#));
    for round in 0..50 {
        // SAFETY: the child only calls the library and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // Refused (the store is the parent's, or the registry was held at the fork),
            // never answered as if the store were this process's own.
            let refused = call(handle, &summary, &agent) != BACKLOG_OK;
            backlog_close(ptr::without_provenance_mut(handle));
            let after = call(handle, &summary, &agent);
            let code = if refused && after != BACKLOG_OK { 0 } else { 1 };
            // SAFETY: ends the forked child at once.
            unsafe { libc::_exit(code) };
        }
        let start = Instant::now();
        let status = loop {
            let mut status = 0;
            // SAFETY: our own child, not blocking.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                break status;
            }
            if start.elapsed() > Duration::from_secs(20) {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("round {round}: the forked child hung");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "round {round}: a call in the child was answered as the parent's store ({status})"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let calls = busy.join().unwrap();
    assert!(calls > 0);
    // The parent's handle still works.
    assert_eq!(call(handle, &summary, &agent), BACKLOG_OK);
    backlog_close(ptr::without_provenance_mut(handle));
}
