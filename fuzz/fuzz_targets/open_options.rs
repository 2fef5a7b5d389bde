//! `backlog_open_with_options` with raw bytes as `options_json` (path `:memory:`).
//!
//! A UTF-8 JSON object with each key once and only busy_timeout_ms (null or an integer
//! from 0 to 2147483647, SQLite's limit) and durability (null, "normal" or "full") must
//! open a working store; anything else must be code 1 with the error object and no
//! handle.
#![no_main]

use std::ffi::{c_char, CStr};
use std::ptr;

use agent_backlog_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// `Some(())` when the options must be accepted; `None` when refused.
fn expected(buffer: &[u8]) -> Option<()> {
    let map = request_object(buffer, &["busy_timeout_ms", "durability"])?;
    match map.get("busy_timeout_ms") {
        None | Some(Value::Null) => {}
        Some(v) => {
            int_in(v, 0..=i64::from(i32::MAX))?;
        }
    }
    match map.get("durability") {
        None | Some(Value::Null) => {}
        Some(Value::String(d)) if d == "normal" || d == "full" => {}
        Some(_) => return None,
    }
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let buffer = c_buffer(data);
    let path = cs(":memory:");
    let sentinel = ptr::dangling_mut::<c_char>();
    let (mut store, mut error) = (sentinel.cast::<BacklogStore>(), sentinel);
    // SAFETY: valid strings and out-parameters.
    let code = unsafe {
        backlog_open_with_options(
            path.as_ptr(),
            buffer.as_ptr().cast(),
            &mut store,
            &mut error,
        )
    };
    assert!(
        store != sentinel.cast() && error != sentinel,
        "out-parameters not written"
    );
    let error_text = (!error.is_null()).then(|| {
        // SAFETY: written by the library, freed once.
        let text = unsafe { CStr::from_ptr(error) }
            .to_str()
            .unwrap()
            .to_owned();
        unsafe { backlog_string_free(error) };
        text
    });
    match expected(&buffer) {
        Some(()) => {
            assert_eq!(code, BACKLOG_OK, "refused valid options: {error_text:?}");
            assert!(error_text.is_none() && !store.is_null());
            let handle = Handle(store);
            let s = check_summary("summary", &handle.summary("fuzz-agent"));
            assert_eq!(s, [0; 5]);
            handle
                .create("fuzz-agent", &c_buffer(br#"{"title":"t"}"#))
                .expect_ok("create");
        }
        None => {
            assert_eq!(code, BACKLOG_INVALID_ARGUMENT, "{error_text:?}");
            assert!(store.is_null(), "a handle for refused options");
            let text = error_text.expect("no error JSON");
            let value: Value = serde_json::from_str(&text).unwrap();
            check_error("open", code, &value, &text);
        }
    }
});
