//! The history operations of SPEC §14: a task's history, the change feed (waiting
//! for the next commit as `wait_for_task` waits for a task), pruning, and the agents.

use std::time::Instant;

use super::leases::{stopped, unless_stopped};
use super::{not_found, page, Store};
use crate::error::Result;
use crate::history::{AgentList, EventPage, EventQuery, History, Pruned};
use crate::rules::{history as rules, validate};

impl Store {
    /// The task's events, oldest first (`GET /api/backlogs/{agent_id}/{task_id}/history`):
    /// they outlive the task. `not_found` only when the task has no event and is not
    /// in the agent's backlog.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// let task = store.create_task("ops", NewTask::new("Rotate keys"))?;
    /// store.delete_task("ops", &task.id)?;
    /// let kinds: Vec<String> = store.task_history("ops", &task.id)?
    ///     .events.iter().map(|e| e.kind.to_string()).collect();
    /// assert_eq!(kinds, ["created", "deleted"]);
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn task_history(&self, agent_id: &str, task_id: &str) -> Result<History> {
        validate::agent_id(agent_id)?;
        validate::task_id(task_id)?;
        let events = self
            .backend
            .task_history(agent_id, task_id)?
            .ok_or_else(|| not_found(agent_id, task_id))?;
        Ok(History {
            task_id: task_id.to_owned(),
            events,
        })
    }

    /// A page of the change feed (`GET /api/events`): the events with a seq above
    /// `after` (of one agent, or every agent), oldest first, at most `limit`; `next` is
    /// the `after` of the next page. With `wait_seconds`, when there is no such event
    /// yet, it waits for the next commit that makes one, up to that long.
    ///
    /// ```
    /// use agent_backlog::{EventQuery, NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// store.create_task("ops", NewTask::new("a"))?;
    /// let page = store.events(EventQuery::new())?;
    /// assert_eq!((page.events.len(), page.next), (1, page.events[0].seq));
    /// let empty = store.events(EventQuery::new().after(page.next).wait_seconds(0.05))?;
    /// assert_eq!((empty.events.len(), empty.next), (0, page.next));
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn events(&self, query: EventQuery) -> Result<EventPage> {
        self.events_wait(query, None)
    }

    /// The seq of the newest event, 0 when the feed is empty: where a follower that
    /// wants only what happens from now on starts (`after`). A pure read.
    ///
    /// ```
    /// use agent_backlog::{EventQuery, NewTask, Store};
    /// let store = Store::open_in_memory()?;
    /// assert_eq!(store.last_event_seq()?, 0);
    /// store.create_task("ops", NewTask::new("Rotate keys"))?;
    /// let now = store.last_event_seq()?;
    /// assert!(store.events(EventQuery::new().after(now))?.events.is_empty());
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn last_event_seq(&self) -> Result<i64> {
        self.backend.last_event_seq()
    }

    /// Like [`Store::events`], and a wait also ends, with an empty page, as soon as
    /// `stop()` returns `true` (asked about every 50 ms): how a server ends its long
    /// polls and a binding stays interruptible.
    pub fn events_until(
        &self,
        query: EventQuery,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<EventPage> {
        self.events_wait(query, Some(stop))
    }

    /// The wait of both: without a stop hook it sleeps until a change or the
    /// deadline; with one it also wakes every [`super::leases::STOP_POLL`] to ask it.
    fn events_wait(
        &self,
        query: EventQuery,
        mut stop: Option<&mut dyn FnMut() -> bool>,
    ) -> Result<EventPage> {
        let q = rules::query(query)?;
        let deadline = Instant::now() + q.wait;
        let nothing = EventPage {
            events: Vec::new(),
            next: q.after,
        };
        loop {
            // The mark comes first: a commit after it ends the wait below at once.
            let Some(mut mark) = unless_stopped(self.backend.change_mark(), &mut stop)? else {
                return Ok(nothing);
            };
            let Some(events) = unless_stopped(self.backend.events(&q), &mut stop)? else {
                return Ok(nothing);
            };
            let now = Instant::now();
            if !events.is_empty() || now >= deadline || stopped(&mut stop) {
                let next = events.last().map_or(q.after, |e| e.seq);
                return Ok(EventPage { events, next });
            }
            if crate::nowait::active() {
                return Err(crate::nowait::would_wait());
            }
            let until = match stop {
                Some(_) => deadline.min(now + super::leases::STOP_POLL),
                None => deadline,
            };
            self.backend.wait_change(&mut mark, until)?;
        }
    }

    /// Deletes the events with a seq below `before` (`POST /api/events/prune`) and
    /// says how many. The newest event of the store is always kept, so that no seq is
    /// ever given again.
    pub fn prune_events(&self, before: i64) -> Result<Pruned> {
        let before = validate::non_negative("before", before)?;
        Ok(Pruned {
            pruned: self.backend.prune_events(before)?,
        })
    }

    /// The agents of the store by agent_id, each with its prefix and counts
    /// (`GET /api/agents`), paged; `total` counts every agent. Read from the counts
    /// the store keeps: no task is counted.
    ///
    /// ```
    /// use agent_backlog::{NewTask, Page, Store};
    /// let store = Store::open_in_memory()?;
    /// store.create_task("support-bot", NewTask::new("a"))?;
    /// store.create_task("marketing-lead", NewTask::new("b"))?;
    /// let agents = store.list_agents(Page::new().limit(1))?;
    /// assert_eq!((agents.agents[0].agent_id.as_str(), agents.agents[0].prefix.as_str()), ("marketing-lead", "MKT"));
    /// assert_eq!((agents.agents[0].queued, agents.total), (1, 2));
    /// # Ok::<(), agent_backlog::Error>(())
    /// ```
    pub fn list_agents(&self, page_of: crate::plan::Page) -> Result<AgentList> {
        let (limit, offset) = page(page_of.limit, page_of.offset)?;
        let (agents, total) = self.backend.list_agents(limit, offset)?;
        Ok(AgentList { agents, total })
    }
}
