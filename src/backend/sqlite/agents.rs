//! Agents: their counters and prefixes, and the counts of new tasks.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{events, SqlResult};
use crate::backend::{Actor, NewCounts, PrefixOutcome};
use crate::history::EventKind;
use crate::rules::history;
use crate::rules::prefix;

/// Takes `count` consecutive task numbers for `agent_id`, registering the agent and
/// taking its derived prefix on its first task. Returns the prefix and the first
/// number. (The tasks are counted by [`count_new`] once inserted.)
pub(super) fn take_numbers(
    tx: &Transaction<'_>,
    agent_id: &str,
    count: i64,
) -> SqlResult<(String, i64)> {
    let updated = tx
        .prepare_cached("UPDATE agents SET next_number = next_number + ?2 WHERE agent_id = ?1")?
        .execute(params![agent_id, count])?;
    if updated == 1 {
        let (prefix, next): (String, i64) = tx
            .prepare_cached("SELECT prefix, next_number FROM agents WHERE agent_id = ?1")?
            .query_row([agent_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        return Ok((prefix, next - count));
    }
    let base = prefix::derive_prefix(agent_id);
    let prefix = take_prefix(tx, &base, |candidate| {
        Ok(tx
            .prepare_cached(
                "INSERT INTO agents (agent_id, prefix, next_number) VALUES (?1, ?2, ?3)
                 ON CONFLICT (prefix) DO NOTHING",
            )?
            .execute(params![agent_id, candidate, 1 + count])?
            == 1)
    })?;
    Ok((prefix, 1))
}

/// Counts new queued tasks of the agent: `queued[p - 1]` of priority `p`, of which
/// `waiting[p - 1]` wait for dependencies. One upsert per priority present, rather
/// than a trigger run per inserted row.
pub(super) fn count_new(tx: &Transaction<'_>, agent_id: &str, counts: &NewCounts) -> SqlResult<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO counts (agent_id, priority, queued, waiting) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (agent_id, priority) DO UPDATE SET
         queued = queued + excluded.queued, waiting = waiting + excluded.waiting",
    )?;
    for (priority, queued, waiting) in counts.by_priority() {
        upsert.execute(params![agent_id, priority, queued, waiting])?;
    }
    Ok(())
}

/// Finds the first free candidate of `base` from the base's counter on, taking it
/// with `try_take` (which returns `false` when the candidate is held), and moves the
/// counter past it. The counter is never past a free candidate: a candidate is freed
/// only when `set_prefix` moves an agent without tasks to another prefix, and then
/// [`set_prefix`] moves the counter back to it. So over the life of the store each
/// candidate is tried about once, and a new agent costs the same whatever its number.
fn take_prefix(
    tx: &Transaction<'_>,
    base: &str,
    mut try_take: impl FnMut(&str) -> SqlResult<bool>,
) -> SqlResult<String> {
    let start: u32 = tx
        .prepare_cached("SELECT next FROM prefix_bases WHERE base = ?1")?
        .query_row([base], |r| r.get(0))
        .optional()?
        .unwrap_or(1);
    for n in start.max(1).. {
        let candidate = prefix::candidate(base, n);
        if try_take(&candidate)? {
            tx.prepare_cached(
                "INSERT INTO prefix_bases (base, next) VALUES (?1, ?2)
                 ON CONFLICT (base) DO UPDATE SET next = excluded.next",
            )?
            .execute(params![base, n + 1])?;
            return Ok(candidate);
        }
    }
    unreachable!("an unbounded range always yields a free prefix")
}

/// Gives `prefix` to the agent, unless another agent holds it or the agent's tasks
/// have fixed its own.
pub(super) fn set_prefix(
    tx: &Transaction<'_>,
    agent_id: &str,
    prefix: &str,
    actor: Actor<'_>,
) -> SqlResult<PrefixOutcome> {
    let current: Option<(String, i64)> = tx
        .prepare_cached("SELECT prefix, next_number FROM agents WHERE agent_id = ?1")?
        .query_row([agent_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match current {
        Some((held, _)) if held == prefix => return Ok(PrefixOutcome::Set),
        Some((held, next)) if next > 1 => return Ok(PrefixOutcome::FixedAt(held)),
        _ => {}
    }
    let holder: Option<String> = tx
        .prepare_cached("SELECT agent_id FROM agents WHERE prefix = ?1")?
        .query_row([prefix], |r| r.get(0))
        .optional()?;
    if let Some(holder) = holder {
        return Ok(PrefixOutcome::HeldBy(holder));
    }
    tx.prepare_cached(
        "INSERT INTO agents (agent_id, prefix) VALUES (?1, ?2)
         ON CONFLICT (agent_id) DO UPDATE SET prefix = excluded.prefix",
    )?
    .execute([agent_id, prefix])?;
    // The prefix the agent gave up is free again: when it is a candidate of a derived
    // base, the base's next search must start no later than it (SPEC §5: the first
    // free candidate).
    if let Some((given_up, _)) = &current {
        if let Some((base, n)) = prefix::as_candidate(given_up) {
            tx.prepare_cached("UPDATE prefix_bases SET next = min(next, ?2) WHERE base = ?1")?
                .execute(params![base, n])?;
        }
    }
    let data = history::prefix_set(prefix);
    events::append(tx, agent_id, None, EventKind::PrefixSet, actor, &data)?;
    Ok(PrefixOutcome::Set)
}
