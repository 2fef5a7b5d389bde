//! Leases and waiting (SPEC §10–§11): the store's methods. Each checks its inputs
//! with [`crate::rules::lease`], then hands the work to the backend, whose
//! transactions call the same rules for what they decide inside.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{Backend, Claimable, Grant, LeaseRow};
use crate::error::Result;
use crate::lease::{Claim, Finish, Finished, Lease, LeaseTerms, Reaped};
use crate::model::Task;
use crate::rules::lease::{self as rules, format_ms};
use crate::rules::{patch, validate};
use crate::store::{not_found, Store};

/// How often an interruptible wait asks whether to stop.
pub(super) const STOP_POLL: Duration = Duration::from_millis(50);

/// Whether a wait's stop hook says stop. The hook runs outside the no-wait mode: it
/// may run code of the caller's (a Python signal handler), whose own calls may wait.
pub(super) fn stopped(stop: &mut Option<&mut dyn FnMut() -> bool>) -> bool {
    stop.as_mut().is_some_and(crate::nowait::suspended)
}

/// When the first held lease of a look expires, on this process's monotonic clock:
/// the look gives the time left by the database's clock, so a host whose wall clock
/// is ahead or behind the database's waits as long as the lease has left.
fn expiry_of(look: &Claimable) -> Option<Instant> {
    look.next_expiry_in_ms
        .map(|left| Instant::now() + Duration::from_millis(left.max(0) as u64))
}

/// A step of a wait: its value, or `None` when it failed because the wait was
/// cancelled meanwhile (a wait for a lock gives up at once then; see
/// [`WaitCancel::scope`]); any other failure is the wait's.
pub(super) fn unless_stopped<T>(
    step: Result<T>,
    stop: &mut Option<&mut dyn FnMut() -> bool>,
) -> Result<Option<T>> {
    match step {
        Ok(value) => Ok(Some(value)),
        Err(_) if stopped(stop) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Ends waits of one store from another thread; see [`Store::wait_cancel`]. Clones
/// share one flag.
#[derive(Clone)]
pub struct WaitCancel {
    cancelled: Arc<AtomicBool>,
    backend: Arc<dyn Backend>,
}

impl WaitCancel {
    /// Marks the waits that ask this handle as cancelled and wakes them now.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.backend.wake_waiters();
    }

    /// Whether [`WaitCancel::cancel`] was called: the stop hook of a wait.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Runs `f` — a wait whose stop hook asks [`WaitCancel::is_cancelled`] — such
    /// that, once cancelled, also a wait for a lock inside it (another connection's
    /// write lock, this store's writer, a free read connection) gives up at once
    /// instead of waiting out the busy timeout; the wait then returns as stopped,
    /// having written nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use agent_backlog::{LeaseTerms, Store};
    /// let store = Store::open_in_memory()?;
    /// let cancel = store.wait_cancel();
    /// cancel.cancel();
    /// let claim = cancel.scope(|| {
    ///     store.wait_for_task_until("ops", "w1", Duration::from_secs(60), LeaseTerms::new(),
    ///         &mut || cancel.is_cancelled())
    /// })?;
    /// assert!(claim.is_none());
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        crate::nowait::with_cancel(&self.cancelled, f)
    }
}

impl std::fmt::Debug for WaitCancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitCancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

fn lease(row: LeaseRow) -> Lease {
    Lease {
        token: row.token,
        agent_id: row.agent_id,
        task_id: row.task_id,
        worker: row.worker,
        fence: row.fence as u64,
        attempt: row.attempt as u32,
        max_attempts: row.max_attempts as u32,
        granted: format_ms(row.granted_ms),
        expires: format_ms(row.expires_ms),
    }
}

fn claim((task, row): (Task, LeaseRow)) -> Claim {
    Claim {
        task,
        lease: lease(row),
    }
}

impl Store {
    /// Claims the agent's first ready task with a lease for `worker` (SPEC §10);
    /// `None` when nothing is ready.
    ///
    /// First, in the same transaction, every expired lease of the agent is ended as
    /// [`Store::reap_expired`] does. The task moves to in_progress as with
    /// [`Store::claim_next`], and the lease must be renewed ([`Store::renew_lease`])
    /// before it expires, or the task goes back to the queue — or, once its attempts
    /// reach `max_attempts`, to blocked.
    ///
    /// ```
    /// use agent_backlog::{LeaseTerms, NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// store.create_task("support-bot", NewTask::new("Draft FAQ"))?;
    /// let claim = store.claim_lease("support-bot", "w1", LeaseTerms::new())?.unwrap();
    /// assert_eq!(claim.task.id, "SUP-001");
    /// assert_eq!(claim.lease.worker, "w1");
    /// assert!(claim.lease.token.starts_with("SUP-001.1."));
    /// assert!(store.claim_lease("support-bot", "w2", LeaseTerms::new())?.is_none());
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn claim_lease(
        &self,
        agent_id: &str,
        worker: &str,
        terms: LeaseTerms,
    ) -> Result<Option<Claim>> {
        validate::agent_id(agent_id)?;
        rules::worker(worker)?;
        let grant = Grant {
            worker,
            terms: rules::terms(terms)?,
        };
        Ok(self.backend.claim_lease(agent_id, &grant)?.map(claim))
    }

    /// Extends a lease to now + `lease_seconds` (default: the lease's own duration,
    /// which the new value replaces). It works while `token` is the task's current
    /// lease — even past its expiry, as long as nobody has requeued the task;
    /// otherwise `lease_lost`, and a token that never existed is `not_found`.
    pub fn renew_lease(&self, token: &str, lease_seconds: Option<i64>) -> Result<Lease> {
        let token = rules::token(token)?;
        let lease_ms = lease_seconds
            .map(|s| rules::lease_seconds(s).map(|s| s * 1000))
            .transpose()?;
        Ok(lease(self.backend.renew_lease(&token, lease_ms)?))
    }

    /// Ends a lease by moving its task as `finish` says — complete (with a result),
    /// queued (released for another worker) or blocked (with a blocker) — and
    /// returns the task. `lease_lost` when the token no longer holds the lease.
    pub fn finish_lease(&self, token: &str, finish: Finish) -> Result<Task> {
        let token = rules::token(token)?;
        let checked = patch::check(rules::finish_patch(finish)?)?;
        let (task, _) =
            self.backend
                .finish_lease(&token, &|task, now| checked.apply(task, now), None)?;
        Ok(task)
    }

    /// [`Store::finish_lease`], then [`Store::claim_lease`] for the same agent and
    /// worker, in one transaction: a worker's loop costs one commit per task.
    ///
    /// ```
    /// use agent_backlog::{Finish, LeaseTerms, NewTask, Status, Store};
    /// let store = Store::open_in_memory()?;
    /// store.create_tasks("ops", vec![NewTask::new("a"), NewTask::new("b")])?;
    /// let mut held = store.claim_lease("ops", "w1", LeaseTerms::new())?;
    /// let mut done = Vec::new();
    /// while let Some(claim) = held {
    ///     let step = store.finish_and_claim(&claim.lease.token, Finish::complete(), LeaseTerms::new())?;
    ///     assert_eq!(step.finished.status, Status::Complete);
    ///     done.push(step.finished.id);
    ///     held = step.next;
    /// }
    /// assert_eq!(done, ["OPS-001", "OPS-002"]);
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn finish_and_claim(
        &self,
        token: &str,
        finish: Finish,
        terms: LeaseTerms,
    ) -> Result<Finished> {
        let token = rules::token(token)?;
        let checked = patch::check(rules::finish_patch(finish)?)?;
        let terms = rules::terms(terms)?;
        let (finished, next) = self.backend.finish_lease(
            &token,
            &|task, now| checked.apply(task, now),
            Some(terms),
        )?;
        Ok(Finished {
            finished,
            next: next.map(claim),
        })
    }

    /// Undoes a leased claim that never reached its worker — the wait that made it
    /// was cancelled, or the program it was for stopped before seeing it: the task
    /// goes back to the queue at once, and the attempt the claim counted is taken
    /// back, so it counts toward `max_attempts` as if it had never been made. The
    /// token then gets `lease_lost`, as after any release. For work that was begun
    /// and given up, release with [`Store::finish_lease`] instead.
    ///
    /// ```
    /// use agent_backlog::{LeaseTerms, NewTask, Status, Store};
    /// let store = Store::open_in_memory()?;
    /// store.create_task("ops", NewTask::new("Rotate keys"))?;
    /// let claim = store.claim_lease("ops", "w1", LeaseTerms::new())?.unwrap();
    /// assert_eq!(store.return_lease(&claim.lease.token)?.status, Status::Queued);
    /// let again = store.claim_lease("ops", "w2", LeaseTerms::new())?.unwrap();
    /// assert_eq!((again.lease.attempt, again.lease.fence), (1, 2));
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn return_lease(&self, token: &str) -> Result<Task> {
        let token = rules::token(token)?;
        let checked = patch::check(rules::finish_patch(Finish::release())?)?;
        self.backend
            .return_lease(&token, &|task, now| checked.apply(task, now))
    }

    /// A handle that ends this store's waits from any thread, at once: a
    /// [`Store::wait_for_task_until`] or [`Store::events_until`] whose stop hook asks
    /// [`WaitCancel::is_cancelled`] returns (claiming nothing) as soon as
    /// [`WaitCancel::cancel`] is called, not at the next 50 ms poll. This is how an
    /// async binding cancels a wait running on a thread of its own.
    ///
    /// ```
    /// use std::time::Duration;
    /// use agent_backlog::{LeaseTerms, Store};
    /// let store = std::sync::Arc::new(Store::open_in_memory()?);
    /// let cancel = store.wait_cancel();
    /// let waiting = std::sync::Arc::clone(&store);
    /// let stop = cancel.clone();
    /// let t = std::thread::spawn(move || {
    ///     waiting.wait_for_task_until("ops", "w1", Duration::from_secs(60), LeaseTerms::new(),
    ///         &mut || stop.is_cancelled())
    /// });
    /// cancel.cancel();
    /// assert!(t.join().unwrap()?.is_none());
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn wait_cancel(&self) -> WaitCancel {
        WaitCancel {
            cancelled: Arc::new(AtomicBool::new(false)),
            backend: Arc::clone(&self.backend),
        }
    }

    /// The task's current lease, or `None` when it holds none (`not_found` when the
    /// task is not in the agent's backlog). A pure read: a lease past its expiry
    /// whose task has not been requeued yet is still returned.
    pub fn get_lease(&self, agent_id: &str, task_id: &str) -> Result<Option<Lease>> {
        validate::agent_id(agent_id)?;
        validate::task_id(task_id)?;
        match self.backend.get_lease(agent_id, task_id)? {
            Some(row) => Ok(row.map(lease)),
            None => Err(not_found(agent_id, task_id)),
        }
    }

    /// Ends every expired lease of the agent (of every agent with `None`): each task
    /// goes back to the queue, or to blocked once its attempts reached
    /// `max_attempts` (blocker `lease expired N times; last worker W`).
    pub fn reap_expired(&self, agent_id: Option<&str>) -> Result<Reaped> {
        if let Some(agent_id) = agent_id {
            validate::agent_id(agent_id)?;
        }
        self.backend.reap_expired(agent_id, self.actor())
    }

    /// [`Store::claim_lease`], waiting up to `timeout` for a task to become ready
    /// when none is (SPEC §11); `None` when the timeout passes.
    ///
    /// It wakes as soon as a commit — of this store, another store or another
    /// process — makes a task of the agent ready (created, released, unblocked,
    /// reopened), or one of its leases expires; it sleeps in between, without
    /// spinning. `timeout` is at most 300 seconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use agent_backlog::{LeaseTerms, NewTask, Store};
    /// let store = std::sync::Arc::new(Store::open_in_memory()?);
    /// let producer = std::sync::Arc::clone(&store);
    /// let t = std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(50));
    ///     producer.create_task("ops", NewTask::new("Rotate keys")).unwrap();
    /// });
    /// let claim = store.wait_for_task("ops", "w1", Duration::from_secs(10), LeaseTerms::new())?;
    /// assert_eq!(claim.unwrap().task.title, "Rotate keys");
    /// t.join().unwrap();
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn wait_for_task(
        &self,
        agent_id: &str,
        worker: &str,
        timeout: Duration,
        terms: LeaseTerms,
    ) -> Result<Option<Claim>> {
        self.wait(agent_id, worker, timeout, terms, None)
    }

    /// [`Store::wait_for_task`] that also stops, returning `None`, as soon as `stop()`
    /// returns `true`; `stop` is asked about every 50 ms while the call waits (the
    /// Python module uses it to stay interruptible by Ctrl-C).
    pub fn wait_for_task_until(
        &self,
        agent_id: &str,
        worker: &str,
        timeout: Duration,
        terms: LeaseTerms,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Claim>> {
        self.wait(agent_id, worker, timeout, terms, Some(stop))
    }

    /// The wait of both: without a stop hook it sleeps until a change, an expiry or
    /// the timeout; with one it also wakes every [`STOP_POLL`] to ask it.
    fn wait(
        &self,
        agent_id: &str,
        worker: &str,
        timeout: Duration,
        terms: LeaseTerms,
        mut stop: Option<&mut dyn FnMut() -> bool>,
    ) -> Result<Option<Claim>> {
        validate::agent_id(agent_id)?;
        rules::worker(worker)?;
        rules::timeout_seconds(timeout.as_secs_f64())?;
        let grant = Grant {
            worker,
            terms: rules::terms(terms)?,
        };
        let deadline = Instant::now() + timeout;
        loop {
            // A wait told to stop claims nothing more: not before its first look, and
            // not when the commit that woke it made a task ready.
            if stopped(&mut stop) {
                return Ok(None);
            }
            // The mark comes first: a commit after it, even one made while the claim
            // below runs, ends the wait below at once.
            let Some(mut mark) = unless_stopped(self.backend.change_mark(), &mut stop)? else {
                return Ok(None);
            };
            let Some(found) =
                unless_stopped(self.backend.claim_lease(agent_id, &grant), &mut stop)?
            else {
                return Ok(None);
            };
            if let Some(found) = found {
                return Ok(Some(claim(found)));
            }
            let Some(mut look) = unless_stopped(self.backend.claimable(agent_id), &mut stop)?
            else {
                return Ok(None);
            };
            let mut expiry = expiry_of(&look);
            loop {
                if look.ready {
                    break;
                }
                let now = Instant::now();
                if expiry.is_some_and(|at| at <= now) {
                    break;
                }
                if now >= deadline || stopped(&mut stop) {
                    return Ok(None);
                }
                if crate::nowait::active() {
                    return Err(crate::nowait::would_wait());
                }
                let ask = stop.is_some().then(|| now + STOP_POLL);
                let until = [Some(deadline), expiry, ask]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(deadline);
                if self.backend.wait_change(&mut mark, until)? {
                    let Some(now_look) =
                        unless_stopped(self.backend.claimable(agent_id), &mut stop)?
                    else {
                        return Ok(None);
                    };
                    look = now_look;
                    expiry = expiry_of(&look);
                }
            }
        }
    }
}
