//! The PostgreSQL server of the tests (SPEC §16), when there is one: `make test`
//! starts a private one (`scripts/pg.sh`) and names it in `AGENT_BACKLOG_TEST_PG`.
//!
//! Each store of a test lives in a schema of its own (`?options=-csearch_path=…`),
//! so that tests run side by side on one database and start empty. [`Schemas`]
//! drops the schemas it gave out when it is dropped.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The server's URL, or `None` (with a note on stderr) when the tests run without one.
pub fn url() -> Option<String> {
    match std::env::var("AGENT_BACKLOG_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "AGENT_BACKLOG_TEST_PG is not set: the PostgreSQL half of this test is skipped \
                 (make test sets it)"
            );
            None
        }
    }
}

/// Fresh schemas on the server, dropped at the end.
pub struct Schemas {
    url: String,
    prefix: String,
    next: AtomicUsize,
    given: Mutex<Vec<String>>,
}

impl Schemas {
    /// Schemas named after `tag` and this process.
    pub fn new(url: &str, tag: &str) -> Schemas {
        Schemas {
            url: url.to_owned(),
            prefix: format!("t_{tag}_{}", std::process::id()),
            next: AtomicUsize::new(0),
            given: Mutex::new(Vec::new()),
        }
    }

    /// The URL of a new, empty schema.
    pub fn fresh(&self) -> String {
        self.fresh_named().0
    }

    /// The URL of a new, empty schema, and the schema's name (for SQL of a test's own).
    pub fn fresh_named(&self) -> (String, String) {
        let name = format!(
            "{}_{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        self.given.lock().unwrap().push(name.clone());
        let sep = if self.url.contains('?') { '&' } else { '?' };
        (
            format!("{}{sep}options=-csearch_path%3D{name}", self.url),
            name,
        )
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.given.lock().unwrap());
        if names.is_empty() {
            return;
        }
        let Ok(mut client) = postgres::Client::connect(&self.url, postgres::NoTls) else {
            return;
        };
        for chunk in names.chunks(50) {
            let list: Vec<String> = chunk.iter().map(|n| format!("\"{n}\"")).collect();
            let _ = client.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                list.join(", ")
            ));
        }
    }
}
