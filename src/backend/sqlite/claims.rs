//! Claims: the agent's next ready task, taken under the write lock.

use rusqlite::{params, OptionalExtension, Transaction};

use super::tasks::{task_from_row, TASK_COLUMNS, TASK_COLUMN_COUNT};
use super::{events, SqlResult};
use crate::backend::Actor;
use crate::history::EventKind;
use crate::model::{Status, Task};
use crate::rules::history;

/// Every priority, in order: with it, a search of the `(agent_id, priority, status)`
/// index seeks the priorities one by one and meets them in order (at most ten seeks),
/// where `status = 'queued'` alone could not use the status after the priority.
pub(super) const PRIORITIES: &str = "priority IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)";

/// The readiness predicate (SPEC §13), the one every query of this backend uses: a
/// queued task none of whose dependencies is unmet. With `agent_id = ?` and
/// [`PRIORITIES`] it is a seek of the `(agent_id, priority, status, waiting)` index.
pub(super) const READY: &str = "status = 'queued' AND waiting = 0";

/// The agent's first ready task, by priority then creation order, and its row, with
/// `extra` columns after the row's `seq`.
///
/// The agent's counts name the first priority that has a ready task (at most ten rows
/// of one agent); the task is then the first entry of one run of the
/// `(agent_id, priority, status, waiting)` index. ([`PRIORITIES`] would seek the same
/// run, but a constant `IN` list builds a temporary B-tree on every execution.)
pub(super) fn next_ready_sql(extra: &str) -> String {
    format!(
        "SELECT {TASK_COLUMNS}, seq{extra} FROM tasks
         WHERE agent_id = ?1 AND {READY} AND priority = (
             SELECT priority FROM counts WHERE agent_id = ?1 AND queued > waiting
             ORDER BY priority LIMIT 1)
         ORDER BY seq LIMIT 1"
    )
}

/// The SQL of [`claim_next`]'s read (also checked by the tests).
pub(super) fn claim_next_sql() -> String {
    next_ready_sql(", last_event")
}

/// Moves the agent's first ready task to in_progress.
///
/// Both statements run under the write lock of one IMMEDIATE transaction, so no other
/// claimer, in any thread or process, can see the task as queued in between. (One
/// `UPDATE … RETURNING` does the same work but costs more: its results go through an
/// ephemeral table.)
pub(super) fn claim_next(
    tx: &Transaction<'_>,
    agent_id: &str,
    started: &str,
    actor: Actor<'_>,
) -> SqlResult<Option<Task>> {
    let found = tx
        .prepare_cached(&claim_next_sql())?
        .query_row([agent_id], |row| {
            Ok((
                task_from_row(row)?,
                row.get::<_, i64>(TASK_COLUMN_COUNT)?,
                row.get::<_, Option<i64>>(TASK_COLUMN_COUNT + 1)?,
            ))
        })
        .optional()?;
    let Some((mut task, seq, last_event)) = found else {
        return Ok(None);
    };
    let data = history::claimed(None);
    let event = events::record_after(
        tx,
        agent_id,
        Some(&task.id),
        EventKind::Claimed,
        actor,
        &data,
        last_event,
    )?;
    tx.prepare_cached(
        "UPDATE tasks SET status = 'in_progress', started = ?2, last_event = ?3 WHERE seq = ?1",
    )?
    .execute(params![seq, started, event])?;
    task.status = Status::InProgress;
    task.started = Some(started.to_owned());
    Ok(Some(task))
}
