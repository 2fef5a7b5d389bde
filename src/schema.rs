//! JSON Schemas (draft 2020-12) of what the operations return and of the values they
//! take, written once from the contract (SPEC §2, §3, §10–§14) for every surface that
//! describes itself: the MCP tools' output schemas and the Python tool list.
//!
//! Each [`Operation`](crate::ops::Operation) names its result's [`Shape`]; the schema
//! of a shape is exact: every key the result holds is `required`, no other key is
//! allowed, and values that may be absent are `null`, never missing.
//!
//! ```
//! use agent_backlog::ops::operation;
//! use agent_backlog::schema::Shape;
//! let summary = operation("summary").unwrap();
//! assert_eq!(summary.result, Shape::Summary);
//! let schema = summary.result.schema();
//! assert_eq!(schema["required"][4], "total");
//! assert_eq!(schema["additionalProperties"], false);
//! ```

use serde_json::{json, Value};

use crate::ops::{Field, Kind};
use crate::rules::{lease, validate};

/// The shape of an operation's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A task (SPEC §2).
    Task,
    /// A task, or `null` when there was none to claim.
    TaskOrNull,
    /// `{"agent_id", "tasks": [task...], "total"}`.
    TaskList,
    /// `{"tasks": [task with agent_id...], "total"}`.
    QueryResult,
    /// `{"queued", "in_progress", "complete", "blocked", "total"}`.
    Summary,
    /// `{"deleted": task_id}`.
    Deleted,
    /// `{"agent_id", "prefix"}`.
    PrefixSet,
    /// A lease (SPEC §10).
    Lease,
    /// A lease, or `null` when the task holds none.
    LeaseOrNull,
    /// `{"task", "lease"}`, or `null` when nothing was ready.
    ClaimOrNull,
    /// `{"finished": task, "next": {"task", "lease"} or null}`.
    Finished,
    /// `{"requeued": [task_id...], "blocked": [task_id...]}`.
    Reaped,
    /// `{"task_id", "depends_on": [task_id...]}`.
    Dependencies,
    /// `{"task_id", "ready", "depends_on": [ref...], "dependents": [ref...]}`.
    DependencyGraph,
    /// `{"task_id", "events": [event...]}`.
    History,
    /// `{"events": [event...], "next"}`.
    EventPage,
    /// `{"pruned": N}`.
    Pruned,
    /// `{"agents": [agent...], "total"}`.
    AgentList,
}

impl Shape {
    /// Whether every result of this shape is a JSON object (not `null`, not a list).
    pub fn is_object(self) -> bool {
        !matches!(
            self,
            Shape::TaskOrNull | Shape::LeaseOrNull | Shape::ClaimOrNull
        )
    }

    /// The JSON Schema of a result of this shape that is there: for the shapes that
    /// may be `null`, the schema of their object (REST answers 204 for `null`).
    pub fn present_schema(self) -> Value {
        match self {
            Shape::TaskOrNull => task(),
            Shape::LeaseOrNull => lease(),
            Shape::ClaimOrNull => claim(),
            other => other.schema(),
        }
    }

    /// The JSON Schema of a result of this shape.
    pub fn schema(self) -> Value {
        match self {
            Shape::Task => task(),
            Shape::TaskOrNull => or_null(task()),
            Shape::TaskList => object(&[
                ("agent_id", text("The agent whose backlog it is.")),
                ("tasks", list(task())),
                (
                    "total",
                    count("Every matching task, ignoring limit and offset."),
                ),
            ]),
            Shape::QueryResult => object(&[
                ("tasks", list(agent_task())),
                (
                    "total",
                    count("Every matching task, ignoring limit and offset."),
                ),
            ]),
            Shape::Summary => counts(&[]),
            Shape::Deleted => object(&[("deleted", text("The ID of the deleted task."))]),
            Shape::PrefixSet => object(&[
                ("agent_id", text("The agent.")),
                ("prefix", text("The prefix its task IDs carry.")),
            ]),
            Shape::Lease => lease(),
            Shape::LeaseOrNull => or_null(lease()),
            Shape::ClaimOrNull => or_null(claim()),
            Shape::Finished => object(&[("finished", task()), ("next", or_null(claim()))]),
            Shape::Reaped => object(&[
                ("requeued", list(text("A task put back in the queue."))),
                (
                    "blocked",
                    list(text("A task blocked after its last attempt.")),
                ),
            ]),
            Shape::Dependencies => object(&[
                ("task_id", text("The task.")),
                ("depends_on", list(text("A task it waits for."))),
            ]),
            Shape::DependencyGraph => object(&[
                ("task_id", text("The task.")),
                (
                    "ready",
                    boolean("Whether every task it depends on is complete."),
                ),
                ("depends_on", list(task_ref())),
                ("dependents", list(task_ref())),
            ]),
            Shape::History => object(&[("task_id", text("The task.")), ("events", list(event()))]),
            Shape::EventPage => object(&[
                ("events", list(event())),
                (
                    "next",
                    integer("The seq to pass as `after` for the next page."),
                ),
            ]),
            Shape::Pruned => object(&[("pruned", count("Events removed."))]),
            Shape::AgentList => object(&[
                (
                    "agents",
                    list(counts(&[
                        ("agent_id", text("The agent.")),
                        ("prefix", text("The prefix of its task IDs.")),
                    ])),
                ),
                ("total", count("Every agent, ignoring limit and offset.")),
            ]),
        }
    }
}

/// The JSON Schema of the input or field `name` of operation `op`, of type `kind`:
/// the type, and the ranges and patterns of the contract's rules (SPEC §2, §5, §6,
/// §10–§14; `rules::validate` checks them), so that a value the schema allows is one
/// the operation accepts. Objects and lists of objects are strict: their fields' own
/// schemas, no other key; in a create body, an optional field may also be `null`,
/// which means "not given" (SPEC §3), and in a patch the fields that `null` clears.
pub fn of_input(op: &str, name: &str, kind: Kind, doc: &str) -> Value {
    let mut schema = match kind {
        Kind::Text => json!({"type": "string"}),
        Kind::Integer => json!({"type": "integer"}),
        Kind::Number => json!({"type": "number"}),
        Kind::Status => json!({"type": "string", "enum": STATUSES}),
        Kind::FinishStatus => json!({"type": "string", "enum": ["complete", "queued", "blocked"]}),
        Kind::TaskIds if op == "create_tasks" => json!({
            "type": "array",
            "items": {"anyOf": [task_id_string(), {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER}]},
        }),
        Kind::TaskIds => json!({"type": "array", "items": task_id_string()}),
        Kind::Object(fields) => object_of(op, name, fields),
        Kind::List(fields) => json!({"type": "array", "items": object_of(op, name, fields)}),
    };
    if let (Some(object), Some(Value::Object(rules))) = (schema.as_object_mut(), rules(op, name)) {
        object.extend(rules);
    }
    if !doc.is_empty() {
        schema["description"] = json!(doc);
    }
    schema
}

fn object_of(op: &str, input: &str, fields: &[Field]) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for field in fields {
        let mut schema = of_input(op, field.name, field.kind, field.doc);
        // A patch takes null only where it clears; a create body's null is "not given".
        let takes_null = if input == "patch" {
            field.nullable
        } else {
            !field.required
        };
        if takes_null {
            schema = nullable(schema);
        }
        properties.insert(field.name.to_owned(), schema);
        if field.required {
            required.push(field.name);
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The largest integer a count, limit or offset can be (a signed 64-bit integer).
const MAX_INTEGER: i64 = i64::MAX;

/// A task ID: a prefix of 1 to 12 characters A-Z 0-9 starting with a letter, a hyphen,
/// 3 to 20 digits (SPEC §5).
const TASK_ID: &str = "^[A-Z][A-Z0-9]{0,11}-[0-9]{3,20}$";

fn task_id_string() -> Value {
    json!({"type": "string", "pattern": TASK_ID})
}

/// Text with at least one character that is not white space, and no NUL.
const NOT_BLANK: &str = "^[^\\u0000]*[^\\s\\u0085\\u0000][^\\u0000]*$";

/// The ranges and patterns of an input or field, by its name (and operation where
/// the same name means another range).
fn rules(op: &str, name: &str) -> Option<Value> {
    let name_of =
        |max: usize| json!({"pattern": format!("^[A-Za-z0-9][A-Za-z0-9._-]{{0,{}}}$", max - 1)});
    Some(match (op, name) {
        (_, "agent_id") => name_of(validate::MAX_AGENT_ID_CHARS),
        (_, "worker") => name_of(lease::MAX_WORKER_CHARS),
        (_, "task_id") | ("add_dependency" | "remove_dependency", "depends_on") => {
            json!({"pattern": TASK_ID})
        }
        (_, "token") => json!({
            "pattern": "^[A-Z][A-Z0-9]{0,11}-[0-9]{3,20}\\.[1-9][0-9]{0,17}\\.[0-9a-f]{16}$"
        }),
        (_, "prefix") => json!({"pattern": "^[A-Z][A-Z0-9]{0,7}$"}),
        (_, "idempotency_key") => json!({"pattern": "^[ -~]{1,255}$"}),
        (_, "title") => {
            json!({"minLength": 1, "maxLength": validate::MAX_TITLE_CHARS, "pattern": NOT_BLANK})
        }
        (_, "blocker") => {
            json!({"minLength": 1, "maxLength": validate::MAX_BLOCKER_CHARS, "pattern": NOT_BLANK})
        }
        (_, "description") => {
            json!({"maxLength": validate::MAX_DESCRIPTION_CHARS, "pattern": "^[^\\u0000]*$"})
        }
        (_, "result") => {
            json!({"maxLength": validate::MAX_RESULT_CHARS, "pattern": "^[^\\u0000]*$"})
        }
        (_, "priority") => json!({"minimum": 1, "maximum": 10}),
        ("events", "limit") => json!({"minimum": 1, "maximum": 1000}),
        (_, "limit" | "offset" | "after" | "before") => {
            json!({"minimum": 0, "maximum": MAX_INTEGER})
        }
        (_, "lease_seconds") => json!({"minimum": 1, "maximum": lease::MAX_LEASE_SECONDS}),
        (_, "max_attempts") => json!({"minimum": 1, "maximum": lease::MAX_ATTEMPTS}),
        (_, "timeout_seconds") => json!({"minimum": 0, "maximum": lease::MAX_WAIT_SECONDS}),
        (_, "wait_seconds") => json!({"minimum": 0, "maximum": 60}),
        _ => return None,
    })
}

/// `schema` widened to also allow `null`: `"type"` gains `"null"`, an `enum` gains
/// `null`, anything else becomes `anyOf` with `{"type": "null"}`.
pub fn nullable(mut schema: Value) -> Value {
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    match object.get_mut("type") {
        Some(Value::String(one)) => {
            let one = std::mem::take(one);
            object.insert("type".into(), json!([one, "null"]));
        }
        Some(Value::Array(many)) => {
            if !many.iter().any(|t| t == "null") {
                many.push(json!("null"));
            }
        }
        _ => return json!({"anyOf": [schema, {"type": "null"}]}),
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
    schema
}

const STATUSES: [&str; 4] = ["queued", "in_progress", "complete", "blocked"];

fn object(properties: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    let properties: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn or_null(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

fn list(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn text(doc: &str) -> Value {
    json!({"type": "string", "description": doc})
}

fn text_or_null(doc: &str) -> Value {
    json!({"type": ["string", "null"], "description": doc})
}

fn time(doc: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": doc})
}

fn time_or_null(doc: &str) -> Value {
    json!({"type": ["string", "null"], "format": "date-time", "description": doc})
}

fn integer(doc: &str) -> Value {
    json!({"type": "integer", "description": doc})
}

fn count(doc: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "description": doc})
}

fn boolean(doc: &str) -> Value {
    json!({"type": "boolean", "description": doc})
}

fn status(doc: &str) -> Value {
    json!({"type": "string", "enum": STATUSES, "description": doc})
}

fn task_fields() -> Vec<(&'static str, Value)> {
    vec![
        (
            "id",
            text("The task's ID, such as MKT-001; never changes, never reused."),
        ),
        ("title", text("Short task title.")),
        (
            "description",
            text_or_null("Detailed instructions, or null."),
        ),
        (
            "priority",
            json!({"type": "integer", "minimum": 1, "maximum": 10,
                   "description": "1 (highest) to 10 (lowest)."}),
        ),
        (
            "status",
            status("queued, in_progress, complete or blocked."),
        ),
        ("created", time("When it was created (UTC).")),
        (
            "started",
            time_or_null("When it last entered in_progress, or null."),
        ),
        ("completed", time_or_null("When it was completed, or null.")),
        (
            "result",
            text_or_null("What the agent produced (complete tasks only), or null."),
        ),
        (
            "blocker",
            text_or_null("Why it is blocked (blocked tasks only), or null."),
        ),
    ]
}

fn task() -> Value {
    object(&task_fields())
}

fn agent_task() -> Value {
    let mut fields = vec![("agent_id", text("The agent whose backlog holds the task."))];
    fields.extend(task_fields());
    object(&fields)
}

fn counts(first: &[(&str, Value)]) -> Value {
    let mut fields = first.to_vec();
    fields.extend([
        ("queued", count("Tasks waiting to be claimed.")),
        ("in_progress", count("Tasks being worked on.")),
        ("complete", count("Finished tasks.")),
        ("blocked", count("Blocked tasks.")),
        ("total", count("The sum of the four counts.")),
    ]);
    object(&fields)
}

fn lease() -> Value {
    object(&[
        (
            "token",
            text("The lease's token: pass it to renew_lease and finish_lease."),
        ),
        ("agent_id", text("The agent whose task it is.")),
        ("task_id", text("The leased task.")),
        ("worker", text("Who holds the lease.")),
        (
            "fence",
            count("Grows by one at every leased claim and move of the task."),
        ),
        (
            "attempt",
            count("Which leased claim of the task this is, from 1."),
        ),
        (
            "max_attempts",
            count("After this many attempts an expiry blocks the task."),
        ),
        (
            "granted",
            time("When the lease was granted or last renewed."),
        ),
        ("expires", time("When the lease expires unless renewed.")),
    ])
}

fn claim() -> Value {
    object(&[("task", task()), ("lease", lease())])
}

fn task_ref() -> Value {
    object(&[
        ("agent_id", text("The agent whose backlog holds the task.")),
        ("id", text("The task's ID.")),
        ("status", status("Its status.")),
    ])
}

fn event() -> Value {
    object(&[
        (
            "seq",
            integer("The event's place in the feed; grows with commit order."),
        ),
        ("at", time("When it was committed.")),
        ("agent_id", text("The agent whose backlog changed.")),
        (
            "task_id",
            text_or_null("The task, or null for an agent-wide event."),
        ),
        (
            "type",
            json!({"type": "string", "enum": [
                "created", "updated", "claimed", "finished", "lease_expired",
                "deleted", "dependency_added", "dependency_removed", "prefix_set"
            ], "description": "What happened."}),
        ),
        ("actor", text_or_null("Who did it, when known.")),
        (
            "data",
            json!({"type": "object", "description": "The details of this type of event (SPEC §14)."}),
        ),
    ])
}
