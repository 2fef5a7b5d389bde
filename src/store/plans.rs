//! The plan operations of SPEC §12–§13: idempotent creates, dependencies and the
//! ready queue.

use super::{not_found, Store};
use crate::backend::{Created, EdgeOutcome, Key};
use crate::error::{Error, Result};
use crate::model::{NewTask, Status, Task, TaskList};
use crate::plan::{Dependencies, DependencyGraph, Idempotent, Page};
use crate::request::in_batch;
use crate::rules::{patch, plan, validate};

/// The message of a dependency that is not a task of the store.
fn no_such_dependency(depends_on: &str) -> Error {
    Error::NotFound(format!(
        "depends_on names {depends_on}, which is not a task of any backlog in this store"
    ))
}

impl Store {
    /// Creates one task, with an optional idempotency key.
    pub(super) fn create_one(
        &self,
        agent_id: &str,
        key: Option<&str>,
        task: NewTask,
    ) -> Result<Idempotent<Task>> {
        validate::agent_id(agent_id)?;
        let row = patch::new_row(task, None)?;
        let created = self.create_rows(agent_id, key, false, vec![row])?;
        let replayed = created.replayed;
        let mut tasks = created.value;
        let value = tasks
            .pop()
            .ok_or_else(|| Error::Internal("a created task was not returned".into()))?;
        Ok(Idempotent { value, replayed })
    }

    /// Creates a batch, with an optional idempotency key.
    pub(super) fn create_many(
        &self,
        agent_id: &str,
        key: Option<&str>,
        tasks: Vec<NewTask>,
    ) -> Result<Idempotent<TaskList>> {
        validate::agent_id(agent_id)?;
        if tasks.len() > validate::MAX_BATCH_TASKS {
            return Err(Error::invalid(format!(
                "a batch holds at most {} tasks, got {}; split it into several calls",
                validate::MAX_BATCH_TASKS,
                tasks.len()
            )));
        }
        let rows = tasks
            .into_iter()
            .enumerate()
            .map(|(i, t)| patch::new_row(t, Some(i)).map_err(|e| in_batch(i, e)))
            .collect::<Result<Vec<_>>>()?;
        let created = self.create_rows(agent_id, key, true, rows)?;
        Ok(Idempotent {
            value: TaskList {
                agent_id: agent_id.to_owned(),
                total: created.value.len() as u64,
                tasks: created.value,
            },
            replayed: created.replayed,
        })
    }

    fn create_rows(
        &self,
        agent_id: &str,
        key: Option<&str>,
        batch: bool,
        rows: Vec<crate::backend::NewRow>,
    ) -> Result<Idempotent<Vec<Task>>> {
        if let Some(key) = key {
            validate::idempotency_key(key)?;
        }
        let key = key.map(|key| Key {
            key,
            request: plan::fingerprint(batch, &rows),
        });
        match self
            .backend
            .create_tasks(agent_id, rows, key, self.actor())?
        {
            Created::New(value) => Ok(Idempotent {
                value,
                replayed: false,
            }),
            Created::Replayed(value) => Ok(Idempotent {
                value,
                replayed: true,
            }),
            Created::KeyTaken => Err(plan::key_reused(
                agent_id,
                key.map(|k| k.key).unwrap_or_default(),
            )),
            Created::Unknown { item, task_id } => {
                let err = no_such_dependency(&task_id);
                Err(if batch {
                    match err {
                        Error::NotFound(m) => Error::NotFound(format!("tasks[{item}]: {m}")),
                        other => other,
                    }
                } else {
                    err
                })
            }
        }
    }

    /// Adds a task under an idempotency key (SPEC §12): the first call creates it; a
    /// call with the same key and the same body (after defaults and trimming) creates
    /// nothing and returns the task as it is now, with `replayed` set; the same key
    /// with another body is `conflict`, naming the key. Keys belong to the agent, and
    /// deleting the task frees its key. Two processes racing with one key create one
    /// task.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// let first = store.create_task_idempotent("ops", "req-42", NewTask::new("Rotate keys"))?;
    /// let again = store.create_task_idempotent("ops", "req-42", NewTask::new(" Rotate keys "))?;
    /// assert_eq!((first.replayed, again.replayed), (false, true));
    /// assert_eq!(again.value.id, first.value.id);
    /// let err = store.create_task_idempotent("ops", "req-42", NewTask::new("Other")).unwrap_err();
    /// assert_eq!(err.code(), "conflict");
    /// assert_eq!(store.summary("ops")?.total, 1);
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn create_task_idempotent(
        &self,
        agent_id: &str,
        idempotency_key: &str,
        task: NewTask,
    ) -> Result<Idempotent<Task>> {
        self.create_one(agent_id, Some(idempotency_key), task)
    }

    /// Adds a batch under an idempotency key, as [`Store::create_task_idempotent`]
    /// does for one task. A replay lists the batch's tasks that still exist, as they
    /// are now, in the order created; once every one of them is deleted, the key is
    /// free again.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// let plan = vec![NewTask::new("a"), NewTask::new("b").depends_on_item(0)];
    /// let first = store.create_tasks_idempotent("ops", "plan-7", plan.clone())?;
    /// let again = store.create_tasks_idempotent("ops", "plan-7", plan)?;
    /// assert!(again.replayed);
    /// assert_eq!(again.value, first.value);
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn create_tasks_idempotent(
        &self,
        agent_id: &str,
        idempotency_key: &str,
        tasks: Vec<NewTask>,
    ) -> Result<Idempotent<TaskList>> {
        self.create_many(agent_id, Some(idempotency_key), tasks)
    }

    /// Makes the agent's task `task_id` depend on `depends_on`, a task of any agent
    /// (`PUT /api/backlogs/{agent_id}/{task_id}/dependencies/{depends_on}`): while it
    /// is not complete, `task_id` is not ready and no claim takes it. Returns the
    /// task's dependencies, in creation order. Adding an edge that exists changes
    /// nothing.
    ///
    /// A dependency on itself is `invalid_argument`; one that would close a cycle is
    /// `conflict`, naming the cycle; an unknown task is `not_found`.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// let date = store.create_task("marketing-lead", NewTask::new("Get the launch date"))?;
    /// let post = store.create_task("marketing-lead", NewTask::new("Write the launch post"))?;
    /// let deps = store.add_dependency("marketing-lead", &post.id, &date.id)?;
    /// assert_eq!(deps.depends_on, vec!["MKT-001"]);
    /// let err = store.add_dependency("marketing-lead", &date.id, &post.id).unwrap_err();
    /// assert_eq!(err.code(), "conflict"); // MKT-001 → MKT-002 → MKT-001
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn add_dependency(
        &self,
        agent_id: &str,
        task_id: &str,
        depends_on: &str,
    ) -> Result<Dependencies> {
        self.change_edge(agent_id, task_id, depends_on, true)
    }

    /// Removes the dependency of `task_id` on `depends_on`
    /// (`DELETE /api/backlogs/{agent_id}/{task_id}/dependencies/{depends_on}`); when
    /// there is none, nothing changes. Both tasks must exist. Returns the task's
    /// dependencies, in creation order.
    pub fn remove_dependency(
        &self,
        agent_id: &str,
        task_id: &str,
        depends_on: &str,
    ) -> Result<Dependencies> {
        self.change_edge(agent_id, task_id, depends_on, false)
    }

    fn change_edge(
        &self,
        agent_id: &str,
        task_id: &str,
        depends_on: &str,
        add: bool,
    ) -> Result<Dependencies> {
        validate::agent_id(agent_id)?;
        validate::task_id(task_id)?;
        validate::id_of("depends_on", depends_on)?;
        plan::not_itself(task_id, depends_on)?;
        let outcome =
            self.backend
                .set_dependency(agent_id, task_id, depends_on, add, self.actor())?;
        match outcome {
            EdgeOutcome::Done(ids) => Ok(Dependencies {
                task_id: task_id.to_owned(),
                depends_on: ids,
            }),
            EdgeOutcome::NoTask => Err(not_found(agent_id, task_id)),
            EdgeOutcome::NoDependency => Err(no_such_dependency(depends_on)),
            EdgeOutcome::Cycle(path) => Err(plan::cycle(&path)),
        }
    }

    /// The task's dependencies and dependents, each with its agent and status, and
    /// whether the task is ready (`GET /api/backlogs/{agent_id}/{task_id}/dependencies`).
    pub fn get_dependencies(&self, agent_id: &str, task_id: &str) -> Result<DependencyGraph> {
        validate::agent_id(agent_id)?;
        validate::task_id(task_id)?;
        self.backend
            .get_dependencies(agent_id, task_id)?
            .ok_or_else(|| not_found(agent_id, task_id))
    }

    /// The agent's ready tasks — queued, every dependency complete — in the order
    /// claims take them (priority, then creation order), paged
    /// (`GET /api/backlogs/{agent_id}/ready`); `total` counts every ready task.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Page, Store};
    /// let store = Store::open_in_memory()?;
    /// store.create_tasks("ops", vec![NewTask::new("a"), NewTask::new("b").depends_on_item(0), NewTask::new("c")])?;
    /// let ready = store.ready_tasks("ops", Page::new().limit(1))?;
    /// assert_eq!((ready.tasks[0].id.as_str(), ready.total), ("OPS-001", 2));
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn ready_tasks(&self, agent_id: &str, page: Page) -> Result<TaskList> {
        self.backlog_page(
            agent_id,
            Some(Status::Queued),
            true,
            page.limit,
            page.offset,
        )
    }
}
