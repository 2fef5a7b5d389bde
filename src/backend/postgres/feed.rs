//! The change feed, task histories and the agents list on PostgreSQL (SPEC §14), and
//! the server's access tokens.

use postgres::Row;

use super::pool::Tx;
use super::{Fail, PgResult};
use crate::auth::{default_name, NewToken, TokenRow};
use crate::history::{AgentSummary, Event};
use crate::rules::history::Checked;
use crate::rules::lease::format_ms;

const EVENT_COLUMNS: &str = "seq, at, agent_id, task_id, type, actor, data";

fn event_from_row(row: &Row) -> PgResult<Event> {
    let kind: String = row.try_get(4)?;
    let data: String = row.try_get(6)?;
    let bad = |what: String| {
        Fail::Rule(crate::Error::storage(format!(
            "a stored event cannot be read ({what}); the database was changed by something \
             other than agent-backlog"
        )))
    };
    Ok(Event {
        seq: row.try_get(0)?,
        at: format_ms(row.try_get(1)?),
        agent_id: row.try_get(2)?,
        task_id: row.try_get(3)?,
        kind: kind.parse().map_err(|e: crate::Error| bad(e.to_string()))?,
        actor: row.try_get(5)?,
        data: serde_json::from_str(&data).map_err(|e| bad(e.to_string()))?,
    })
}

/// A page of the feed: the events after `q.after`, of one agent or all.
pub(super) fn page(tx: &mut Tx<'_>, q: &Checked) -> PgResult<Vec<Event>> {
    let rows = match &q.agent_id {
        Some(agent_id) => tx.query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE agent_id = $3 AND seq > $1
                 ORDER BY seq LIMIT $2"
            ),
            &[&q.after, &q.limit, agent_id],
        )?,
        None => tx.query(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"),
            &[&q.after, &q.limit],
        )?,
    };
    rows.iter().map(event_from_row).collect()
}

/// The task's events, oldest first; `None` when the task never was in the agent's
/// backlog.
pub(super) fn history(
    tx: &mut Tx<'_>,
    agent_id: &str,
    task_id: &str,
) -> PgResult<Option<Vec<Event>>> {
    // A task that exists or was deleted has a history, empty once its events are
    // pruned (SPEC §14: not_found only when it never had events).
    let existed = tx
        .query_opt(
            "SELECT 1 FROM tasks WHERE id = $1 AND agent_id = $2
             UNION ALL SELECT 1 FROM deleted_tasks WHERE task_id = $1 AND agent_id = $2
             LIMIT 1",
            &[&task_id, &agent_id],
        )?
        .is_some();
    let rows = tx.query(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE task_id = $1 AND agent_id = $2 ORDER BY seq"
        ),
        &[&task_id, &agent_id],
    )?;
    let events = rows
        .iter()
        .map(event_from_row)
        .collect::<PgResult<Vec<_>>>()?;
    Ok((existed || !events.is_empty()).then_some(events))
}

/// The seq of the newest event (the feed's counter), 0 when there is none.
pub(super) fn last_seq(tx: &mut Tx<'_>) -> PgResult<i64> {
    Ok(tx
        .query_one("SELECT seq FROM feed WHERE one = 1", &[])?
        .try_get(0)?)
}

/// Deletes the events with a seq below `before`, but never the newest one.
pub(super) fn prune(tx: &mut Tx<'_>, before: i64) -> PgResult<u64> {
    tx.execute(
        "DELETE FROM events WHERE seq < $1 AND seq < (SELECT seq FROM feed WHERE one = 1)",
        &[&before],
    )
}

/// A page of the agents by agent_id with their counts, and how many there are.
pub(super) fn agents(
    tx: &mut Tx<'_>,
    limit: Option<u64>,
    offset: u64,
) -> PgResult<(Vec<AgentSummary>, u64)> {
    let limit: Option<i64> = limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let rows = tx.query(
        "SELECT a.agent_id, a.prefix,
            coalesce(sum(c.queued), 0)::bigint, coalesce(sum(c.in_progress), 0)::bigint,
            coalesce(sum(c.complete), 0)::bigint, coalesce(sum(c.blocked), 0)::bigint
         FROM (SELECT agent_id, prefix FROM agents ORDER BY agent_id LIMIT $1 OFFSET $2) a
         LEFT JOIN counts c ON c.agent_id = a.agent_id
         GROUP BY a.agent_id, a.prefix ORDER BY a.agent_id",
        &[&limit, &offset],
    )?;
    let mut agents = Vec::with_capacity(rows.len());
    for r in rows {
        let counts = [r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?];
        agents.push(AgentSummary::of(r.try_get(0)?, r.try_get(1)?, counts));
    }
    let total: i64 = tx
        .query_one("SELECT count FROM agent_count WHERE one = 1", &[])?
        .try_get(0)?;
    Ok((agents, total as u64))
}

// -------------------------------------------------------------------------------------
// Tokens
// -------------------------------------------------------------------------------------

const TOKEN_COLUMNS: &str = "id, name, agent_id, admin, created, expires, revoked, hash";

fn token_from_row(row: &Row) -> PgResult<TokenRow> {
    let hash: Vec<u8> = row.try_get(7)?;
    let mut fixed = [0u8; 32];
    if hash.len() == 32 {
        fixed.copy_from_slice(&hash);
    }
    Ok(TokenRow {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        agent_id: row.try_get(2)?,
        admin: row.try_get(3)?,
        created_ms: row.try_get(4)?,
        expires_ms: row.try_get(5)?,
        revoked_ms: row.try_get(6)?,
        hash: fixed,
    })
}

fn name_taken(tx: &mut Tx<'_>, name: &str) -> PgResult<bool> {
    Ok(tx
        .query_opt("SELECT 1 FROM tokens WHERE name = $1", &[&name])?
        .is_some())
}

/// Inserts the token (named by default after its id) with the hash of its secret;
/// `None` when the name is taken.
pub(super) fn create_token(
    tx: &mut Tx<'_>,
    new: &NewToken<'_>,
    hash_of: &dyn Fn(i64) -> [u8; 32],
) -> PgResult<Option<TokenRow>> {
    // One token at a time: names are decided against the same table.
    tx.execute("SELECT pg_advisory_xact_lock(7236115118)", &[])?;
    if let Some(name) = new.name {
        if name_taken(tx, name)? {
            return Ok(None);
        }
    }
    let id: i64 = tx
        .query_one("SELECT nextval('tokens_id')", &[])?
        .try_get(0)?;
    let name = match new.name {
        Some(name) => name.to_owned(),
        None => {
            let base = default_name(new.agent_id, id);
            let mut name = base.clone();
            let mut n = 1;
            while name_taken(tx, &name)? {
                n += 1;
                name = format!("{base}-{n}");
            }
            name
        }
    };
    let hash = hash_of(id).to_vec();
    let now = tx.now_ms()?;
    let expires = new.lifetime_ms.map(|ms| now + ms);
    tx.execute(
        "INSERT INTO tokens (id, name, agent_id, admin, hash, created, expires)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&id, &name, &new.agent_id, &new.admin, &hash, &now, &expires],
    )?;
    token(tx, id)
}

/// Every token, oldest first.
pub(super) fn list_tokens(tx: &mut Tx<'_>) -> PgResult<Vec<TokenRow>> {
    tx.query(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"),
        &[],
    )?
    .iter()
    .map(token_from_row)
    .collect()
}

/// The token `id`, if there is one.
pub(super) fn token(tx: &mut Tx<'_>, id: i64) -> PgResult<Option<TokenRow>> {
    tx.query_opt(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"),
        &[&id],
    )?
    .map(|r| token_from_row(&r))
    .transpose()
}

/// Marks the token revoked (once); `None` when there is no such token.
pub(super) fn revoke_token(tx: &mut Tx<'_>, id: i64) -> PgResult<Option<TokenRow>> {
    let now = tx.now_ms()?;
    tx.execute(
        "UPDATE tokens SET revoked = $2 WHERE id = $1 AND revoked IS NULL",
        &[&id, &now],
    )?;
    token(tx, id)
}
