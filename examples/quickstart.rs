//! The seed page's operations, one after another, printing each JSON result.
//!
//! Run: `cargo run --example quickstart -- [DATABASE]` (default `backlogs.db`).

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
        .unwrap_or_else(|| "backlogs.db".to_owned());
    let store = Store::open(&path)?;
    println!("database: {path}\n");

    let first = store.create_task(
        "marketing-lead",
        NewTask::new("Write 3 LinkedIn posts")
            .description("Focus on ROI...")
            .priority(3),
    )?;
    show("POST /api/backlogs/marketing-lead", &first);
    let second = store.create_task(
        "marketing-lead",
        NewTask::new("Audit competitor pricing pages").description("Compare top 5 competitors..."),
    )?;
    show("POST /api/backlogs/marketing-lead", &second);
    let faq = store.create_task(
        "support-bot",
        NewTask::new("Draft FAQ responses").priority(2),
    )?;
    show("POST /api/backlogs/support-bot", &faq);

    show(
        "GET /api/backlogs/marketing-lead?status=queued",
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
        &format!("PATCH /api/backlogs/marketing-lead/{}", claimed.id),
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
        &format!("PATCH /api/backlogs/marketing-lead/{}", second.id),
        &blocked,
    );

    show("GET /api/backlogs", &store.query_tasks(TaskQuery::new())?);
    show(
        "GET /api/backlogs/marketing-lead/summary",
        &store.summary("marketing-lead")?,
    );
    show(
        &format!("DELETE /api/backlogs/support-bot/{}", faq.id),
        &store.delete_task("support-bot", &faq.id)?,
    );
    Ok(())
}
