//! A backlog's life through the Rust API — the embedded library, no server — one
//! operation after another, printing each JSON result.
//!
//! Run: `cargo run --release -p agent-backlog-quickstart -- [DATABASE]` (default: a
//! private in-memory store, so it can run any number of times).

use agent_backlog::{ListQuery, NewTask, Status, Store, TaskPatch, TaskQuery};
use serde::Serialize;

fn show(title: &str, value: &impl Serialize) {
    println!("# {title}");
    println!(
        "{}\n",
        serde_json::to_string_pretty(value).expect("responses serialize")
    );
}

fn main() -> Result<(), agent_backlog::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| ":memory:".to_owned());
    let store = Store::open(&path)?;
    println!("# the embedded library (Rust API, no server), database {path}\n");

    let first = store.create_task(
        "marketing-lead",
        NewTask::new("Write 3 LinkedIn posts")
            .description("Focus on ROI...")
            .priority(3),
    )?;
    show("create_task marketing-lead", &first);
    let second = store.create_task(
        "marketing-lead",
        NewTask::new("Audit competitor pricing pages").description("Compare top 5 competitors..."),
    )?;
    show("create_task marketing-lead", &second);
    let faq = store.create_task(
        "support-bot",
        NewTask::new("Draft FAQ responses").priority(2),
    )?;
    show("create_task support-bot", &faq);

    show(
        "list_tasks marketing-lead, status queued",
        &store.list_tasks("marketing-lead", ListQuery::new().status(Status::Queued))?,
    );

    let claimed = store
        .claim_next("marketing-lead")?
        .expect("a task is queued");
    show("claim_next marketing-lead", &claimed);
    let done = store.update_task(
        "marketing-lead",
        &claimed.id,
        TaskPatch::new()
            .status(Status::Complete)
            .result("Generated 3 LinkedIn posts..."),
    )?;
    show(
        &format!("update_task marketing-lead {}: complete", claimed.id),
        &done,
    );

    let blocked = store.update_task(
        "marketing-lead",
        &second.id,
        TaskPatch::new()
            .status(Status::Blocked)
            .blocker("Need the list of competitors"),
    )?;
    show(
        &format!("update_task marketing-lead {}: blocked", second.id),
        &blocked,
    );

    show(
        "query_tasks (every agent)",
        &store.query_tasks(TaskQuery::new())?,
    );
    show("summary marketing-lead", &store.summary("marketing-lead")?);
    show(
        &format!("delete_task support-bot {}", faq.id),
        &store.delete_task("support-bot", &faq.id)?,
    );
    Ok(())
}
