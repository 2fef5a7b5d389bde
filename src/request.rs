//! Strict parsing of request bodies (JSON text or `serde_json::Value`) into the
//! typed requests, shared by the C ABI, the Python module and the server.
//!
//! Strict means: the body must be a JSON object, every key is known, no key appears
//! twice, and every value has the right JSON type (a priority of `3.0`, `"3"` or
//! `true` is refused). Range and length rules are checked by the operations
//! themselves (see `validate`), so typed requests built in Rust get the same checks.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

use crate::error::{Error, Result};
use crate::history::EventQuery;
use crate::lease::{Finish, LeaseTerms};
use crate::model::{ListQuery, NewTask, Status, TaskPatch, TaskQuery};
use crate::options::{Durability, StoreOptions};
use crate::plan::{DependsOn, Page};
use crate::validate::{MAX_BATCH_TASKS, MAX_DEPENDS_ON};

/// Largest JSON body accepted for one task, a patch or a query, in bytes. Checked
/// before parsing. It leaves room for a 1,048,576-character result written with
/// `\uXXXX` escapes.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Largest JSON body accepted for a `create_tasks` batch, in bytes.
pub const MAX_BATCH_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A JSON object kept as its key/value pairs, refusing duplicate keys.
struct StrictObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictObject, A::Error> {
                let mut pairs: Vec<(String, Value)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if pairs.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format_args!(
                            "the key {key:?} appears twice; give each field once"
                        )));
                    }
                    let value = map.next_value::<Value>()?;
                    pairs.push((key, value));
                }
                Ok(StrictObject(pairs))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Any JSON value, refusing duplicate keys in every object at any depth.
pub(crate) struct StrictValue(pub(crate) Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = StrictValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
                let mut items = Vec::new();
                while let Some(StrictValue(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(StrictValue(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if object.contains_key(&key) {
                        return Err(de::Error::custom(format_args!(
                            "the key {key:?} appears twice; give each field once"
                        )));
                    }
                    let StrictValue(value) = map.next_value()?;
                    object.insert(key, value);
                }
                Ok(StrictValue(Value::Object(object)))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// A JSON array of strict objects.
struct StrictArray(Vec<StrictObject>);

impl<'de> Deserialize<'de> for StrictArray {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArrayVisitor;
        impl<'de> Visitor<'de> for ArrayVisitor {
            type Value = StrictArray;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON array of task objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictArray, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<StrictObject>()? {
                    if items.len() == MAX_BATCH_TASKS {
                        return Err(de::Error::custom(format_args!(
                            "a batch holds at most {MAX_BATCH_TASKS} tasks; split it into several calls"
                        )));
                    }
                    items.push(item);
                }
                Ok(StrictArray(items))
            }
        }
        deserializer.deserialize_seq(ArrayVisitor)
    }
}

pub(crate) fn check_size(text: &str, max: usize, what: &str) -> Result<()> {
    if text.len() > max {
        return Err(Error::invalid(format!(
            "{what} is {} bytes; the limit is {max} bytes",
            text.len()
        )));
    }
    Ok(())
}

fn parse_object(text: &str, what: &str, example: &str) -> Result<Fields> {
    check_size(text, MAX_BODY_BYTES, what)?;
    serde_json::from_str::<StrictObject>(text)
        .map(|o| Fields(o.0))
        .map_err(|e| {
            Error::invalid(format!(
                "{what} must be a JSON object such as {example}: {e}"
            ))
        })
}

/// Describes a JSON value for a message: its type and, when short, the value itself.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {}", crate::validate::shown(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The fields of a request object, checked against the allowed names.
pub(crate) struct Fields(Vec<(String, Value)>);

impl Fields {
    pub(crate) fn from_value(value: Value, what: &str) -> Result<Fields> {
        match value {
            Value::Object(map) => Ok(Fields(map.into_iter().collect())),
            other => Err(Error::invalid(format!(
                "{what} must be a JSON object, got {}",
                describe(&other)
            ))),
        }
    }

    pub(crate) fn only(&self, allowed: &[&str]) -> Result<()> {
        match self.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(Error::invalid(format!(
                "unknown field {:?}; the allowed fields are {}",
                k,
                allowed.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// The fields not taken yet, as a JSON object.
    pub(crate) fn into_map(self) -> serde_json::Map<String, Value> {
        self.0.into_iter().collect()
    }

    pub(crate) fn take(&mut self, name: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.swap_remove(i).1)
    }
}

pub(crate) fn string(field: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(Error::invalid(format!(
            "{field} must be a string, got {}",
            describe(&other)
        ))),
    }
}

/// Absent → `None`; `null` → `Some(None)`; a string → `Some(Some(s))`.
fn nullable_string(field: &str, value: Option<Value>) -> Result<Option<Option<String>>> {
    match value {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => string(field, v).map(|s| Some(Some(s))),
    }
}

/// A seq given as JSON (`before` of `prune_events`): an integer, strictly (not `3.0`,
/// `"3"` or `true`); its range is checked by the operation.
///
/// ```
/// use agent_backlog::seq_from_value;
/// assert_eq!(seq_from_value("before", serde_json::json!(1042))?, 1042);
/// assert!(seq_from_value("before", serde_json::json!(true)).is_err());
/// # Ok::<(), agent_backlog::Error>(())
/// ```
pub fn seq_from_value(field: &str, value: Value) -> Result<i64> {
    integer(field, value, COUNT_RANGE)
}

fn integer(field: &str, value: Value, range: &str) -> Result<i64> {
    match &value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            // An integer too large for i64 is out of range; a float is the wrong type.
            Err(Error::invalid(format!(
                "{field} must be an integer {range}, got {n}"
            )))
        }
        other => Err(Error::invalid(format!(
            "{field} must be an integer {range}, got {}",
            describe(other)
        ))),
    }
}

const PRIORITY_RANGE: &str = "from 1 to 10";
const COUNT_RANGE: &str = "of 0 or more";

fn not_null(field: &str, value: Option<Value>, rule: &str) -> Result<Option<Value>> {
    match value {
        Some(Value::Null) => Err(Error::invalid(format!(
            "{field} cannot be null; {rule}, or leave the field out"
        ))),
        v => Ok(v),
    }
}

/// `null` is the same as an absent filter.
fn filter(value: Option<Value>) -> Option<Value> {
    value.filter(|v| !v.is_null())
}

fn status(value: Value) -> Result<Status> {
    string("status", value)?.parse()
}

impl NewTask {
    /// Parses a create body, strictly: `{"title", "description"?, "priority"?}`.
    ///
    /// Unknown fields, duplicate keys and wrong JSON types are `invalid_argument`.
    /// `null` for `description` or `priority` is the same as leaving it out.
    pub fn from_json(text: &str) -> Result<NewTask> {
        parse_object(text, "the task", r#"{"title": "Write 3 LinkedIn posts"}"#)
            .and_then(NewTask::from_fields)
    }

    /// Parses a create body already decoded as a JSON value (see [`NewTask::from_json`]).
    pub fn from_value(value: Value) -> Result<NewTask> {
        NewTask::from_fields(Fields::from_value(value, "the task")?)
    }

    /// Parses a batch body for `create_tasks`: a JSON array of create bodies.
    pub fn list_from_json(text: &str) -> Result<Vec<NewTask>> {
        check_size(text, MAX_BATCH_BODY_BYTES, "the task list")?;
        let array = serde_json::from_str::<StrictArray>(text).map_err(|e| {
            Error::invalid(format!(
                r#"the task list must be a JSON array of objects such as [{{"title": "Write posts"}}]: {e}"#
            ))
        })?;
        array
            .0
            .into_iter()
            .enumerate()
            .map(|(i, o)| NewTask::from_fields(Fields(o.0)).map_err(|e| in_batch(i, e)))
            .collect()
    }

    /// Parses a batch already decoded as a JSON value (see [`NewTask::list_from_json`]).
    pub fn list_from_value(value: Value) -> Result<Vec<NewTask>> {
        match value {
            Value::Array(items) => {
                if items.len() > MAX_BATCH_TASKS {
                    return Err(Error::invalid(format!(
                        "a batch holds at most {MAX_BATCH_TASKS} tasks, got {}; split it into several calls",
                        items.len()
                    )));
                }
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| NewTask::from_value(v).map_err(|e| in_batch(i, e)))
                    .collect()
            }
            other => Err(Error::invalid(format!(
                "the task list must be an array of task objects, got {}",
                describe(&other)
            ))),
        }
    }

    fn from_fields(mut f: Fields) -> Result<NewTask> {
        f.only(&["title", "description", "priority", "depends_on"])?;
        let title = match f.take("title") {
            Some(v) => string("title", v)?,
            None => {
                return Err(Error::invalid(
                    "title is required: give a string of 1 to 500 characters",
                ))
            }
        };
        let description = nullable_string("description", f.take("description"))?.flatten();
        let priority = filter(f.take("priority"))
            .map(|v| integer("priority", v, PRIORITY_RANGE))
            .transpose()?;
        let depends_on = match filter(f.take("depends_on")) {
            None => Vec::new(),
            Some(v) => depends_on(v)?,
        };
        Ok(NewTask {
            title,
            description,
            priority,
            depends_on,
        })
    }
}

/// `depends_on` of a create body: a list of task IDs, and (in a batch) indices of
/// earlier items. Its values are checked by the rules; here only the JSON types.
fn depends_on(value: Value) -> Result<Vec<DependsOn>> {
    const WHAT: &str =
        "a task ID such as \"MKT-001\", or in create_tasks the index of an earlier item such as 0";
    let Value::Array(items) = value else {
        return Err(Error::invalid(format!(
            "depends_on must be a list of task IDs such as [\"MKT-001\"], got {}",
            describe(&value)
        )));
    };
    if items.len() > MAX_DEPENDS_ON {
        return Err(Error::invalid(format!(
            "depends_on lists at most {MAX_DEPENDS_ON} tasks, got {}",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(id) => Ok(DependsOn::Task(id)),
            Value::Number(n) if n.as_u64().is_some() => {
                let index = n.as_u64().unwrap_or_default();
                Ok(DependsOn::Item(
                    usize::try_from(index).unwrap_or(usize::MAX),
                ))
            }
            other => Err(Error::invalid(format!(
                "depends_on[{i}] must be {WHAT}, got {}",
                describe(&other)
            ))),
        })
        .collect()
}

/// Prefixes a batch item's error with its position.
pub(crate) fn in_batch(index: usize, err: Error) -> Error {
    match err {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("tasks[{index}]: {m}")),
        other => other,
    }
}

impl TaskPatch {
    /// Parses an update body, strictly:
    /// `{"status"?, "priority"?, "title"?, "description"?, "blocker"?, "result"?}`.
    ///
    /// An absent field is unchanged; `null` clears `description`, `blocker` or `result`
    /// and is `invalid_argument` for the others.
    pub fn from_json(text: &str) -> Result<TaskPatch> {
        parse_object(text, "the patch", r#"{"status": "complete"}"#)
            .and_then(TaskPatch::from_fields)
    }

    /// Parses an update body already decoded as a JSON value (see [`TaskPatch::from_json`]).
    pub fn from_value(value: Value) -> Result<TaskPatch> {
        TaskPatch::from_fields(Fields::from_value(value, "the patch")?)
    }

    fn from_fields(mut f: Fields) -> Result<TaskPatch> {
        f.only(&[
            "status",
            "priority",
            "title",
            "description",
            "blocker",
            "result",
        ])?;
        let status = not_null(
            "status",
            f.take("status"),
            "give one of queued, in_progress, complete, blocked",
        )?
        .map(status)
        .transpose()?;
        let priority = not_null(
            "priority",
            f.take("priority"),
            "give an integer from 1 to 10",
        )?
        .map(|v| integer("priority", v, PRIORITY_RANGE))
        .transpose()?;
        let title = not_null(
            "title",
            f.take("title"),
            "give a string of 1 to 500 characters",
        )?
        .map(|v| string("title", v))
        .transpose()?;
        Ok(TaskPatch {
            status,
            priority,
            title,
            description: nullable_string("description", f.take("description"))?,
            blocker: nullable_string("blocker", f.take("blocker"))?,
            result: nullable_string("result", f.take("result"))?,
        })
    }
}

impl ListQuery {
    /// Parses a list filter, strictly: `{"status"?, "limit"?, "offset"?}`;
    /// `null` is the same as leaving a field out.
    pub fn from_json(text: &str) -> Result<ListQuery> {
        parse_object(
            text,
            "the list query",
            r#"{"status": "queued", "limit": 50}"#,
        )
        .and_then(ListQuery::from_fields)
    }

    /// Parses a list filter already decoded as a JSON value (see [`ListQuery::from_json`]).
    pub fn from_value(value: Value) -> Result<ListQuery> {
        ListQuery::from_fields(Fields::from_value(value, "the list query")?)
    }

    fn from_fields(mut f: Fields) -> Result<ListQuery> {
        f.only(&["status", "limit", "offset"])?;
        Ok(ListQuery {
            status: filter(f.take("status")).map(status).transpose()?,
            limit: count(&mut f, "limit")?,
            offset: count(&mut f, "offset")?,
        })
    }
}

fn count(f: &mut Fields, field: &str) -> Result<Option<i64>> {
    filter(f.take(field))
        .map(|v| integer(field, v, COUNT_RANGE))
        .transpose()
}

impl EventQuery {
    /// Parses an events query, strictly: `{"after"?, "limit"?, "agent_id"?,
    /// "wait_seconds"?}`; `null` is the same as absent.
    pub fn from_json(text: &str) -> Result<EventQuery> {
        parse_object(text, "the events query", r#"{"after": 0, "limit": 100}"#)
            .and_then(EventQuery::from_fields)
    }

    /// Parses an events query already decoded as a JSON value (see
    /// [`EventQuery::from_json`]).
    pub fn from_value(value: Value) -> Result<EventQuery> {
        EventQuery::from_fields(Fields::from_value(value, "the events query")?)
    }

    fn from_fields(mut f: Fields) -> Result<EventQuery> {
        f.only(&["after", "limit", "agent_id", "wait_seconds"])?;
        let after = filter(f.take("after"))
            .map(|v| integer("after", v, COUNT_RANGE))
            .transpose()?;
        let limit = filter(f.take("limit"))
            .map(|v| integer("limit", v, "from 1 to 1000"))
            .transpose()?;
        let agent_id = filter(f.take("agent_id"))
            .map(|v| string("agent_id", v))
            .transpose()?;
        let wait_seconds = filter(f.take("wait_seconds"))
            .map(|v| number("wait_seconds", v, "from 0 to 60"))
            .transpose()?;
        Ok(EventQuery {
            after,
            limit,
            agent_id,
            wait_seconds,
        })
    }
}

impl Page {
    /// Parses a page, strictly: `{"limit"?, "offset"?}`; `null` is the same as absent.
    pub fn from_json(text: &str) -> Result<Page> {
        parse_object(text, "the page", r#"{"limit": 50, "offset": 0}"#).and_then(Page::from_fields)
    }

    /// Parses a page already decoded as a JSON value (see [`Page::from_json`]).
    pub fn from_value(value: Value) -> Result<Page> {
        Page::from_fields(Fields::from_value(value, "the page")?)
    }

    fn from_fields(mut f: Fields) -> Result<Page> {
        f.only(&["limit", "offset"])?;
        Ok(Page {
            limit: count(&mut f, "limit")?,
            offset: count(&mut f, "offset")?,
        })
    }
}

impl TaskQuery {
    /// Parses a cross-agent filter, strictly:
    /// `{"status"?, "priority"?, "agent_id"?, "limit"?, "offset"?}`;
    /// `null` is the same as leaving a field out.
    pub fn from_json(text: &str) -> Result<TaskQuery> {
        parse_object(text, "the query", r#"{"status": "queued", "priority": 2}"#)
            .and_then(TaskQuery::from_fields)
    }

    /// Parses a cross-agent filter already decoded as a JSON value (see [`TaskQuery::from_json`]).
    pub fn from_value(value: Value) -> Result<TaskQuery> {
        TaskQuery::from_fields(Fields::from_value(value, "the query")?)
    }

    fn from_fields(mut f: Fields) -> Result<TaskQuery> {
        f.only(&["status", "priority", "agent_id", "limit", "offset"])?;
        Ok(TaskQuery {
            status: filter(f.take("status")).map(status).transpose()?,
            priority: filter(f.take("priority"))
                .map(|v| integer("priority", v, PRIORITY_RANGE))
                .transpose()?,
            agent_id: filter(f.take("agent_id"))
                .map(|v| string("agent_id", v))
                .transpose()?,
            limit: count(&mut f, "limit")?,
            offset: count(&mut f, "offset")?,
        })
    }
}

impl Finish {
    /// Parses a finish body, strictly: `{"status", "result"?, "blocker"?}`, where
    /// status is `complete`, `queued` or `blocked`. `null` for `result` or `blocker`
    /// is the same as leaving it out.
    pub fn from_json(text: &str) -> Result<Finish> {
        parse_object(
            text,
            "the finish",
            r#"{"status": "complete", "result": "done"}"#,
        )
        .and_then(|mut f| {
            f.only(&["status", "result", "blocker"])?;
            Finish::take_from(&mut f)
        })
    }

    /// Parses a finish body already decoded as a JSON value (see [`Finish::from_json`]).
    pub fn from_value(value: Value) -> Result<Finish> {
        let mut f = Fields::from_value(value, "the finish")?;
        f.only(&["status", "result", "blocker"])?;
        Finish::take_from(&mut f)
    }

    /// Takes `status`, `result` and `blocker` out of a request's fields.
    pub(crate) fn take_from(f: &mut Fields) -> Result<Finish> {
        let status = match f.take("status") {
            None | Some(Value::Null) => {
                return Err(Error::invalid(
                    "status is required: give complete, queued (to release the task) or blocked (with a blocker)",
                ))
            }
            Some(Value::String(s)) if s.parse::<Status>().is_err() => {
                return Err(Error::invalid(format!(
                    "status of a finish must be complete, queued (to release the task) or blocked (with a blocker), got {s:?}"
                )))
            }
            Some(v) => status(v)?,
        };
        let text = |f: &mut Fields, name: &str| -> Result<Option<String>> {
            filter(f.take(name)).map(|v| string(name, v)).transpose()
        };
        Ok(Finish {
            status,
            result: text(f, "result")?,
            blocker: text(f, "blocker")?,
        })
    }
}

impl LeaseTerms {
    /// Parses lease terms, strictly: `{"lease_seconds"?, "max_attempts"?}`, integers
    /// (their ranges are checked by the store); `null` is the same as leaving one out.
    ///
    /// ```
    /// use agent_backlog::LeaseTerms;
    /// let terms = LeaseTerms::from_value(serde_json::json!({"lease_seconds": 30}))?;
    /// assert_eq!(terms, LeaseTerms::new().lease_seconds(30));
    /// assert!(LeaseTerms::from_value(serde_json::json!({"lease_seconds": 1.5})).is_err());
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn from_value(value: Value) -> Result<LeaseTerms> {
        let mut f = Fields::from_value(value, "the lease terms")?;
        f.only(&["lease_seconds", "max_attempts"])?;
        LeaseTerms::take_from(&mut f)
    }

    /// Takes `lease_seconds` and `max_attempts` out of a request's fields.
    pub(crate) fn take_from(f: &mut Fields) -> Result<LeaseTerms> {
        Ok(LeaseTerms {
            lease_seconds: optional_integer(f, "lease_seconds", "from 1 to 86400")?,
            max_attempts: optional_integer(f, "max_attempts", "from 1 to 1000")?,
        })
    }
}

/// An optional integer input; `null` is the same as leaving it out.
pub(crate) fn optional_integer(f: &mut Fields, name: &str, range: &str) -> Result<Option<i64>> {
    filter(f.take(name))
        .map(|v| integer(name, v, range))
        .transpose()
}

/// A JSON number (an integer or a fraction) input.
pub(crate) fn number(name: &str, value: Value, range: &str) -> Result<f64> {
    match &value {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| Error::invalid(format!("{name} must be a number {range}, got {n}"))),
        other => Err(Error::invalid(format!(
            "{name} must be a number {range}, got {}",
            describe(other)
        ))),
    }
}

/// Parses the body of a set-prefix request, strictly: `{"prefix": "MKT"}`.
/// Returns the prefix; its characters are checked by
/// [`Store::set_prefix`](crate::Store::set_prefix).
///
/// ```
/// assert_eq!(agent_backlog::prefix_from_json(r#"{"prefix": "MKT"}"#)?, "MKT");
/// assert!(agent_backlog::prefix_from_json(r#"{"prefix": "MKT", "prefix": "OPS"}"#).is_err());
/// # Ok::<(), agent_backlog::Error>(())
/// ```
pub fn prefix_from_json(text: &str) -> Result<String> {
    let mut f = parse_object(text, "the body", r#"{"prefix": "MKT"}"#)?;
    f.only(&["prefix"])?;
    match f.take("prefix") {
        Some(v) => string("prefix", v),
        None => Err(Error::invalid(
            "prefix is required: give a string of 1 to 8 characters A-Z and 0-9",
        )),
    }
}

impl StoreOptions {
    /// Parses store options, strictly: `{"busy_timeout_ms"?, "durability"?, "actor"?}`
    /// where `busy_timeout_ms` is an integer ≥ 0, `durability` is `"normal"` or
    /// `"full"` and `actor` a name for the history. Absent or `null` fields keep their
    /// defaults.
    ///
    /// ```
    /// use std::time::Duration;
    /// use agent_backlog::{Durability, StoreOptions};
    /// let o = StoreOptions::from_json(r#"{"busy_timeout_ms": 250, "durability": "full"}"#)?;
    /// assert_eq!(o, StoreOptions { busy_timeout: Duration::from_millis(250), durability: Durability::Full, actor: None });
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn from_json(text: &str) -> Result<StoreOptions> {
        parse_object(
            text,
            "the options",
            r#"{"busy_timeout_ms": 5000, "durability": "normal"}"#,
        )
        .and_then(StoreOptions::from_fields)
    }

    /// Parses store options already decoded as a JSON value (see [`StoreOptions::from_json`]).
    pub fn from_value(value: Value) -> Result<StoreOptions> {
        StoreOptions::from_fields(Fields::from_value(value, "the options")?)
    }

    fn from_fields(mut f: Fields) -> Result<StoreOptions> {
        f.only(&["busy_timeout_ms", "durability", "actor"])?;
        let mut options = StoreOptions::default();
        if let Some(ms) = count(&mut f, "busy_timeout_ms")? {
            let ms = crate::validate::non_negative("busy_timeout_ms", ms)?;
            options.busy_timeout = std::time::Duration::from_millis(ms as u64);
        }
        if let Some(v) = filter(f.take("durability")) {
            options.durability = match string("durability", v)?.as_str() {
                "normal" => Durability::Normal,
                "full" => Durability::Full,
                other => {
                    return Err(Error::invalid(format!(
                        "durability must be \"normal\" or \"full\", got {}",
                        crate::validate::shown(other)
                    )))
                }
            };
        }
        if let Some(v) = filter(f.take("actor")) {
            let actor = string("actor", v)?;
            crate::validate::actor(&actor)?;
            options.actor = Some(actor);
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(r: Result<impl fmt::Debug>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        e.to_string()
    }

    #[test]
    fn create_body_types_are_strict() {
        assert_eq!(
            NewTask::from_json(r#"{"title":"t","priority":3}"#).unwrap(),
            NewTask::new("t").priority(3)
        );
        assert_eq!(
            NewTask::from_json(r#"{"title":"t","priority":null,"description":null}"#).unwrap(),
            NewTask::new("t")
        );
        assert_eq!(
            msg(NewTask::from_json(r#"{"title":"t","priority":3.0}"#)),
            "priority must be an integer from 1 to 10, got 3.0"
        );
        assert!(msg(NewTask::from_json(r#"{"title":"t","priority":"3"}"#))
            .contains("got the string \"3\""));
        assert!(msg(NewTask::from_json(r#"{"title":"t","priority":true}"#)).contains("got true"));
        assert!(msg(NewTask::from_json(
            r#"{"title":"t","priority":18446744073709551616}"#
        ))
        .starts_with("priority must be an integer"));
        assert!(msg(NewTask::from_json(r#"{"title":"t","extra":1}"#))
            .starts_with("unknown field \"extra\""));
        assert!(msg(NewTask::from_json(r#"{"description":"d"}"#)).starts_with("title is required"));
        assert!(msg(NewTask::from_json(r#"{"title":5}"#)).starts_with("title must be a string"));
        assert!(msg(NewTask::from_json(r#"{"title":"a","title":"b"}"#)).contains("appears twice"));
        assert!(msg(NewTask::from_json(r#"[{"title":"a"}]"#))
            .starts_with("the task must be a JSON object"));
        assert!(msg(NewTask::from_json(r#"{"title":"a""#))
            .starts_with("the task must be a JSON object"));
        assert!(msg(NewTask::from_json("")).starts_with("the task must be a JSON object"));
        assert!(msg(NewTask::from_json(r#"{"title":"\ud800"}"#))
            .starts_with("the task must be a JSON object"));
    }

    #[test]
    fn deep_nesting_and_huge_bodies_are_refused() {
        let deep = format!(
            r#"{{"title":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(
            NewTask::from_json(&deep).unwrap_err().code(),
            "invalid_argument"
        );
        let huge = format!(r#"{{"title":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert!(msg(NewTask::from_json(&huge)).contains("the limit is"));
    }

    #[test]
    fn patch_nulls() {
        let p =
            TaskPatch::from_json(r#"{"description":null,"blocker":null,"result":null}"#).unwrap();
        assert_eq!(p.description, Some(None));
        assert_eq!(p.blocker, Some(None));
        assert_eq!(p.result, Some(None));
        assert!(TaskPatch::from_json("{}").unwrap().is_empty());
        for field in ["status", "priority", "title"] {
            let m = msg(TaskPatch::from_json(&format!(r#"{{"{field}":null}}"#)));
            assert!(m.starts_with(&format!("{field} cannot be null")), "{m}");
        }
        assert!(
            msg(TaskPatch::from_json(r#"{"status":"done"}"#)).starts_with("status must be one of")
        );
        assert!(
            msg(TaskPatch::from_json(r#"{"id":"MKT-001"}"#)).starts_with("unknown field \"id\"")
        );
    }

    #[test]
    fn queries() {
        assert_eq!(
            ListQuery::from_json(r#"{"status":null,"limit":5,"offset":null}"#).unwrap(),
            ListQuery::new().limit(5)
        );
        assert!(msg(ListQuery::from_json(r#"{"priority":1}"#)).starts_with("unknown field"));
        assert!(msg(ListQuery::from_json(r#"{"limit":1.5}"#))
            .starts_with("limit must be an integer of 0 or more"));
        let q =
            TaskQuery::from_json(r#"{"agent_id":"a","priority":2,"status":"blocked"}"#).unwrap();
        assert_eq!(
            q,
            TaskQuery::new()
                .agent_id("a")
                .priority(2)
                .status(Status::Blocked)
        );
        assert!(
            msg(TaskQuery::from_json(r#"{"agent_id":3}"#)).starts_with("agent_id must be a string")
        );
    }

    #[test]
    fn prefix_bodies() {
        assert_eq!(prefix_from_json(r#"{"prefix": "mkt"}"#).unwrap(), "mkt");
        for (body, start) in [
            (r#"{"prefix": 5}"#, "prefix must be a string"),
            (r#"{}"#, "prefix is required"),
            (r#"{"prefix": "A", "x": 1}"#, "unknown field \"x\""),
            (
                r#"{"prefix": "A", "prefix": "B"}"#,
                "the body must be a JSON object",
            ),
            (r#"["MKT"]"#, "the body must be a JSON object"),
            (r#"{"prefix": "#, "the body must be a JSON object"),
        ] {
            assert!(msg(prefix_from_json(body)).starts_with(start), "{body}");
        }
    }

    #[test]
    fn batches() {
        let tasks =
            NewTask::list_from_json(r#"[{"title":"a"},{"title":"b","priority":1}]"#).unwrap();
        assert_eq!(
            tasks,
            vec![NewTask::new("a"), NewTask::new("b").priority(1)]
        );
        assert_eq!(NewTask::list_from_json("[]").unwrap(), vec![]);
        assert!(msg(NewTask::list_from_json(
            r#"[{"title":"a"},{"title":"b","x":1}]"#
        ))
        .starts_with("tasks[1]: unknown field"));
        assert!(msg(NewTask::list_from_json(r#"{"title":"a"}"#))
            .starts_with("the task list must be a JSON array"));
        assert!(msg(NewTask::list_from_json(r#"[1]"#))
            .starts_with("the task list must be a JSON array"));
        let value = serde_json::json!([{"title": "a"}, {"title": 1}]);
        assert!(
            msg(NewTask::list_from_value(value)).starts_with("tasks[1]: title must be a string")
        );
    }
}
