//! Listings and counts: pages in priority order, totals from the counts by agent and
//! priority.

use rusqlite::{Connection, Row, Transaction};

use super::claims::PRIORITIES;
use super::tasks::TASK_COLUMNS;
use super::SqlResult;
use crate::backend::Filter;
use crate::model::{Status, Summary};

/// The statuses listed: the one asked for (queued for the ready queue), or all four.
fn statuses(filter: &Filter<'_>) -> Vec<Status> {
    match filter.status {
        _ if filter.ready => vec![Status::Queued],
        Some(status) => vec![status],
        None => Status::ALL.to_vec(),
    }
}

/// One page in priority, then creation order. Without a status filter it is a merge
/// of one indexed arm per status, so a page reads about `limit + offset` index entries
/// per status however large the backlog is. Only fixed SQL fragments are put
/// together; every value is a bound parameter.
pub(super) fn page_sql(filter: &Filter<'_>) -> String {
    let mut extra = String::new();
    if filter.agent_id.is_some() {
        extra.push_str(" AND agent_id = :agent_id");
    }
    if filter.priority.is_some() {
        extra.push_str(" AND priority = :priority");
    } else {
        extra.push_str(" AND ");
        extra.push_str(PRIORITIES);
    }
    // One agent's listing reads the `(agent_id, priority, status, waiting)` index: an
    // arm per value of `waiting` keeps each arm in creation order (only a queued task
    // can be waiting). Across agents the `(priority, status)` index needs no split.
    let waiting: &[&str] = match (filter.agent_id.is_some(), filter.ready) {
        (_, true) => &[" AND waiting = 0"],
        (true, false) => &[" AND waiting = 0", " AND waiting = 1"],
        (false, false) => &[""],
    };
    let extra = extra.as_str();
    let arms: Vec<String> = statuses(filter)
        .into_iter()
        .flat_map(|status| {
            let split = if status == Status::Queued { waiting } else { &waiting[..1] };
            split.iter().map(move |w| {
                format!(
                    "SELECT {TASK_COLUMNS}, agent_id, seq FROM tasks WHERE status = '{status}'{w}{extra}"
                )
            })
        })
        .collect();
    format!(
        "{} ORDER BY priority, seq LIMIT :limit OFFSET :offset",
        arms.join(" UNION ALL ")
    )
}

/// The number of matches, from the counts by agent and priority: at most ten rows per
/// agent, whatever the filter.
pub(super) fn count_sql(filter: &Filter<'_>) -> String {
    let mut filters = String::new();
    if filter.agent_id.is_some() {
        filters.push_str(" AND agent_id = :agent_id");
    }
    if filter.priority.is_some() {
        filters.push_str(" AND priority = :priority");
    }
    let counted = match filter.status {
        _ if filter.ready => "queued - waiting",
        Some(status) => status.as_str(),
        None => "queued + in_progress + complete + blocked",
    };
    format!("SELECT coalesce(sum({counted}), 0) FROM counts WHERE 1{filters}")
}

/// The page of matching rows, mapped by `map`, and the total of matches, read in one
/// snapshot (the caller's transaction).
pub(super) fn page<T>(
    tx: &Transaction<'_>,
    filter: &Filter<'_>,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> SqlResult<(Vec<T>, u64)> {
    let mut args: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
    if let Some(agent_id) = &filter.agent_id {
        args.push((":agent_id", agent_id));
    }
    if let Some(priority) = &filter.priority {
        args.push((":priority", priority));
    }
    let total: i64 = tx
        .prepare_cached(&count_sql(filter))?
        .query_row(args.as_slice(), |r| r.get(0))?;
    // SQLite takes a negative limit as "no limit"; larger values than i64 hold are none.
    let limit = filter
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
    args.push((":limit", &limit));
    args.push((":offset", &offset));
    let rows = tx
        .prepare_cached(&page_sql(filter))?
        .query_map(args.as_slice(), map)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total as u64))
}

/// The agent's counts by status; zeros for an agent without a row.
pub(super) fn summary(conn: &Connection, agent_id: &str) -> SqlResult<Summary> {
    let counts = conn
        .prepare_cached(
            "SELECT coalesce(sum(queued), 0), coalesce(sum(in_progress), 0),
             coalesce(sum(complete), 0), coalesce(sum(blocked), 0)
             FROM counts WHERE agent_id = ?1",
        )?
        .query_row([agent_id], |r| {
            Ok([r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
        })?;
    Ok(Summary::of(counts))
}
