//! Waits as futures, for async Rust programs (the `tokio` feature, SPEC §18).
//!
//! [`Store::wait_for_task_async`] and [`Store::events_async`] run the wait on a thread
//! of its own (a wait may last minutes, which tokio's blocking pool is not for), so no
//! runtime worker thread is held while they wait; the answer comes back through a
//! oneshot channel. Dropping the future (a `select!` that took another branch, a
//! timeout, an aborted task) cancels the wait at once through a [`WaitCancel`] — also
//! a wait for a lock inside it ([`WaitCancel::scope`]); a task that the wait had
//! already claimed but not yet handed over goes straight back to the queue with
//! [`Store::return_lease`], its attempt not counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::history::{EventPage, EventQuery};
use crate::lease::{Claim, LeaseTerms};
use crate::store::{Store, WaitCancel};

/// Between the waiting thread and the future: whether the future was dropped, and
/// the token of a claim made but not handed over yet.
#[derive(Default)]
struct Handover {
    dropped: bool,
    undelivered: Option<String>,
}

/// A wait running on a thread of its own; see the module docs. Resolves to what
/// the blocking call returns; dropping it cancels the wait.
#[must_use = "a wait does nothing useful unless awaited; dropping it cancels it"]
pub struct Wait<T> {
    answer: oneshot::Receiver<Result<T>>,
    cancel: WaitCancel,
    handover: Arc<Mutex<Handover>>,
    store: Arc<Store>,
    done: bool,
}

impl<T> std::fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wait").field("done", &self.done).finish()
    }
}

fn lock(handover: &Mutex<Handover>) -> std::sync::MutexGuard<'_, Handover> {
    handover.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> Wait<T> {
    fn spawn(
        store: &Arc<Store>,
        run: impl FnOnce(&Store, &WaitCancel, &Mutex<Handover>) -> Result<T> + Send + 'static,
    ) -> Wait<T> {
        let cancel = store.wait_cancel();
        let handover = Arc::new(Mutex::new(Handover::default()));
        let (send, answer) = oneshot::channel();
        let spawned = {
            let (store, cancel, handover) =
                (Arc::clone(store), cancel.clone(), Arc::clone(&handover));
            std::thread::Builder::new()
                .name("agent-backlog wait".into())
                .spawn(move || {
                    let result = run(&store, &cancel, &handover);
                    // Nobody to take it when the future is gone; a claim in it was
                    // given back when the handover saw the drop.
                    let _ = send.send(result);
                })
        };
        let answer = match spawned {
            Ok(_) => answer,
            Err(e) => {
                let (send, answer) = oneshot::channel();
                let _ = send.send(Err(Error::storage(format!(
                    "cannot start a thread for the wait: {e}"
                ))));
                answer
            }
        };
        Wait {
            answer,
            cancel,
            handover,
            store: Arc::clone(store),
            done: false,
        }
    }
}

impl<T> Future for Wait<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let outcome = match Pin::new(&mut self.answer).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(result)) => result,
            Poll::Ready(Err(_)) => Err(Error::Internal(
                "the waiting thread ended without an answer (it panicked); this is a bug".into(),
            )),
        };
        self.done = true;
        lock(&self.handover).undelivered = None;
        Poll::Ready(outcome)
    }
}

impl<T> Drop for Wait<T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.cancel.cancel();
        let mut handover = lock(&self.handover);
        handover.dropped = true;
        if let Some(token) = handover.undelivered.take() {
            drop(handover);
            // A write, which may wait for a lock: not on the thread that dropped us.
            // (Should no thread start, the lease expires as any other would.)
            let store = Arc::clone(&self.store);
            let _ = std::thread::Builder::new()
                .name("agent-backlog give back".into())
                .spawn(move || store.return_lease(&token));
        }
    }
}

impl Store {
    /// [`Store::wait_for_task`] as a future (feature `tokio`): it waits on a thread of
    /// its own, never on a runtime worker thread, and dropping it stops the wait at
    /// once; a task it had claimed but not handed over yet goes straight back to the
    /// queue, its attempt not counted. Any executor may poll it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> agent_backlog::Result<()> {
    /// use std::{sync::Arc, time::Duration};
    /// use agent_backlog::{LeaseTerms, NewTask, Store};
    /// let store = Arc::new(Store::open_in_memory()?);
    /// store.create_task("ops", NewTask::new("Rotate keys"))?;
    /// let claim = store.wait_for_task_async("ops", "w1", Duration::from_secs(5), LeaseTerms::new()).await?;
    /// assert_eq!(claim.unwrap().task.id, "OPS-001");
    /// // Nothing else is queued: a timeout drops the wait, which stops at once.
    /// let wait = store.wait_for_task_async("ops", "w1", Duration::from_secs(60), LeaseTerms::new());
    /// assert!(tokio::time::timeout(Duration::from_millis(20), wait).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_for_task_async(
        self: &Arc<Self>,
        agent_id: &str,
        worker: &str,
        timeout: Duration,
        terms: LeaseTerms,
    ) -> Wait<Option<Claim>> {
        let (agent_id, worker) = (agent_id.to_owned(), worker.to_owned());
        Wait::spawn(self, move |store, cancel, handover| {
            // Only the wait runs in the cancel's scope: giving a claim back below waits
            // for the writer as any write does, cancelled or not.
            let claimed = cancel.scope(|| {
                store.wait_for_task_until(&agent_id, &worker, timeout, terms, &mut || {
                    cancel.is_cancelled()
                })
            })?;
            let Some(claim) = claimed else {
                return Ok(None);
            };
            let mut handover = lock(handover);
            if handover.dropped {
                drop(handover);
                store.return_lease(&claim.lease.token)?;
                return Ok(None);
            }
            handover.undelivered = Some(claim.lease.token.clone());
            Ok(Some(claim))
        })
    }

    /// [`Store::events`] as a future (feature `tokio`): a query with `wait_seconds`
    /// waits on a thread of its own, and dropping the future stops the wait at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> agent_backlog::Result<()> {
    /// use std::sync::Arc;
    /// use agent_backlog::{EventQuery, NewTask, Store};
    /// let store = Arc::new(Store::open_in_memory()?);
    /// let writer = Arc::clone(&store);
    /// let follow = store.events_async(EventQuery::new().wait_seconds(10.0));
    /// writer.create_task("ops", NewTask::new("Rotate keys"))?;
    /// let page = follow.await?;
    /// assert_eq!(page.events[0].task_id.as_deref(), Some("OPS-001"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn events_async(self: &Arc<Self>, query: EventQuery) -> Wait<EventPage> {
        Wait::spawn(self, move |store, cancel, _| {
            cancel.scope(|| store.events_until(query, &mut || cancel.is_cancelled()))
        })
    }
}
