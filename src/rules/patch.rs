//! The PATCH rules (SPEC §3-§4): checked before the store is touched where they need
//! only the patch, and against the loaded task inside the write where they need it.

use crate::backend::NewRow;
use crate::error::{Error, Result};
use crate::model::{NewTask, Status, Task, TaskPatch};
use crate::rules::lifecycle::{self, State};
use crate::rules::{plan, validate};

/// A create body with its values checked and its defaults applied; `item` is its
/// index in a `create_tasks` batch (`None` for `create_task`).
pub(crate) fn new_row(task: NewTask, item: Option<usize>) -> Result<NewRow> {
    let title = validate::title(&task.title)?;
    if let Some(d) = &task.description {
        validate::description(d)?;
    }
    let priority = match task.priority {
        Some(p) => validate::priority(p)?,
        None => 5,
    };
    Ok(NewRow {
        title,
        description: task.description,
        priority,
        depends_on: plan::depends_on(item, task.depends_on)?,
    })
}

/// A patch whose values are checked; what it does to a task is [`Checked::apply`].
pub(crate) struct Checked {
    patch: TaskPatch,
    title: Option<String>,
    priority: Option<u8>,
}

/// Checks the values of a patch (lengths, ranges), before the task is loaded.
pub(crate) fn check(patch: TaskPatch) -> Result<Checked> {
    let title = patch.title.as_deref().map(validate::title).transpose()?;
    let priority = patch.priority.map(validate::priority).transpose()?;
    if let Some(Some(d)) = &patch.description {
        validate::description(d)?;
    }
    if let Some(Some(b)) = &patch.blocker {
        validate::blocker(b)?;
    }
    if let Some(Some(r)) = &patch.result {
        validate::result(r)?;
    }
    Ok(Checked {
        patch,
        title,
        priority,
    })
}

impl Checked {
    /// Whether the patch changes nothing (it then returns the task as it is).
    pub(crate) fn is_empty(&self) -> bool {
        self.patch.is_empty()
    }

    /// What the patch makes of `task` at time `now`: the lifecycle move, then the
    /// blocker and result rules, then the plain fields. An error leaves the task as
    /// it was (the caller's transaction is rolled back). The patch is kept: a write
    /// that runs again from the start applies it again, with the same outcome.
    pub(crate) fn apply(&self, mut task: Task, now: &str) -> Result<Task> {
        let task_id = task.id.clone();
        let target = self.patch.status.unwrap_or(task.status);
        if !lifecycle::can_move(task.status, target) {
            return Err(Error::InvalidTransition(lifecycle::refusal(
                &task_id,
                task.status,
                target,
            )));
        }
        let mut state = State {
            status: task.status,
            started: task.started.take(),
            completed: task.completed.take(),
            result: task.result.take(),
            blocker: task.blocker.take(),
        };
        lifecycle::apply(&mut state, target, now);
        match self.patch.blocker.clone() {
            Some(Some(blocker)) if target == Status::Blocked => state.blocker = Some(blocker),
            Some(Some(_)) => {
                return Err(Error::invalid(format!(
                    "blocker can only be given when the task is or becomes blocked, and {task_id} would be {target}; send \"status\": \"blocked\" with it"
                )))
            }
            Some(None) if target == Status::Blocked => {
                return Err(Error::invalid(format!(
                    "blocker cannot be cleared while {task_id} is blocked; give a new reason, or move it to queued or in_progress"
                )))
            }
            Some(None) | None => {}
        }
        if target == Status::Blocked && state.blocker.is_none() {
            return Err(Error::invalid(format!(
                "blocker is required to block {task_id}: give the reason in \"blocker\""
            )));
        }
        match self.patch.result.clone() {
            Some(Some(result)) if target == Status::Complete => state.result = Some(result),
            Some(Some(_)) => {
                return Err(Error::invalid(format!(
                    "result can only be given when the task is or becomes complete, and {task_id} would be {target}; send \"status\": \"complete\" with it"
                )))
            }
            Some(None) => state.result = None,
            None => {}
        }
        if let Some(title) = self.title.clone() {
            task.title = title;
        }
        if let Some(priority) = self.priority {
            task.priority = priority;
        }
        if let Some(description) = self.patch.description.clone() {
            task.description = description;
        }
        debug_assert!(lifecycle::holds(&state), "{state:?}");
        task.status = state.status;
        task.started = state.started;
        task.completed = state.completed;
        task.result = state.result;
        task.blocker = state.blocker;
        Ok(task)
    }
}
