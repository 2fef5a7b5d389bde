//! The data commands: the matches of an operation's subcommand become its JSON request
//! (see [`crate::args`] for how inputs map to arguments), which the core's operation
//! table parses, checks and runs.

use agent_backlog::ops::{parse_json, Kind, Operation, OPERATIONS};
use agent_backlog::{Error, Store};
use clap::ArgMatches;
use serde_json::{json, Map, Value};

use crate::args::field_id;
use crate::convert::text_value;

/// The result of one data command, ready to print.
#[derive(Debug)]
pub struct Done {
    /// The operation that ran.
    pub operation: &'static str,
    /// The agent it ran for, when its request named one.
    pub agent_id: Option<String>,
    /// Its result, as the core's compact JSON.
    pub json: String,
}

/// The JSON request of `op` from its subcommand's matches.
pub fn request(op: &Operation, matches: &ArgMatches) -> Result<Value, Error> {
    let mut request = Map::new();
    for input in op.inputs {
        match input.kind {
            Kind::Object(fields) => {
                let mut object = Map::new();
                for field in fields {
                    let id = field_id(input, field.name);
                    if let Some(text) = matches.get_one::<String>(&id) {
                        object.insert(field.name.to_owned(), text_value(field.kind, text));
                    }
                    if field.nullable && matches.get_flag(&format!("clear_{id}")) {
                        object.insert(field.name.to_owned(), Value::Null);
                    }
                }
                request.insert(input.name.to_owned(), Value::Object(object));
            }
            Kind::List(_) => {
                if let Some(text) = matches.get_one::<String>(input.name) {
                    let what = format!("the {} argument", input.name);
                    request.insert(
                        input.name.to_owned(),
                        parse_json(text, &what, input.example)?,
                    );
                }
            }
            kind => {
                if let Some(text) = matches.get_one::<String>(input.name) {
                    request.insert(input.name.to_owned(), text_value(kind, text));
                }
            }
        }
    }
    Ok(Value::Object(request))
}

/// Runs the operation of a derived subcommand against the store.
pub fn run(store: &Store, op: &'static Operation, matches: &ArgMatches) -> Result<Done, Error> {
    let request = request(op, matches)?;
    let agent_id = request["agent_id"].as_str().map(str::to_owned);
    Ok(Done {
        operation: op.name,
        agent_id,
        json: op.call_value(store, request)?,
    })
}

/// Runs `call OPERATION REQUEST`, or lists the table for `call --list`.
pub fn call(store: Option<&Store>, matches: &ArgMatches) -> Result<Done, Error> {
    let done = |json| Done {
        operation: "call",
        agent_id: None,
        json,
    };
    let (Some(store), Some(operation)) = (store, matches.get_one::<String>("operation")) else {
        return Ok(done(operations()));
    };
    let request = matches
        .get_one::<String>("request")
        .map_or("{}", String::as_str);
    Ok(done(store.call(operation, request)?))
}

/// The operation table as JSON, for `call --list`: each operation's name, command,
/// what it does, its inputs and its REST route.
fn operations() -> String {
    let ops: Vec<Value> = OPERATIONS
        .iter()
        .map(|op| {
            let inputs: Vec<Value> = op
                .inputs
                .iter()
                .map(|i| json!({"name": i.name, "required": i.required, "doc": i.doc}))
                .collect();
            json!({
                "name": op.name,
                "command": op.command,
                "doc": op.doc,
                "inputs": inputs,
                "route": format!("{} {}", op.route.method, op.route.path),
            })
        })
        .collect();
    Value::Array(ops).to_string()
}
