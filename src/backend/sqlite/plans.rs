//! Plans: creates with dependencies and idempotency keys, edges, and the dependency
//! view of a task.
//!
//! The edges live in `dependencies` as pairs of task rows; every task keeps `unmet`,
//! the number of its dependencies that are not complete. Edge changes here adjust it;
//! status changes to or from complete and deletes adjust it by triggers of the schema
//! (`migrations/0006_dependencies.sql`), in the same transaction.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::claims::READY;
use super::tasks;
use super::{events, SqlResult};
use crate::backend::{resolve_dependencies, Actor, Created, EdgeOutcome, Key, KeyUse, NewRow};
use crate::history::EventKind;
use crate::model::{Status, Task};
use crate::plan::{DependencyGraph, TaskRef};
use crate::rules::history;

/// A task of the store by ID, of any agent: its row and whether it is complete.
fn find(conn: &Connection, task_id: &str) -> SqlResult<Option<(i64, bool)>> {
    Ok(conn
        .prepare_cached("SELECT seq, status = 'complete' FROM tasks WHERE id = ?1")?
        .query_row([task_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// A task of the agent's backlog: its row.
fn find_own(conn: &Connection, agent_id: &str, task_id: &str) -> SqlResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT seq FROM tasks WHERE id = ?1 AND agent_id = ?2")?
        .query_row([task_id, agent_id], |r| r.get(0))
        .optional()?)
}

/// The tasks an idempotency key created that still exist, in the order created, and
/// the fingerprint of the request that created them. `None` when the key is unused.
fn keyed(
    tx: &Transaction<'_>,
    agent_id: &str,
    key: &str,
) -> SqlResult<Option<(Vec<u8>, Vec<Task>)>> {
    let found = tx
        .prepare_cached(
            "SELECT k.request, k.first_number, k.count, a.prefix FROM idempotency_keys k
             JOIN agents a ON a.agent_id = k.agent_id WHERE k.agent_id = ?1 AND k.key = ?2",
        )?
        .query_row([agent_id, key], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    let Some((request, first, count, prefix)) = found else {
        return Ok(None);
    };
    let mut tasks = Vec::new();
    for number in first..first + count {
        if let Some(task) = tasks::load(tx, agent_id, &crate::backend::task_id(&prefix, number))? {
            tasks.push(task);
        }
    }
    Ok(Some((request, tasks)))
}

/// Creates `rows` for the agent, honouring `key` (see [`crate::backend::Backend::create_tasks`]).
pub(super) fn create(
    tx: &Transaction<'_>,
    agent_id: &str,
    rows: Vec<NewRow>,
    key: Option<Key<'_>>,
    created: &str,
    actor: Actor<'_>,
) -> SqlResult<Created> {
    let earlier = match key {
        Some(key) => keyed(tx, agent_id, key.key)?,
        None => None,
    };
    let freed = match KeyUse::of(key, earlier) {
        KeyUse::Answered(answer) => return Ok(answer),
        KeyUse::Freed => true,
        KeyUse::Fresh => false,
    };
    if rows.is_empty() {
        // An empty batch creates nothing, registers no agent and records no key.
        return Ok(Created::New(Vec::new()));
    }
    let deps = match resolve_dependencies(&rows, |id| find(tx, id))? {
        Ok(deps) => deps,
        Err(unknown) => return Ok(unknown),
    };
    if freed {
        tx.prepare_cached("DELETE FROM idempotency_keys WHERE agent_id = ?1 AND key = ?2")?
            .execute(params![agent_id, key.map(|k| k.key)])?;
    }
    let count = rows.len() as i64;
    let (tasks, first) = tasks::create(tx, agent_id, rows, &deps, created, actor)?;
    if let Some(key) = key {
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (agent_id, key, request, first_number, count)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            agent_id,
            key.key,
            key.request.as_slice(),
            first,
            count
        ])?;
    }
    Ok(Created::New(tasks))
}

/// The IDs of the tasks the row `seq` depends on, in creation order.
fn depends_on_ids(conn: &Connection, seq: i64) -> SqlResult<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT t.id FROM dependencies d JOIN tasks t ON t.seq = d.depends_seq
             WHERE d.task_seq = ?1 ORDER BY d.depends_seq",
        )?
        .query_map([seq], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// A path of dependencies from the row `from` to the row `to` (both included), if
/// `from` depends on `to` directly or through others
/// ([`crate::rules::plan::dependency_path`]).
fn path(tx: &Transaction<'_>, from: i64, to: i64) -> SqlResult<Option<Vec<i64>>> {
    let mut next = tx.prepare_cached("SELECT depends_seq FROM dependencies WHERE task_seq = ?1")?;
    crate::rules::plan::dependency_path(from, to, |level| {
        let mut edges = Vec::new();
        for &seq in level {
            let deps = next.query_map([seq], |r| r.get::<_, i64>(0))?;
            for dep in deps {
                edges.push((seq, dep?));
            }
        }
        Ok(edges)
    })
}

fn id_of(tx: &Transaction<'_>, seq: i64) -> SqlResult<String> {
    Ok(tx
        .prepare_cached("SELECT id FROM tasks WHERE seq = ?1")?
        .query_row([seq], |r| r.get(0))?)
}

/// Adds (`present`) or removes the edge `task_id` → `depends_on`; an edge that would
/// close a cycle is not added. Adding an edge that exists, or removing one that does
/// not, changes nothing and records no event.
pub(super) fn set_edge(
    tx: &Transaction<'_>,
    agent_id: &str,
    task_id: &str,
    depends_on: &str,
    present: bool,
    actor: Actor<'_>,
) -> SqlResult<EdgeOutcome> {
    let Some(task) = find_own(tx, agent_id, task_id)? else {
        return Ok(EdgeOutcome::NoTask);
    };
    let Some((dep, met)) = find(tx, depends_on)? else {
        return Ok(EdgeOutcome::NoDependency);
    };
    let changed = if present {
        // The graph has no cycle, so an edge that exists never finds one here.
        if let Some(cycle) = path(tx, dep, task)? {
            let mut ids = vec![task_id.to_owned()];
            for seq in cycle {
                ids.push(id_of(tx, seq)?);
            }
            return Ok(EdgeOutcome::Cycle(ids));
        }
        tx.prepare_cached(
            "INSERT OR IGNORE INTO dependencies (task_seq, depends_seq) VALUES (?1, ?2)",
        )?
        .execute([task, dep])?
    } else {
        tx.prepare_cached("DELETE FROM dependencies WHERE task_seq = ?1 AND depends_seq = ?2")?
            .execute([task, dep])?
    };
    if changed == 1 {
        if !met {
            let step = if present { 1 } else { -1 };
            tx.prepare_cached("UPDATE tasks SET unmet = unmet + ?2 WHERE seq = ?1")?
                .execute([task, step])?;
        }
        let kind = if present {
            EventKind::DependencyAdded
        } else {
            EventKind::DependencyRemoved
        };
        let data = history::dependency(depends_on);
        events::append(tx, agent_id, Some(task_id), kind, actor, &data)?;
    }
    Ok(EdgeOutcome::Done(depends_on_ids(tx, task)?))
}

fn task_refs(conn: &Connection, sql: &str, seq: i64) -> SqlResult<Vec<TaskRef>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([seq], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut refs = Vec::new();
    for row in rows {
        let (agent_id, id, status) = row?;
        refs.push(TaskRef {
            agent_id,
            id,
            status: status.parse::<Status>()?,
        });
    }
    Ok(refs)
}

/// The task's readiness, dependencies and dependents.
pub(super) fn graph(
    conn: &Connection,
    agent_id: &str,
    task_id: &str,
) -> SqlResult<Option<DependencyGraph>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT seq, {READY} FROM tasks WHERE id = ?1 AND agent_id = ?2"
        ))?
        .query_row([task_id, agent_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?))
        })
        .optional()?;
    let Some((seq, ready)) = found else {
        return Ok(None);
    };
    Ok(Some(DependencyGraph {
        task_id: task_id.to_owned(),
        ready,
        depends_on: task_refs(
            conn,
            "SELECT t.agent_id, t.id, t.status FROM dependencies d
             JOIN tasks t ON t.seq = d.depends_seq WHERE d.task_seq = ?1 ORDER BY d.depends_seq",
            seq,
        )?,
        dependents: task_refs(
            conn,
            "SELECT t.agent_id, t.id, t.status FROM dependencies d
             JOIN tasks t ON t.seq = d.task_seq WHERE d.depends_seq = ?1 ORDER BY d.task_seq",
            seq,
        )?,
    }))
}
