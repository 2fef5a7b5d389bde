//! The operations as tools for LLM agents (SPEC §15): one definition for the MCP
//! server of the command line and for `agent_backlog.tools` in Python, derived from
//! the operation table, so the two cannot drift.
//!
//! A tool has the operation's name. Its arguments are flat: the operation's named
//! inputs and the fields of its body side by side (`create_task`: `agent_id`, `title`,
//! `description`, `priority`, `depends_on`, `idempotency_key`). Its result is exactly
//! the operation's JSON when that is an object, and `{"result": ...}` around it
//! otherwise: a claim is the claim itself, no claim is `{"result": null}`. An error is
//! the §7 error object, flagged as an error.
//!
//! Two rules make the tools easy for a model to call:
//! - `null` for an argument means "not given", so the strict form of the schemas (every
//!   property required, the optional ones nullable), which some frameworks demand, asks
//!   nothing the plain form does not. An empty string clears `description`, `blocker` or
//!   `result` in `update_task` (what `null` does in the operation itself).
//! - A [`Toolbox`] bound to an agent drops `agent_id` from every tool and fills it in;
//!   an `agent_id` argument is then `invalid_argument`. The tools that span every
//!   agent (`list_agents`, `prune_events`) are not offered to a bound toolbox.
//!
//! ```
//! use agent_backlog::tools::Toolbox;
//! use agent_backlog::Store;
//! let store = Store::open_in_memory()?;
//! let tools = Toolbox::new("core", Some("ops"))?;
//! assert_eq!(tools.names()[0], "list_tasks");
//! let created = tools.call(&store, "create_task", serde_json::json!({"title": "Rotate keys"}));
//! assert!(!created.is_error);
//! assert_eq!(created.content["id"], "OPS-001");
//! let refused = tools.call(&store, "get_task", serde_json::json!({"agent_id": "ops", "task_id": "OPS-001"}));
//! assert!(refused.is_error);
//! assert_eq!(refused.content["error"]["code"], "invalid_argument");
//! # Ok::<(), agent_backlog::Error>(())
//! ```

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::ops::{operation, Access, Kind, Operation, Place, OPERATIONS};
use crate::request::describe;
use crate::rules::validate;
use crate::schema;
use crate::store::Store;

/// The default set of tools (`--tools core`): enough to keep a backlog and work
/// through it with leases, small enough not to crowd a model's context.
pub const CORE: &[&str] = &[
    "list_tasks",
    "get_task",
    "create_task",
    "update_task",
    "claim_lease",
    "finish_lease",
    "summary",
];

/// The tools that act on every agent's data at once; a toolbox bound to one agent
/// does not offer them.
const SPANNING: &[&str] = &["list_agents", "prune_events"];

/// Writes that may overwrite what a task holds (its title, description or result):
/// destructive in MCP's sense, beside the deletes.
const OVERWRITES: &[&str] = &["update_task"];

/// Writes that change nothing more when called again with the same arguments (every
/// read is idempotent too).
const IDEMPOTENT: &[&str] = &[
    "delete_task",
    "set_prefix",
    "add_dependency",
    "remove_dependency",
    "reap_expired",
    "prune_events",
];

/// When a model should reach for each tool, added to the operation's description.
const WHEN: &[(&str, &str)] = &[
    ("list_tasks", "Use it to see what a backlog holds before choosing work or to check progress."),
    ("create_task", "Use it to record a new piece of work; pass an idempotency_key when the call may be retried."),
    ("get_task", "Use it to read a task's full instructions or its result."),
    ("update_task", "Use it to move a task along its lifecycle (queued → in_progress → complete; blocked needs a blocker), reprioritize it or edit it; an empty string clears description, blocker or result."),
    ("delete_task", "Only for a task created by mistake: finished or stuck work should be completed or blocked instead."),
    ("query_tasks", "Use it for a view across every agent's backlog."),
    ("summary", "Use it for a quick count of where a backlog stands."),
    ("claim_next", "Prefer claim_lease, which gives the task back to the queue if the worker stops."),
    ("create_tasks", "Use it to write down a whole plan at once: depends_on can name earlier items by their index."),
    ("claim_lease", "Use it to start work: it returns the task and a lease whose token finish_lease takes when the work is done."),
    ("renew_lease", "Call it before the lease expires when the work takes longer than the lease."),
    ("finish_lease", "Call it with the lease's token when the work is done (complete, with a result), must wait (queued) or is stuck (blocked, with a blocker)."),
    ("finish_and_claim", "Use it in a work loop to hand in one task and get the next in one call."),
    ("wait_for_task", "Use it instead of calling claim_lease in a loop when the backlog may be empty."),
    ("task_history", "Use it to find out who changed a task, and when."),
    ("events", "Use it to follow what changes: pass the previous page's next as after."),
];

/// The behaviour hints of a tool (MCP's tool annotations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotations {
    /// It changes nothing.
    pub read_only: bool,
    /// It may delete data for good.
    pub destructive: bool,
    /// Calling it again with the same arguments changes nothing more.
    pub idempotent: bool,
}

impl Annotations {
    /// The hints as MCP writes them: `readOnlyHint`, `destructiveHint`,
    /// `idempotentHint` and `openWorldHint` (always `false`: a tool touches only the
    /// store).
    pub fn to_json(self) -> Value {
        json!({
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": false,
        })
    }
}

/// One tool, described for a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// The operation's name.
    pub name: &'static str,
    /// What it is for and when to use it.
    pub description: String,
    /// The JSON Schema of its arguments: an object, `additionalProperties: false`,
    /// with only the required arguments in `required`.
    pub input_schema: Value,
    /// The JSON Schema of its result (always an object).
    pub output_schema: Value,
    /// Its behaviour hints.
    pub annotations: Annotations,
}

impl Tool {
    /// The input schema in the strict form of OpenAI's function calling (also taken by
    /// LangChain and pydantic-ai): every property listed in `required`, the optional
    /// ones nullable (and `null` means "not given").
    ///
    /// The lengths and patterns of strings are left out of this form (some providers'
    /// strict modes refuse `minLength`, `maxLength` and `pattern`); the descriptions say
    /// them in words, and the operation checks them as always.
    pub fn strict_input_schema(&self) -> Value {
        strict(&self.input_schema)
    }
}

/// The result of a tool call: the structured content and whether it is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The operation's JSON when it is an object, else `{"result": ...}` around it (a
    /// `null`: nothing to claim, no lease); or the §7 error object.
    pub content: Value,
    /// `true` when `content` is an error object.
    pub is_error: bool,
}

impl Outcome {
    fn failed(err: &Error) -> Outcome {
        Outcome {
            content: err.to_json(),
            is_error: true,
        }
    }
}

/// A set of tools, optionally bound to one agent's backlog.
#[derive(Debug, Clone)]
pub struct Toolbox {
    ops: Vec<&'static Operation>,
    agent: Option<String>,
}

impl Toolbox {
    /// The tools named by `selection` — `"core"` ([`CORE`]), `"all"`, or names
    /// separated by commas — bound to `agent` when it is given.
    ///
    /// Errors: `invalid_argument` for an unknown name, an empty selection, a bad
    /// agent_id, or a tool that spans every agent asked of a bound toolbox.
    pub fn new(selection: &str, agent: Option<&str>) -> Result<Toolbox> {
        if let Some(agent) = agent {
            validate::agent_id(agent)?;
        }
        let bound = agent.is_some();
        let ops: Vec<&'static Operation> = match selection.trim() {
            "core" => CORE.iter().filter_map(|name| operation(name)).collect(),
            "all" => OPERATIONS
                .iter()
                .filter(|op| !(bound && SPANNING.contains(&op.name)))
                .collect(),
            names => {
                let mut ops: Vec<&'static Operation> = Vec::new();
                for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let op = operation(name).ok_or_else(|| {
                        Error::invalid(format!(
                            "tools: there is no tool named {name:?}; give core, all, or names from {}",
                            OPERATIONS.iter().map(|op| op.name).collect::<Vec<_>>().join(", ")
                        ))
                    })?;
                    if bound && SPANNING.contains(&op.name) {
                        return Err(Error::invalid(format!(
                            "tools: {name} acts on every agent and is not offered when the tools are bound to one agent; leave it out or do not bind an agent"
                        )));
                    }
                    if !ops.iter().any(|o| o.name == op.name) {
                        ops.push(op);
                    }
                }
                if ops.is_empty() {
                    return Err(Error::invalid(
                        "tools must be core, all, or tool names separated by commas, such as list_tasks,create_task",
                    ));
                }
                ops
            }
        };
        Ok(Toolbox {
            ops,
            agent: agent.map(str::to_owned),
        })
    }

    /// The names of the tools, in the order of the operation table (or of the
    /// selection, when it named them).
    pub fn names(&self) -> Vec<&'static str> {
        self.ops.iter().map(|op| op.name).collect()
    }

    /// The agent the tools are bound to, if any.
    pub fn agent(&self) -> Option<&str> {
        self.agent.as_deref()
    }

    /// Every tool, described for a model.
    pub fn tools(&self) -> Vec<Tool> {
        self.ops.iter().map(|op| self.describe(op)).collect()
    }

    /// Calls a tool. Never fails: an error is an [`Outcome`] with `is_error` set,
    /// and nothing is written when the arguments are wrong.
    pub fn call(&self, store: &Store, name: &str, arguments: Value) -> Outcome {
        self.run(store, name, arguments, None)
    }

    /// As [`Toolbox::call`]; a tool that waits (`wait_for_task`, `events` with
    /// `wait_seconds`) also ends its wait, with its empty result, when `stop` returns
    /// `true` (it is asked about every 50 ms).
    pub fn call_until(
        &self,
        store: &Store,
        name: &str,
        arguments: Value,
        stop: &mut dyn FnMut() -> bool,
    ) -> Outcome {
        self.run(store, name, arguments, Some(stop))
    }

    fn run(
        &self,
        store: &Store,
        name: &str,
        arguments: Value,
        stop: Option<&mut dyn FnMut() -> bool>,
    ) -> Outcome {
        let Some(op) = self.ops.iter().find(|op| op.name == name) else {
            return Outcome::failed(&Error::invalid(format!(
                "there is no tool named {name:?} here; the tools are {}",
                self.names().join(", ")
            )));
        };
        let reply = self
            .request(op, arguments)
            .and_then(|request| self.within_the_backlog(store, &request).map(|()| request))
            .and_then(|request| match stop {
                Some(stop) => op.respond(store, request, stop).map(|reply| reply.json),
                None => op.call_value(store, request),
            });
        match reply.and_then(|json| parse_result(&json)) {
            Ok(value) if value.is_object() => Outcome {
                content: value,
                is_error: false,
            },
            Ok(value) => Outcome {
                content: json!({ "result": value }),
                is_error: false,
            },
            Err(err) => Outcome::failed(&err),
        }
    }

    /// The operation's JSON request from a tool's flat arguments.
    fn request(&self, op: &Operation, arguments: Value) -> Result<Value> {
        let mut args = match arguments {
            Value::Object(args) => args,
            Value::Null => Map::new(),
            other => {
                return Err(Error::invalid(format!(
                    "the arguments of {} must be a JSON object of its parameters, not {}",
                    op.name,
                    describe(&other)
                )))
            }
        };
        if let (Some(agent), true) = (&self.agent, args.contains_key("agent_id")) {
            return Err(Error::invalid(format!(
                "agent_id: these tools are bound to the backlog of {agent}; leave agent_id out"
            )));
        }
        let parameters = self.parameters(op);
        if let Some(unknown) = args.keys().find(|k| !parameters.contains(&k.as_str())) {
            return Err(Error::invalid(format!(
                "unknown field {unknown:?}: the arguments of {} are {}",
                op.name,
                parameters.join(", ")
            )));
        }
        args.retain(|_, value| !value.is_null());
        let mut request = Map::new();
        for input in op.inputs {
            match input.kind {
                Kind::Object(fields) if input.place == Place::Body => {
                    let mut body = Map::new();
                    for field in fields {
                        if let Some(value) = args.remove(field.name) {
                            let clears = field.nullable && value.as_str() == Some("");
                            body.insert(
                                field.name.to_owned(),
                                if clears { Value::Null } else { value },
                            );
                        }
                    }
                    request.insert(input.name.to_owned(), Value::Object(body));
                }
                Kind::List(_) => {
                    if let Some(mut items) = args.remove(input.name) {
                        if let Value::Array(items) = &mut items {
                            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                                item.retain(|_, value| !value.is_null());
                            }
                        }
                        request.insert(input.name.to_owned(), items);
                    }
                }
                _ => {
                    if let Some(value) = args.remove(input.name) {
                        request.insert(input.name.to_owned(), value);
                    }
                }
            }
        }
        if let Some(agent) = &self.agent {
            if op.inputs.iter().any(|i| i.name == "agent_id") {
                request.insert("agent_id".to_owned(), Value::String(agent.clone()));
            }
        }
        Ok(Value::Object(request))
    }

    /// For a bound toolbox, a lease token must be one of the bound backlog's tasks: a
    /// token names its task (`MKT-004.3.…`), and a task ID belongs to one agent (SPEC
    /// §5), so a token from another backlog is `not_found` here, as that task is.
    fn within_the_backlog(&self, store: &Store, request: &Value) -> Result<()> {
        let (Some(agent), Some(token)) = (&self.agent, request["token"].as_str()) else {
            return Ok(());
        };
        let task_id = token.split('.').next().unwrap_or_default();
        if validate::task_id(task_id).is_err() {
            return Ok(()); // a malformed token: the operation says what is wrong with it
        }
        match store.get_task(agent, task_id) {
            Ok(_) => Ok(()),
            Err(Error::NotFound(_)) => Err(Error::NotFound(format!(
                "the lease {token} is not of a task in the backlog of {agent}, which these tools are bound to"
            ))),
            Err(other) => Err(other),
        }
    }

    /// The names of a tool's arguments.
    fn parameters(&self, op: &Operation) -> Vec<&'static str> {
        let mut names = Vec::new();
        for input in op.inputs {
            match input.kind {
                Kind::Object(fields) if input.place == Place::Body => {
                    names.extend(fields.iter().map(|f| f.name));
                }
                _ if input.name == "agent_id" && self.agent.is_some() => {}
                _ => names.push(input.name),
            }
        }
        names
    }

    fn describe(&self, op: &'static Operation) -> Tool {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for input in op.inputs {
            match input.kind {
                Kind::Object(fields) if input.place == Place::Body => {
                    for field in fields {
                        let mut doc = field.doc.to_owned();
                        if field.nullable {
                            doc.push_str(" An empty string clears it.");
                        }
                        let mut schema = schema::of_input(op.name, field.name, field.kind, &doc);
                        if field.nullable {
                            // "" is a value here (it clears), whatever the field's length rule.
                            if let Some(object) = schema.as_object_mut() {
                                object.remove("minLength");
                                object.remove("pattern");
                            }
                        }
                        properties.insert(field.name.to_owned(), schema);
                        if field.required {
                            required.push(field.name);
                        }
                    }
                }
                _ if input.name == "agent_id" && self.agent.is_some() => {}
                kind => {
                    properties.insert(
                        input.name.to_owned(),
                        schema::of_input(op.name, input.name, kind, input.doc),
                    );
                    if input.required {
                        required.push(input.name);
                    }
                }
            }
        }
        let mut description = op.doc.to_owned();
        if let Some((_, when)) = WHEN.iter().find(|(name, _)| *name == op.name) {
            description.push(' ');
            description.push_str(when);
        }
        if let Some(agent) = &self.agent {
            if op.inputs.iter().any(|i| i.name == "agent_id") {
                description.push_str(&format!(" It works on the backlog of {agent}."));
            }
        }
        // A result that may be null is the object when there is one, `{"result": null}`
        // when there is none.
        let output_schema = if op.result.is_object() {
            op.result.schema()
        } else {
            json!({
                "type": "object",
                "anyOf": [
                    op.result.present_schema(),
                    {
                        "type": "object",
                        "properties": {"result": {"type": "null"}},
                        "required": ["result"],
                        "additionalProperties": false,
                    },
                ],
            })
        };
        Tool {
            name: op.name,
            description,
            input_schema: json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            }),
            output_schema,
            annotations: Annotations {
                read_only: op.access == Access::Read,
                destructive: op.access == Access::Delete || OVERWRITES.contains(&op.name),
                idempotent: op.access == Access::Read || IDEMPOTENT.contains(&op.name),
            },
        }
    }
}

fn parse_result(json: &str) -> Result<Value> {
    serde_json::from_str(json)
        .map_err(|e| Error::Internal(format!("a result could not be read back as JSON: {e}")))
}

/// `schema` in the strict form: in every object, every property is required and the
/// ones that were optional also allow `null`; no `minLength`, `maxLength` or `pattern`.
pub fn strict(schema: &Value) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = object.clone();
    for keyword in ["minLength", "maxLength", "pattern"] {
        out.remove(keyword);
    }
    if let Some(Value::Object(properties)) = object.get("properties") {
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut strict_properties = Map::new();
        for (name, property) in properties {
            let property = strict(property);
            let property = if required.contains(&name.as_str()) {
                property
            } else {
                schema::nullable(property)
            };
            strict_properties.insert(name.clone(), property);
        }
        out.insert(
            "required".into(),
            Value::Array(
                properties
                    .keys()
                    .map(|k| Value::String(k.clone()))
                    .collect(),
            ),
        );
        out.insert("properties".into(), Value::Object(strict_properties));
    }
    if let Some(items) = object.get("items") {
        out.insert("items".into(), strict(items));
    }
    if let Some(Value::Array(any_of)) = object.get("anyOf") {
        out.insert(
            "anyOf".into(),
            Value::Array(any_of.iter().map(strict).collect()),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_name_real_operations() {
        for name in CORE
            .iter()
            .chain(SPANNING)
            .chain(IDEMPOTENT)
            .chain(WHEN.iter().map(|(n, _)| n))
        {
            assert!(operation(name).is_some(), "{name}");
        }
    }

    #[test]
    fn flat_arguments_never_collide() {
        let all = Toolbox::new("all", None).unwrap();
        for tool in all.tools() {
            let ops = operation(tool.name).unwrap();
            let names = all.parameters(ops);
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{}: {names:?}", tool.name);
            assert_eq!(
                tool.input_schema["properties"].as_object().unwrap().len(),
                names.len()
            );
        }
    }

    #[test]
    fn selections() {
        assert_eq!(Toolbox::new("core", None).unwrap().names(), CORE);
        assert_eq!(
            Toolbox::new("all", None).unwrap().names().len(),
            OPERATIONS.len()
        );
        let bound = Toolbox::new("all", Some("ops")).unwrap().names();
        assert_eq!(bound.len(), OPERATIONS.len() - SPANNING.len());
        assert!(!bound.contains(&"list_agents"));
        assert_eq!(
            Toolbox::new(" get_task, summary ,get_task", None)
                .unwrap()
                .names(),
            ["get_task", "summary"]
        );
        for bad in ["", " , ", "list_tasks,nope"] {
            let err = Toolbox::new(bad, None).unwrap_err();
            assert_eq!(err.code(), "invalid_argument", "{bad:?}");
        }
        let err = Toolbox::new("list_agents", Some("ops")).unwrap_err();
        assert!(err.to_string().contains("every agent"), "{err}");
        assert_eq!(
            Toolbox::new("core", Some("bad agent")).unwrap_err().code(),
            "invalid_argument"
        );
    }

    #[test]
    fn a_bound_toolbox_refuses_the_lease_of_another_backlog() {
        let store = Store::open_in_memory().unwrap();
        let other = Toolbox::new("all", Some("other")).unwrap();
        let mine = Toolbox::new("all", Some("mine")).unwrap();
        for tools in [&other, &mine] {
            assert!(
                !tools
                    .call(&store, "create_task", json!({"title": "t"}))
                    .is_error
            );
        }
        let token = |tools: &Toolbox| {
            let claim = tools.call(&store, "claim_lease", json!({"worker": "w"}));
            claim.content["lease"]["token"].as_str().unwrap().to_owned()
        };
        let (theirs, ours) = (token(&other), token(&mine));
        for name in ["renew_lease", "finish_lease", "finish_and_claim"] {
            let arguments = json!({"token": theirs, "status": "queued"});
            let mut arguments = arguments.as_object().unwrap().clone();
            if name == "renew_lease" {
                arguments.remove("status");
            }
            let refused = mine.call(&store, name, Value::Object(arguments));
            assert_eq!(
                refused.content["error"]["code"], "not_found",
                "{name}: {refused:?}"
            );
        }
        // Nothing moved: their task is still leased, and our own token works.
        let lease = other.call(&store, "get_lease", json!({"task_id": "OTH-001"}));
        assert_eq!(lease.content["token"], theirs.as_str());
        let renewed = mine.call(&store, "renew_lease", json!({"token": ours}));
        assert!(!renewed.is_error, "{renewed:?}");
        let malformed = mine.call(&store, "renew_lease", json!({"token": "nope"}));
        assert_eq!(malformed.content["error"]["code"], "invalid_argument");
    }

    #[test]
    fn a_bound_toolbox_narrows_the_tools_that_take_an_optional_agent() {
        let store = Store::open_in_memory().unwrap();
        let all = Toolbox::new("all", None).unwrap();
        for agent in ["mine", "other"] {
            let created = all.call(
                &store,
                "create_task",
                json!({"agent_id": agent, "title": "t"}),
            );
            assert!(!created.is_error);
        }
        let mine = Toolbox::new("all", Some("mine")).unwrap();
        let query = mine.call(&store, "query_tasks", json!({}));
        assert_eq!(query.content["total"], 1);
        assert_eq!(query.content["tasks"][0]["agent_id"], "mine");
        let events = mine.call(&store, "events", json!({}));
        let agents: Vec<&Value> = events.content["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["agent_id"])
            .collect();
        assert_eq!(agents, [&json!("mine")]);
    }

    #[test]
    fn strict_form_requires_everything_and_allows_null_for_the_optional() {
        let tools = Toolbox::new("create_tasks,update_task", None)
            .unwrap()
            .tools();
        let batch = tools[0].strict_input_schema();
        assert_eq!(
            batch["required"],
            json!(["agent_id", "tasks", "idempotency_key"])
        );
        assert_eq!(
            batch["properties"]["idempotency_key"]["type"],
            json!(["string", "null"])
        );
        let item = &batch["properties"]["tasks"]["items"];
        assert_eq!(
            item["required"],
            json!(["title", "description", "priority", "depends_on"])
        );
        assert_eq!(item["properties"]["title"]["type"], "string");
        assert_eq!(item["additionalProperties"], false);
        let update = tools[1].strict_input_schema();
        assert_eq!(update["properties"]["status"]["enum"][4], Value::Null);
        assert_eq!(
            tools[1].input_schema["required"],
            json!(["agent_id", "task_id"])
        );
    }
}
