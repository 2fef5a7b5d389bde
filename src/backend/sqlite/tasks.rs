//! Single tasks: insert, load, patch and delete.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::{agents, events, SqlResult};
use crate::backend::{task_id, Actor, NewCounts, NewRow, Patcher};
use crate::history::EventKind;
use crate::model::{Status, Task};
use crate::rules::history;
use crate::rules::lifecycle;

/// The task columns, in the order [`task_from_row`] reads them.
pub(super) const TASK_COLUMNS: &str =
    "id, title, description, priority, status, created, started, completed, result, blocker";
/// How many columns [`TASK_COLUMNS`] holds; extra columns of a query come after them.
pub(super) const TASK_COLUMN_COUNT: usize = 10;

/// Reads the task columns, in `TASK_COLUMNS` order, from the start of the row.
pub(super) fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = row.get(4)?;
    let status = status.parse::<Status>().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            format!("unknown status {status:?} in the database").into(),
        )
    })?;
    let priority: u8 = row.get(3)?;
    if !(1..=10).contains(&priority) {
        return Err(rusqlite::Error::IntegralValueOutOfRange(3, priority.into()));
    }
    Ok(Task {
        id: row.get(0)?,
        title: row.get(1)?,
        description: row.get(2)?,
        priority,
        status,
        created: row.get(5)?,
        started: row.get(6)?,
        completed: row.get(7)?,
        result: row.get(8)?,
        blocker: row.get(9)?,
    })
}

/// Numbers and inserts `rows` as queued tasks of the agent, with their dependencies
/// (`deps[i]`: the rows and statuses of row `i`'s dependencies on existing tasks,
/// resolved by the caller; its dependencies on earlier rows are in the row itself).
/// Returns the tasks and the first number.
pub(super) fn create(
    tx: &Transaction<'_>,
    agent_id: &str,
    rows: Vec<NewRow>,
    deps: &[Vec<(i64, bool)>],
    created: &str,
    actor: Actor<'_>,
) -> SqlResult<(Vec<Task>, i64)> {
    let (prefix, first) = agents::take_numbers(tx, agent_id, rows.len() as i64)?;
    let mut counts = NewCounts::default();
    let mut insert = tx.prepare_cached(
        "INSERT INTO tasks (id, agent_id, title, description, priority, created, unmet,
         last_event) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut edge =
        tx.prepare_cached("INSERT INTO dependencies (task_seq, depends_seq) VALUES (?1, ?2)")?;
    let mut seqs: Vec<i64> = Vec::with_capacity(rows.len());
    let mut tasks: Vec<Task> = Vec::with_capacity(rows.len());
    for ((i, row), number) in rows.into_iter().enumerate().zip(first..) {
        let existing = deps.get(i).map(Vec::as_slice).unwrap_or_default();
        let placed = row.place(task_id(&prefix, number), created, existing, &seqs, &tasks);
        counts.add(&placed);
        let task = &placed.task;
        // The history: the task's creation (the first link of its chain, recorded
        // before the row that points to it), then each of its dependencies.
        let data = history::created(&task.title, task.priority);
        let event = events::record_after(
            tx,
            agent_id,
            Some(&task.id),
            EventKind::Created,
            actor,
            &data,
            None,
        )?;
        insert.execute(params![
            task.id,
            agent_id,
            task.title,
            task.description,
            task.priority,
            created,
            placed.unmet,
            event
        ])?;
        let seq = tx.last_insert_rowid();
        for depends_seq in &placed.depends_on {
            edge.execute(params![seq, depends_seq])?;
        }
        for dep_id in &placed.dependency_ids {
            let data = history::dependency(dep_id);
            events::append(
                tx,
                agent_id,
                Some(&task.id),
                EventKind::DependencyAdded,
                actor,
                &data,
            )?;
        }
        seqs.push(seq);
        tasks.push(placed.task);
    }
    agents::count_new(tx, agent_id, &counts)?;
    Ok((tasks, first))
}

/// The SQL of [`load`] (also checked for its plan by the tests).
pub(super) fn load_sql() -> String {
    format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1 AND agent_id = ?2")
}

/// The task, if it is in the agent's backlog.
pub(super) fn load(conn: &Connection, agent_id: &str, task_id: &str) -> SqlResult<Option<Task>> {
    Ok(conn
        .prepare_cached(&load_sql())?
        .query_row(params![task_id, agent_id], task_from_row)
        .optional()?)
}

/// Loads the task, lets `patch` decide what it becomes, and stores that.
pub(super) fn update(
    tx: &Transaction<'_>,
    agent_id: &str,
    task_id: &str,
    patch: &Patcher<'_>,
    actor: Actor<'_>,
) -> SqlResult<Option<Task>> {
    let found = tx
        .prepare_cached(&format!(
            "SELECT {TASK_COLUMNS}, seq, last_event FROM tasks WHERE id = ?1 AND agent_id = ?2"
        ))?
        .query_row(params![task_id, agent_id], |r| {
            Ok((
                task_from_row(r)?,
                r.get::<_, i64>(TASK_COLUMN_COUNT)?,
                r.get::<_, Option<i64>>(TASK_COLUMN_COUNT + 1)?,
            ))
        })
        .optional()?;
    let Some((task, seq, last_event)) = found else {
        return Ok(None);
    };
    let before = task.clone();
    let from = task.status;
    let task = patch(task, &crate::backend::now())?;
    let Some(data) = history::updated(&before, &task) else {
        // Nothing changed: nothing to write, and no event.
        return Ok(Some(task));
    };
    let event = events::record_after(
        tx,
        agent_id,
        Some(task_id),
        EventKind::Updated,
        actor,
        &data,
        last_event,
    )?;
    let moved = from != task.status;
    let reopened = lifecycle::is_reopen(from, task.status);
    // The status column's triggers move the task between the agent's counts. A move
    // ends a held lease and grows the fence; a reopen resets the attempts.
    tx.prepare_cached(
        "UPDATE tasks SET title = ?2, description = ?3, priority = ?4, status = ?5,
         started = ?6, completed = ?7, result = ?8, blocker = ?9,
         fence = fence + (?10 AND lease_expires IS NOT NULL),
         lease_expires = CASE WHEN ?10 THEN NULL ELSE lease_expires END,
         attempts = CASE WHEN ?11 THEN 0 ELSE attempts END,
         last_event = ?12
         WHERE seq = ?1",
    )?
    .execute(params![
        seq,
        task.title,
        task.description,
        task.priority,
        task.status.as_str(),
        task.started,
        task.completed,
        task.result,
        task.blocker,
        moved,
        reopened,
        event
    ])?;
    Ok(Some(task))
}

/// Deletes the task (its triggers take it out of the counts and keep the fence of a
/// task that was ever leased); `false` when absent.
pub(super) fn delete(
    tx: &Transaction<'_>,
    agent_id: &str,
    task_id: &str,
    actor: Actor<'_>,
) -> SqlResult<bool> {
    if load(tx, agent_id, task_id)?.is_none() {
        return Ok(false);
    }
    // The event first, while the task's chain of events still starts in its row.
    let data = history::deleted();
    events::append(
        tx,
        agent_id,
        Some(task_id),
        EventKind::Deleted,
        actor,
        &data,
    )?;
    tx.prepare_cached("DELETE FROM tasks WHERE id = ?1 AND agent_id = ?2")?
        .execute(params![task_id, agent_id])?;
    Ok(true)
}
