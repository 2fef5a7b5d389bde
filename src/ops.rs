//! The operation table: every operation of the contract, declared once — its name, its
//! inputs, its REST route, and how a JSON request reaches the typed [`Store`] method.
//!
//! [`Store::call`] dispatches by name from JSON, and so do the C entry point
//! `backlog_call`, the REST server and the command line, which derive their routes and
//! commands from [`OPERATIONS`]. A request is a JSON object whose keys are the
//! operation's inputs by name, as the Python keywords (SPEC §17): the patch of
//! `update_task` sits under `"patch"`, the body of `create_task` under `"task"`, and the
//! list of `create_tasks` under `"tasks"`.
//!
//! ```
//! use agent_backlog::Store;
//! let store = Store::open_in_memory()?;
//! let task = store.call("create_task", r#"{"agent_id": "ops", "task": {"title": "Rotate keys"}}"#)?;
//! assert!(task.starts_with(r#"{"id":"OPS-001","title":"Rotate keys""#));
//! let err = store.call("create_task", r#"{"agent_id": "ops"}"#).unwrap_err();
//! assert_eq!(err.code(), "invalid_argument");
//! assert!(agent_backlog::ops::operation("summary").is_some());
//! # Ok::<(), agent_backlog::Error>(())
//! ```

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::history::EventQuery;
use crate::lease::{Finish, LeaseTerms};
use crate::model::{ListQuery, NewTask, TaskPatch, TaskQuery};
use crate::plan::{Idempotent, Page};
use crate::request::{check_size, describe, number, optional_integer, string, Fields, StrictValue};
use crate::request::{MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES};
use crate::rules::lease::timeout_seconds;
use crate::schema::Shape;
use crate::store::Store;

/// Whether an operation changes the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A pure read: it never waits for a writer and changes nothing.
    Read,
    /// A write, in one transaction.
    Write,
    /// A write that deletes data for good.
    Delete,
}

/// Where an input of an operation travels over REST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A segment of the route's path, e.g. `{agent_id}`.
    Path,
    /// A query-string parameter.
    Query,
    /// The whole JSON request body (the `task` of a create, the `tasks` of a batch,
    /// the `patch` of an update).
    Body,
    /// A field of the JSON request body object (the `prefix` of set_prefix).
    BodyField,
    /// An HTTP request header, named by the input's REST name (`Idempotency-Key`).
    Header,
}

/// The JSON type of an input or a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// An integer.
    Integer,
    /// A number, fractions allowed (`timeout_seconds`).
    Number,
    /// One of the statuses `queued`, `in_progress`, `complete`, `blocked`.
    Status,
    /// How a lease ends: `complete`, `queued` or `blocked`.
    FinishStatus,
    /// A list of task IDs (in a `create_tasks` item, also indices of earlier items):
    /// the `depends_on` of a create body.
    TaskIds,
    /// An object with these fields (a task, a patch).
    Object(&'static [Field]),
    /// A list of objects with these fields (a batch of tasks).
    List(&'static [Field]),
}

/// A field of an object input (the `title` of a task, the `status` of a patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The key in the object.
    pub name: &'static str,
    /// Its JSON type.
    pub kind: Kind,
    /// Whether the object must hold it.
    pub required: bool,
    /// Whether `null` clears it (in a patch).
    pub nullable: bool,
    /// What it is, in a sentence.
    pub doc: &'static str,
}

/// One input of an operation: a key of its JSON request.
#[derive(Debug, Clone, Copy)]
pub struct Input {
    /// The key, as in the request object and the Python keyword.
    pub name: &'static str,
    /// Whether the request must hold it.
    pub required: bool,
    /// Where it travels over REST.
    pub place: Place,
    /// Its JSON type.
    pub kind: Kind,
    /// What it is, in a sentence, for help texts and tool descriptions.
    pub doc: &'static str,
    /// A good value, as JSON text, for messages and help (empty when obvious).
    pub example: &'static str,
    /// Its name over REST when that differs (`wait_seconds` for `timeout_seconds`);
    /// empty when it is the same.
    pub rest_name: &'static str,
}

impl Input {
    /// The input's name over REST.
    pub fn rest_name(&self) -> &'static str {
        if self.rest_name.is_empty() {
            self.name
        } else {
            self.rest_name
        }
    }
}

/// An operation's REST route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The HTTP method, e.g. `"POST"`.
    pub method: &'static str,
    /// The path, with `{input}` segments, e.g. `/api/backlogs/{agent_id}`.
    pub path: &'static str,
    /// The status of a success with a result (201 for creates, 200 otherwise).
    pub status: u16,
    /// The status when the result is `null` (e.g. 204 when nothing was claimed).
    pub status_if_null: Option<u16>,
    /// A second path of the same method for the same operation, where the inputs of
    /// the first path's segments are not given (`POST /api/reap` beside
    /// `POST /api/backlogs/{agent_id}/reap`).
    pub also: Option<&'static str>,
    /// Set when this operation shares its method and path with another: a request
    /// whose body holds this field (by its REST name) is this operation's, any other
    /// is the other's (`wait_seconds` sends `POST .../leases` to `wait_for_task`).
    pub selected_by: Option<&'static str>,
    /// For a route that creates one resource: the path of what it created, with
    /// `{input}` segments from the request and `{id}` from the result
    /// (`/api/backlogs/{agent_id}/{id}`), sent as the `Location` header of a 201.
    pub location: Option<&'static str>,
}

const fn route(method: &'static str, path: &'static str, status: u16) -> Route {
    Route {
        method,
        path,
        status,
        status_if_null: None,
        also: None,
        selected_by: None,
        location: None,
    }
}

/// What an operation returned: its result as compact JSON, and whether it was the
/// replay of an earlier idempotent create (REST then answers 200 with
/// `Idempotent-Replayed: true` instead of the route's status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The result, exactly as the operation's method serializes it.
    pub json: String,
    /// `true` when an idempotency key replayed an earlier create.
    pub replayed: bool,
}

/// One operation of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// The name on every surface but the command line (`claim_next`).
    pub name: &'static str,
    /// The command-line subcommand (`claim`).
    pub command: &'static str,
    /// What it does and when to use it, in a sentence or two.
    pub doc: &'static str,
    /// Read, write or delete.
    pub access: Access,
    /// The keys of its JSON request.
    pub inputs: &'static [Input],
    /// The shape of its result, for the schemas of the surfaces that describe
    /// themselves (the MCP tools).
    pub result: Shape,
    /// Its REST route.
    pub route: Route,
    /// Parses the request and runs the typed method; the result as compact JSON. An
    /// operation that waits (`wait_for_task`, `events`) also stops waiting when the
    /// hook, if there is one, says so; the others never look at it.
    run: fn(&Store, Fields, Stop<'_>) -> Result<Reply>,
}

/// A stop hook for an operation that waits: asked about every 50 ms, it ends the wait
/// with the operation's empty result when it returns `true`.
type Stop<'a> = Option<&'a mut dyn FnMut() -> bool>;

impl Operation {
    /// The largest request this operation accepts, in bytes.
    pub fn max_request_bytes(&self) -> usize {
        if self.name == "create_tasks" {
            MAX_BATCH_BODY_BYTES
        } else {
            MAX_BODY_BYTES
        }
    }

    /// The request as fields, refusing a key that is none of the operation's inputs.
    fn fields(&self, request: Value) -> Result<Fields> {
        let what = format!("the request of {}", self.name);
        let fields = Fields::from_value(request, &what)?;
        let allowed: Vec<&str> = self.inputs.iter().map(|i| i.name).collect();
        fields.only(&allowed)?;
        Ok(fields)
    }

    /// Runs the operation on `store` with a request already decoded as JSON.
    pub fn call_value(&self, store: &Store, request: Value) -> Result<String> {
        (self.run)(store, self.fields(request)?, None).map(|reply| reply.json)
    }

    /// Like [`Operation::call_value`], for a server: the [`Reply`] also says whether an
    /// idempotent create was replayed, and an operation that waits (`wait_for_task`,
    /// `events`) stops waiting, with its empty result, as soon as `stop()` returns `true` (asked
    /// about every 50 ms): how a server ends its long polls when it shuts down.
    ///
    /// ```
    /// use agent_backlog::{ops::operation, Store};
    /// let store = Store::open_in_memory()?;
    /// let wait = operation("wait_for_task").unwrap();
    /// let request = serde_json::json!({"agent_id": "ops", "worker": "w1", "timeout_seconds": 60});
    /// assert_eq!(wait.respond(&store, request, &mut || true)?.json, "null");
    /// let create = operation("create_task").unwrap();
    /// let request = serde_json::json!({"agent_id": "ops", "task": {"title": "a"}, "idempotency_key": "k1"});
    /// assert!(!create.respond(&store, request.clone(), &mut || false)?.replayed);
    /// assert!(create.respond(&store, request, &mut || false)?.replayed);
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn respond(
        &self,
        store: &Store,
        request: Value,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Reply> {
        (self.run)(store, self.fields(request)?, Some(stop))
    }

    /// Runs the operation on `store` with a request given as JSON text (strict:
    /// duplicate keys are refused at any depth).
    pub fn call(&self, store: &Store, request_json: &str) -> Result<String> {
        let what = format!("the request of {}", self.name);
        check_size(request_json, self.max_request_bytes(), &what)?;
        let value = parse_json(request_json, &what, &self.example())?;
        self.call_value(store, value)
    }

    /// Whether a call of this operation with `request` may wait for work — a
    /// `wait_for_task`, or an `events` with `wait_seconds` above 0 — and so holds a
    /// connection or a thread for up to its timeout (what a server counts and limits).
    ///
    /// ```
    /// use agent_backlog::ops::operation;
    /// let events = operation("events").unwrap();
    /// assert!(events.waits(&serde_json::json!({"wait_seconds": 5})));
    /// assert!(!events.waits(&serde_json::json!({"after": 3})));
    /// assert!(operation("wait_for_task").unwrap().waits(&serde_json::json!({})));
    /// ```
    pub fn waits(&self, request: &Value) -> bool {
        match self.name {
            "wait_for_task" => true,
            "events" => request
                .get("wait_seconds")
                .and_then(Value::as_f64)
                .is_some_and(|w| w > 0.0),
            _ => false,
        }
    }

    /// The operations served by this one's REST route beside it: those that share its
    /// method and path and are chosen by a body field (`wait_for_task` on the route of
    /// `claim_lease`). Empty for most, and for an operation that is itself chosen so.
    pub fn sharing(&self) -> Vec<&'static Operation> {
        if self.route.selected_by.is_some() {
            return Vec::new();
        }
        OPERATIONS
            .iter()
            .filter(|o| {
                o.route.selected_by.is_some()
                    && o.route.method == self.route.method
                    && o.route.path == self.route.path
            })
            .collect()
    }

    /// A small example request, for messages: `{"agent_id": ..., "task": ...}`.
    pub fn example(&self) -> String {
        let keys: Vec<String> = self
            .inputs
            .iter()
            .filter(|i| i.required)
            .map(|i| format!("\"{}\": ...", i.name))
            .collect();
        format!("{{{}}}", keys.join(", "))
    }
}

/// Parses JSON text strictly — duplicate keys are refused in every object at any
/// depth — for a request or a body that the operations then check field by field.
/// `what` names the text in the message (`"the body"`), `example` shows a good one.
///
/// ```
/// use agent_backlog::ops::parse_json;
/// assert!(parse_json(r#"{"title": "a"}"#, "the body", "{}").is_ok());
/// let err = parse_json(r#"{"title": "a", "title": "b"}"#, "the body", "{}").unwrap_err();
/// assert!(err.to_string().contains("appears twice"));
/// ```
pub fn parse_json(text: &str, what: &str, example: &str) -> Result<Value> {
    serde_json::from_str::<StrictValue>(text)
        .map(|StrictValue(value)| value)
        .map_err(|e| Error::InvalidArgument(format!("{what} must be JSON such as {example}: {e}")))
}

/// Compact JSON of a result.
fn json(value: &impl Serialize) -> Result<Reply> {
    serde_json::to_string(value)
        .map(|json| Reply {
            json,
            replayed: false,
        })
        .map_err(|e| Error::Internal(format!("a result could not be written as JSON: {e}")))
}

/// Compact JSON of an idempotent create's result, saying whether it was a replay.
fn created<T: Serialize>(created: &Idempotent<T>) -> Result<Reply> {
    json(created).map(|reply| Reply {
        replayed: created.replayed,
        ..reply
    })
}

/// A required string input.
fn text(f: &mut Fields, name: &str) -> Result<String> {
    match f.take(name) {
        Some(value) => string(name, value),
        None => Err(Error::InvalidArgument(format!(
            "{name} is required: give it as a string"
        ))),
    }
}

/// A required input of any JSON type.
fn value(f: &mut Fields, name: &str, what: &str) -> Result<Value> {
    f.take(name)
        .ok_or_else(|| Error::InvalidArgument(format!("{name} is required: give {what}")))
}

/// Everything left in `f`, as one object (the filters of a listing).
fn rest(f: Fields) -> Value {
    Value::Object(f.into_map())
}

const fn input(name: &'static str, place: Place, kind: Kind, doc: &'static str) -> Input {
    Input {
        name,
        required: true,
        place,
        kind,
        doc,
        example: "",
        rest_name: "",
    }
}

const fn optional(mut input: Input) -> Input {
    input.required = false;
    input
}

const fn field(name: &'static str, kind: Kind, doc: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        nullable: false,
        doc,
    }
}

const AGENT_ID: Input = input(
    "agent_id",
    Place::Path,
    Kind::Text,
    "The agent whose backlog it is: 1 to 64 characters A-Z a-z 0-9 - _ . starting with a letter or digit.",
);
const TASK_ID: Input = input(
    "task_id",
    Place::Path,
    Kind::Text,
    "The task's ID, such as MKT-001.",
);
const STATUS_FILTER: Input = optional(input(
    "status",
    Place::Query,
    Kind::Status,
    "Only tasks in this status: queued, in_progress, complete or blocked.",
));
const LIMIT: Input = optional(input(
    "limit",
    Place::Query,
    Kind::Integer,
    "At most this many tasks (0 or more); all when absent.",
));
const OFFSET: Input = optional(input(
    "offset",
    Place::Query,
    Kind::Integer,
    "Skip this many matching tasks first (0 or more).",
));

/// The fields of a create body.
const TASK_FIELDS: &[Field] = &[
    Field {
        required: true,
        ..field(
            "title",
            Kind::Text,
            "Short task title (1 to 500 characters).",
        )
    },
    field(
        "description",
        Kind::Text,
        "Detailed instructions for the agent (up to 65,536 characters).",
    ),
    field(
        "priority",
        Kind::Integer,
        "1 (highest) to 10 (lowest); default 5.",
    ),
    field(
        "depends_on",
        Kind::TaskIds,
        "Tasks that must be complete before this one is ready: task IDs of any agent, such as [\"MKT-001\"]; in create_tasks also the index of an earlier item, such as 0.",
    ),
];

/// The fields of a patch; `null` clears the nullable ones.
const PATCH_FIELDS: &[Field] = &[
    field(
        "status",
        Kind::Status,
        "Move the task to queued, in_progress, complete or blocked.",
    ),
    field(
        "priority",
        Kind::Integer,
        "New priority, 1 (highest) to 10 (lowest).",
    ),
    field("title", Kind::Text, "New title."),
    Field {
        nullable: true,
        ..field("description", Kind::Text, "New description.")
    },
    Field {
        nullable: true,
        ..field(
            "blocker",
            Kind::Text,
            "Why the task is blocked (only when it is or becomes blocked).",
        )
    },
    Field {
        nullable: true,
        ..field(
            "result",
            Kind::Text,
            "What the agent produced (only when the task is or becomes complete).",
        )
    },
];

const IDEMPOTENCY_KEY: Input = Input {
    example: "\"3f2a9c1e-create-posts\"",
    rest_name: "Idempotency-Key",
    ..optional(input(
        "idempotency_key",
        Place::Header,
        Kind::Text,
        "Makes a retry safe: a repeat with the same key and body creates nothing and returns what the first call created; 1 to 255 printable ASCII characters, such as a UUID.",
    ))
};
const DEPENDS_ON: Input = Input {
    example: "\"MKT-003\"",
    ..input(
        "depends_on",
        Place::Path,
        Kind::Text,
        "The task it depends on, of any agent, such as MKT-003.",
    )
};

const WORKER: Input = Input {
    example: "\"writer-7\"",
    ..input(
        "worker",
        Place::BodyField,
        Kind::Text,
        "Who takes the lease: 1 to 128 characters A-Z a-z 0-9 - _ . starting with a letter or digit.",
    )
};
const LEASE_SECONDS: Input = Input {
    example: "600",
    ..optional(input(
        "lease_seconds",
        Place::BodyField,
        Kind::Integer,
        "How long the lease lasts unless renewed, 1 to 86400 seconds; default 600.",
    ))
};
const MAX_ATTEMPTS: Input = Input {
    example: "3",
    ..optional(input(
        "max_attempts",
        Place::BodyField,
        Kind::Integer,
        "After this many leased claims of the task, an expiry blocks it instead of requeueing it: 1 to 1000; default 3.",
    ))
};
const TOKEN: Input = input(
    "token",
    Place::Path,
    Kind::Text,
    "The lease's token, as claim_lease returned it.",
);
const FINISH_STATUS: Input = Input {
    example: "\"complete\"",
    ..input(
        "status",
        Place::BodyField,
        Kind::FinishStatus,
        "How the lease ends: complete, queued (release the task for another worker) or blocked.",
    )
};
const FINISH_RESULT: Input = optional(input(
    "result",
    Place::BodyField,
    Kind::Text,
    "What the work produced (with complete).",
));
const FINISH_BLOCKER: Input = optional(input(
    "blocker",
    Place::BodyField,
    Kind::Text,
    "Why the task is blocked (required with blocked).",
));

/// An optional string input; `null` is the same as leaving it out.
fn optional_text(f: &mut Fields, name: &str) -> Result<Option<String>> {
    match f.take(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => string(name, value).map(Some),
    }
}

/// The request of `wait_for_task`, parsed: for surfaces that call
/// [`Store::wait_for_task_until`] themselves (to stay interruptible) with the same
/// checks and messages as every other surface.
///
/// ```
/// use agent_backlog::ops::WaitRequest;
/// let w = WaitRequest::from_value(serde_json::json!(
///     {"agent_id": "ops", "worker": "w1", "timeout_seconds": 2.5, "lease_seconds": 30}))?;
/// assert_eq!((w.timeout.as_millis(), w.terms.lease_seconds), (2500, Some(30)));
/// let err = WaitRequest::from_value(serde_json::json!({"agent_id": "ops", "worker": "w1"})).unwrap_err();
/// assert!(err.to_string().contains("timeout_seconds is required"));
/// # Ok::<(), agent_backlog::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WaitRequest {
    /// Whose backlog to wait on.
    pub agent_id: String,
    /// Who takes the lease.
    pub worker: String,
    /// How long to wait, at most 300 seconds.
    pub timeout: std::time::Duration,
    /// The lease's terms.
    pub terms: LeaseTerms,
}

impl WaitRequest {
    /// Parses the JSON request of `wait_for_task`, strictly.
    pub fn from_value(request: Value) -> Result<WaitRequest> {
        let op = operation("wait_for_task").ok_or_else(|| unknown("wait_for_task"))?;
        WaitRequest::from_fields(op.fields(request)?)
    }

    fn from_fields(mut f: Fields) -> Result<WaitRequest> {
        let agent_id = text(&mut f, "agent_id")?;
        let worker = text(&mut f, "worker")?;
        let timeout = value(
            &mut f,
            "timeout_seconds",
            "a number of seconds from 0 to 300",
        )?;
        let timeout = timeout_seconds(number("timeout_seconds", timeout, "from 0 to 300")?)?;
        Ok(WaitRequest {
            agent_id,
            worker,
            timeout,
            terms: LeaseTerms::take_from(&mut f)?,
        })
    }
}

/// Runs `wait_for_task`; with a stop hook, stopping when `stop()` says so (without
/// one it wakes only for a change, an expiry or the timeout).
fn wait(store: &Store, f: Fields, stop: Stop<'_>) -> Result<Reply> {
    let w = WaitRequest::from_fields(f)?;
    json(&match stop {
        Some(stop) => {
            store.wait_for_task_until(&w.agent_id, &w.worker, w.timeout, w.terms, stop)?
        }
        None => store.wait_for_task(&w.agent_id, &w.worker, w.timeout, w.terms)?,
    })
}

const LEASES_PATH: &str = "/api/backlogs/{agent_id}/leases";

/// Every operation of the contract: Part I in the order of SPEC §3, then Part II.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        name: "list_tasks",
        command: "list",
        doc: "List an agent's backlog by priority, then creation order, optionally filtered by status and paged; total counts every match.",
        access: Access::Read,
        result: Shape::TaskList,
        inputs: &[AGENT_ID, STATUS_FILTER, LIMIT, OFFSET],
        route: route("GET", "/api/backlogs/{agent_id}", 200),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let query = ListQuery::from_value(rest(f))?;
            json(&store.list_tasks(&agent_id, query)?)
        },
    },
    Operation {
        name: "create_task",
        command: "create",
        doc: "Add a task to an agent's backlog; it starts queued and gets the agent's next ID.",
        access: Access::Write,
        result: Shape::Task,
        inputs: &[
            AGENT_ID,
            Input {
                example: "{\"title\": \"Write 3 LinkedIn posts\"}",
                ..input("task", Place::Body, Kind::Object(TASK_FIELDS), "The task: {\"title\", \"description\"?, \"priority\"?, \"depends_on\"?}.")
            },
            IDEMPOTENCY_KEY,
        ],
        route: Route { location: Some("/api/backlogs/{agent_id}/{id}"), ..route("POST", "/api/backlogs/{agent_id}", 201) },
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let task = NewTask::from_value(value(&mut f, "task", "the task object, such as {\"title\": \"Write posts\"}")?)?;
            match optional_text(&mut f, "idempotency_key")? {
                Some(key) => created(&store.create_task_idempotent(&agent_id, &key, task)?),
                None => json(&store.create_task(&agent_id, task)?),
            }
        },
    },
    Operation {
        name: "get_task",
        command: "get",
        doc: "Show one task of an agent's backlog, with every field.",
        access: Access::Read,
        result: Shape::Task,
        inputs: &[AGENT_ID, TASK_ID],
        route: route("GET", "/api/backlogs/{agent_id}/{task_id}", 200),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let task_id = text(&mut f, "task_id")?;
            json(&store.get_task(&agent_id, &task_id)?)
        },
    },
    Operation {
        name: "update_task",
        command: "update",
        doc: "Change a task's status (following the lifecycle), priority, title, description, blocker or result. Absent fields are unchanged; null clears description, blocker or result.",
        access: Access::Write,
        result: Shape::Task,
        inputs: &[
            AGENT_ID,
            TASK_ID,
            Input {
                example: "{\"status\": \"complete\"}",
                ..input("patch", Place::Body, Kind::Object(PATCH_FIELDS), "The changes: {\"status\"?, \"priority\"?, \"title\"?, \"description\"?, \"blocker\"?, \"result\"?}.")
            },
        ],
        route: route("PATCH", "/api/backlogs/{agent_id}/{task_id}", 200),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let task_id = text(&mut f, "task_id")?;
            let patch = TaskPatch::from_value(value(&mut f, "patch", "the changes, such as {\"status\": \"complete\"}")?)?;
            json(&store.update_task(&agent_id, &task_id, patch)?)
        },
    },
    Operation {
        name: "delete_task",
        command: "delete",
        doc: "Delete a task for good; its ID is never given again.",
        access: Access::Delete,
        result: Shape::Deleted,
        inputs: &[AGENT_ID, TASK_ID],
        route: route("DELETE", "/api/backlogs/{agent_id}/{task_id}", 200),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let task_id = text(&mut f, "task_id")?;
            json(&store.delete_task(&agent_id, &task_id)?)
        },
    },
    Operation {
        name: "query_tasks",
        command: "query",
        doc: "List tasks across every agent, each with its agent_id, by priority then creation order, filtered by status, exact priority and agent, and paged.",
        access: Access::Read,
        result: Shape::QueryResult,
        inputs: &[
            STATUS_FILTER,
            optional(input("priority", Place::Query, Kind::Integer, "Only tasks of exactly this priority (1 to 10).")),
            optional(input("agent_id", Place::Query, Kind::Text, "Only this agent's tasks.")),
            LIMIT,
            OFFSET,
        ],
        route: route("GET", "/api/backlogs", 200),
        run: |store, f, _| json(&store.query_tasks(TaskQuery::from_value(rest(f))?)?),
    },
    Operation {
        name: "summary",
        command: "summary",
        doc: "Count an agent's tasks by status, with their total.",
        access: Access::Read,
        result: Shape::Summary,
        inputs: &[AGENT_ID],
        route: route("GET", "/api/backlogs/{agent_id}/summary", 200),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            json(&store.summary(&agent_id)?)
        },
    },
    Operation {
        name: "claim_next",
        command: "claim",
        doc: "Move the agent's most urgent ready task (queued, every dependency complete) to in_progress and return it, atomically: two workers never get the same task. null when nothing is ready.",
        access: Access::Write,
        result: Shape::TaskOrNull,
        inputs: &[AGENT_ID],
        route: Route { status_if_null: Some(204), ..route("POST", "/api/backlogs/{agent_id}/claim", 200) },
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            json(&store.claim_next(&agent_id)?)
        },
    },
    Operation {
        name: "create_tasks",
        command: "batch",
        doc: "Add several tasks to an agent's backlog in one transaction: all of them, or none on any error.",
        access: Access::Write,
        result: Shape::TaskList,
        inputs: &[
            AGENT_ID,
            Input {
                example: "[{\"title\": \"Write posts\"}]",
                ..input("tasks", Place::Body, Kind::List(TASK_FIELDS), "A JSON list of task objects, each {\"title\", \"description\"?, \"priority\"?, \"depends_on\"?}; depends_on may name an earlier item by its index.")
            },
            IDEMPOTENCY_KEY,
        ],
        route: route("POST", "/api/backlogs/{agent_id}/batch", 201),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let tasks = NewTask::list_from_value(value(&mut f, "tasks", "a list of task objects")?)?;
            match optional_text(&mut f, "idempotency_key")? {
                Some(key) => created(&store.create_tasks_idempotent(&agent_id, &key, tasks)?),
                None => json(&store.create_tasks(&agent_id, tasks)?),
            }
        },
    },
    Operation {
        name: "set_prefix",
        command: "prefix",
        doc: "Set the prefix of an agent's task IDs, before its first task.",
        access: Access::Write,
        result: Shape::PrefixSet,
        inputs: &[
            AGENT_ID,
            Input {
                example: "\"MKT\"",
                ..input("prefix", Place::BodyField, Kind::Text, "1 to 8 characters A-Z and 0-9, starting with a letter, e.g. GRW.")
            },
        ],
        route: route("PUT", "/api/backlogs/{agent_id}/prefix", 200),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let prefix = text(&mut f, "prefix")?;
            json(&store.set_prefix(&agent_id, &prefix)?)
        },
    },
    Operation {
        name: "claim_lease",
        command: "claim-lease",
        doc: "Claim the agent's most urgent ready task with a lease for a worker: renew it before it expires, or the task goes back to the queue for another worker. First requeues the agent's expired leases. null when nothing is ready.",
        access: Access::Write,
        result: Shape::ClaimOrNull,
        inputs: &[AGENT_ID, WORKER, LEASE_SECONDS, MAX_ATTEMPTS],
        route: Route { status_if_null: Some(204), ..route("POST", LEASES_PATH, 200) },
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let worker = text(&mut f, "worker")?;
            let terms = LeaseTerms::take_from(&mut f)?;
            json(&store.claim_lease(&agent_id, &worker, terms)?)
        },
    },
    Operation {
        name: "renew_lease",
        command: "renew-lease",
        doc: "Extend a lease to now + lease_seconds, by default its own duration. It works while the token is the task's current lease, even past its expiry if nobody has requeued the task; lease_lost otherwise.",
        access: Access::Write,
        result: Shape::Lease,
        inputs: &[TOKEN, LEASE_SECONDS],
        route: route("POST", "/api/leases/{token}/renew", 200),
        run: |store, mut f, _| {
            let token = text(&mut f, "token")?;
            let seconds = optional_integer(&mut f, "lease_seconds", "from 1 to 86400")?;
            json(&store.renew_lease(&token, seconds)?)
        },
    },
    Operation {
        name: "finish_lease",
        command: "finish-lease",
        doc: "End a lease by moving its task to complete (with a result), queued (released for another worker) or blocked (with a blocker); lease_lost when the token no longer holds the lease.",
        access: Access::Write,
        result: Shape::Task,
        inputs: &[TOKEN, FINISH_STATUS, FINISH_RESULT, FINISH_BLOCKER],
        route: route("POST", "/api/leases/{token}/finish", 200),
        run: |store, mut f, _| {
            let token = text(&mut f, "token")?;
            let finish = Finish::take_from(&mut f)?;
            json(&store.finish_lease(&token, finish)?)
        },
    },
    Operation {
        name: "finish_and_claim",
        command: "finish-and-claim",
        doc: "Finish a lease as finish_lease does, then claim the agent's next task for the same worker as claim_lease does, in one transaction: one commit per task.",
        access: Access::Write,
        result: Shape::Finished,
        inputs: &[TOKEN, FINISH_STATUS, FINISH_RESULT, FINISH_BLOCKER, LEASE_SECONDS, MAX_ATTEMPTS],
        route: route("POST", "/api/leases/{token}/finish-and-claim", 200),
        run: |store, mut f, _| {
            let token = text(&mut f, "token")?;
            let finish = Finish::take_from(&mut f)?;
            let terms = LeaseTerms::take_from(&mut f)?;
            json(&store.finish_and_claim(&token, finish, terms)?)
        },
    },
    Operation {
        name: "get_lease",
        command: "get-lease",
        doc: "Show the task's current lease, or null when it holds none. A lease past its expiry whose task has not been requeued yet is still shown.",
        access: Access::Read,
        result: Shape::LeaseOrNull,
        inputs: &[AGENT_ID, TASK_ID],
        route: Route { status_if_null: Some(204), ..route("GET", "/api/backlogs/{agent_id}/{task_id}/lease", 200) },
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let task_id = text(&mut f, "task_id")?;
            json(&store.get_lease(&agent_id, &task_id)?)
        },
    },
    Operation {
        name: "reap_expired",
        command: "reap-expired",
        doc: "End every expired lease of the agent (of every agent when none is given): each task goes back to the queue, or to blocked once its attempts reached max_attempts.",
        access: Access::Write,
        result: Shape::Reaped,
        inputs: &[optional(AGENT_ID)],
        route: Route { also: Some("/api/reap"), ..route("POST", "/api/backlogs/{agent_id}/reap", 200) },
        run: |store, mut f, _| {
            let agent_id = optional_text(&mut f, "agent_id")?;
            json(&store.reap_expired(agent_id.as_deref())?)
        },
    },
    Operation {
        name: "wait_for_task",
        command: "wait-for-task",
        doc: "Claim the agent's next task with a lease as claim_lease does, waiting up to timeout_seconds for one to become ready; null when the timeout passes. Wakes within milliseconds of the commit that makes a task ready, from any thread or process.",
        access: Access::Write,
        result: Shape::ClaimOrNull,
        inputs: &[
            AGENT_ID,
            WORKER,
            Input {
                example: "30",
                rest_name: "wait_seconds",
                ..input("timeout_seconds", Place::BodyField, Kind::Number, "How long to wait for a task: 0 to 300 seconds, fractions allowed (over REST: wait_seconds, at most 60).")
            },
            LEASE_SECONDS,
            MAX_ATTEMPTS,
        ],
        route: Route { status_if_null: Some(204), selected_by: Some("wait_seconds"), ..route("POST", LEASES_PATH, 200) },
        run: wait,
    },
    Operation {
        name: "add_dependency",
        command: "add-dependency",
        doc: "Make a task wait for another (of any agent): it is not ready, and no claim takes it, until depends_on is complete. Refused when it would close a cycle. Returns the task's dependencies.",
        access: Access::Write,
        result: Shape::Dependencies,
        inputs: &[AGENT_ID, TASK_ID, DEPENDS_ON],
        route: route("PUT", DEPENDENCY_PATH, 200),
        run: |store, mut f, _| {
            let (agent_id, task_id, depends_on) = edge(&mut f)?;
            json(&store.add_dependency(&agent_id, &task_id, &depends_on)?)
        },
    },
    Operation {
        name: "remove_dependency",
        command: "remove-dependency",
        doc: "Stop a task waiting for another; nothing changes when it did not. Returns the task's dependencies.",
        access: Access::Write,
        result: Shape::Dependencies,
        inputs: &[AGENT_ID, TASK_ID, DEPENDS_ON],
        route: route("DELETE", DEPENDENCY_PATH, 200),
        run: |store, mut f, _| {
            let (agent_id, task_id, depends_on) = edge(&mut f)?;
            json(&store.remove_dependency(&agent_id, &task_id, &depends_on)?)
        },
    },
    Operation {
        name: "get_dependencies",
        command: "dependencies",
        doc: "Show whether a task is ready, the tasks it depends on and the tasks that depend on it, each with its agent and status.",
        access: Access::Read,
        result: Shape::DependencyGraph,
        inputs: &[AGENT_ID, TASK_ID],
        route: route("GET", "/api/backlogs/{agent_id}/{task_id}/dependencies", 200),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let task_id = text(&mut f, "task_id")?;
            json(&store.get_dependencies(&agent_id, &task_id)?)
        },
    },
    Operation {
        name: "ready_tasks",
        command: "ready",
        doc: "List the agent's ready tasks (queued, every dependency complete) in the order claims take them, paged; total counts every ready task.",
        access: Access::Read,
        result: Shape::TaskList,
        inputs: &[AGENT_ID, LIMIT, OFFSET],
        route: route("GET", "/api/backlogs/{agent_id}/ready", 200),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            json(&store.ready_tasks(&agent_id, Page::from_value(rest(f))?)?)
        },
    },
    Operation {
        name: "task_history",
        command: "history",
        doc: "Show everything that happened to a task, oldest first: who created, changed, claimed, finished or deleted it and when. It outlives the task.",
        access: Access::Read,
        result: Shape::History,
        inputs: &[AGENT_ID, TASK_ID],
        route: route("GET", "/api/backlogs/{agent_id}/{task_id}/history", 200),
        run: |store, mut f, _| {
            let agent_id = text(&mut f, "agent_id")?;
            let task_id = text(&mut f, "task_id")?;
            json(&store.task_history(&agent_id, &task_id)?)
        },
    },
    Operation {
        name: "events",
        command: "events",
        doc: "Read the change feed: the events after a seq, oldest first, of one agent or all; pass next as after to read on. With wait_seconds it waits for the next change when there is none yet.",
        access: Access::Read,
        result: Shape::EventPage,
        inputs: &[
            Input {
                example: "0",
                ..optional(input("after", Place::Query, Kind::Integer, "Only events with a seq above this one; 0 (the default) is the start of the feed."))
            },
            Input {
                example: "100",
                ..optional(input("limit", Place::Query, Kind::Integer, "At most this many events, 1 to 1000; default 100."))
            },
            optional(input("agent_id", Place::Query, Kind::Text, "Only this agent's events.")),
            Input {
                example: "30",
                ..optional(input("wait_seconds", Place::Query, Kind::Number, "When there is no event yet, wait up to this many seconds (0 to 60, fractions allowed) for one; default 0."))
            },
        ],
        route: route("GET", "/api/events", 200),
        run: |store, f, stop| {
            let query = EventQuery::from_value(rest(f))?;
            json(&match stop {
                Some(stop) => store.events_until(query, stop)?,
                None => store.events(query)?,
            })
        },
    },
    Operation {
        name: "prune_events",
        command: "prune-events",
        doc: "Delete the events with a seq below before, for good (the newest event is always kept). Returns how many were deleted.",
        access: Access::Delete,
        result: Shape::Pruned,
        inputs: &[Input {
            example: "1000",
            ..input("before", Place::BodyField, Kind::Integer, "Delete the events with a seq below this one.")
        }],
        route: route("POST", "/api/events/prune", 200),
        run: |store, mut f, _| {
            let before = value(&mut f, "before", "a seq, such as 1000")?;
            let before = crate::request::seq_from_value("before", before)?;
            json(&store.prune_events(before)?)
        },
    },
    Operation {
        name: "list_agents",
        command: "agents",
        doc: "List the agents of the store by agent_id, each with its prefix and its counts by status, paged; total counts every agent.",
        access: Access::Read,
        result: Shape::AgentList,
        inputs: &[LIMIT_OF_AGENTS, OFFSET_OF_AGENTS],
        route: route("GET", "/api/agents", 200),
        run: |store, f, _| json(&store.list_agents(Page::from_value(rest(f))?)?),
    },
];

const LIMIT_OF_AGENTS: Input = optional(input(
    "limit",
    Place::Query,
    Kind::Integer,
    "At most this many agents (0 or more); all when absent.",
));
const OFFSET_OF_AGENTS: Input = optional(input(
    "offset",
    Place::Query,
    Kind::Integer,
    "Skip this many agents first (0 or more).",
));

const DEPENDENCY_PATH: &str = "/api/backlogs/{agent_id}/{task_id}/dependencies/{depends_on}";

/// The inputs of an edge: agent_id, task_id, depends_on.
fn edge(f: &mut Fields) -> Result<(String, String, String)> {
    Ok((
        text(f, "agent_id")?,
        text(f, "task_id")?,
        text(f, "depends_on")?,
    ))
}

/// The operation of that name, if there is one.
pub fn operation(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.name == name)
}

fn unknown(name: &str) -> Error {
    let names: Vec<&str> = OPERATIONS.iter().map(|op| op.name).collect();
    Error::InvalidArgument(format!(
        "operation must be one of {}, got {}",
        names.join(", "),
        describe(&Value::String(name.to_owned()))
    ))
}

impl Store {
    /// Runs the operation named `operation` with a JSON request and returns its
    /// result as compact JSON, exactly as the operation's own method serializes it
    /// (`null` when `claim_next` finds nothing).
    ///
    /// The request is a JSON object whose keys are the operation's inputs (see
    /// [`OPERATIONS`]); an unknown operation, an unknown key, a missing input or a
    /// wrong type is `invalid_argument`, and nothing is written.
    ///
    /// ```
    /// use agent_backlog::Store;
    /// let store = Store::open_in_memory()?;
    /// store.call("create_tasks", r#"{"agent_id": "ops", "tasks": [{"title": "a"}, {"title": "b", "priority": 1}]}"#)?;
    /// assert_eq!(store.call("claim_next", r#"{"agent_id": "ops"}"#)?.contains("\"title\":\"b\""), true);
    /// assert_eq!(store.call("summary", r#"{"agent_id": "ops"}"#)?,
    ///            r#"{"queued":1,"in_progress":1,"complete":0,"blocked":0,"total":2}"#);
    /// assert_eq!(store.call("nap", "{}").unwrap_err().code(), "invalid_argument");
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn call(&self, operation: &str, request_json: &str) -> Result<String> {
        self::operation(operation)
            .ok_or_else(|| unknown(operation))?
            .call(self, request_json)
    }

    /// Like [`Store::call`], with the request already decoded as a JSON value.
    pub fn call_value(&self, operation: &str, request: Value) -> Result<String> {
        self::operation(operation)
            .ok_or_else(|| unknown(operation))?
            .call_value(self, request)
    }
}
