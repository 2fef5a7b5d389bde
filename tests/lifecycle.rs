//! Every row of the lifecycle table (SPEC §4), the timestamps each move sets and
//! clears, and the invariants, which the schema itself enforces.

mod common;

use agent_backlog::{NewTask, Status, Store, Task, TaskPatch};
use common::{snapshot, TempDir};
use rusqlite::Connection;
use Status::*;

const OLD: &str = "2020-01-01T00:00:00Z";

struct Fixture {
    _dir: TempDir,
    path: std::path::PathBuf,
    store: Store,
}

fn fixture() -> Fixture {
    let dir = TempDir::new("lifecycle");
    let path = dir.file("b.db");
    let store = Store::open(&path).unwrap();
    Fixture {
        _dir: dir,
        path,
        store,
    }
}

impl Fixture {
    /// A task in `status`, with an old `started` where it has one, so that a move
    /// that keeps `started` can be told from one that sets it to now.
    fn task_in(&self, status: Status) -> Task {
        let t = self.store.create_task("agent", NewTask::new("t")).unwrap();
        let patch = match status {
            Queued => return t,
            InProgress => TaskPatch::new().status(InProgress),
            Blocked => TaskPatch::new().status(Blocked).blocker("waiting"),
            Complete => {
                self.store
                    .update_task("agent", &t.id, TaskPatch::new().status(InProgress))
                    .unwrap();
                TaskPatch::new().status(Complete).result("done")
            }
        };
        self.store.update_task("agent", &t.id, patch).unwrap();
        let conn = Connection::open(&self.path).unwrap();
        conn.execute(
            "UPDATE tasks SET started = ?2 WHERE id = ?1 AND started IS NOT NULL",
            [&t.id, OLD],
        )
        .unwrap();
        self.store.get_task("agent", &t.id).unwrap()
    }

    fn move_to(&self, task: &Task, to: Status) -> agent_backlog::Result<Task> {
        let mut patch = TaskPatch::new().status(to);
        if to == Blocked {
            patch = patch.blocker("needs input");
        }
        self.store.update_task("agent", &task.id, patch)
    }

    fn assert_invariants(&self) {
        let conn = Connection::open(&self.path).unwrap();
        let bad: i64 = conn
            .query_row(
                "SELECT count(*) FROM tasks WHERE NOT (
                   (status = 'queued' AND started IS NULL AND completed IS NULL AND result IS NULL AND blocker IS NULL)
                OR (status = 'in_progress' AND started IS NOT NULL AND completed IS NULL AND result IS NULL AND blocker IS NULL)
                OR (status = 'blocked' AND blocker IS NOT NULL AND completed IS NULL AND result IS NULL)
                OR (status = 'complete' AND started IS NOT NULL AND completed IS NOT NULL AND started <= completed AND blocker IS NULL))",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(bad, 0);
    }
}

fn is_recent(ts: &Option<String>) -> bool {
    ts.as_deref().is_some_and(|t| t > OLD)
}

#[test]
fn allowed_moves_and_their_effects() {
    let f = fixture();

    // queued → in_progress: started = now
    let t = f.move_to(&f.task_in(Queued), InProgress).unwrap();
    assert_eq!(t.status, InProgress);
    assert!(is_recent(&t.started));
    assert_eq!((t.completed, t.result, t.blocker), (None, None, None));

    // queued → blocked: needs a blocker; started stays null
    let t = f.move_to(&f.task_in(Queued), Blocked).unwrap();
    assert_eq!(
        (t.status, t.blocker.as_deref(), t.started),
        (Blocked, Some("needs input"), None)
    );

    // in_progress → queued (release): started = null
    let t = f.move_to(&f.task_in(InProgress), Queued).unwrap();
    assert_eq!((t.status, t.started), (Queued, None));

    // in_progress → complete: completed = now, started kept
    let t = f.move_to(&f.task_in(InProgress), Complete).unwrap();
    assert_eq!(t.started.as_deref(), Some(OLD));
    assert!(is_recent(&t.completed));
    assert!(t.started <= t.completed);

    // in_progress → blocked: started kept
    let t = f.move_to(&f.task_in(InProgress), Blocked).unwrap();
    assert_eq!(
        (t.started.as_deref(), t.blocker.as_deref()),
        (Some(OLD), Some("needs input"))
    );

    // blocked → queued: blocker = null, started = null
    let t = f.move_to(&f.task_in(Blocked), Queued).unwrap();
    assert_eq!((t.status, t.blocker, t.started), (Queued, None, None));

    // blocked (never started) → in_progress: started = now, blocker = null
    let t = f.move_to(&f.task_in(Blocked), InProgress).unwrap();
    assert!(is_recent(&t.started));
    assert_eq!(t.blocker, None);

    // blocked (after in_progress) → in_progress: started kept
    let started = f.task_in(InProgress);
    let blocked = f.move_to(&started, Blocked).unwrap();
    assert_eq!(blocked.started.as_deref(), Some(OLD));
    let t = f.move_to(&blocked, InProgress).unwrap();
    assert_eq!((t.started.as_deref(), t.blocker), (Some(OLD), None));

    // blocked → blocked: the blocker may change
    let b = f.task_in(Blocked);
    let t = f
        .store
        .update_task("agent", &b.id, TaskPatch::new().blocker("other reason"))
        .unwrap();
    assert_eq!(t.blocker.as_deref(), Some("other reason"));
    let t = f
        .store
        .update_task(
            "agent",
            &b.id,
            TaskPatch::new().status(Blocked).blocker("third"),
        )
        .unwrap();
    assert_eq!(t.blocker.as_deref(), Some("third"));

    // complete → queued (reopen): started, completed, result = null
    let t = f.move_to(&f.task_in(Complete), Queued).unwrap();
    assert_eq!(
        (t.status, t.started, t.completed, t.result),
        (Queued, None, None, None)
    );

    f.assert_invariants();
}

#[test]
fn refused_moves_write_nothing_and_explain() {
    let f = fixture();
    let cases = [
        (Queued, Complete, "cannot move AGE-001 from queued to complete; from queued a task can move to in_progress, blocked"),
        (Blocked, Complete, "from blocked a task can move to queued, in_progress"),
        (Complete, InProgress, "from complete a task can move to queued"),
        (Complete, Blocked, "from complete a task can move to queued"),
    ];
    for (from, to, message) in cases {
        let t = f.task_in(from);
        let before = snapshot(&f.store);
        let err = f.move_to(&t, to).unwrap_err();
        assert_eq!(err.code(), "invalid_transition", "{from} -> {to}");
        assert!(err.to_string().contains(message), "{err}");
        assert!(
            err.to_string().contains(&format!("from {from} to {to}")),
            "{err}"
        );
        assert_eq!(snapshot(&f.store), before);
    }
    f.assert_invariants();
}

#[test]
fn same_status_is_not_a_move() {
    let f = fixture();
    for status in Status::ALL {
        let t = f.task_in(status);
        let mut patch = TaskPatch::new().status(status).title("renamed");
        if status == Blocked {
            patch = patch.blocker("still waiting");
        }
        let u = f.store.update_task("agent", &t.id, patch).unwrap();
        assert_eq!(u.title, "renamed");
        assert_eq!(
            (u.status, &u.started, &u.completed),
            (status, &t.started, &t.completed)
        );
    }
    // a complete task's result can change without a move
    let c = f.task_in(Complete);
    let u = f
        .store
        .update_task("agent", &c.id, TaskPatch::new().result("better"))
        .unwrap();
    assert_eq!(u.result.as_deref(), Some("better"));
    let u = f
        .store
        .update_task("agent", &c.id, TaskPatch::new().clear_result())
        .unwrap();
    assert_eq!((u.status, u.result), (Complete, None));
}

#[test]
fn blocker_and_result_only_where_they_belong() {
    let f = fixture();
    let q = f.task_in(Queued);
    let ip = f.task_in(InProgress);
    let b = f.task_in(Blocked);
    let cases: Vec<(&Task, TaskPatch, &str)> = vec![
        (&q, TaskPatch::new().status(Blocked), "blocker is required"),
        (&ip, TaskPatch::new().status(Blocked), "blocker is required"),
        (
            &q,
            TaskPatch::new().blocker("x"),
            "blocker can only be given",
        ),
        (
            &ip,
            TaskPatch::new().status(Queued).blocker("x"),
            "blocker can only be given",
        ),
        (
            &b,
            TaskPatch::new().status(InProgress).blocker("x"),
            "blocker can only be given",
        ),
        (
            &b,
            TaskPatch {
                blocker: Some(None),
                ..TaskPatch::new()
            },
            "blocker cannot be cleared",
        ),
        (&q, TaskPatch::new().result("r"), "result can only be given"),
        (
            &ip,
            TaskPatch::new().result("r"),
            "result can only be given",
        ),
        (
            &b,
            TaskPatch::new().status(Queued).result("r"),
            "result can only be given",
        ),
        (
            &q,
            TaskPatch::new().status(Blocked).blocker("   "),
            "blocker must say why",
        ),
    ];
    for (task, patch, message) in cases {
        let before = snapshot(&f.store);
        let err = f
            .store
            .update_task("agent", &task.id, patch.clone())
            .unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{patch:?}");
        assert!(err.to_string().contains(message), "{patch:?}: {err}");
        assert_eq!(snapshot(&f.store), before);
    }
    // clearing what is already clear is harmless
    let u = f
        .store
        .update_task(
            "agent",
            &q.id,
            TaskPatch {
                blocker: Some(None),
                result: Some(None),
                ..TaskPatch::new()
            },
        )
        .unwrap();
    assert_eq!(u, f.store.get_task("agent", &q.id).unwrap());
    // completing with a result in one patch
    let u = f
        .store
        .update_task(
            "agent",
            &ip.id,
            TaskPatch::new()
                .status(Complete)
                .result("Generated 3 LinkedIn posts..."),
        )
        .unwrap();
    assert_eq!(u.result.as_deref(), Some("Generated 3 LinkedIn posts..."));
    f.assert_invariants();
}

#[test]
fn the_schema_refuses_impossible_tasks() {
    let f = fixture();
    let q = f.task_in(Queued);
    let ip = f.task_in(InProgress);
    let conn = Connection::open(&f.path).unwrap();
    let attempts = [
        format!("UPDATE tasks SET status = 'complete' WHERE id = '{}'", q.id),
        format!("UPDATE tasks SET status = 'in_progress' WHERE id = '{}'", q.id),
        format!("UPDATE tasks SET status = 'blocked' WHERE id = '{}'", q.id),
        format!("UPDATE tasks SET result = 'r' WHERE id = '{}'", ip.id),
        format!("UPDATE tasks SET started = NULL WHERE id = '{}'", ip.id),
        format!("UPDATE tasks SET status = 'complete', completed = '2019-01-01T00:00:00Z' WHERE id = '{}'", ip.id),
        format!("UPDATE tasks SET priority = 11 WHERE id = '{}'", q.id),
        format!("UPDATE tasks SET title = '' WHERE id = '{}'", q.id),
        format!("UPDATE tasks SET status = 'done' WHERE id = '{}'", q.id),
        format!("UPDATE tasks SET priority = 3.5 WHERE id = '{}'", q.id),
    ];
    for sql in attempts {
        let err = conn.execute(&sql, []).expect_err(&sql);
        assert!(
            err.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation),
            "{sql}: {err}"
        );
    }
    f.assert_invariants();
}
