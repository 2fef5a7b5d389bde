//! The history rules of SPEC §14, as pure functions: the data of each kind of event,
//! and the values an events query takes.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::history::EventQuery;
use crate::model::{Status, Task};
use crate::rules::validate;

/// The most events one page holds.
pub const MAX_EVENTS_LIMIT: i64 = 1_000;
/// The events of a page when no limit is given.
pub const DEFAULT_EVENTS_LIMIT: i64 = 100;
/// The longest wait of `events`, in seconds.
pub const MAX_EVENTS_WAIT_SECONDS: f64 = 60.0;

/// An events query with its values checked: after, limit, agent, wait.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checked {
    pub after: i64,
    pub limit: i64,
    pub agent_id: Option<String>,
    pub wait: Duration,
}

/// Checks an events query: `after` ≥ 0, `limit` 1 to 1000, a valid agent_id,
/// `wait_seconds` 0 to 60.
pub(crate) fn query(q: EventQuery) -> Result<Checked> {
    let after = validate::non_negative("after", q.after.unwrap_or(0))?;
    let limit = validate::in_range(
        "limit",
        q.limit.unwrap_or(DEFAULT_EVENTS_LIMIT),
        1,
        MAX_EVENTS_LIMIT,
    )?;
    if let Some(agent_id) = &q.agent_id {
        validate::agent_id(agent_id)?;
    }
    let wait = q.wait_seconds.unwrap_or(0.0);
    if !(0.0..=MAX_EVENTS_WAIT_SECONDS).contains(&wait) {
        return Err(Error::invalid(format!(
            "wait_seconds must be a number from 0 to 60, got {wait}"
        )));
    }
    Ok(Checked {
        after,
        limit,
        agent_id: q.agent_id,
        wait: Duration::from_secs_f64(wait),
    })
}

/// `created`: `{"title", "priority"}`.
pub(crate) fn created(title: &str, priority: u8) -> Value {
    json!({"title": title, "priority": priority})
}

/// `updated`: the fields whose values changed, in the task's key order, and the
/// status move when there was one; `None` when nothing changed (no event).
pub(crate) fn updated(before: &Task, after: &Task) -> Option<Value> {
    let changes = [
        ("title", before.title != after.title),
        ("description", before.description != after.description),
        ("priority", before.priority != after.priority),
        ("status", before.status != after.status),
        ("result", before.result != after.result),
        ("blocker", before.blocker != after.blocker),
    ];
    let changed: Vec<&str> = changes
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| *name)
        .collect();
    if changed.is_empty() {
        return None;
    }
    let mut data = Map::new();
    data.insert("changed".into(), json!(changed));
    if before.status != after.status {
        data.insert("from".into(), json!(before.status));
        data.insert("to".into(), json!(after.status));
    }
    Some(Value::Object(data))
}

/// `claimed`: `{"worker", "fence"}`, both null for a claim without a lease.
pub(crate) fn claimed(lease: Option<(&str, i64)>) -> Value {
    match lease {
        Some((worker, fence)) => json!({"worker": worker, "fence": fence}),
        None => json!({"worker": null, "fence": null}),
    }
}

/// `finished`: `{"to"}`.
pub(crate) fn finished(to: Status) -> Value {
    json!({ "to": to })
}

/// `lease_expired`: `{"worker", "attempt", "to"}`.
pub(crate) fn lease_expired(worker: &str, attempt: i64, to: Status) -> Value {
    json!({"worker": worker, "attempt": attempt, "to": to})
}

/// `deleted`: `{}`.
pub(crate) fn deleted() -> Value {
    json!({})
}

/// `dependency_added` and `dependency_removed`: `{"depends_on"}`.
pub(crate) fn dependency(depends_on: &str) -> Value {
    json!({ "depends_on": depends_on })
}

/// `prefix_set`: `{"prefix"}`.
pub(crate) fn prefix_set(prefix: &str) -> Value {
    json!({ "prefix": prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: Status) -> Task {
        Task {
            id: "MKT-001".into(),
            title: "t".into(),
            description: None,
            priority: 5,
            status,
            created: "2026-01-01T00:00:00Z".into(),
            started: None,
            completed: None,
            result: None,
            blocker: None,
        }
    }

    #[test]
    fn updated_names_the_changed_fields_in_order() {
        let before = task(Status::InProgress);
        let mut after = task(Status::Complete);
        after.result = Some("done".into());
        assert_eq!(
            updated(&before, &after).unwrap().to_string(),
            r#"{"changed":["status","result"],"from":"in_progress","to":"complete"}"#
        );
        assert_eq!(updated(&before, &before), None);
        after = before.clone();
        after.priority = 1;
        assert_eq!(
            updated(&before, &after).unwrap().to_string(),
            r#"{"changed":["priority"]}"#
        );
    }

    #[test]
    fn queries_are_checked() {
        assert_eq!(query(EventQuery::new()).unwrap().limit, 100);
        for bad in [
            EventQuery::new().limit(0),
            EventQuery::new().limit(1001),
            EventQuery::new().after(-1),
            EventQuery::new().wait_seconds(61.0),
            EventQuery::new().agent_id("-x"),
        ] {
            assert_eq!(query(bad).unwrap_err().code(), "invalid_argument");
        }
    }
}
