//! Leases on PostgreSQL (SPEC §10), in the task's own row as on SQLite. Expiry is by
//! the database's clock: the time each write read as it began. Whether a token still
//! holds its lease and what an expiry does are the core's rules
//! ([`crate::rules::lease`]); this module loads what they need, locked, and stores
//! what they decide.

use postgres::{Row, SimpleQueryRow};

use super::pool::Columns;
use super::pool::{literal, Tx, NOW_MS_SQL};
use super::tasks::{lifecycle_values, task_from, TASK_COLUMNS, TASK_COLUMN_COUNT};
use super::{Fail, PgResult};
use crate::backend::{Actor, Claimable, Grant, LeaseRow, Patcher};
use crate::history::EventKind;
use crate::lease::Reaped;
use crate::model::Task;
use crate::rules::history;
use crate::rules::lease::{self, Holder, Terms, Token};

/// The lease columns, in the order [`lease_from_row`] reads them.
const LEASE_COLUMNS: &str = "lease_token, agent_id, id, lease_worker, fence, attempts, \
     lease_max_attempts, lease_granted, lease_expires";

fn lease_from_row(row: &Row, at: usize) -> PgResult<LeaseRow> {
    Ok(LeaseRow {
        token: row.try_get(at)?,
        agent_id: row.try_get(at + 1)?,
        task_id: row.try_get(at + 2)?,
        worker: row.try_get(at + 3)?,
        fence: row.try_get(at + 4)?,
        attempt: row.try_get(at + 5)?,
        max_attempts: row.try_get(at + 6)?,
        granted_ms: row.try_get(at + 7)?,
        expires_ms: row.try_get(at + 8)?,
    })
}

/// The statement that locks the expired leases of the agent (of every agent with
/// `None`) as of the write's time, for [`reap_rows`]. Leases whose task another
/// writer holds are left to it.
fn expired_sql(tx: &mut Tx<'_>, agent_id: Option<&str>) -> PgResult<String> {
    let (which, values) = match agent_id {
        Some(agent_id) => ("agent_id = $1::text AND", vec![literal(Some(agent_id))]),
        None => ("lease_expires IS NOT NULL AND", Vec::new()),
    };
    tx.named(
        &format!(
            "SELECT seq, id, attempts, lease_max_attempts, lease_worker, started, agent_id
             FROM tasks WHERE {which} lease_expires <= {NOW_MS_SQL}
             ORDER BY lease_expires, seq FOR UPDATE SKIP LOCKED"
        ),
        &values,
    )
}

/// Ends the leases of the rows [`expired_sql`] locked.
fn reap_rows(tx: &mut Tx<'_>, rows: Vec<SimpleQueryRow>, actor: Actor<'_>) -> PgResult<Reaped> {
    let mut reaped = Reaped::default();
    if rows.is_empty() {
        return Ok(reaped);
    }
    let now = tx.now()?;
    for row in rows {
        let seq = row.number(0)?;
        let id = row.required(1)?;
        let attempt = row.number(2)?;
        let max_attempts = row.number(3)?;
        let worker = row.required(4)?;
        let started = row.get(5).map(str::to_owned);
        let agent = row.required(6)?;
        let state = lease::expiry(attempt, max_attempts, &worker, started, &now);
        let to = state.status;
        tx.execute(
            "UPDATE tasks SET status = $2, started = $3, blocker = $4, fence = fence + 1,
             lease_expires = NULL WHERE seq = $1",
            &[&seq, &to.as_str(), &state.started, &state.blocker],
        )?;
        tx.event(
            &agent,
            Some(&id),
            EventKind::LeaseExpired,
            actor,
            &history::lease_expired(&worker, attempt, to),
        );
        reaped.add(id, to);
    }
    Ok(reaped)
}

/// Ends the expired leases of the agent (of every agent with `None`).
pub(super) fn reap(tx: &mut Tx<'_>, agent_id: Option<&str>, actor: Actor<'_>) -> PgResult<Reaped> {
    let expired = expired_sql(tx, agent_id)?;
    let rows = tx.begin_with(&expired)?;
    reap_rows(tx, rows, actor)
}

/// Requeues the agent's expired leases, then takes its first ready task with a lease
/// (`before` runs first). One round trip sends `before`, the search for expired leases
/// and the claim's search; when expired leases were requeued, the claim searches again
/// after them (the row it found first stays locked until the commit, claimed or
/// not). The lease is stored with the commit.
fn claim_after(
    tx: &mut Tx<'_>,
    before: &str,
    agent_id: &str,
    grant: &Grant<'_>,
) -> PgResult<Option<(Task, LeaseRow)>> {
    let expired = expired_sql(tx, Some(agent_id))?;
    let first = tx.named(
        &format!(
            "SELECT {TASK_COLUMNS}, seq, fence, attempts FROM tasks
             WHERE agent_id = $1::text AND status = 'queued' AND unmet = 0
             ORDER BY priority, seq LIMIT 1 FOR UPDATE SKIP LOCKED"
        ),
        &[literal(Some(agent_id))],
    )?;
    let mut results = tx.begin_with_each(&format!("{before}{expired};\n{first}"))?;
    let found = results.pop().unwrap_or_default();
    let expired = results.pop().unwrap_or_default();
    let reaped = reap_rows(tx, expired, Some(grant.worker))?;
    let rows = if reaped.requeued.is_empty() {
        found
    } else {
        tx.begin_with(&first)?
    };
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut task = task_from(row)?;
    let seq = row.number(TASK_COLUMN_COUNT)?;
    let fence = row.number(TASK_COLUMN_COUNT + 1)?;
    let attempts = row.number(TASK_COLUMN_COUNT + 2)?;
    let now_ms = tx.now_ms()?;
    let lease = grant.lease(agent_id, &mut task, fence, attempts, now_ms)?;
    let store = tx.named(
        "UPDATE tasks SET status = 'in_progress', started = $1::text, fence = $2::bigint,
         attempts = attempts + 1, lease_token = $3::text, lease_worker = $4::text,
         lease_max_attempts = $5::bigint, lease_ms = $6::bigint, lease_granted = $7::bigint,
         lease_expires = $8::bigint
         WHERE seq = $9::bigint",
        &[
            literal(task.started.as_deref()),
            lease.fence.to_string(),
            literal(Some(&lease.token)),
            literal(Some(&lease.worker)),
            lease.max_attempts.to_string(),
            grant.terms.lease_ms.to_string(),
            lease.granted_ms.to_string(),
            lease.expires_ms.to_string(),
            seq.to_string(),
        ],
    )?;
    tx.defer(store);
    tx.event(
        agent_id,
        Some(&task.id),
        EventKind::Claimed,
        Some(grant.worker),
        &history::claimed(Some((grant.worker, lease.fence))),
    );
    Ok(Some((task, lease)))
}

/// Requeues the agent's expired leases, then takes its first ready task with a lease.
pub(super) fn claim(
    tx: &mut Tx<'_>,
    agent_id: &str,
    grant: &Grant<'_>,
) -> PgResult<Option<(Task, LeaseRow)>> {
    claim_after(tx, "", agent_id, grant)
}

/// The task of a current lease: its row, agent, lease duration and worker, and the
/// task as it is.
struct Current {
    seq: i64,
    agent_id: String,
    lease_ms: i64,
    worker: String,
    task: Task,
}

/// The row and agent of the task whose current lease `token` is (locked, in the round
/// trip that begins the transaction); the lease rules' error otherwise.
fn current(tx: &mut Tx<'_>, token: &Token<'_>) -> PgResult<Current> {
    let load = tx.named(
        &format!(
            "SELECT {TASK_COLUMNS}, seq, agent_id, fence, lease_token, lease_expires IS NOT NULL,
             lease_worker, lease_ms FROM tasks WHERE id = $1::text FOR UPDATE"
        ),
        &[literal(Some(token.task_id))],
    )?;
    let rows = tx.begin_with(&load)?;
    let (holder, current) = match rows.first() {
        Some(r) => {
            let at = TASK_COLUMN_COUNT;
            let task = task_from(r)?;
            let worker = r.get(at + 5).map(str::to_owned);
            let current = Current {
                seq: r.number(at)?,
                agent_id: r.required(at + 1)?,
                lease_ms: r.get(at + 6).and_then(|v| v.parse().ok()).unwrap_or(0),
                worker: worker.clone().unwrap_or_default(),
                task: task.clone(),
            };
            let holder = Holder::Task {
                status: task.status,
                fence: r.number(at + 2)?,
                token: r.get(at + 3).map(str::to_owned),
                held: r.get(at + 4) == Some("t"),
                worker,
            };
            (holder, Some(current))
        }
        None => {
            let gone = tx.query_opt(
                "SELECT fence, worker FROM lease_tombstones WHERE task_id = $1",
                &[&token.task_id],
            )?;
            let holder = match gone {
                Some(r) => Holder::Deleted {
                    fence: r.try_get(0)?,
                    worker: r.try_get(1)?,
                },
                None => Holder::Never,
            };
            (holder, None)
        }
    };
    lease::check(token, &holder)?;
    current.ok_or_else(|| {
        Fail::Rule(crate::error::Error::Internal(
            "a held lease without its task; this is a bug".into(),
        ))
    })
}

fn load_lease(tx: &mut Tx<'_>, seq: i64) -> PgResult<LeaseRow> {
    let row = tx.query_one(
        &format!("SELECT {LEASE_COLUMNS} FROM tasks WHERE seq = $1"),
        &[&seq],
    )?;
    lease_from_row(&row, 0)
}

/// Extends the lease of `token` to now + `lease_ms` (default: its own duration).
pub(super) fn renew(
    tx: &mut Tx<'_>,
    token: &Token<'_>,
    lease_ms: Option<i64>,
) -> PgResult<LeaseRow> {
    let Current {
        seq, lease_ms: own, ..
    } = current(tx, token)?;
    let lease_ms = lease_ms.unwrap_or(own);
    let expires = tx.now_ms()? + lease_ms;
    tx.execute(
        "UPDATE tasks SET lease_ms = $2, lease_expires = greatest($3, lease_granted) WHERE seq = $1",
        &[&seq, &lease_ms, &expires],
    )?;
    load_lease(tx, seq)
}

/// Applies `patch` to the task of `token` and ends its lease; then, with `next`,
/// claims the agent's next task with a lease. The finish is sent with what follows it
/// (the claim's first statement, or the commit).
pub(super) fn finish(
    tx: &mut Tx<'_>,
    token: &Token<'_>,
    patch: &mut Patcher<'_>,
    next: Option<Terms>,
) -> PgResult<(Task, Option<(Task, LeaseRow)>)> {
    let Current {
        seq,
        agent_id,
        worker,
        task,
        ..
    } = current(tx, token)?;
    let task = patch(task, &tx.now()?)?;
    tx.event(
        &agent_id,
        Some(&task.id),
        EventKind::Finished,
        Some(&worker),
        &history::finished(task.status),
    );
    let finished = tx.named(
        "UPDATE tasks SET status = $1::text, started = $2::text, completed = $3::text,
         result = $4::text, blocker = $5::text, lease_expires = NULL WHERE seq = $6::bigint",
        &[&lifecycle_values(&task)[..], &[seq.to_string()]].concat(),
    )?;
    let next = match next {
        Some(terms) => claim_after(
            tx,
            &format!("{finished};\n"),
            &agent_id,
            &Grant {
                worker: &worker,
                terms,
            },
        )?,
        None => {
            tx.defer(finished);
            None
        }
    };
    Ok((task, next))
}

/// Releases the task of `token` with `patch` and takes back the attempt its claim
/// counted.
pub(super) fn give_back(
    tx: &mut Tx<'_>,
    token: &Token<'_>,
    patch: &mut Patcher<'_>,
) -> PgResult<Task> {
    let (task, _) = finish(tx, token, patch, None)?;
    let taken_back = tx.named(
        "UPDATE tasks SET attempts = attempts - 1 WHERE id = $1::text AND attempts > 0",
        &[literal(Some(token.task_id))],
    )?;
    tx.defer(taken_back);
    Ok(task)
}

/// The held lease of the task (`Some(None)`: none; `None`: no such task).
pub(super) fn get(
    tx: &mut Tx<'_>,
    agent_id: &str,
    task_id: &str,
) -> PgResult<Option<Option<LeaseRow>>> {
    let Some(row) = tx.query_opt(
        &format!(
            "SELECT lease_expires IS NOT NULL, {LEASE_COLUMNS} FROM tasks
             WHERE id = $1 AND agent_id = $2"
        ),
        &[&task_id, &agent_id],
    )?
    else {
        return Ok(None);
    };
    if row.try_get::<_, bool>(0)? {
        Ok(Some(Some(lease_from_row(&row, 1)?)))
    } else {
        Ok(Some(None))
    }
}

/// Whether the agent has a ready task, and when its first held lease expires.
pub(super) fn claimable(tx: &mut Tx<'_>, agent_id: &str) -> PgResult<Claimable> {
    let row = tx.query_one(
        "SELECT (SELECT coalesce(sum(queued - waiting), 0)::bigint FROM counts WHERE agent_id = $1),
                (SELECT min(lease_expires) FROM tasks
                 WHERE agent_id = $1 AND lease_expires IS NOT NULL)",
        &[&agent_id],
    )?;
    let ready: i64 = row.try_get(0)?;
    Ok(Claimable {
        ready: ready > 0,
        next_expiry_ms: row.try_get(1)?,
    })
}
