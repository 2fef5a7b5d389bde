//! The conformance cases of testdata/conformance/ through the tools of SPEC §15
//! (`agent_backlog::tools`): each request is flattened into a tool's arguments (the
//! body's fields beside the other inputs) and the result read back out of the tool's
//! structured content, so every case checks that a tool does exactly what its
//! operation does — the same result, the same error code and message, nothing written
//! on a refusal. Cases marked for other surfaces only (what a flat, null-means-absent
//! argument list cannot say) are skipped here by their `"surfaces"`.

#[path = "common/conformance.rs"]
mod conformance;
#[path = "common/pg.rs"]
mod pg;

use agent_backlog::ops::{operation, Kind, Place};
use agent_backlog::tools::Toolbox;
use agent_backlog::Store;
use conformance::{At, Failure, OpensAt, Outcome, Surface};
use serde_json::{json, Map, Value};

struct Tools(Toolbox);

/// The tool arguments of an operation's request: the body's fields side by side with
/// the other inputs, and `""` where a patch clears a nullable field with `null`.
fn flatten(op_name: &str, request: Value) -> Value {
    let op = operation(op_name).expect("a known operation");
    let Value::Object(request) = request else {
        panic!("not an object request: the tools take only objects")
    };
    let mut args = Map::new();
    for (key, value) in request {
        let input = op.inputs.iter().find(|i| i.name == key);
        match (input.map(|i| (i.kind, i.place)), value) {
            (Some((Kind::Object(fields), Place::Body)), Value::Object(body)) => {
                for (field, value) in body {
                    let clears =
                        value.is_null() && fields.iter().any(|f| f.name == field && f.nullable);
                    args.insert(field, if clears { json!("") } else { value });
                }
            }
            (Some((Kind::Object(_), Place::Body)), other) => {
                panic!("the body {other} is not an object: a tool cannot express it")
            }
            (_, value) => {
                args.insert(key, value);
            }
        }
    }
    Value::Object(args)
}

impl Surface for Tools {
    type Store = Store;
    const NAME: &'static str = "tools";

    fn open(&self) -> Store {
        self.open_at(":memory:")
    }

    fn call(&self, store: &Store, operation: &str, request: &str) -> Outcome {
        let request: Value = match serde_json::from_str(request) {
            Ok(request) => request,
            Err(e) => panic!("the request is not JSON ({e}): a tool takes parsed arguments"),
        };
        let outcome = self.0.call(store, operation, flatten(operation, request));
        if outcome.is_error {
            let error = &outcome.content["error"];
            return Err(Failure {
                code: error["code"].as_str().expect("a code").to_owned(),
                message: error["message"].as_str().expect("a message").to_owned(),
            });
        }
        let object = outcome.content.as_object().expect("an object result");
        // A result that may be null is the object itself when there is one, and
        // `{"result": null}` when there is none.
        // (A task has a `result` key too, among nine others.)
        let value = if !operation_result_is_object(operation)
            && object.len() == 1
            && object.contains_key("result")
        {
            assert!(
                object["result"].is_null(),
                "only null is wrapped: {object:?}"
            );
            Value::Null
        } else {
            outcome.content.clone()
        };
        Ok(value.to_string())
    }
}

fn operation_result_is_object(name: &str) -> bool {
    operation(name)
        .expect("a known operation")
        .result
        .is_object()
}

#[test]
fn conformance_through_the_tools() {
    let dir = conformance::data_dir(env!("CARGO_MANIFEST_DIR"));
    conformance::run(&Tools(Toolbox::new("all", None).unwrap()), &dir, 2);
}

impl OpensAt for Tools {
    fn open_at(&self, location: &str) -> Store {
        Store::open(location).expect("the store opens")
    }
}

/// The tools on PostgreSQL: every case on a schema of its own (SPEC §16).
#[test]
fn conformance_through_the_tools_on_postgres() {
    let Some(url) = pg::url() else { return };
    let schemas = pg::Schemas::new(&url, "tools");
    let dir = conformance::data_dir(env!("CARGO_MANIFEST_DIR"));
    let tools = Tools(Toolbox::new("all", None).unwrap());
    let fresh = || schemas.fresh();
    conformance::run(
        &At {
            surface: tools,
            fresh,
        },
        &dir,
        4,
    );
}
