//! Leases (SPEC §10): leased claims, renewals, finishes and expiry, in the task's own
//! row (see `migrations/0004_leases.sql`). Whether a token still holds its lease and
//! what an expiry does are the core's rules ([`crate::rules::lease`]); this module
//! loads what they need and stores what they decide, inside the caller's transaction.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::claims::next_ready_sql;
use super::tasks::{task_from_row, TASK_COLUMNS, TASK_COLUMN_COUNT};
use super::{events, SqlResult};
use crate::backend::Actor;
use crate::backend::{seconds, Claimable, Grant, LeaseRow, Patcher};
use crate::history::EventKind;
use crate::lease::Reaped;
use crate::model::Task;
use crate::rules::history;
use crate::rules::lease::{self, Holder, Terms, Token};

/// The lease columns, in the order [`lease_from_row`] reads them (from `at`).
const LEASE_COLUMNS: &str = "lease_token, agent_id, id, lease_worker, fence, attempts, \
     lease_max_attempts, lease_granted, lease_expires";

fn lease_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<LeaseRow> {
    Ok(LeaseRow {
        token: row.get(at)?,
        agent_id: row.get(at + 1)?,
        task_id: row.get(at + 2)?,
        worker: row.get(at + 3)?,
        fence: row.get(at + 4)?,
        attempt: row.get(at + 5)?,
        max_attempts: row.get(at + 6)?,
        granted_ms: row.get(at + 7)?,
        expires_ms: row.get(at + 8)?,
    })
}

/// Ends the agent's expired leases (every agent's with `None`) as of `now_ms`.
pub(super) fn reap(
    tx: &Transaction<'_>,
    agent_id: Option<&str>,
    now_ms: i64,
    actor: Actor<'_>,
) -> SqlResult<Reaped> {
    type Expired = (i64, String, i64, i64, String, Option<String>, String);
    let read = |r: &Row<'_>| -> rusqlite::Result<Expired> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    };
    let expired: Vec<Expired> = match agent_id {
        Some(agent_id) => tx
            .prepare_cached(
                "SELECT seq, id, attempts, lease_max_attempts, lease_worker, started, agent_id
                 FROM tasks WHERE agent_id = ?1 AND lease_expires <= ?2
                 ORDER BY lease_expires, seq",
            )?
            .query_map(params![agent_id, now_ms], read)?
            .collect::<rusqlite::Result<_>>()?,
        // Every held lease is in the partial index: scanning it reads only those.
        None => tx
            .prepare_cached(
                "SELECT seq, id, attempts, lease_max_attempts, lease_worker, started, agent_id
                 FROM tasks INDEXED BY tasks_by_lease_expiry
                 WHERE lease_expires IS NOT NULL AND lease_expires <= ?1
                 ORDER BY lease_expires, seq",
            )?
            .query_map(params![now_ms], read)?
            .collect::<rusqlite::Result<_>>()?,
    };
    let mut reaped = Reaped::default();
    if expired.is_empty() {
        return Ok(reaped);
    }
    let now = seconds(now_ms);
    let mut update = tx.prepare_cached(
        "UPDATE tasks SET status = ?2, started = ?3, blocker = ?4, fence = fence + 1,
         lease_expires = NULL WHERE seq = ?1",
    )?;
    for (seq, id, attempt, max_attempts, worker, started, agent) in expired {
        let state = lease::expiry(attempt, max_attempts, &worker, started, &now);
        let to = state.status;
        update.execute(params![seq, to.as_str(), state.started, state.blocker])?;
        let data = history::lease_expired(&worker, attempt, to);
        events::append(tx, &agent, Some(&id), EventKind::LeaseExpired, actor, &data)?;
        reaped.add(id, to);
    }
    Ok(reaped)
}

/// Requeues the agent's expired leases, then takes its first queued task with a lease.
pub(super) fn claim(
    tx: &Transaction<'_>,
    agent_id: &str,
    grant: &Grant<'_>,
) -> SqlResult<Option<(Task, LeaseRow)>> {
    let now_ms = crate::backend::now_ms();
    reap(tx, Some(agent_id), now_ms, Some(grant.worker))?;
    let found = tx
        .prepare_cached(&next_ready_sql(", fence, attempts, last_event"))?
        .query_row([agent_id], |row| {
            Ok((
                task_from_row(row)?,
                row.get::<_, i64>(TASK_COLUMN_COUNT)?,
                row.get::<_, i64>(TASK_COLUMN_COUNT + 1)?,
                row.get::<_, i64>(TASK_COLUMN_COUNT + 2)?,
                row.get::<_, Option<i64>>(TASK_COLUMN_COUNT + 3)?,
            ))
        })
        .optional()?;
    let Some((mut task, seq, fence, attempts, last_event)) = found else {
        return Ok(None);
    };
    let lease = grant.lease(agent_id, &mut task, fence, attempts, now_ms)?;
    let data = history::claimed(Some((grant.worker, lease.fence)));
    let event = events::record_after(
        tx,
        agent_id,
        Some(&task.id),
        EventKind::Claimed,
        Some(grant.worker),
        &data,
        last_event,
    )?;
    tx.prepare_cached(
        "UPDATE tasks SET status = 'in_progress', started = ?2, fence = ?3,
         attempts = attempts + 1, lease_token = ?4, lease_worker = ?5,
         lease_max_attempts = ?6, lease_ms = ?7, lease_granted = ?8, lease_expires = ?9,
         last_event = ?10
         WHERE seq = ?1",
    )?
    .execute(params![
        seq,
        task.started,
        lease.fence,
        lease.token,
        lease.worker,
        lease.max_attempts,
        grant.terms.lease_ms,
        lease.granted_ms,
        lease.expires_ms,
        event
    ])?;
    Ok(Some((task, lease)))
}

/// The task a token names, as the lease rules need it, with its row and agent when
/// it exists.
struct Held {
    holder: Holder,
    row: Option<Current>,
}

/// The task of a current lease: the task, its row, agent, lease duration, worker and
/// last event.
struct Current {
    task: Task,
    seq: i64,
    agent_id: String,
    lease_ms: i64,
    worker: String,
    last_event: Option<i64>,
}

fn holder(tx: &Connection, token: &Token<'_>) -> SqlResult<Held> {
    let found = tx
        .prepare_cached(&format!(
            "SELECT {TASK_COLUMNS}, seq, agent_id, fence, lease_token,
             lease_expires IS NOT NULL, lease_worker, lease_ms, last_event
             FROM tasks WHERE id = ?1"
        ))?
        .query_row([token.task_id], |r| {
            let at = TASK_COLUMN_COUNT;
            Ok((
                task_from_row(r)?,
                r.get::<_, i64>(at)?,
                r.get::<_, String>(at + 1)?,
                r.get::<_, i64>(at + 2)?,
                r.get::<_, Option<String>>(at + 3)?,
                r.get::<_, bool>(at + 4)?,
                r.get::<_, Option<String>>(at + 5)?,
                r.get::<_, Option<i64>>(at + 6)?,
                r.get::<_, Option<i64>>(at + 7)?,
            ))
        })
        .optional()?;
    if let Some((task, seq, agent_id, fence, current, held, worker, lease_ms, last_event)) = found {
        let worker_name = worker.clone().unwrap_or_default();
        return Ok(Held {
            holder: Holder::Task {
                status: task.status,
                fence,
                token: current,
                held,
                worker,
            },
            row: Some(Current {
                task,
                seq,
                agent_id,
                lease_ms: lease_ms.unwrap_or(0),
                worker: worker_name,
                last_event,
            }),
        });
    }
    let gone = tx
        .prepare_cached("SELECT fence, worker FROM lease_tombstones WHERE task_id = ?1")?
        .query_row([token.task_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(Held {
        holder: match gone {
            Some((fence, worker)) => Holder::Deleted { fence, worker },
            None => Holder::Never,
        },
        row: None,
    })
}

/// The task of `token`'s current lease; the lease rules' error otherwise.
fn current(tx: &Connection, token: &Token<'_>) -> SqlResult<Current> {
    let held = holder(tx, token)?;
    lease::check(token, &held.holder)?;
    held.row.ok_or_else(|| {
        crate::error::Error::Internal("a held lease without its task; this is a bug".into()).into()
    })
}

fn load_lease(tx: &Connection, seq: i64) -> SqlResult<LeaseRow> {
    Ok(tx
        .prepare_cached(&format!("SELECT {LEASE_COLUMNS} FROM tasks WHERE seq = ?1"))?
        .query_row([seq], |r| lease_from_row(r, 0))?)
}

/// Extends the lease of `token` to now + `lease_ms` (default: its own duration).
pub(super) fn renew(
    tx: &Transaction<'_>,
    token: &Token<'_>,
    lease_ms: Option<i64>,
) -> SqlResult<LeaseRow> {
    let Current {
        seq, lease_ms: own, ..
    } = current(tx, token)?;
    let lease_ms = lease_ms.unwrap_or(own);
    let now_ms = crate::backend::now_ms();
    tx.prepare_cached(
        "UPDATE tasks SET lease_ms = ?2, lease_expires = max(?3, lease_granted) WHERE seq = ?1",
    )?
    .execute(params![seq, lease_ms, now_ms + lease_ms])?;
    load_lease(tx, seq)
}

/// Applies `patch` to the task of `token` and ends its lease; then, with `next`,
/// claims the agent's next task with a lease.
pub(super) fn finish(
    tx: &Transaction<'_>,
    token: &Token<'_>,
    patch: &Patcher<'_>,
    next: Option<Terms>,
) -> SqlResult<(Task, Option<(Task, LeaseRow)>)> {
    let Current {
        task,
        seq,
        agent_id,
        worker,
        last_event,
        ..
    } = current(tx, token)?;
    let task = patch(task, &crate::backend::now())?;
    let data = history::finished(task.status);
    let event = events::record_after(
        tx,
        &agent_id,
        Some(&task.id),
        EventKind::Finished,
        Some(&worker),
        &data,
        last_event,
    )?;
    tx.prepare_cached(
        "UPDATE tasks SET status = ?2, started = ?3, completed = ?4, result = ?5,
         blocker = ?6, lease_expires = NULL, last_event = ?7 WHERE seq = ?1",
    )?
    .execute(params![
        seq,
        task.status.as_str(),
        task.started,
        task.completed,
        task.result,
        task.blocker,
        event
    ])?;
    let next = match next {
        Some(terms) => claim(
            tx,
            &agent_id,
            &Grant {
                worker: &worker,
                terms,
            },
        )?,
        None => None,
    };
    Ok((task, next))
}

/// Releases the task of `token` with `patch` and takes back the attempt its claim
/// counted (see [`crate::backend::Backend::return_lease`]).
pub(super) fn give_back(
    tx: &Transaction<'_>,
    token: &Token<'_>,
    patch: &Patcher<'_>,
) -> SqlResult<Task> {
    let seq = current(tx, token)?.seq;
    let (task, _) = finish(tx, token, patch, None)?;
    tx.prepare_cached("UPDATE tasks SET attempts = attempts - 1 WHERE seq = ?1 AND attempts > 0")?
        .execute([seq])?;
    Ok(task)
}

/// The held lease of the task (`Some(None)`: none; `None`: no such task).
pub(super) fn get(
    conn: &Connection,
    agent_id: &str,
    task_id: &str,
) -> SqlResult<Option<Option<LeaseRow>>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT lease_expires IS NOT NULL, {LEASE_COLUMNS} FROM tasks
             WHERE id = ?1 AND agent_id = ?2"
        ))?
        .query_row(params![task_id, agent_id], |r| {
            if r.get::<_, bool>(0)? {
                lease_from_row(r, 1).map(Some)
            } else {
                Ok(None)
            }
        })
        .optional()?)
}

/// Whether the agent has a queued task, and when its first held lease expires.
pub(super) fn claimable(tx: &Connection, agent_id: &str) -> SqlResult<Claimable> {
    let ready: i64 = tx
        .prepare_cached(
            "SELECT coalesce(sum(queued - waiting), 0) FROM counts WHERE agent_id = ?1",
        )?
        .query_row([agent_id], |r| r.get(0))?;
    let next_expiry_ms: Option<i64> = tx
        .prepare_cached(
            "SELECT min(lease_expires) FROM tasks
             WHERE agent_id = ?1 AND lease_expires IS NOT NULL",
        )?
        .query_row([agent_id], |r| r.get(0))?;
    Ok(Claimable {
        ready: ready > 0,
        next_expiry_in_ms: next_expiry_ms.map(|ms| ms - crate::backend::now_ms()),
    })
}
