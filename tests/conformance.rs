//! The conformance cases of testdata/conformance/ (see its README) through the Rust
//! API, one operation at a time by name: `Store::call(operation, request_json)`, which
//! answers with the result as compact JSON text or an `agent_backlog::Error`.
//!
//! Loading the cases, setting up each on a fresh in-memory store, matching results and
//! the "nothing was written" checks are in tests/common/conformance.rs, shared with the
//! C and HTTP runners. `CONFORMANCE_FILTER=text` runs only the cases whose name
//! contains `text`.

#[path = "common/conformance.rs"]
mod conformance;
#[path = "common/pg.rs"]
mod pg;

use agent_backlog::Store;
use conformance::{At, Failure, OpensAt, Outcome, Surface};

/// The Rust API.
struct RustApi;

impl Surface for RustApi {
    type Store = Store;
    const NAME: &'static str = "rust";

    fn open(&self) -> Store {
        self.open_at(":memory:")
    }

    fn call(&self, store: &Store, operation: &str, request: &str) -> Outcome {
        store.call(operation, request).map_err(|e| Failure {
            code: e.code().to_owned(),
            message: e.to_string(),
        })
    }
}

#[test]
fn conformance_through_store_call() {
    let dir = conformance::data_dir(env!("CARGO_MANIFEST_DIR"));
    conformance::run(&RustApi, &dir, 2);
}

impl OpensAt for RustApi {
    fn open_at(&self, location: &str) -> Store {
        Store::open(location).expect("the store opens")
    }
}

/// The Rust API on PostgreSQL: every case on a schema of its own (SPEC §16).
#[test]
fn conformance_on_postgres() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "conformance");
    let dir = conformance::data_dir(env!("CARGO_MANIFEST_DIR"));
    let fresh = || schemas.fresh();
    conformance::run(
        &At {
            surface: RustApi,
            fresh,
        },
        &dir,
        4,
    );
}
