//! Printing results: the exact JSON shapes (compact, one line) or tables for people.

use agent_backlog::{
    AgentList, Claim, Deleted, Dependencies, DependencyGraph, Error, Finished, Lease, PrefixSet,
    QueryResult, Reaped, Summary, Task, TaskList, TaskRef,
};

use crate::args::Format;
use crate::commands::Done;

/// Longest title shown in a list table; longer titles end with `…`.
const TITLE_WIDTH: usize = 60;

/// A result, typed for the table of its operation.
enum Output {
    /// One task (create, get, update).
    Task(Task),
    /// The claimed task, or `None` when nothing was queued.
    Claimed {
        agent_id: String,
        task: Option<Task>,
    },
    /// An agent's backlog (list, batch).
    List(TaskList),
    /// Tasks across agents (query).
    Query(QueryResult),
    /// Counts by status (summary).
    Summary { agent_id: String, summary: Summary },
    /// The deleted task's ID.
    Deleted(Deleted),
    /// The prefix that was set.
    Prefix(PrefixSet),
    /// A leased claim, or `None` when nothing was ready (claim-lease, wait-for-task).
    Leased {
        agent_id: String,
        claim: Option<Box<Claim>>,
    },
    /// A lease, or `None` when the task holds none (renew-lease, get-lease).
    Lease(Option<Lease>),
    /// A finished task and the next claim (finish-and-claim).
    Finished(Box<Finished>),
    /// The tasks whose expired leases were ended (reap-expired).
    Reaped(Reaped),
    /// A task's dependencies after a change (add-dependency, remove-dependency).
    Dependencies(Dependencies),
    /// A task's readiness, dependencies and dependents (dependencies).
    Graph(DependencyGraph),
    /// The agents with their counts (agents).
    Agents(AgentList),
    /// Any other result, printed as its JSON.
    Json(String),
}

/// The text to print on stdout for a result, without the final newline: the core's
/// JSON as it is, or a table for people.
pub fn render(done: &Done, format: Format) -> String {
    match format {
        Format::Json => done.json.clone(),
        Format::Table => table(&typed(done).unwrap_or_else(|_| Output::Json(done.json.clone()))),
    }
}

/// The text to print on stderr for `error`, without the final newline.
pub fn render_error(error: &Error, format: Format) -> String {
    match format {
        Format::Json => error.to_json().to_string(),
        Format::Table => format!("error ({}): {error}", error.code()),
    }
}

/// The result read back into its type, for the tables.
fn typed(done: &Done) -> serde_json::Result<Output> {
    let text = done.json.as_str();
    let agent_id = || done.agent_id.clone().unwrap_or_default();
    Ok(match done.operation {
        "create_task" | "get_task" | "update_task" => Output::Task(serde_json::from_str(text)?),
        "claim_next" => Output::Claimed {
            agent_id: agent_id(),
            task: serde_json::from_str(text)?,
        },
        "list_tasks" | "create_tasks" | "ready_tasks" => Output::List(serde_json::from_str(text)?),
        "add_dependency" | "remove_dependency" => Output::Dependencies(serde_json::from_str(text)?),
        "get_dependencies" => Output::Graph(serde_json::from_str(text)?),
        "list_agents" => Output::Agents(serde_json::from_str(text)?),
        "query_tasks" => Output::Query(serde_json::from_str(text)?),
        "summary" => Output::Summary {
            agent_id: agent_id(),
            summary: serde_json::from_str(text)?,
        },
        "delete_task" => Output::Deleted(serde_json::from_str(text)?),
        "set_prefix" => Output::Prefix(serde_json::from_str(text)?),
        "finish_lease" => Output::Task(serde_json::from_str(text)?),
        "claim_lease" | "wait_for_task" => Output::Leased {
            agent_id: agent_id(),
            claim: serde_json::from_str(text)?,
        },
        "renew_lease" | "get_lease" => Output::Lease(serde_json::from_str(text)?),
        "finish_and_claim" => Output::Finished(serde_json::from_str(text)?),
        "reap_expired" => Output::Reaped(serde_json::from_str(text)?),
        _ => Output::Json(text.to_owned()),
    })
}

fn table(output: &Output) -> String {
    match output {
        Output::Task(task) => task_fields(task),
        Output::Claimed {
            agent_id,
            task: Some(task),
        } => format!("claimed by {agent_id}:\n{}", task_fields(task)),
        Output::Claimed {
            agent_id,
            task: None,
        } => format!("nothing ready for {agent_id}"),
        Output::List(list) => {
            let rows = list.tasks.iter().map(task_row).collect();
            let footer = format!(
                "{}: {}",
                list.agent_id,
                page_note(list.tasks.len(), list.total)
            );
            rows_table(
                &["ID", "PRIORITY", "STATUS", "CREATED", "TITLE"],
                rows,
                &footer,
            )
        }
        Output::Query(result) => {
            let rows = result
                .tasks
                .iter()
                .map(|t| {
                    let mut row = vec![cell(&t.agent_id)];
                    row.extend(task_row(&t.task));
                    row
                })
                .collect();
            let footer = page_note(result.tasks.len(), result.total);
            rows_table(
                &["AGENT", "ID", "PRIORITY", "STATUS", "CREATED", "TITLE"],
                rows,
                &footer,
            )
        }
        Output::Summary { agent_id, summary } => fields(&[
            ("agent", Some(agent_id.as_str())),
            ("queued", Some(&summary.queued.to_string())),
            ("in_progress", Some(&summary.in_progress.to_string())),
            ("complete", Some(&summary.complete.to_string())),
            ("blocked", Some(&summary.blocked.to_string())),
            ("total", Some(&summary.total.to_string())),
        ]),
        Output::Deleted(deleted) => format!("deleted {}", deleted.deleted),
        Output::Leased {
            claim: Some(claim), ..
        } => claimed_with_lease(claim),
        Output::Leased {
            agent_id,
            claim: None,
        } => format!("nothing ready for {agent_id}"),
        Output::Lease(Some(lease)) => lease_fields(lease),
        Output::Lease(None) => "no lease".to_owned(),
        Output::Finished(finished) => {
            let next = match &finished.next {
                Some(claim) => claimed_with_lease(claim),
                None => "nothing more ready".to_owned(),
            };
            format!(
                "finished:\n{}\n\nnext: {next}",
                task_fields(&finished.finished)
            )
        }
        Output::Reaped(reaped) => {
            let ids = |ids: &[String]| {
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            };
            format!(
                "requeued: {}\nblocked: {}",
                ids(&reaped.requeued),
                ids(&reaped.blocked)
            )
        }
        Output::Dependencies(deps) => {
            let ids = if deps.depends_on.is_empty() {
                "nothing".to_owned()
            } else {
                deps.depends_on.join(", ")
            };
            format!("{} depends on {ids}", deps.task_id)
        }
        Output::Graph(graph) => {
            let refs = |refs: &[TaskRef]| {
                let rows = refs
                    .iter()
                    .map(|r| vec![cell(&r.id), cell(&r.agent_id), r.status.to_string()])
                    .collect::<Vec<_>>();
                let footer = if rows.is_empty() { "none" } else { "" };
                rows_table(&["ID", "AGENT", "STATUS"], rows, footer)
                    .trim_end()
                    .to_owned()
            };
            let ready = if graph.ready { "ready" } else { "not ready" };
            format!(
                "{} is {ready}\n\ndepends on:\n{}\n\ndependents:\n{}",
                graph.task_id,
                refs(&graph.depends_on),
                refs(&graph.dependents)
            )
        }
        Output::Agents(list) => {
            let rows = list
                .agents
                .iter()
                .map(|a| {
                    let mut row = vec![cell(&a.agent_id), cell(&a.prefix)];
                    row.extend(
                        [a.queued, a.in_progress, a.complete, a.blocked, a.total]
                            .map(|n| n.to_string()),
                    );
                    row
                })
                .collect();
            let footer = format!("{} of {} agents", list.agents.len(), list.total);
            rows_table(
                &[
                    "AGENT",
                    "PREFIX",
                    "QUEUED",
                    "IN_PROGRESS",
                    "COMPLETE",
                    "BLOCKED",
                    "TOTAL",
                ],
                rows,
                &footer,
            )
        }
        Output::Json(text) => text.clone(),
        Output::Prefix(set) => fields(&[
            ("agent", Some(set.agent_id.as_str())),
            ("prefix", Some(set.prefix.as_str())),
        ]),
    }
}

fn claimed_with_lease(claim: &Claim) -> String {
    format!(
        "leased to {} until {}:\n{}\n\n{}",
        claim.lease.worker,
        claim.lease.expires,
        task_fields(&claim.task),
        lease_fields(&claim.lease)
    )
}

fn lease_fields(lease: &Lease) -> String {
    fields(&[
        ("token", Some(lease.token.as_str())),
        ("agent", Some(lease.agent_id.as_str())),
        ("task", Some(lease.task_id.as_str())),
        ("worker", Some(lease.worker.as_str())),
        ("fence", Some(&lease.fence.to_string())),
        (
            "attempt",
            Some(&format!("{} of {}", lease.attempt, lease.max_attempts)),
        ),
        ("granted", Some(lease.granted.as_str())),
        ("expires", Some(lease.expires.as_str())),
    ])
}

fn page_note(shown: usize, total: u64) -> String {
    match (shown, total) {
        (_, 0) => "no tasks".to_owned(),
        (_, 1) if shown == 1 => "1 task".to_owned(),
        (shown, total) if shown as u64 == total => format!("{total} tasks"),
        (shown, total) => format!("{shown} of {total} tasks shown"),
    }
}

fn task_row(task: &Task) -> Vec<String> {
    vec![
        cell(&task.id),
        task.priority.to_string(),
        task.status.to_string(),
        cell(&task.created),
        truncate(&cell(&task.title), TITLE_WIDTH),
    ]
}

/// A value on one line: control characters (new lines, tabs) become spaces.
fn cell(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Aligned columns under a header, then a footer line; the last column is not padded.
fn rows_table(header: &[&str], rows: Vec<Vec<String>>, footer: &str) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in &rows {
        for (w, value) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(value));
        }
    }
    let line = |values: Vec<&str>| {
        let last = values.len() - 1;
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i == last {
                    (*v).to_owned()
                } else {
                    format!("{v}{}", " ".repeat(widths[i] - width(v)))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut lines = Vec::with_capacity(rows.len() + 2);
    if !rows.is_empty() {
        lines.push(line(header.to_vec()));
        for row in &rows {
            lines.push(line(row.iter().map(String::as_str).collect()));
        }
    }
    lines.push(footer.to_owned());
    lines.join("\n")
}

/// One task as `field  value` lines, every field in the contract's order.
fn task_fields(task: &Task) -> String {
    let priority = task.priority.to_string();
    fields(&[
        ("id", Some(task.id.as_str())),
        ("title", Some(task.title.as_str())),
        ("description", task.description.as_deref()),
        ("priority", Some(priority.as_str())),
        ("status", Some(task.status.as_str())),
        ("created", Some(task.created.as_str())),
        ("started", task.started.as_deref()),
        ("completed", task.completed.as_deref()),
        ("result", task.result.as_deref()),
        ("blocker", task.blocker.as_deref()),
    ])
}

/// `name  value` lines with the values aligned; `-` for null; the lines of a
/// multi-line value are indented under its first line.
fn fields(pairs: &[(&str, Option<&str>)]) -> String {
    let name_width = pairs.iter().map(|(n, _)| width(n)).max().unwrap_or(0);
    let indent = " ".repeat(name_width + 2);
    pairs
        .iter()
        .map(|(name, value)| {
            let value = value.unwrap_or("-");
            let value = value
                .lines()
                .map(cell)
                .collect::<Vec<_>>()
                .join(&format!("\n{indent}"));
            format!("{name}{}  {value}", " ".repeat(name_width - width(name)))
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One token as a line for people: number, name, whom it is for, and its state.
pub fn token_line(token: &agent_backlog::Token) -> String {
    let whom = match &token.agent_id {
        Some(agent) => format!("agent {agent}"),
        None => "admin".to_owned(),
    };
    let state = match (&token.revoked, &token.expires) {
        (Some(at), _) => format!("revoked {at}"),
        (None, Some(at)) => format!("expires {at}"),
        (None, None) => "never expires".to_owned(),
    };
    format!(
        "{:>4}  {:<24}  {:<28}  created {}  {state}",
        token.id, token.name, whom, token.created
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_titles_are_cut() {
        let text = rows_table(
            &["ID", "TITLE"],
            vec![
                vec!["MKT-001".into(), "a".into()],
                vec!["X-1000".into(), truncate(&"t".repeat(70), 10)],
            ],
            "2 tasks",
        );
        assert_eq!(
            text,
            "ID       TITLE\nMKT-001  a\nX-1000   ttttttttt…\n2 tasks"
        );
        assert_eq!(rows_table(&["ID"], vec![], "no tasks"), "no tasks");
    }

    #[test]
    fn field_lines() {
        assert_eq!(
            fields(&[
                ("id", Some("MKT-001")),
                ("description", Some("a\nb")),
                ("result", None)
            ]),
            "id           MKT-001\ndescription  a\n             b\nresult       -"
        );
        assert_eq!(cell("a\tb\u{7}"), "a b ");
    }

    #[test]
    fn page_notes() {
        assert_eq!(page_note(0, 0), "no tasks");
        assert_eq!(page_note(1, 1), "1 task");
        assert_eq!(page_note(3, 3), "3 tasks");
        assert_eq!(page_note(2, 5), "2 of 5 tasks shown");
        assert_eq!(page_note(0, 5), "0 of 5 tasks shown");
    }
}
