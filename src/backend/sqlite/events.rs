//! The history: events appended inside each write's transaction, the change feed,
//! task histories, pruning, and the agents with their counts.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde_json::Value;

use super::SqlResult;
use crate::history::{AgentSummary, Event, EventKind};
use crate::rules::history::Checked;
use crate::rules::lease::format_ms;

/// Records one event, in the caller's transaction, linked after the task's last event,
/// and returns its seq. The caller makes it the task's last event: a write that
/// rewrites the task's row anyway sets `last_event` in the same statement.
pub(super) fn record(
    tx: &Transaction<'_>,
    agent_id: &str,
    task_id: Option<&str>,
    kind: EventKind,
    actor: Option<&str>,
    data: &Value,
) -> SqlResult<i64> {
    let prev = match task_id {
        Some(id) => tx
            .prepare_cached("SELECT last_event FROM tasks WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten(),
        None => None,
    };
    record_after(tx, agent_id, task_id, kind, actor, data, prev)
}

/// [`record`] for a caller that has read the task's row, and with it its last event
/// (`prev`; `None` for a task being created): no lookup of the task.
pub(super) fn record_after(
    tx: &Transaction<'_>,
    agent_id: &str,
    task_id: Option<&str>,
    kind: EventKind,
    actor: Option<&str>,
    data: &Value,
    prev: Option<i64>,
) -> SqlResult<i64> {
    tx.prepare_cached(
        "INSERT INTO events (at, agent_id, task_id, type, actor, data, prev)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        crate::backend::now_ms(),
        agent_id,
        task_id,
        kind.as_str(),
        actor,
        data.to_string(),
        prev
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Records one event and makes it the last of its task's chain (a deleted task's
/// chain ends in `deleted_tasks`).
pub(super) fn append(
    tx: &Transaction<'_>,
    agent_id: &str,
    task_id: Option<&str>,
    kind: EventKind,
    actor: Option<&str>,
    data: &Value,
) -> SqlResult<()> {
    let seq = record(tx, agent_id, task_id, kind, actor, data)?;
    if let Some(task_id) = task_id {
        if kind == EventKind::Deleted {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO deleted_tasks (task_id, agent_id, last_event)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![task_id, agent_id, seq])?;
        } else {
            tx.prepare_cached("UPDATE tasks SET last_event = ?2 WHERE id = ?1")?
                .execute(params![task_id, seq])?;
        }
    }
    Ok(())
}

const EVENT_COLUMNS: &str = "seq, at, agent_id, task_id, type, actor, data";

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let kind: String = row.get(4)?;
    let data: String = row.get(6)?;
    let bad = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, what.into())
    };
    Ok(Event {
        seq: row.get(0)?,
        at: format_ms(row.get(1)?),
        agent_id: row.get(2)?,
        task_id: row.get(3)?,
        kind: kind.parse().map_err(|e: crate::Error| bad(e.to_string()))?,
        actor: row.get(5)?,
        data: serde_json::from_str(&data).map_err(|e| bad(e.to_string()))?,
    })
}

/// A page of the feed: the events after `q.after`, of one agent or all.
pub(super) fn page(conn: &Connection, q: &Checked) -> SqlResult<Vec<Event>> {
    let sql = match q.agent_id {
        Some(_) => format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE agent_id = ?3 AND seq > ?1
             ORDER BY seq LIMIT ?2"
        ),
        None => format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = match &q.agent_id {
        Some(agent_id) => stmt.query_map(params![q.after, q.limit, agent_id], event_from_row)?,
        None => stmt.query_map(params![q.after, q.limit], event_from_row)?,
    };
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The task's events, oldest first, read along its chain from its last event; `None`
/// when the task never existed (a deleted task keeps its row of `deleted_tasks`, also
/// once its events are pruned).
pub(super) fn history(
    conn: &Connection,
    agent_id: &str,
    task_id: &str,
) -> SqlResult<Option<Vec<Event>>> {
    let live: Option<Option<i64>> = conn
        .prepare_cached("SELECT last_event FROM tasks WHERE id = ?1 AND agent_id = ?2")?
        .query_row([task_id, agent_id], |r| r.get(0))
        .optional()?;
    let head = match live {
        Some(head) => Some(head),
        None => conn
            .prepare_cached(
                "SELECT last_event FROM deleted_tasks WHERE task_id = ?1 AND agent_id = ?2",
            )?
            .query_row([task_id, agent_id], |r| r.get::<_, i64>(0))
            .optional()?
            .map(Some),
    };
    let Some(head) = head else {
        return Ok(None);
    };
    let mut link = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS}, prev FROM events WHERE seq = ?1"
    ))?;
    let mut events = Vec::new();
    let mut at = head;
    while let Some(seq) = at {
        let Some((event, prev)) = link
            .query_row([seq], |r| {
                Ok((event_from_row(r)?, r.get::<_, Option<i64>>(7)?))
            })
            .optional()?
        else {
            break; // pruned from here back
        };
        events.push(event);
        at = prev;
    }
    events.reverse();
    Ok(Some(events))
}

/// The seq of the newest event (the feed's rowid: one seek), 0 when there is none.
pub(super) fn last_seq(conn: &Connection) -> SqlResult<i64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM events")?
        .query_row([], |row| row.get(0))?)
}

/// Deletes the events with a seq below `before`, except the newest event of all: it
/// keeps the largest rowid in place, so that no seq is ever given again.
pub(super) fn prune(tx: &Transaction<'_>, before: i64) -> SqlResult<u64> {
    // A deleted task keeps its row of `deleted_tasks`: its history is then empty, not
    // `not_found`, which is only for a task that never had events (SPEC §14).
    let n = tx
        .prepare_cached(
            "DELETE FROM events WHERE seq < ?1
             AND seq < (SELECT coalesce(max(seq), 0) FROM events)",
        )?
        .execute([before])?;
    Ok(n as u64)
}

/// A page of the agents by agent_id with their counts (at most ten rows of counts
/// each), and how many agents there are.
pub(super) fn agents(
    tx: &Transaction<'_>,
    limit: Option<u64>,
    offset: u64,
) -> SqlResult<(Vec<AgentSummary>, u64)> {
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let agents = tx
        .prepare_cached(
            "SELECT a.agent_id, a.prefix,
                (SELECT coalesce(sum(queued), 0) FROM counts c WHERE c.agent_id = a.agent_id),
                (SELECT coalesce(sum(in_progress), 0) FROM counts c WHERE c.agent_id = a.agent_id),
                (SELECT coalesce(sum(complete), 0) FROM counts c WHERE c.agent_id = a.agent_id),
                (SELECT coalesce(sum(blocked), 0) FROM counts c WHERE c.agent_id = a.agent_id)
             FROM (SELECT agent_id, prefix FROM agents ORDER BY agent_id LIMIT ?1 OFFSET ?2) a
             ORDER BY a.agent_id",
        )?
        .query_map([limit, offset], |r| {
            let counts = [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?];
            Ok(AgentSummary::of(r.get(0)?, r.get(1)?, counts))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let total: Option<i64> = tx
        .prepare_cached("SELECT count FROM agent_count WHERE one = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok((agents, total.unwrap_or(0) as u64))
}
