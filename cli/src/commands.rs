//! The data commands: argv values become JSON requests that the core parses and
//! checks, and each command's result becomes an [`Output`].

use agent_backlog::ops::OPERATIONS;
use agent_backlog::{
    Deleted, Error, ListQuery, NewTask, PrefixSet, QueryResult, Store, Summary, Task, TaskList,
    TaskPatch, TaskQuery,
};
use serde_json::{json, Map, Value};

use crate::args::Command;
use crate::convert::field_value;

/// The result of one data command, ready to print.
#[derive(Debug)]
pub enum Output {
    /// One task (create, get, update).
    Task(Task),
    /// The claimed task, or `None` when nothing was queued.
    Claimed {
        /// The agent that claimed.
        agent_id: String,
        /// The task now in progress.
        task: Option<Task>,
    },
    /// An agent's backlog (list).
    List(TaskList),
    /// Tasks across agents (query).
    Query(QueryResult),
    /// Counts by status (summary).
    Summary {
        /// The agent counted.
        agent_id: String,
        /// The counts.
        summary: Summary,
    },
    /// The deleted task's ID.
    Deleted(Deleted),
    /// The prefix that was set.
    Prefix(PrefixSet),
    /// The JSON result of an operation run by name (`call`).
    Json(String),
}

/// Builds a JSON request object from the options that were given.
#[derive(Default)]
struct Request(Map<String, Value>);

impl Request {
    /// Adds `field` when the option was given (as text, converted like a query string).
    fn text(mut self, field: &str, value: Option<String>) -> Self {
        if let Some(text) = value {
            self.0.insert(field.to_owned(), field_value(field, &text));
        }
        self
    }

    /// Adds `field: null` when `clear` is set.
    fn clear(mut self, field: &str, clear: bool) -> Self {
        if clear {
            self.0.insert(field.to_owned(), Value::Null);
        }
        self
    }

    fn value(self) -> Value {
        Value::Object(self.0)
    }
}

/// The operation table as JSON, for `call --list`: each operation's name, what it
/// does, its inputs and its REST route.
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
                "doc": op.doc,
                "inputs": inputs,
                "route": format!("{} {}", op.route.method, op.route.path),
            })
        })
        .collect();
    Value::Array(ops).to_string()
}

/// Runs a data command against the store. `serve` is not a data command.
pub fn run(store: &Store, command: Command) -> Result<Output, Error> {
    match command {
        Command::Serve(_) => Err(Error::Internal(
            "serve is not a data command; this is a bug in agent-backlog".into(),
        )),
        Command::List {
            agent,
            status,
            limit,
            offset,
            ..
        } => {
            let query = Request::default()
                .text("status", status)
                .text("limit", limit)
                .text("offset", offset);
            let query = ListQuery::from_value(query.value())?;
            Ok(Output::List(store.list_tasks(&agent, query)?))
        }
        Command::Create {
            agent,
            title,
            description,
            priority,
            ..
        } => {
            let task = Request::default()
                .text("title", Some(title))
                .text("description", description)
                .text("priority", priority);
            let task = NewTask::from_value(task.value())?;
            Ok(Output::Task(store.create_task(&agent, task)?))
        }
        Command::Update {
            agent,
            task,
            status,
            priority,
            title,
            description,
            clear_description,
            blocker,
            clear_blocker,
            result,
            clear_result,
            ..
        } => {
            let patch = Request::default()
                .text("status", status)
                .text("priority", priority)
                .text("title", title)
                .text("description", description)
                .clear("description", clear_description)
                .text("blocker", blocker)
                .clear("blocker", clear_blocker)
                .text("result", result)
                .clear("result", clear_result);
            let patch = TaskPatch::from_value(patch.value())?;
            Ok(Output::Task(store.update_task(&agent, &task, patch)?))
        }
        Command::Delete { agent, task, .. } => {
            Ok(Output::Deleted(store.delete_task(&agent, &task)?))
        }
        Command::Get { agent, task, .. } => Ok(Output::Task(store.get_task(&agent, &task)?)),
        Command::Query {
            status,
            priority,
            agent,
            limit,
            offset,
            ..
        } => {
            let query = Request::default()
                .text("status", status)
                .text("priority", priority)
                .text("agent_id", agent)
                .text("limit", limit)
                .text("offset", offset);
            let query = TaskQuery::from_value(query.value())?;
            Ok(Output::Query(store.query_tasks(query)?))
        }
        Command::Summary { agent, .. } => {
            let summary = store.summary(&agent)?;
            Ok(Output::Summary {
                agent_id: agent,
                summary,
            })
        }
        Command::Claim { agent, .. } => {
            let task = store.claim_next(&agent)?;
            Ok(Output::Claimed {
                agent_id: agent,
                task,
            })
        }
        Command::Call {
            operation,
            request,
            list,
        } => {
            if list {
                return Ok(Output::Json(operations()));
            }
            let operation = operation.unwrap_or_default();
            let request = request.as_deref().unwrap_or("{}");
            Ok(Output::Json(store.call(&operation, request)?))
        }
        Command::Prefix { agent, prefix, .. } => {
            Ok(Output::Prefix(store.set_prefix(&agent, &prefix)?))
        }
    }
}
