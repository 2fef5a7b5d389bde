//! Tasks on PostgreSQL: creates (with numbers, prefixes, dependencies and idempotency
//! keys), patches, deletes, claims, edges, listings and counts.
//!
//! Each function runs inside the caller's transaction ([`Tx`]) and locks what it is
//! about to change as it reads it, so that writers of other tasks go on beside it.

use std::collections::HashMap;

use postgres::Row;

use super::pool::{literal, Columns, Tx, NOW_MS_SQL, NOW_TEXT};
use super::PgResult;
use crate::backend::{
    resolve_dependencies, task_id, Actor, Created, EdgeOutcome, Filter, Key, KeyUse, NewCounts,
    NewRow, Patcher, PrefixOutcome,
};
use crate::history::EventKind;
use crate::model::{Status, Summary, Task};
use crate::plan::{DependencyGraph, TaskRef};
use crate::rules::{history, lifecycle, prefix};

/// The task columns, in the order [`task_from`] reads them: all text, so that rows of
/// either protocol read alike. The priority as text is named `priority_text`, so that
/// `ORDER BY priority` in a query that selects these still means the number (an output
/// column named `priority` would take its place, and sort `10` before `2`).
pub(super) const TASK_COLUMNS: &str = "id, title, description, priority::text AS priority_text, \
     status, created, started, completed, result, blocker";
/// The columns of a task row as stored, in the order of [`TASK_COLUMNS`]: for a
/// subquery that a query of [`TASK_COLUMNS`] reads from.
const STORED_TASK_COLUMNS: &str =
    "id, title, description, priority, status, created, started, completed, result, blocker";
/// How many columns [`TASK_COLUMNS`] holds; extra columns of a query come after them.
pub(super) const TASK_COLUMN_COUNT: usize = 10;

/// The readiness predicate (SPEC §13), that of the `tasks_ready` indexes.
pub(super) const READY: &str = "status = 'queued' AND unmet = 0";

/// Reads the task columns, in `TASK_COLUMNS` order, from the start of the row.
pub(super) fn task_from(row: &impl Columns) -> PgResult<Task> {
    Ok(Task {
        id: row.required(0)?,
        title: row.required(1)?,
        description: row.text(2)?,
        priority: row.required(3)?.parse().unwrap_or(0),
        status: row.required(4)?.parse::<Status>()?,
        created: row.required(5)?,
        started: row.text(6)?,
        completed: row.text(7)?,
        result: row.text(8)?,
        blocker: row.text(9)?,
    })
}

/// A task's lifecycle columns as SQL values ([`literal`]s), in the order status,
/// started, completed, result, blocker: for the statements that store its new state.
pub(super) fn lifecycle_values(task: &Task) -> [String; 5] {
    [
        literal(Some(task.status.as_str())),
        literal(task.started.as_deref()),
        literal(task.completed.as_deref()),
        literal(task.result.as_deref()),
        literal(task.blocker.as_deref()),
    ]
}
/// The task, if it is in the agent's backlog.
pub(super) fn load(tx: &mut Tx<'_>, agent_id: &str, task_id: &str) -> PgResult<Option<Task>> {
    tx.query_opt(
        &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND agent_id = $2"),
        &[&task_id, &agent_id],
    )?
    .map(|row| task_from(&row))
    .transpose()
}

// -------------------------------------------------------------------------------------
// Agents: numbers and prefixes
// -------------------------------------------------------------------------------------

/// Takes `count` consecutive task numbers for `agent_id` (registering the agent and
/// taking its derived prefix on its first task). Returns the prefix and first number.
fn take_numbers(tx: &mut Tx<'_>, agent_id: &str, count: i64) -> PgResult<(String, i64)> {
    loop {
        if let Some(row) = tx.query_opt(
            "UPDATE agents SET next_number = next_number + $2 WHERE agent_id = $1
             RETURNING prefix, next_number",
            &[&agent_id, &count],
        )? {
            let next: i64 = row.try_get(1)?;
            return Ok((row.try_get(0)?, next - count));
        }
        // A new agent takes a prefix: one at a time with set_prefix, which decides
        // against the same table (see there).
        tx.execute("SELECT pg_advisory_xact_lock(7236115116)", &[])?;
        let base = prefix::derive_prefix(agent_id);
        let start: i64 = tx
            .query_opt("SELECT next FROM prefix_bases WHERE base = $1", &[&base])?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(1);
        for n in start.max(1).. {
            let candidate = prefix::candidate(&base, u32::try_from(n).unwrap_or(u32::MAX));
            let taken = tx.execute(
                "INSERT INTO agents (agent_id, prefix, next_number) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&agent_id, &candidate, &(1 + count)],
            )?;
            if taken == 1 {
                tx.execute(
                    "INSERT INTO prefix_bases (base, next) VALUES ($1, $2)
                     ON CONFLICT (base) DO UPDATE SET next = excluded.next",
                    &[&base, &(n + 1)],
                )?;
                return Ok((candidate, 1));
            }
            // Another writer registered the agent meanwhile: number from its row.
            if tx
                .query_opt("SELECT 1 FROM agents WHERE agent_id = $1", &[&agent_id])?
                .is_some()
            {
                break;
            }
        }
    }
}

/// Counts new queued tasks of the agent by priority in the session's shard, one upsert
/// per priority present.
fn count_new(tx: &mut Tx<'_>, agent_id: &str, counts: &NewCounts) -> PgResult<()> {
    for (priority, queued, waiting) in counts.by_priority() {
        let priority = priority as i32;
        tx.execute(
            "SELECT agent_backlog_count_change($1, $2, $3, 0, 0, 0, $4)",
            &[&agent_id, &priority, &queued, &waiting],
        )?;
    }
    Ok(())
}

/// Gives `prefix` to the agent, unless another agent holds it or the agent's tasks
/// have fixed its own.
pub(super) fn set_prefix(
    tx: &mut Tx<'_>,
    agent_id: &str,
    prefix: &str,
    actor: Actor<'_>,
) -> PgResult<PrefixOutcome> {
    // One prefix change at a time, and none while a new agent takes its derived prefix
    // (take_numbers takes the same lock): a prefix found free here stays free.
    tx.execute("SELECT pg_advisory_xact_lock(7236115116)", &[])?;
    let current = tx
        .query_opt(
            "SELECT prefix, next_number FROM agents WHERE agent_id = $1 FOR UPDATE",
            &[&agent_id],
        )?
        .map(|r| Ok::<_, super::Fail>((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
        .transpose()?;
    match &current {
        Some((held, _)) if held == prefix => return Ok(PrefixOutcome::Set),
        Some((held, next)) if *next > 1 => return Ok(PrefixOutcome::FixedAt(held.clone())),
        _ => {}
    }
    if let Some(row) = tx.query_opt("SELECT agent_id FROM agents WHERE prefix = $1", &[&prefix])? {
        return Ok(PrefixOutcome::HeldBy(row.try_get(0)?));
    }
    tx.execute(
        "INSERT INTO agents (agent_id, prefix) VALUES ($1, $2)
         ON CONFLICT (agent_id) DO UPDATE SET prefix = excluded.prefix",
        &[&agent_id, &prefix],
    )?;
    if let Some((given_up, _)) = &current {
        if let Some((base, n)) = prefix::as_candidate(given_up) {
            let n = i64::from(n);
            tx.execute(
                "UPDATE prefix_bases SET next = least(next, $2) WHERE base = $1",
                &[&base, &n],
            )?;
        }
    }
    tx.event(
        agent_id,
        None,
        EventKind::PrefixSet,
        actor,
        &history::prefix_set(prefix),
    );
    Ok(PrefixOutcome::Set)
}

// -------------------------------------------------------------------------------------
// Creates
// -------------------------------------------------------------------------------------

/// A task of the store by ID, of any agent: its row and whether it is complete, locked
/// against changes until the commit (so that its status cannot change under a new
/// edge to it).
fn find(tx: &mut Tx<'_>, task_id: &str) -> PgResult<Option<(i64, bool)>> {
    tx.query_opt(
        "SELECT seq, status = 'complete' FROM tasks WHERE id = $1 FOR SHARE",
        &[&task_id],
    )?
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .transpose()
}

/// The tasks an idempotency key created that still exist, and the fingerprint of its
/// request; `None` when the key is unused.
fn keyed(tx: &mut Tx<'_>, agent_id: &str, key: &str) -> PgResult<Option<(Vec<u8>, Vec<Task>)>> {
    let Some(row) = tx.query_opt(
        "SELECT k.request, k.first_number, k.count, a.prefix FROM idempotency_keys k
         JOIN agents a ON a.agent_id = k.agent_id WHERE k.agent_id = $1 AND k.key = $2",
        &[&agent_id, &key],
    )?
    else {
        return Ok(None);
    };
    let request: Vec<u8> = row.try_get(0)?;
    let first: i64 = row.try_get(1)?;
    let count: i64 = row.try_get(2)?;
    let prefix: String = row.try_get(3)?;
    let ids: Vec<String> = (first..first + count)
        .map(|n| task_id(&prefix, n))
        .collect();
    let rows = tx.query(
        &format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ANY($1) AND agent_id = $2 ORDER BY seq"
        ),
        &[&ids, &agent_id],
    )?;
    let tasks = rows.iter().map(task_from).collect::<PgResult<Vec<_>>>()?;
    Ok(Some((request, tasks)))
}

/// Creates `rows` for the agent, honouring `key` (see
/// [`crate::backend::Backend::create_tasks`]).
pub(super) fn create(
    tx: &mut Tx<'_>,
    agent_id: &str,
    rows: Vec<NewRow>,
    key: Option<Key<'_>>,
    actor: Actor<'_>,
) -> PgResult<Created> {
    let earlier = match key {
        Some(key) => {
            // Racing calls with one key: the second waits here for the first's commit.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
                &[&agent_id, &key.key],
            )?;
            keyed(tx, agent_id, key.key)?
        }
        None => None,
    };
    let freed = match KeyUse::of(key, earlier) {
        KeyUse::Answered(answer) => return Ok(answer),
        KeyUse::Freed => true,
        KeyUse::Fresh => false,
    };
    if rows.is_empty() {
        return Ok(Created::New(Vec::new()));
    }
    let deps = match resolve_dependencies(&rows, |id| find(tx, id))? {
        Ok(deps) => deps,
        Err(unknown) => return Ok(unknown),
    };
    if let (true, Some(key)) = (freed, key) {
        tx.execute(
            "DELETE FROM idempotency_keys WHERE agent_id = $1 AND key = $2",
            &[&agent_id, &key.key],
        )?;
    }
    let count = rows.len() as i64;
    let (prefix, first) = take_numbers(tx, agent_id, count)?;
    let created = tx.now()?;
    let mut counts = NewCounts::default();
    let mut seqs: Vec<i64> = Vec::with_capacity(rows.len());
    let mut tasks: Vec<Task> = Vec::with_capacity(rows.len());
    for ((i, row), number) in rows.into_iter().enumerate().zip(first..) {
        let existing = deps.get(i).map(Vec::as_slice).unwrap_or_default();
        let placed = row.place(task_id(&prefix, number), &created, existing, &seqs, &tasks);
        counts.add(&placed);
        let task = &placed.task;
        tx.event(
            agent_id,
            Some(&task.id),
            EventKind::Created,
            actor,
            &history::created(&task.title, task.priority),
        );
        let priority = i32::from(task.priority);
        let seq: i64 = tx
            .query_one(
                "INSERT INTO tasks (id, agent_id, title, description, priority, created, unmet)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
                &[
                    &task.id,
                    &agent_id,
                    &task.title,
                    &task.description,
                    &priority,
                    &created,
                    &placed.unmet,
                ],
            )?
            .try_get(0)?;
        if !placed.depends_on.is_empty() {
            tx.execute(
                "INSERT INTO dependencies (task_seq, depends_seq) SELECT $1, unnest($2::bigint[])",
                &[&seq, &placed.depends_on],
            )?;
        }
        for dep_id in &placed.dependency_ids {
            tx.event(
                agent_id,
                Some(&task.id),
                EventKind::DependencyAdded,
                actor,
                &history::dependency(dep_id),
            );
        }
        seqs.push(seq);
        tasks.push(placed.task);
    }
    count_new(tx, agent_id, &counts)?;
    if let Some(key) = key {
        let request = key.request.to_vec();
        tx.execute(
            "INSERT INTO idempotency_keys (agent_id, key, request, first_number, count)
             VALUES ($1, $2, $3, $4, $5)",
            &[&agent_id, &key.key, &request, &first, &count],
        )?;
    }
    Ok(Created::New(tasks))
}

// -------------------------------------------------------------------------------------
// Patches, deletes, claims
// -------------------------------------------------------------------------------------

/// Loads the task (locked), lets `patch` decide what it becomes, and stores that: two
/// round trips, the load with the transaction's start and the store with its commit.
pub(super) fn update(
    tx: &mut Tx<'_>,
    agent_id: &str,
    task_id: &str,
    patch: &Patcher<'_>,
    actor: Actor<'_>,
) -> PgResult<Option<Task>> {
    let load = tx.named(
        &format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1::text AND agent_id = $2::text FOR UPDATE"
        ),
        &[literal(Some(task_id)), literal(Some(agent_id))],
    )?;
    let rows = tx.begin_with(&load)?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let task = task_from(row)?;
    let before = task.clone();
    let from = task.status;
    let task = patch(task, &tx.now()?)?;
    let Some(data) = history::updated(&before, &task) else {
        return Ok(Some(task));
    };
    tx.event(agent_id, Some(task_id), EventKind::Updated, actor, &data);
    let moved = from != task.status;
    let reopened = lifecycle::is_reopen(from, task.status);
    // A move ends a held lease and grows the fence; a reopen resets the attempts.
    let store = tx.named(
        "UPDATE tasks SET title = $1::text, description = $2::text, priority = $3::integer,
         status = $4::text, started = $5::text, completed = $6::text, result = $7::text,
         blocker = $8::text,
         fence = fence + CASE WHEN $9::boolean AND lease_expires IS NOT NULL THEN 1 ELSE 0 END,
         lease_expires = CASE WHEN $9::boolean THEN NULL ELSE lease_expires END,
         attempts = CASE WHEN $10::boolean THEN 0 ELSE attempts END
         WHERE id = $11::text",
        &[
            &[
                literal(Some(&task.title)),
                literal(task.description.as_deref()),
                task.priority.to_string(),
            ][..],
            &lifecycle_values(&task),
            &[
                moved.to_string(),
                reopened.to_string(),
                literal(Some(&task.id)),
            ],
        ]
        .concat(),
    )?;
    tx.defer(store);
    Ok(Some(task))
}

/// Deletes the task (its trigger takes it out of the counts, frees its dependents and
/// keeps the fence of a task that was ever leased); `false` when absent.
pub(super) fn delete(
    tx: &mut Tx<'_>,
    agent_id: &str,
    task_id: &str,
    actor: Actor<'_>,
) -> PgResult<bool> {
    let deleted = tx.execute(
        "DELETE FROM tasks WHERE id = $1 AND agent_id = $2",
        &[&task_id, &agent_id],
    )?;
    if deleted == 0 {
        return Ok(false);
    }
    tx.event(
        agent_id,
        Some(task_id),
        EventKind::Deleted,
        actor,
        &history::deleted(),
    );
    Ok(true)
}

/// Moves the agent's first ready task to in_progress, in one round trip with the
/// transaction's start and commit. The first statement locks the first ready row no
/// other claimer holds (`FOR UPDATE SKIP LOCKED`), can change no more than that one
/// row, and notes its ID in a setting of the transaction; the second records the
/// event of the task so noted. (Two statements, so that the counts' trigger, which
/// runs at the end of the first, locks its counts before the feed is locked, as in
/// every write; and one round trip, so that no lock is held while the client is
/// away.)
pub(super) fn claim_next(
    tx: &mut Tx<'_>,
    agent_id: &str,
    actor: Actor<'_>,
) -> PgResult<Option<Task>> {
    let agent = literal(Some(agent_id));
    let claim = tx.named(
        &format!(
            "UPDATE tasks SET status = 'in_progress', started = {NOW_TEXT}
             WHERE seq = (SELECT seq FROM tasks
                          WHERE agent_id = $1::text AND status = 'queued' AND unmet = 0
                          ORDER BY priority, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING {TASK_COLUMNS}, set_config('agent_backlog.claimed', id, true)"
        ),
        std::slice::from_ref(&agent),
    )?;
    let event = tx.named(
        &format!(
            "WITH f AS (UPDATE feed SET seq = seq + 1
                        WHERE one = 1 AND current_setting('agent_backlog.claimed', true) <> ''
                        RETURNING seq)
             INSERT INTO events (seq, at, agent_id, task_id, type, actor, data)
             SELECT f.seq, {NOW_MS_SQL}, $1::text, current_setting('agent_backlog.claimed'),
                    'claimed', $2::text, $3::text
             FROM f"
        ),
        &[
            agent,
            literal(actor),
            literal(Some(&history::claimed(None).to_string())),
        ],
    )?;
    let rows = tx.begin_and_commit(&format!("{claim};\n{event}"))?;
    let task = rows.first().map(task_from).transpose()?;
    tx.committed(task.is_some());
    Ok(task)
}

// -------------------------------------------------------------------------------------
// Edges
// -------------------------------------------------------------------------------------

/// A path of dependencies from the row `from` to the row `to`, if there is one
/// ([`crate::rules::plan::dependency_path`]): a query per level of the search.
fn path(tx: &mut Tx<'_>, from: i64, to: i64) -> PgResult<Option<Vec<i64>>> {
    crate::rules::plan::dependency_path(from, to, |level| {
        tx.query(
            "SELECT task_seq, depends_seq FROM dependencies WHERE task_seq = ANY($1)",
            &[&level],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
    })
}

fn depends_on_ids(tx: &mut Tx<'_>, seq: i64) -> PgResult<Vec<String>> {
    tx.query(
        "SELECT t.id FROM dependencies d JOIN tasks t ON t.seq = d.depends_seq
         WHERE d.task_seq = $1 ORDER BY d.depends_seq",
        &[&seq],
    )?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect()
}

/// Adds (`present`) or removes the edge `task_id` → `depends_on`; an edge that would
/// close a cycle is not added.
pub(super) fn set_edge(
    tx: &mut Tx<'_>,
    agent_id: &str,
    task_id: &str,
    depends_on: &str,
    present: bool,
    actor: Actor<'_>,
) -> PgResult<EdgeOutcome> {
    // Edges change one at a time, so two that together would close a cycle cannot
    // each find none.
    tx.execute("SELECT pg_advisory_xact_lock(7236115117)", &[])?;
    let Some(task) = tx
        .query_opt(
            "SELECT seq FROM tasks WHERE id = $1 AND agent_id = $2 FOR UPDATE",
            &[&task_id, &agent_id],
        )?
        .map(|r| r.try_get::<_, i64>(0))
        .transpose()?
    else {
        return Ok(EdgeOutcome::NoTask);
    };
    let Some((dep, met)) = find(tx, depends_on)? else {
        return Ok(EdgeOutcome::NoDependency);
    };
    let changed = if present {
        if let Some(cycle) = path(tx, dep, task)? {
            let rows = tx.query("SELECT seq, id FROM tasks WHERE seq = ANY($1)", &[&cycle])?;
            let mut ids_by_seq = HashMap::new();
            for row in rows {
                ids_by_seq.insert(row.try_get::<_, i64>(0)?, row.try_get::<_, String>(1)?);
            }
            let mut ids = vec![task_id.to_owned()];
            ids.extend(cycle.iter().filter_map(|s| ids_by_seq.get(s).cloned()));
            return Ok(EdgeOutcome::Cycle(ids));
        }
        tx.execute(
            "INSERT INTO dependencies (task_seq, depends_seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&task, &dep],
        )?
    } else {
        tx.execute(
            "DELETE FROM dependencies WHERE task_seq = $1 AND depends_seq = $2",
            &[&task, &dep],
        )?
    };
    if changed == 1 {
        if !met {
            let step: i64 = if present { 1 } else { -1 };
            tx.execute(
                "UPDATE tasks SET unmet = unmet + $2 WHERE seq = $1",
                &[&task, &step],
            )?;
        }
        let kind = if present {
            EventKind::DependencyAdded
        } else {
            EventKind::DependencyRemoved
        };
        tx.event(
            agent_id,
            Some(task_id),
            kind,
            actor,
            &history::dependency(depends_on),
        );
    }
    Ok(EdgeOutcome::Done(depends_on_ids(tx, task)?))
}

fn task_refs(tx: &mut Tx<'_>, sql: &str, seq: i64) -> PgResult<Vec<TaskRef>> {
    tx.query(sql, &[&seq])?
        .iter()
        .map(|r| {
            let status: String = r.try_get(2)?;
            Ok(TaskRef {
                agent_id: r.try_get(0)?,
                id: r.try_get(1)?,
                status: status.parse::<Status>()?,
            })
        })
        .collect()
}

/// The task's readiness, dependencies and dependents.
pub(super) fn graph(
    tx: &mut Tx<'_>,
    agent_id: &str,
    task_id: &str,
) -> PgResult<Option<DependencyGraph>> {
    let Some(row) = tx.query_opt(
        &format!("SELECT seq, {READY} FROM tasks WHERE id = $1 AND agent_id = $2"),
        &[&task_id, &agent_id],
    )?
    else {
        return Ok(None);
    };
    let seq: i64 = row.try_get(0)?;
    let ready: bool = row.try_get(1)?;
    Ok(Some(DependencyGraph {
        task_id: task_id.to_owned(),
        ready,
        depends_on: task_refs(
            tx,
            "SELECT t.agent_id, t.id, t.status FROM dependencies d
             JOIN tasks t ON t.seq = d.depends_seq WHERE d.task_seq = $1 ORDER BY d.depends_seq",
            seq,
        )?,
        dependents: task_refs(
            tx,
            "SELECT t.agent_id, t.id, t.status FROM dependencies d
             JOIN tasks t ON t.seq = d.task_seq WHERE d.depends_seq = $1 ORDER BY d.task_seq",
            seq,
        )?,
    }))
}

// -------------------------------------------------------------------------------------
// Listings and counts
// -------------------------------------------------------------------------------------

/// A page in priority, then creation order, with `agent_id` after the task columns,
/// and the number of matches (from the counts), read in the caller's snapshot. Each
/// filter is served by an index in that order, so a page reads about `limit + offset`
/// entries however large the backlog is.
pub(super) fn page(tx: &mut Tx<'_>, filter: &Filter<'_>) -> PgResult<(Vec<Row>, u64)> {
    let mut clauses: Vec<String> = Vec::new();
    let mut count_clauses: Vec<String> = Vec::new();
    let status = filter.status.map(|s| s.as_str().to_owned());
    let priority = filter.priority.map(i32::from);
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
    if let Some(agent_id) = &filter.agent_id {
        params.push(agent_id);
        clauses.push(format!("agent_id = ${}", params.len()));
        count_clauses.push(format!("agent_id = ${}", params.len()));
    }
    if let Some(priority) = &priority {
        params.push(priority);
        clauses.push(format!("priority = ${}", params.len()));
        count_clauses.push(format!("priority = ${}", params.len()));
    }
    let count_params = params.clone();
    if filter.ready {
        clauses.push(READY.to_owned());
    } else if let Some(status) = &status {
        params.push(status);
        clauses.push(format!("status = ${}", params.len()));
    }
    let counted = match filter.status {
        _ if filter.ready => "queued - waiting",
        Some(status) => status.as_str(),
        None => "queued + in_progress + complete + blocked",
    };
    let where_count = if count_clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", count_clauses.join(" AND "))
    };
    let total: i64 = tx
        .query_one(
            &format!("SELECT coalesce(sum({counted}), 0)::bigint FROM counts{where_count}"),
            &count_params,
        )?
        .try_get(0)?;
    let limit: Option<i64> = filter.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
    params.push(&limit);
    let limit_at = params.len();
    params.push(&offset);
    let offset_at = params.len();
    // Without a status, one arm per status, each an index range in priority then
    // creation order, merged (a Merge Append that reads about `limit + offset` entries
    // of each): the status indexes serve every listing, so a status change updates no
    // other index of the order.
    let arms: Vec<String> = if filter.ready || status.is_some() {
        vec![clauses.join(" AND ")]
    } else {
        Status::ALL
            .iter()
            .map(|s| {
                let mut arm = clauses.clone();
                arm.push(format!("status = '{}'", s.as_str()));
                arm.join(" AND ")
            })
            .collect()
    };
    let arms: Vec<String> = arms
        .iter()
        .map(|w| {
            let w = if w.is_empty() { String::new() } else { format!(" WHERE {w}") };
            format!("(SELECT {STORED_TASK_COLUMNS}, agent_id, seq FROM tasks{w} ORDER BY priority, seq)")
        })
        .collect();
    let rows = tx.query(
        &format!(
            "SELECT {TASK_COLUMNS}, agent_id FROM ({}) t
             ORDER BY priority, seq LIMIT ${limit_at} OFFSET ${offset_at}",
            arms.join(" UNION ALL ")
        ),
        &params,
    )?;
    Ok((rows, total as u64))
}

/// The agent's counts by status; zeros for an agent without a row.
pub(super) fn summary(tx: &mut Tx<'_>, agent_id: &str) -> PgResult<Summary> {
    let row = tx.query_one(
        "SELECT coalesce(sum(queued), 0)::bigint, coalesce(sum(in_progress), 0)::bigint,
         coalesce(sum(complete), 0)::bigint, coalesce(sum(blocked), 0)::bigint
         FROM counts WHERE agent_id = $1",
        &[&agent_id],
    )?;
    Ok(Summary::of([
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    ]))
}
