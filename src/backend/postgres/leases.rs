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
use crate::model::{Status, Task};
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

/// Whose tasks a search looks at: an agent's, or those of the agent of a task that
/// the same round trip loads (the statement reads the task's agent itself, so that
/// the search need not wait for the load's answer).
#[derive(Clone, Copy)]
enum Whose<'a> {
    /// The agent's.
    Agent(&'a str),
    /// The agent's of this task, leaving the task itself out.
    AgentOfTask(&'a str),
}

impl Whose<'_> {
    /// The condition on a task's row, and its one value (`$1`).
    fn condition(self) -> (&'static str, String) {
        match self {
            Whose::Agent(agent_id) => ("agent_id = $1::text", literal(Some(agent_id))),
            Whose::AgentOfTask(task_id) => (
                "agent_id = (SELECT agent_id FROM tasks WHERE id = $1::text) AND id <> $1::text",
                literal(Some(task_id)),
            ),
        }
    }
}

/// The statement that locks the expired leases of `whose` (of every agent with
/// `None`) as of the write's time, for [`reap_rows`]. Leases whose task another
/// writer holds are left to it.
fn expired_sql(tx: &mut Tx<'_>, whose: Option<Whose<'_>>) -> PgResult<String> {
    let (which, values) = match whose.map(Whose::condition) {
        None => ("lease_expires IS NOT NULL", Vec::new()),
        Some((condition, value)) => (condition, vec![value]),
    };
    tx.named(
        &format!(
            "SELECT seq, id, attempts, lease_max_attempts, lease_worker, started, agent_id
             FROM tasks WHERE {which} AND lease_expires <= {NOW_MS_SQL}
             ORDER BY lease_expires, seq FOR UPDATE SKIP LOCKED"
        ),
        &values,
    )
}

/// The statement that locks the first ready task of `whose`, for [`take`]. (The
/// task of [`Whose::AgentOfTask`] is in progress, never ready: leaving it out changes
/// nothing.)
fn ready_sql(tx: &mut Tx<'_>, whose: Whose<'_>) -> PgResult<String> {
    let (which, value) = whose.condition();
    tx.named(
        &format!(
            "SELECT {TASK_COLUMNS}, seq, fence, attempts FROM tasks
             WHERE {which} AND status = 'queued' AND unmet = 0
             ORDER BY priority, seq LIMIT 1 FOR UPDATE SKIP LOCKED"
        ),
        &[value],
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
    let expired = expired_sql(tx, agent_id.map(Whose::Agent))?;
    let rows = tx.begin_with(&expired)?;
    reap_rows(tx, rows, actor)
}

/// Requeues the agent's expired leases, then takes its first ready task with a lease
/// (`before` runs first). One round trip sends `before`, the search for expired leases
/// and the claim's search. The lease is stored with the commit.
fn claim_after(
    tx: &mut Tx<'_>,
    before: &str,
    agent_id: &str,
    grant: &Grant<'_>,
) -> PgResult<Option<(Task, LeaseRow)>> {
    let expired = expired_sql(tx, Some(Whose::Agent(agent_id)))?;
    let ready = ready_sql(tx, Whose::Agent(agent_id))?;
    let mut results = tx.begin_with_each(&format!("{before}{expired};\n{ready}"))?;
    let found = results.pop().unwrap_or_default();
    let expired = results.pop().unwrap_or_default();
    reap_and_take(tx, expired, found, &ready, agent_id, grant)
}

/// Requeues the expired leases `expired` (rows of [`expired_sql`]), then takes the
/// task `found` (rows of `ready`, a [`ready_sql`] sent with it) with a lease. When
/// leases were requeued, it searches again with `ready`: a requeued task may come
/// first (the row found first stays locked until the commit, claimed or not).
fn reap_and_take(
    tx: &mut Tx<'_>,
    expired: Vec<SimpleQueryRow>,
    found: Vec<SimpleQueryRow>,
    ready: &str,
    agent_id: &str,
    grant: &Grant<'_>,
) -> PgResult<Option<(Task, LeaseRow)>> {
    let reaped = reap_rows(tx, expired, Some(grant.worker))?;
    let rows = if reaped.requeued.is_empty() {
        found
    } else {
        tx.begin_with(ready)?
    };
    take(tx, rows, agent_id, grant)
}

/// Takes the task of `rows` (a [`ready_sql`]'s, if it found one) with a lease, stored
/// with the commit.
fn take(
    tx: &mut Tx<'_>,
    rows: Vec<SimpleQueryRow>,
    agent_id: &str,
    grant: &Grant<'_>,
) -> PgResult<Option<(Task, LeaseRow)>> {
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

/// The task of a current lease: its row, agent, lease duration and worker, the task
/// as it is, and whether other tasks depend on it.
struct Current {
    seq: i64,
    agent_id: String,
    lease_ms: i64,
    worker: String,
    task: Task,
    has_dependents: bool,
}

/// The statement that loads and locks the task of `token`, for [`current_from`].
fn load_sql(tx: &mut Tx<'_>, token: &Token<'_>) -> PgResult<String> {
    tx.named(
        &format!(
            "SELECT {TASK_COLUMNS}, seq, agent_id, fence, lease_token, lease_expires IS NOT NULL,
             lease_worker, lease_ms,
             EXISTS (SELECT 1 FROM dependencies d WHERE d.depends_seq = tasks.seq)
             FROM tasks WHERE id = $1::text FOR UPDATE"
        ),
        &[literal(Some(token.task_id))],
    )
}

/// The row and agent of the task whose current lease `token` is (locked, in the round
/// trip that begins the transaction); the lease rules' error otherwise.
fn current(tx: &mut Tx<'_>, token: &Token<'_>) -> PgResult<Current> {
    let load = load_sql(tx, token)?;
    let rows = tx.begin_with(&load)?;
    current_from(tx, token, rows)
}

/// [`current`] from the rows of a [`load_sql`].
fn current_from(
    tx: &mut Tx<'_>,
    token: &Token<'_>,
    rows: Vec<SimpleQueryRow>,
) -> PgResult<Current> {
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
                has_dependents: r.get(at + 7) == Some("t"),
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
/// claims the agent's next task with a lease.
///
/// With `next`, the first round trip loads the task and searches for the agent's
/// expired leases and ready task too, and the second stores the finish and the claim
/// and commits. When the finish can change what the claim finds (the task has
/// dependents, or goes back to queued), it is sent before a second search instead.
/// Without `next`, the finish is sent with the commit.
pub(super) fn finish(
    tx: &mut Tx<'_>,
    token: &Token<'_>,
    patch: &Patcher<'_>,
    next: Option<Terms>,
) -> PgResult<(Task, Option<(Task, LeaseRow)>)> {
    let load = load_sql(tx, token)?;
    let Some(terms) = next else {
        let rows = tx.begin_with(&load)?;
        let current = current_from(tx, token, rows)?;
        let (task, finished) = finished(tx, current, patch)?;
        tx.defer(finished.sql);
        return Ok((task, None));
    };
    let whose = Whose::AgentOfTask(token.task_id);
    let expired = expired_sql(tx, Some(whose))?;
    let ready = ready_sql(tx, whose)?;
    let mut results = tx.begin_with_each(&format!("{load};\n{expired};\n{ready}"))?;
    let found = results.pop().unwrap_or_default();
    let expired = results.pop().unwrap_or_default();
    let loaded = results.pop().unwrap_or_default();
    let current = current_from(tx, token, loaded)?;
    let (worker, agent_id) = (current.worker.clone(), current.agent_id.clone());
    let grant = Grant {
        worker: &worker,
        terms,
    };
    let (task, finished) = finished(tx, current, patch)?;
    let next = if finished.changes_readiness {
        let ready = ready_sql(tx, Whose::Agent(&agent_id))?;
        let found = tx.begin_with(&format!("{};\n{ready}", finished.sql))?;
        reap_and_take(tx, expired, found, &ready, &agent_id, &grant)?
    } else {
        tx.defer(finished.sql);
        reap_and_take(tx, expired, found, &ready, &agent_id, &grant)?
    };
    Ok((task, next))
}

/// The statement that stores a finish, and whether it can make another task ready or
/// be claimed itself.
struct Finished {
    sql: String,
    changes_readiness: bool,
}

/// Applies `patch` to the task of `current` and records its event; the statement that
/// stores the finish and ends the lease is for the caller to send.
fn finished(tx: &mut Tx<'_>, current: Current, patch: &Patcher<'_>) -> PgResult<(Task, Finished)> {
    let task = patch(current.task, &tx.now()?)?;
    tx.event(
        &current.agent_id,
        Some(&task.id),
        EventKind::Finished,
        Some(&current.worker),
        &history::finished(task.status),
    );
    let sql = tx.named(
        "UPDATE tasks SET status = $1::text, started = $2::text, completed = $3::text,
         result = $4::text, blocker = $5::text, lease_expires = NULL WHERE seq = $6::bigint",
        &[&lifecycle_values(&task)[..], &[current.seq.to_string()]].concat(),
    )?;
    let changes_readiness = current.has_dependents || task.status == Status::Queued;
    Ok((
        task,
        Finished {
            sql,
            changes_readiness,
        },
    ))
}

/// Releases the task of `token` with `patch` and takes back the attempt its claim
/// counted.
pub(super) fn give_back(tx: &mut Tx<'_>, token: &Token<'_>, patch: &Patcher<'_>) -> PgResult<Task> {
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

/// Whether the agent has a ready task, and how long until its first held lease
/// expires by the database's clock.
pub(super) fn claimable(tx: &mut Tx<'_>, agent_id: &str) -> PgResult<Claimable> {
    let row = tx.query_one(
        &format!(
            "SELECT (SELECT coalesce(sum(queued - waiting), 0)::bigint FROM counts WHERE agent_id = $1),
                    (SELECT min(lease_expires) FROM tasks
                     WHERE agent_id = $1 AND lease_expires IS NOT NULL) - {NOW_MS_SQL}"
        ),
        &[&agent_id],
    )?;
    let ready: i64 = row.try_get(0)?;
    Ok(Claimable {
        ready: ready > 0,
        next_expiry_in_ms: row.try_get(1)?,
    })
}
