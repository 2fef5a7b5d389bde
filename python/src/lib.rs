//! The Python extension module `agent_backlog._native`, re-exported by the
//! `agent_backlog` package (`python/agent_backlog/__init__.py`).
//!
//! This layer only converts. Python arguments become `serde_json::Value` request bodies
//! that the core parses strictly (so a wrong type or an unknown field gets the same
//! message as on every other surface); typed results become plain dicts and lists with
//! the keys in the contract's order; core errors become the exception hierarchy through
//! one function, [`to_py_err`]. Every call into the core runs detached from the
//! interpreter (other Python threads keep running while SQLite works or waits) and
//! inside a panic guard that turns a bug into `InternalError`.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyException, PyLookupError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use pyo3::{create_exception, intern};
use serde_json::{Map, Number, Value};

use agent_backlog::ops::WaitRequest;
use agent_backlog::tools::{Outcome, Toolbox};
use agent_backlog::{
    AgentTask, Claim, Dependencies, Error, ErrorCode, EventQuery, Finish, Lease, LeaseTerms,
    ListQuery, NewTask, Page, Status, Store, StoreOptions, Task, TaskPatch, TaskQuery, TaskRef,
    WaitCancel,
};

/// The module the classes and exceptions say they belong to (the public package).
const PACKAGE: &str = "agent_backlog";

create_exception!(
    agent_backlog,
    BacklogError,
    PyException,
    "The base class of every error agent-backlog raises. `code` holds the stable error \
code of the contract; the library raises only the subclasses."
);

create_exception!(
    agent_backlog,
    WouldWait,
    PyException,
    "Raised by Store._now when the call would have waited (for a lock, a free \
connection, the disk or work to arrive) and gave up having done nothing; AsyncStore \
then makes the call on a thread of its own."
);

/// The six exception subclasses, built once at module initialization because two of
/// them also derive from a built-in exception (`ValueError`, `LookupError`), which
/// `create_exception!` (one base class) cannot express.
struct ExceptionTypes {
    invalid_argument: Py<PyType>,
    not_found: Py<PyType>,
    invalid_transition: Py<PyType>,
    conflict: Py<PyType>,
    storage: Py<PyType>,
    internal: Py<PyType>,
    lease_lost: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<ExceptionTypes> = PyOnceLock::new();

/// Creates `class name(BacklogError[, extra]): code = ...` with Python's `type()`.
fn new_exception(
    py: Python<'_>,
    name: &str,
    code: ErrorCode,
    extra_base: Option<Bound<'_, PyType>>,
    doc: &str,
) -> PyResult<Py<PyType>> {
    new_exception_of(
        py,
        py.get_type::<BacklogError>(),
        name,
        code,
        extra_base,
        doc,
    )
}

/// Creates `class name(base[, extra]): code = ...` with Python's `type()`.
fn new_exception_of(
    py: Python<'_>,
    base: Bound<'_, PyType>,
    name: &str,
    code: ErrorCode,
    extra_base: Option<Bound<'_, PyType>>,
    doc: &str,
) -> PyResult<Py<PyType>> {
    let bases = match extra_base {
        Some(extra) => PyTuple::new(py, [base, extra])?,
        None => PyTuple::new(py, [base])?,
    };
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", PACKAGE)?;
    namespace.set_item("__doc__", doc)?;
    namespace.set_item("code", code.as_str())?;
    let class = py
        .get_type::<PyType>()
        .call1((name, bases, namespace))?
        .cast_into::<PyType>()?;
    Ok(class.unbind())
}

/// The six subclasses, created on first use (module initialization).
fn exception_types(py: Python<'_>) -> PyResult<&'static ExceptionTypes> {
    EXCEPTIONS.get_or_try_init(py, || {
        let conflict = new_exception(
            py,
            "ConflictError",
            ErrorCode::Conflict,
            None,
            "A prefix held by another agent, or a prefix change after the first task \
             (code \"conflict\").",
        )?;
        let lease_lost = new_exception_of(
            py,
            conflict.bind(py).clone(),
            "LeaseLostError",
            ErrorCode::LeaseLost,
            None,
            "The lease token no longer holds its task (code \"lease_lost\"): the lease \
             expired and the task was requeued, another worker claimed it, or the task was \
             moved or deleted. Stop working on the task; nothing was written.",
        )?;
        Ok(ExceptionTypes {
            invalid_argument: new_exception(
                py,
                "ValidationError",
                ErrorCode::InvalidArgument,
                Some(py.get_type::<PyValueError>()),
                "A bad agent_id, task_id, field, type, range or unknown field \
                 (code \"invalid_argument\"); nothing was written.",
            )?,
            not_found: new_exception(
                py,
                "NotFoundError",
                ErrorCode::NotFound,
                Some(py.get_type::<PyLookupError>()),
                "The task does not exist in that agent's backlog (code \"not_found\").",
            )?,
            invalid_transition: new_exception(
                py,
                "TransitionError",
                ErrorCode::InvalidTransition,
                None,
                "A lifecycle move the transition table forbids (code \"invalid_transition\"); \
                 nothing was written.",
            )?,
            conflict,
            lease_lost,
            storage: new_exception(
                py,
                "StorageError",
                ErrorCode::Storage,
                None,
                "SQLite failed: busy past the timeout, disk full, read-only or corrupt file, \
                 a newer schema, a closed store or a store inherited across fork() \
                 (code \"storage\").",
            )?,
            internal: new_exception(
                py,
                "InternalError",
                ErrorCode::Internal,
                None,
                "A bug inside agent-backlog (code \"internal\"); the store stays usable.",
            )?,
        })
    })
}

/// The one mapping from the core's error to a Python exception.
fn to_py_err(py: Python<'_>, err: Error) -> PyErr {
    let types = match exception_types(py) {
        Ok(types) => types,
        Err(e) => return e,
    };
    let class = match err.kind() {
        ErrorCode::InvalidArgument => &types.invalid_argument,
        ErrorCode::NotFound => &types.not_found,
        ErrorCode::InvalidTransition => &types.invalid_transition,
        ErrorCode::Conflict => &types.conflict,
        ErrorCode::Storage => &types.storage,
        ErrorCode::Internal => &types.internal,
        ErrorCode::LeaseLost => &types.lease_lost,
    };
    PyErr::from_type(class.bind(py).clone(), err.to_string())
}

/// Runs `f`, turning a panic into [`Error::Internal`].
fn guarded<T>(f: impl FnOnce() -> agent_backlog::Result<T>) -> agent_backlog::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        Err(Error::Internal(format!(
            "agent-backlog hit a bug ({what}); the call did nothing and the store stays usable"
        )))
    })
}

// ---------------------------------------------------------------------------------
// Python values → JSON values
// ---------------------------------------------------------------------------------

/// Where a value sits in the arguments, for messages: `title`, `tasks[1].priority`.
#[derive(Clone, Copy)]
enum Path<'a> {
    Arg(&'a str),
    /// Keyword arguments: each is named by itself (`blocker`, not `fields.blocker`).
    Keywords,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Arg(name) => f.write_str(name),
            Path::Keywords => f.write_str("the keyword arguments"),
            Path::Key(Path::Keywords, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// The deepest nesting accepted; the contract's bodies need two levels. Also stops a
/// list that contains itself.
const MAX_DEPTH: usize = 32;

/// The name of a value's Python type, for messages: `bytes`, `int`.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "an unknown type".to_owned())
}

/// A `str` that cannot be UTF-8 (it holds a lone surrogate).
fn unicode_error(path: &dyn fmt::Display) -> Error {
    Error::InvalidArgument(format!(
        "{path} must be valid Unicode text, got a str containing a lone surrogate"
    ))
}

/// Converts a Python value to JSON without coercion: `None`, `bool`, `int`, `float`,
/// `str`, `list`/`tuple` and `dict` with `str` keys; anything else is refused, naming
/// the argument and the type. The core then judges whether the type fits the field.
fn to_json(value: &Bound<'_, PyAny>, path: Path<'_>, depth: usize) -> Result<Value, Error> {
    if value.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: in Python, bool is a subclass of int.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(int) = value.cast::<PyInt>() {
        if let Ok(n) = int.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = int.extract::<u64>() {
            return Ok(Value::from(n));
        }
        let bits = int
            .call_method0("bit_length")
            .and_then(|b| b.extract::<u64>())
            .map(|b| format!("one of {b} bits"))
            .unwrap_or_else(|_| "a larger one".to_owned());
        return Err(Error::InvalidArgument(format!(
            "{path} must be an integer that fits in 64 bits, got {bits}"
        )));
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        let x = float.value();
        return Number::from_f64(x).map(Value::Number).ok_or_else(|| {
            Error::InvalidArgument(format!("{path} must not be NaN or infinite, got {x}"))
        });
    }
    if let Ok(s) = value.cast::<PyString>() {
        return s
            .to_cow()
            .map(|s| Value::String(s.into_owned()))
            .map_err(|_| unicode_error(&path));
    }
    let too_deep = || {
        Error::InvalidArgument(format!(
            "{path} is nested more than {MAX_DEPTH} levels deep; give plain values"
        ))
    };
    if let Ok(list) = value.cast::<PyList>() {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        return list
            .iter()
            .enumerate()
            .map(|(i, item)| to_json(&item, Path::Index(&path, i), depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        return tuple
            .iter()
            .enumerate()
            .map(|(i, item)| to_json(&item, Path::Index(&path, i), depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        return dict_to_json(dict, path, depth);
    }
    Err(Error::InvalidArgument(format!(
        "{path} must be a str, int, float, bool, None, list or dict, got {}",
        type_name(value)
    )))
}

/// Converts a dict with `str` keys to a JSON object (see [`to_json`]).
fn dict_to_json(dict: &Bound<'_, PyDict>, path: Path<'_>, depth: usize) -> Result<Value, Error> {
    let mut map = Map::new();
    for (key, value) in dict.iter() {
        let key = key.cast::<PyString>().map_err(|_| {
            Error::InvalidArgument(format!(
                "{path} must have str keys, got a key of type {}",
                type_name(&key)
            ))
        })?;
        let key = key.to_cow().map_err(|_| unicode_error(&path))?;
        let value = to_json(&value, Path::Key(&path, &key), depth + 1)?;
        map.insert(key.into_owned(), value);
    }
    Ok(Value::Object(map))
}

/// An optional text argument: None (or absent) is `None`.
fn optional_text_arg(
    py: Python<'_>,
    value: Option<&Bound<'_, PyAny>>,
    name: &str,
) -> PyResult<Option<String>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| arg(py, text_arg(v, name)).map(|t| (*t).to_owned()))
        .transpose()
}

/// The three text arguments of a dependency edge.
fn edge_args(
    py: Python<'_>,
    agent_id: &Bound<'_, PyAny>,
    task_id: &Bound<'_, PyAny>,
    depends_on: &Bound<'_, PyAny>,
) -> PyResult<(PyBackedStr, PyBackedStr, PyBackedStr)> {
    Ok((
        arg(py, text_arg(agent_id, "agent_id"))?,
        arg(py, text_arg(task_id, "task_id"))?,
        arg(py, text_arg(depends_on, "depends_on"))?,
    ))
}

/// A JSON value as Python objects (an event's data).
fn value_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into_pyobject(py)?.into_any(),
            None => n.as_f64().unwrap_or_default().into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|v| value_to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, value_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Events as a list of dicts, keys in the contract's order.
fn events_list<'py>(
    py: Python<'py>,
    events: &[agent_backlog::Event],
) -> PyResult<Bound<'py, PyList>> {
    let items = events
        .iter()
        .map(|e| {
            let dict = PyDict::new(py);
            dict.set_item(intern!(py, "seq"), e.seq)?;
            dict.set_item(intern!(py, "at"), &e.at)?;
            dict.set_item(intern!(py, "agent_id"), &e.agent_id)?;
            dict.set_item(intern!(py, "task_id"), &e.task_id)?;
            dict.set_item(intern!(py, "type"), e.kind.as_str())?;
            dict.set_item(intern!(py, "actor"), &e.actor)?;
            dict.set_item(intern!(py, "data"), value_to_py(py, &e.data)?)?;
            Ok(dict)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn dependencies_dict<'py>(py: Python<'py>, deps: &Dependencies) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item(intern!(py, "task_id"), &deps.task_id)?;
    dict.set_item(
        intern!(py, "depends_on"),
        PyList::new(py, &deps.depends_on)?,
    )?;
    Ok(dict)
}

/// A request body from the arguments that were given (`None` means "not given").
fn body(fields: &[(&str, Option<&Bound<'_, PyAny>>)]) -> Result<Value, Error> {
    let mut map = Map::new();
    for &(name, value) in fields {
        if let Some(value) = value.filter(|v| !v.is_none()) {
            map.insert(name.to_owned(), to_json(value, Path::Arg(name), 0)?);
        }
    }
    Ok(Value::Object(map))
}

/// An agent_id, task_id or prefix argument: a `str`, nothing else.
fn text_arg(value: &Bound<'_, PyAny>, name: &str) -> Result<PyBackedStr, Error> {
    let s = value.cast::<PyString>().map_err(|_| {
        Error::InvalidArgument(format!("{name} must be a str, got {}", type_name(value)))
    })?;
    PyBackedStr::try_from(s.clone()).map_err(|_| unicode_error(&name))
}

/// `busy_timeout` in seconds (an int or float ≥ 0) → `busy_timeout_ms` for the core.
fn busy_timeout_ms(value: &Bound<'_, PyAny>) -> Result<Value, Error> {
    let refuse = |got: String| {
        Error::InvalidArgument(format!(
            "busy_timeout must be a number of seconds of 0 or more, got {got}"
        ))
    };
    let seconds = if value.cast::<PyBool>().is_ok() {
        return Err(refuse(type_name(value)));
    } else if let Ok(float) = value.cast::<PyFloat>() {
        float.value()
    } else if let Ok(int) = value.cast::<PyInt>() {
        int.extract::<f64>()
            .map_err(|_| refuse("an integer too large".to_owned()))?
    } else {
        return Err(refuse(type_name(value)));
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(refuse(seconds.to_string()));
    }
    // Rounded up, so that a small positive timeout never becomes "do not wait".
    let ms = (seconds * 1000.0).ceil();
    if ms >= i64::MAX as f64 {
        return Err(refuse(format!("{seconds}, which is too large")));
    }
    Ok(Value::from(ms as i64))
}

// ---------------------------------------------------------------------------------
// Results → dicts
// ---------------------------------------------------------------------------------

/// The status as an interned Python string.
fn status_str(py: Python<'_>, status: Status) -> &Bound<'_, PyString> {
    match status {
        Status::Queued => intern!(py, "queued"),
        Status::InProgress => intern!(py, "in_progress"),
        Status::Complete => intern!(py, "complete"),
        Status::Blocked => intern!(py, "blocked"),
    }
}

/// Writes the task's keys, in the contract's order, into `dict`.
fn put_task(dict: &Bound<'_, PyDict>, task: &Task) -> PyResult<()> {
    let py = dict.py();
    dict.set_item(intern!(py, "id"), &task.id)?;
    dict.set_item(intern!(py, "title"), &task.title)?;
    dict.set_item(intern!(py, "description"), task.description.as_deref())?;
    dict.set_item(intern!(py, "priority"), task.priority)?;
    dict.set_item(intern!(py, "status"), status_str(py, task.status))?;
    dict.set_item(intern!(py, "created"), &task.created)?;
    dict.set_item(intern!(py, "started"), task.started.as_deref())?;
    dict.set_item(intern!(py, "completed"), task.completed.as_deref())?;
    dict.set_item(intern!(py, "result"), task.result.as_deref())?;
    dict.set_item(intern!(py, "blocker"), task.blocker.as_deref())?;
    Ok(())
}

/// An empty task dict to copy: its keys in order (values `None`), sized for them, so
/// that filling a copy neither resizes it nor changes the order.
fn task_template<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyDict>>,
    with_agent_id: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let template = cell.get_or_try_init(py, || {
        let dict = PyDict::new(py);
        if with_agent_id {
            dict.set_item(intern!(py, "agent_id"), py.None())?;
        }
        // The values are placeholders; every one is overwritten.
        let placeholder = Task {
            id: String::new(),
            title: String::new(),
            description: None,
            priority: 0,
            status: Status::Queued,
            created: String::new(),
            started: None,
            completed: None,
            result: None,
            blocker: None,
        };
        put_task(&dict, &placeholder)?;
        Ok::<_, PyErr>(dict.unbind())
    })?;
    template.bind(py).copy()
}

/// A task as a dict, keys in the contract's order.
fn task_dict<'py>(py: Python<'py>, task: &Task) -> PyResult<Bound<'py, PyDict>> {
    static TEMPLATE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    let dict = task_template(py, &TEMPLATE, false)?;
    put_task(&dict, task)?;
    Ok(dict)
}

/// The finish body of `finish_lease` and `finish_and_claim`, parsed by the core.
fn finish_of(
    status: &Bound<'_, PyAny>,
    result: Option<&Bound<'_, PyAny>>,
    blocker: Option<&Bound<'_, PyAny>>,
) -> Result<Value, Error> {
    body(&[
        ("status", Some(status)),
        ("result", result),
        ("blocker", blocker),
    ])
}

/// `lease_seconds` and `max_attempts` as the core's `LeaseTerms` parse them.
fn terms_of(
    lease_seconds: Option<&Bound<'_, PyAny>>,
    max_attempts: Option<&Bound<'_, PyAny>>,
) -> Result<Value, Error> {
    body(&[
        ("lease_seconds", lease_seconds),
        ("max_attempts", max_attempts),
    ])
}

/// A lease as a dict, keys in the contract's order.
fn lease_dict<'py>(py: Python<'py>, lease: &Lease) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item(intern!(py, "token"), &lease.token)?;
    dict.set_item(intern!(py, "agent_id"), &lease.agent_id)?;
    dict.set_item(intern!(py, "task_id"), &lease.task_id)?;
    dict.set_item(intern!(py, "worker"), &lease.worker)?;
    dict.set_item(intern!(py, "fence"), lease.fence)?;
    dict.set_item(intern!(py, "attempt"), lease.attempt)?;
    dict.set_item(intern!(py, "max_attempts"), lease.max_attempts)?;
    dict.set_item(intern!(py, "granted"), &lease.granted)?;
    dict.set_item(intern!(py, "expires"), &lease.expires)?;
    Ok(dict)
}

/// `{"task", "lease"}` of a leased claim, or `None`.
fn claim_dict<'py>(py: Python<'py>, claim: Option<&Claim>) -> PyResult<Bound<'py, PyAny>> {
    let Some(claim) = claim else {
        return Ok(py.None().into_bound(py));
    };
    let dict = PyDict::new(py);
    dict.set_item(intern!(py, "task"), task_dict(py, &claim.task)?)?;
    dict.set_item(intern!(py, "lease"), lease_dict(py, &claim.lease)?)?;
    Ok(dict.into_any())
}

/// A task of the cross-agent listing: `agent_id` first, then the task's keys.
fn agent_task_dict<'py>(py: Python<'py>, task: &AgentTask) -> PyResult<Bound<'py, PyDict>> {
    static TEMPLATE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    let dict = task_template(py, &TEMPLATE, true)?;
    dict.set_item(intern!(py, "agent_id"), &task.agent_id)?;
    put_task(&dict, &task.task)?;
    Ok(dict)
}

/// `{"agent_id", "tasks", "total"}` of `list_tasks` and `create_tasks`.
fn task_list<'py>(py: Python<'py>, list: &agent_backlog::TaskList) -> PyResult<Bound<'py, PyDict>> {
    let tasks = list
        .tasks
        .iter()
        .map(|t| task_dict(py, t))
        .collect::<PyResult<Vec<_>>>()?;
    let dict = PyDict::new(py);
    dict.set_item(intern!(py, "agent_id"), &list.agent_id)?;
    dict.set_item(intern!(py, "tasks"), PyList::new(py, tasks)?)?;
    dict.set_item(intern!(py, "total"), list.total)?;
    Ok(dict)
}

// ---------------------------------------------------------------------------------
// The Store class
// ---------------------------------------------------------------------------------

/// A backlog store over one SQLite file (or ":memory:"), or on PostgreSQL by URL
/// ("postgresql://user@host/db"; see docs/POSTGRES.md).
///
/// `busy_timeout` is how many seconds a write waits for another connection's write
/// lock (default 5.0); `durability` is "normal" (default: survives any process crash)
/// or "full" (also survives power loss, at an fsync per write); `actor` is who the
/// store's writes are recorded as in the history (default: nobody). A Store may be shared
/// by threads; SQLite work runs with the GIL released. Use it as a context manager, or
/// call close(); a closed store, or one inherited across fork(), raises StorageError.
#[pyclass(frozen, module = "agent_backlog", name = "Store")]
pub struct PyStore {
    store: Arc<Store>,
    path: String,
}

impl PyStore {
    /// Runs one core operation detached from the interpreter, inside the panic guard.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&Store) -> agent_backlog::Result<T> + Send,
    ) -> PyResult<T> {
        let store: &Store = &self.store;
        py.detach(move || guarded(|| op(store)))
            .map_err(|e| to_py_err(py, e))
    }

    /// Like [`PyStore::call`], for an operation that waits: its stop hook checks for
    /// signals, so Ctrl-C ends the wait and its exception (KeyboardInterrupt) is raised.
    fn call_interruptible<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&Store, &mut dyn FnMut() -> bool) -> agent_backlog::Result<T> + Send,
    ) -> PyResult<T> {
        self.run_interruptible(py, op)?
            .map_err(|e| to_py_err(py, e))
    }

    /// Runs `op` as [`PyStore::call_interruptible`] does; the outer error is the
    /// interruption, the inner result the operation's.
    fn run_interruptible<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&Store, &mut dyn FnMut() -> bool) -> agent_backlog::Result<T> + Send,
    ) -> PyResult<agent_backlog::Result<T>> {
        let store: &Store = &self.store;
        let (result, interrupted) = py.detach(move || {
            let mut interrupted: Option<PyErr> = None;
            let result = guarded(|| {
                let mut stop = || match Python::attach(|py| py.check_signals()) {
                    Ok(()) => false,
                    Err(e) => {
                        interrupted = Some(e);
                        true
                    }
                };
                op(store, &mut stop)
            });
            (result, interrupted)
        });
        match interrupted {
            Some(err) => Err(err),
            None => Ok(result),
        }
    }
}

/// Ends one wait of a store from the event loop's thread, at once (see
/// `Store::wait_cancel`): AsyncStore passes one to each wait it runs on a thread,
/// and cancels it when the awaiting coroutine is cancelled.
#[pyclass(frozen, module = "agent_backlog._native", name = "Waiter")]
pub struct PyWaiter {
    cancel: WaitCancel,
}

#[pymethods]
impl PyWaiter {
    /// Ends the wait that was given this waiter (it returns as if its timeout had
    /// passed, claiming nothing), now or as soon as it begins.
    fn cancel(&self, py: Python<'_>) {
        // It takes the store's locks to wake the waiters: not while holding the GIL.
        py.detach(|| self.cancel.cancel());
    }

    /// Whether cancel() was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// The stop hook of a wait: the waiter's, when one is given, otherwise Ctrl-C's.
fn stop_hook<'a>(
    waiter: Option<&'a WaitCancel>,
    signals: &'a mut dyn FnMut() -> bool,
) -> impl FnMut() -> bool + 'a {
    move || match waiter {
        Some(w) => w.is_cancelled(),
        None => signals(),
    }
}

/// Runs `f` in the waiter's scope, when there is one (`WaitCancel::scope`: once
/// cancelled, a wait for a lock inside it gives up at once too).
fn in_scope<T>(waiter: Option<&WaitCancel>, f: impl FnOnce() -> T) -> T {
    match waiter {
        Some(w) => w.scope(f),
        None => f(),
    }
}

/// Converts a conversion error (raised before the core is called) to an exception.
fn arg<T>(py: Python<'_>, result: Result<T, Error>) -> PyResult<T> {
    result.map_err(|e| to_py_err(py, e))
}

#[pymethods]
impl PyStore {
    /// Opens (creating if needed) the store at `path_or_url`; see the class docstring.
    #[new]
    #[pyo3(signature = (path_or_url, *, busy_timeout = None, durability = None, actor = None))]
    fn new(
        py: Python<'_>,
        path_or_url: &Bound<'_, PyAny>,
        busy_timeout: Option<&Bound<'_, PyAny>>,
        durability: Option<&Bound<'_, PyAny>>,
        actor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let file: PathBuf = match path_or_url.extract() {
            Ok(file) => file,
            Err(e) if e.is_instance_of::<PyTypeError>(py) => {
                return Err(to_py_err(
                    py,
                    Error::InvalidArgument(format!(
                        "path_or_url must be a str or an os.PathLike (a file's path, \
                         \":memory:\" or a postgresql:// URL), got {}",
                        type_name(path_or_url)
                    )),
                ))
            }
            Err(e) => return Err(e),
        };
        let mut options = Map::new();
        if let Some(timeout) = busy_timeout.filter(|v| !v.is_none()) {
            options.insert("busy_timeout_ms".into(), arg(py, busy_timeout_ms(timeout))?);
        }
        if let Some(durability) = durability.filter(|v| !v.is_none()) {
            let value = arg(py, to_json(durability, Path::Arg("durability"), 0))?;
            options.insert("durability".into(), value);
        }
        if let Some(actor) = actor.filter(|v| !v.is_none()) {
            let value = arg(py, to_json(actor, Path::Arg("actor"), 0))?;
            options.insert("actor".into(), value);
        }
        let options = Value::Object(options);
        let store = py
            .detach(|| guarded(|| Store::open_with(&file, StoreOptions::from_value(options)?)))
            .map_err(|e| to_py_err(py, e))?;
        Ok(PyStore {
            store: Arc::new(store),
            // Shown by repr: a URL's password is hidden.
            path: agent_backlog::shown_location(&file.display().to_string()),
        })
    }

    /// The agent's backlog by priority, then creation order:
    /// {"agent_id", "tasks": [task, ...], "total"}. total ignores limit and offset.
    #[pyo3(signature = (agent_id, status = None, limit = None, offset = None))]
    fn list_tasks<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        status: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        offset: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let query = arg(
            py,
            body(&[("status", status), ("limit", limit), ("offset", offset)]),
        )?;
        let list = self.call(py, move |s| {
            s.list_tasks(&agent, ListQuery::from_value(query)?)
        })?;
        task_list(py, &list)
    }

    /// Adds a task (priority 1 highest .. 10 lowest, default 5) and returns it.
    /// depends_on lists tasks (of any agent) that must be complete before it is
    /// ready; idempotency_key makes a retry safe (a repeat returns the first task).
    #[pyo3(signature = (agent_id, title, description = None, priority = None, *, depends_on = None, idempotency_key = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_task<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        title: &Bound<'py, PyAny>,
        description: Option<&Bound<'py, PyAny>>,
        priority: Option<&Bound<'py, PyAny>>,
        depends_on: Option<&Bound<'py, PyAny>>,
        idempotency_key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let mut task = arg(
            py,
            body(&[
                ("description", description),
                ("priority", priority),
                ("depends_on", depends_on),
            ]),
        )?;
        let title = arg(py, to_json(title, Path::Arg("title"), 0))?;
        if let Value::Object(map) = &mut task {
            map.insert("title".into(), title);
        }
        let key = optional_text_arg(py, idempotency_key, "idempotency_key")?;
        let task = self.call(py, move |s| {
            let task = NewTask::from_value(task)?;
            match key {
                Some(key) => s
                    .create_task_idempotent(&agent, &key, task)
                    .map(|t| t.value),
                None => s.create_task(&agent, task),
            }
        })?;
        task_dict(py, &task)
    }

    /// Adds several tasks ({"title", "description"?, "priority"?, "depends_on"?}
    /// each; in depends_on an int names an earlier item) in one transaction: all of
    /// them, or on any error none. idempotency_key makes a retry safe.
    #[pyo3(signature = (agent_id, tasks, *, idempotency_key = None))]
    fn create_tasks<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        tasks: &Bound<'py, PyAny>,
        idempotency_key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let tasks = arg(py, to_json(tasks, Path::Arg("tasks"), 0))?;
        let key = optional_text_arg(py, idempotency_key, "idempotency_key")?;
        let list = self.call(py, move |s| {
            let tasks = NewTask::list_from_value(tasks)?;
            match key {
                Some(key) => s
                    .create_tasks_idempotent(&agent, &key, tasks)
                    .map(|t| t.value),
                None => s.create_tasks(&agent, tasks),
            }
        })?;
        task_list(py, &list)
    }

    /// Makes task_id wait for depends_on (a task of any agent): it is not ready until
    /// depends_on is complete. ConflictError when that would close a cycle.
    /// {"task_id", "depends_on": [task ids]}.
    fn add_dependency<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        task_id: &Bound<'py, PyAny>,
        depends_on: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (agent, id, dep) = edge_args(py, agent_id, task_id, depends_on)?;
        let deps = self.call(py, move |s| s.add_dependency(&agent, &id, &dep))?;
        dependencies_dict(py, &deps)
    }

    /// Stops task_id waiting for depends_on (nothing changes when it did not):
    /// {"task_id", "depends_on": [task ids]}.
    fn remove_dependency<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        task_id: &Bound<'py, PyAny>,
        depends_on: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (agent, id, dep) = edge_args(py, agent_id, task_id, depends_on)?;
        let deps = self.call(py, move |s| s.remove_dependency(&agent, &id, &dep))?;
        dependencies_dict(py, &deps)
    }

    /// Whether the task is ready, what it depends on and what depends on it:
    /// {"task_id", "ready", "depends_on": [...], "dependents": [...]}, each item
    /// {"agent_id", "id", "status"}.
    fn get_dependencies<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        task_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let id = arg(py, text_arg(task_id, "task_id"))?;
        let graph = self.call(py, move |s| s.get_dependencies(&agent, &id))?;
        let refs = |refs: &[TaskRef]| -> PyResult<Bound<'py, PyList>> {
            let items = refs
                .iter()
                .map(|r| {
                    let dict = PyDict::new(py);
                    dict.set_item(intern!(py, "agent_id"), &r.agent_id)?;
                    dict.set_item(intern!(py, "id"), &r.id)?;
                    dict.set_item(intern!(py, "status"), r.status.as_str())?;
                    Ok(dict)
                })
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)
        };
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "task_id"), &graph.task_id)?;
        dict.set_item(intern!(py, "ready"), graph.ready)?;
        dict.set_item(intern!(py, "depends_on"), refs(&graph.depends_on)?)?;
        dict.set_item(intern!(py, "dependents"), refs(&graph.dependents)?)?;
        Ok(dict)
    }

    /// The agent's ready tasks (queued, every dependency complete) in the order claims
    /// take them: {"agent_id", "tasks": [task, ...], "total"}.
    #[pyo3(signature = (agent_id, *, limit = None, offset = None))]
    fn ready_tasks<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        limit: Option<&Bound<'py, PyAny>>,
        offset: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let page = arg(py, body(&[("limit", limit), ("offset", offset)]))?;
        let list = self.call(py, move |s| s.ready_tasks(&agent, Page::from_value(page)?))?;
        task_list(py, &list)
    }

    /// One task of the agent's backlog; NotFoundError when it is not there.
    fn get_task<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        task_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let id = arg(py, text_arg(task_id, "task_id"))?;
        let task = self.call(py, move |s| s.get_task(&agent, &id))?;
        task_dict(py, &task)
    }

    /// Changes the fields given (status, priority, title, description, blocker,
    /// result); an absent field is unchanged, None clears description, blocker or
    /// result. A status change follows the lifecycle table.
    #[pyo3(signature = (agent_id, task_id, **fields))]
    fn update_task<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        task_id: &Bound<'py, PyAny>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let id = arg(py, text_arg(task_id, "task_id"))?;
        let patch = match fields {
            Some(fields) => arg(py, dict_to_json(fields, Path::Keywords, 0))?,
            None => Value::Object(Map::new()),
        };
        let task = self.call(py, move |s| {
            s.update_task(&agent, &id, TaskPatch::from_value(patch)?)
        })?;
        task_dict(py, &task)
    }

    /// Deletes the task for good: {"deleted": task_id}. Its number is never reused.
    fn delete_task<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        task_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let id = arg(py, text_arg(task_id, "task_id"))?;
        let deleted = self.call(py, move |s| s.delete_task(&agent, &id))?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "deleted"), deleted.deleted)?;
        Ok(dict)
    }

    /// Tasks across all agents: {"tasks": [{"agent_id", ...task}, ...], "total"}.
    #[pyo3(signature = (status = None, priority = None, agent_id = None, limit = None, offset = None))]
    fn query_tasks<'py>(
        &self,
        py: Python<'py>,
        status: Option<&Bound<'py, PyAny>>,
        priority: Option<&Bound<'py, PyAny>>,
        agent_id: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        offset: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let query = arg(
            py,
            body(&[
                ("status", status),
                ("priority", priority),
                ("agent_id", agent_id),
                ("limit", limit),
                ("offset", offset),
            ]),
        )?;
        let result = self.call(py, move |s| s.query_tasks(TaskQuery::from_value(query)?))?;
        let tasks = result
            .tasks
            .iter()
            .map(|t| agent_task_dict(py, t))
            .collect::<PyResult<Vec<_>>>()?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "tasks"), PyList::new(py, tasks)?)?;
        dict.set_item(intern!(py, "total"), result.total)?;
        Ok(dict)
    }

    /// {"queued", "in_progress", "complete", "blocked", "total"}: counts by status.
    fn summary<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let summary = self.call(py, move |s| s.summary(&agent))?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "queued"), summary.queued)?;
        dict.set_item(intern!(py, "in_progress"), summary.in_progress)?;
        dict.set_item(intern!(py, "complete"), summary.complete)?;
        dict.set_item(intern!(py, "blocked"), summary.blocked)?;
        dict.set_item(intern!(py, "total"), summary.total)?;
        Ok(dict)
    }

    /// Atomically moves the agent's first ready task (queued, every dependency
    /// complete) to in_progress and returns it; None when nothing is ready. Two
    /// claimers never get the same task.
    fn claim_next<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let task = self.call(py, move |s| s.claim_next(&agent))?;
        task.map(|t| task_dict(py, &t)).transpose()
    }

    /// Fixes the prefix of the agent's task IDs before its first task:
    /// {"agent_id", "prefix"}.
    fn set_prefix<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        prefix: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let prefix = arg(py, text_arg(prefix, "prefix"))?;
        let set = self.call(py, move |s| s.set_prefix(&agent, &prefix))?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "agent_id"), set.agent_id)?;
        dict.set_item(intern!(py, "prefix"), set.prefix)?;
        Ok(dict)
    }

    /// Claims the agent's most urgent ready task with a lease for `worker`:
    /// {"task": Task, "lease": Lease}, or None when nothing is ready. Renew the lease
    /// before it expires (renew_lease), or the task goes back to the queue.
    #[pyo3(signature = (agent_id, worker, *, lease_seconds = None, max_attempts = None))]
    #[pyo3(text_signature = "(self, agent_id, worker, *, lease_seconds=600, max_attempts=3)")]
    fn claim_lease<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        worker: &Bound<'py, PyAny>,
        lease_seconds: Option<&Bound<'py, PyAny>>,
        max_attempts: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let worker = arg(py, text_arg(worker, "worker"))?;
        let terms = arg(py, terms_of(lease_seconds, max_attempts))?;
        let claim = self.call(py, move |s| {
            s.claim_lease(&agent, &worker, LeaseTerms::from_value(terms)?)
        })?;
        claim_dict(py, claim.as_ref())
    }

    /// Extends the lease to now + lease_seconds (default: its own duration) and
    /// returns it; LeaseLostError when the token no longer holds the task.
    #[pyo3(signature = (token, *, lease_seconds = None))]
    fn renew_lease<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
        lease_seconds: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let token = arg(py, text_arg(token, "token"))?;
        let terms = arg(py, terms_of(lease_seconds, None))?;
        let lease = self.call(py, move |s| {
            s.renew_lease(&token, LeaseTerms::from_value(terms)?.lease_seconds)
        })?;
        Ok(lease_dict(py, &lease)?.into_any())
    }

    /// Ends the lease by moving its task to "complete" (with a result), "queued"
    /// (released) or "blocked" (with a blocker); returns the task.
    #[pyo3(signature = (token, status, *, result = None, blocker = None))]
    fn finish_lease<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
        status: &Bound<'py, PyAny>,
        result: Option<&Bound<'py, PyAny>>,
        blocker: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let token = arg(py, text_arg(token, "token"))?;
        let finish = arg(py, finish_of(status, result, blocker))?;
        let task = self.call(py, move |s| {
            s.finish_lease(&token, Finish::from_value(finish)?)
        })?;
        Ok(task_dict(py, &task)?.into_any())
    }

    /// finish_lease, then claim_lease for the same agent and worker, in one
    /// transaction: {"finished": Task, "next": {"task", "lease"} or None}.
    #[pyo3(signature = (token, status, *, result = None, blocker = None, lease_seconds = None, max_attempts = None))]
    #[pyo3(
        text_signature = "(self, token, status, *, result=None, blocker=None, lease_seconds=600, max_attempts=3)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn finish_and_claim<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
        status: &Bound<'py, PyAny>,
        result: Option<&Bound<'py, PyAny>>,
        blocker: Option<&Bound<'py, PyAny>>,
        lease_seconds: Option<&Bound<'py, PyAny>>,
        max_attempts: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let token = arg(py, text_arg(token, "token"))?;
        let finish = arg(py, finish_of(status, result, blocker))?;
        let terms = arg(py, terms_of(lease_seconds, max_attempts))?;
        let finished = self.call(py, move |s| {
            s.finish_and_claim(
                &token,
                Finish::from_value(finish)?,
                LeaseTerms::from_value(terms)?,
            )
        })?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "finished"), task_dict(py, &finished.finished)?)?;
        dict.set_item(intern!(py, "next"), claim_dict(py, finished.next.as_ref())?)?;
        Ok(dict.into_any())
    }

    /// The task's current lease, or None when it holds none.
    fn get_lease<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        task_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let id = arg(py, text_arg(task_id, "task_id"))?;
        match self.call(py, move |s| s.get_lease(&agent, &id))? {
            Some(lease) => Ok(lease_dict(py, &lease)?.into_any()),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// Ends the expired leases of the agent (of every agent when None):
    /// {"requeued": [task ids], "blocked": [task ids]}.
    #[pyo3(signature = (agent_id = None))]
    fn reap_expired<'py>(
        &self,
        py: Python<'py>,
        agent_id: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let agent = agent_id
            .filter(|a| !a.is_none())
            .map(|a| arg(py, text_arg(a, "agent_id")))
            .transpose()?;
        let reaped = self.call(py, move |s| s.reap_expired(agent.as_deref()))?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "requeued"), reaped.requeued)?;
        dict.set_item(intern!(py, "blocked"), reaped.blocked)?;
        Ok(dict.into_any())
    }

    /// claim_lease, waiting up to timeout_seconds (0 to 300) for a task to become
    /// ready; None when the timeout passes. The GIL is released while it waits, and
    /// Ctrl-C interrupts it (KeyboardInterrupt) within about 50 ms.
    #[pyo3(signature = (agent_id, worker, timeout_seconds, *, lease_seconds = None, max_attempts = None, _waiter = None))]
    #[pyo3(
        text_signature = "(self, agent_id, worker, timeout_seconds, *, lease_seconds=600, max_attempts=3)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn wait_for_task<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        worker: &Bound<'py, PyAny>,
        timeout_seconds: &Bound<'py, PyAny>,
        lease_seconds: Option<&Bound<'py, PyAny>>,
        max_attempts: Option<&Bound<'py, PyAny>>,
        _waiter: Option<Bound<'py, PyWaiter>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = arg(
            py,
            body(&[
                ("agent_id", Some(agent_id)),
                ("worker", Some(worker)),
                ("timeout_seconds", Some(timeout_seconds)),
                ("lease_seconds", lease_seconds),
                ("max_attempts", max_attempts),
            ]),
        )?;
        // Stopped by a signal or its waiter, the wait claimed nothing (it stops only
        // between looks).
        let waiter = _waiter.map(|w| w.get().cancel.clone());
        let claimed = self.call_interruptible(py, move |s, signals| {
            let w = WaitRequest::from_value(request)?;
            in_scope(waiter.as_ref(), || {
                let mut stop = stop_hook(waiter.as_ref(), signals);
                s.wait_for_task_until(&w.agent_id, &w.worker, w.timeout, w.terms, &mut stop)
            })
        })?;
        claim_dict(py, claimed.as_ref())
    }

    /// The task's events, oldest first: {"task_id", "events": [...]}. They outlive the
    /// task; NotFoundError only when the task never had events (never existed).
    fn task_history<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
        task_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let agent = arg(py, text_arg(agent_id, "agent_id"))?;
        let id = arg(py, text_arg(task_id, "task_id"))?;
        let history = self.call(py, move |s| s.task_history(&agent, &id))?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "task_id"), &history.task_id)?;
        dict.set_item(intern!(py, "events"), events_list(py, &history.events)?)?;
        Ok(dict)
    }

    /// A page of the change feed: {"events": [...], "next": seq}, the events with a
    /// seq above `after`, oldest first; pass `next` as `after` to read on. With
    /// `wait_seconds` it waits (GIL released, Ctrl-C works) for the next change when
    /// there is no event yet.
    #[pyo3(signature = (*, after = None, limit = None, agent_id = None, wait_seconds = None, _waiter = None))]
    #[pyo3(text_signature = "(self, *, after=0, limit=100, agent_id=None, wait_seconds=0)")]
    fn events<'py>(
        &self,
        py: Python<'py>,
        after: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        agent_id: Option<&Bound<'py, PyAny>>,
        wait_seconds: Option<&Bound<'py, PyAny>>,
        _waiter: Option<Bound<'py, PyWaiter>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let query = arg(
            py,
            body(&[
                ("after", after),
                ("limit", limit),
                ("agent_id", agent_id),
                ("wait_seconds", wait_seconds),
            ]),
        )?;
        let waiter = _waiter.map(|w| w.get().cancel.clone());
        let page = self.call_interruptible(py, move |s, signals| {
            let query = EventQuery::from_value(query)?;
            in_scope(waiter.as_ref(), || {
                let mut stop = stop_hook(waiter.as_ref(), signals);
                s.events_until(query, &mut stop)
            })
        })?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "events"), events_list(py, &page.events)?)?;
        dict.set_item(intern!(py, "next"), page.next)?;
        Ok(dict)
    }

    /// Deletes the events with a seq below `before` (the newest event is always
    /// kept): {"pruned": N}.
    fn prune_events<'py>(
        &self,
        py: Python<'py>,
        before: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let before = arg(py, to_json(before, Path::Arg("before"), 0))?;
        let pruned = self.call(py, move |s| {
            s.prune_events(agent_backlog::seq_from_value("before", before)?)
        })?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "pruned"), pruned.pruned)?;
        Ok(dict)
    }

    /// The agents by agent_id with their prefix and counts:
    /// {"agents": [{"agent_id", "prefix", "queued", "in_progress", "complete",
    /// "blocked", "total"}], "total"}.
    #[pyo3(signature = (*, limit = None, offset = None))]
    fn list_agents<'py>(
        &self,
        py: Python<'py>,
        limit: Option<&Bound<'py, PyAny>>,
        offset: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let page = arg(py, body(&[("limit", limit), ("offset", offset)]))?;
        let list = self.call(py, move |s| s.list_agents(Page::from_value(page)?))?;
        let agents = list
            .agents
            .iter()
            .map(|a| {
                let dict = PyDict::new(py);
                dict.set_item(intern!(py, "agent_id"), &a.agent_id)?;
                dict.set_item(intern!(py, "prefix"), &a.prefix)?;
                dict.set_item(intern!(py, "queued"), a.queued)?;
                dict.set_item(intern!(py, "in_progress"), a.in_progress)?;
                dict.set_item(intern!(py, "complete"), a.complete)?;
                dict.set_item(intern!(py, "blocked"), a.blocked)?;
                dict.set_item(intern!(py, "total"), a.total)?;
                Ok(dict)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let dict = PyDict::new(py);
        dict.set_item(intern!(py, "agents"), PyList::new(py, agents)?)?;
        dict.set_item(intern!(py, "total"), list.total)?;
        Ok(dict)
    }

    /// Closes the store; later calls raise StorageError. Closing twice is fine.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.call(py, |s| s.close())
    }

    /// Returns the store itself: `with Store(path) as store: ...`.
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Closes the store at the end of the `with` block; never suppresses an exception.
    #[pyo3(signature = (exc_type, exc_value, traceback))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        exc_value: &Bound<'_, PyAny>,
        traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let _ = (exc_type, exc_value, traceback);
        self.close(py)?;
        Ok(false)
    }

    /// Calls the tool `name` (SPEC §15) with its flat `arguments` (a dict) and returns
    /// its structured result: the operation's JSON (`{"result": ...}` around one that is
    /// not an object, such as a `null` claim), or the error object
    /// `{"error": {"code", "message"}}`. Never raises a BacklogError; a wait is
    /// interruptible. `agent_backlog.tools.call` is the public form.
    #[pyo3(name = "_call_tool", signature = (name, arguments, *, agent_id = None, _waiter = None))]
    fn call_tool<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        arguments: &Bound<'py, PyAny>,
        agent_id: Option<&str>,
        _waiter: Option<Bound<'py, PyWaiter>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let waiter = _waiter.map(|w| w.get().cancel.clone());
        let prepared = Toolbox::new("all", agent_id).and_then(|toolbox| {
            let arguments = to_json(arguments, Path::Keywords, 0)?;
            Ok((toolbox, arguments))
        });
        let outcome = match prepared {
            Ok((toolbox, arguments)) => self
                .run_interruptible(py, move |store, signals| {
                    Ok(in_scope(waiter.as_ref(), || {
                        let mut stop = stop_hook(waiter.as_ref(), signals);
                        toolbox.call_until(store, name, arguments, &mut stop)
                    }))
                })?
                .unwrap_or_else(|err| Outcome {
                    content: err.to_json(),
                    is_error: true,
                }),
            Err(err) => Outcome {
                content: err.to_json(),
                is_error: true,
            },
        };
        value_to_py(py, &outcome.content)
    }

    /// Calls the method `name` with `args` and `kwargs` such that it never waits
    /// (`Store::try_without_waiting`): where it would wait — for a lock, this
    /// store's writer, a free read connection, the disk of a FULL-durability commit,
    /// or work to arrive — it gives up having done nothing and raises WouldWait.
    /// Otherwise it returns (or raises) what the method does.
    #[pyo3(name = "_now", signature = (name, args, kwargs = None))]
    fn now<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut raised: Option<PyErr> = None;
        let outcome = slf.get().store.try_without_waiting(|_| {
            slf.call_method(name, args, kwargs).map_err(|err| {
                raised = Some(err);
                Error::Internal(String::new())
            })
        });
        match (outcome, raised) {
            (None, _) => Err(WouldWait::new_err(name.to_string())),
            (Some(Ok(value)), _) => Ok(value),
            (Some(Err(_)), Some(err)) => Err(err),
            (Some(Err(err)), None) => Err(to_py_err(slf.py(), err)),
        }
    }

    /// A new Waiter, to end one wait of this store from another thread.
    #[pyo3(name = "_waiter")]
    fn waiter(&self) -> PyWaiter {
        PyWaiter {
            cancel: self.store.wait_cancel(),
        }
    }

    /// Undoes a leased claim that never reached its worker: the task is queued
    /// again, the claim's attempt not counted (`Store::return_lease`).
    #[pyo3(name = "_return_lease")]
    fn return_lease<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let token = arg(py, text_arg(token, "token"))?;
        let task = self.call(py, move |s| s.return_lease(&token))?;
        task_dict(py, &task)
    }

    /// `<agent_backlog.Store path="backlogs.db">`.
    fn __repr__(&self) -> String {
        format!("<{PACKAGE}.Store path={:?}>", self.path)
    }
}

/// The tools of SPEC §15 for frameworks that take plain functions: a list of
/// `{"name", "description", "parameters", "output_schema", "annotations"}`, where
/// `parameters` is the strict JSON Schema of the arguments (every property required,
/// the optional ones nullable) and `annotations` the MCP hints. `tools` is "core",
/// "all" or names separated by commas; `agent_id` binds them to one backlog.
#[pyfunction]
#[pyo3(signature = (tools = "all", *, agent_id = None))]
fn tool_definitions<'py>(
    py: Python<'py>,
    tools: &str,
    agent_id: Option<&str>,
) -> PyResult<Bound<'py, PyList>> {
    let toolbox = arg(py, Toolbox::new(tools, agent_id))?;
    let list = PyList::empty(py);
    for tool in toolbox.tools() {
        let definition = serde_json::json!({
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.strict_input_schema(),
            "output_schema": tool.output_schema,
            "annotations": tool.annotations.to_json(),
        });
        list.append(value_to_py(py, &definition)?)?;
    }
    Ok(list)
}

/// agent-backlog: a prioritized task backlog for every AI agent, in one SQLite file.
/// Import the `agent_backlog` package rather than this module.
#[pymodule(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyStore>()?;
    m.add_class::<PyWaiter>()?;
    m.add("WouldWait", py.get_type::<WouldWait>())?;
    m.add_function(wrap_pyfunction!(tool_definitions, m)?)?;
    let base = py.get_type::<BacklogError>();
    base.setattr("code", ErrorCode::Internal.as_str())?;
    m.add("BacklogError", base)?;
    let types = exception_types(py)?;
    m.add("ValidationError", types.invalid_argument.bind(py))?;
    m.add("NotFoundError", types.not_found.bind(py))?;
    m.add("TransitionError", types.invalid_transition.bind(py))?;
    m.add("ConflictError", types.conflict.bind(py))?;
    m.add("StorageError", types.storage.bind(py))?;
    m.add("InternalError", types.internal.bind(py))?;
    m.add("LeaseLostError", types.lease_lost.bind(py))?;
    m.add("__version__", agent_backlog::VERSION)?;
    Ok(())
}
