"""Typed form of ``agent_backlog._async``: ``AsyncStore`` has every method of
``Store`` as a coroutine (see ``_native.pyi`` for the blocking ones)."""

import os
from types import TracebackType
from typing import Any, Dict, Literal, Mapping, Optional, Sequence, Tuple, Type, Union

from typing_extensions import Self, Unpack

from ._native import Store
from ._types import (
    AgentList,
    Claim,
    Deleted,
    Dependencies,
    DependencyGraph,
    EventPage,
    Finished,
    FinishStatus,
    History,
    Lease,
    NewTask,
    PrefixSet,
    Pruned,
    QueryResult,
    Reaped,
    Status,
    Summary,
    Task,
    TaskList,
    TaskPatch,
)

__all__ = ["AsyncStore"]

METHODS: Tuple[str, ...]

class AsyncStore:
    """A backlog store for asyncio programs: ``Store``'s methods as coroutines, with
    the same arguments, results and errors. Calls that cannot wait run on the loop;
    calls that would wait run on a thread; cancelling a wait ends it at once."""

    def __init__(
        self,
        path_or_url: Union[str, "os.PathLike[str]"],
        *,
        busy_timeout: Optional[float] = None,
        durability: Optional[Literal["normal", "full"]] = None,
        actor: Optional[str] = None,
    ) -> None: ...
    @property
    def store(self) -> Store:
        """The blocking ``Store`` underneath."""
    async def _call(self, name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any: ...
    async def aclose(self) -> None:
        """Closes the store; later calls raise ``StorageError``."""
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None: ...
    async def list_tasks(
        self,
        agent_id: str,
        status: Optional[Status] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> TaskList:
        """The agent's backlog by priority, then creation order; ``total`` ignores
        limit and offset."""
    async def create_task(
        self,
        agent_id: str,
        title: str,
        description: Optional[str] = None,
        priority: Optional[int] = None,
        *,
        depends_on: Optional[Sequence[str]] = None,
        idempotency_key: Optional[str] = None,
    ) -> Task:
        """Adds a task (priority 1 highest .. 10 lowest, default 5) and returns it.
        ``depends_on`` lists tasks that must be complete before it is ready;
        ``idempotency_key`` makes a retry safe."""
    async def create_tasks(
        self,
        agent_id: str,
        tasks: Sequence[NewTask],
        *,
        idempotency_key: Optional[str] = None,
    ) -> TaskList:
        """Adds several tasks in one transaction: all of them, or on any error none.
        In an item's ``depends_on`` an ``int`` names an earlier item."""
    async def add_dependency(self, agent_id: str, task_id: str, depends_on: str) -> Dependencies:
        """Makes ``task_id`` wait for ``depends_on`` (a task of any agent);
        ``ConflictError`` when that would close a cycle."""
    async def remove_dependency(self, agent_id: str, task_id: str, depends_on: str) -> Dependencies:
        """Stops ``task_id`` waiting for ``depends_on``; nothing changes when it did not."""
    async def get_dependencies(self, agent_id: str, task_id: str) -> DependencyGraph:
        """Whether the task is ready, what it depends on and what depends on it."""
    async def ready_tasks(
        self, agent_id: str, *, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> TaskList:
        """The agent's ready tasks (queued, every dependency complete), in the order
        claims take them."""
    async def get_task(self, agent_id: str, task_id: str) -> Task:
        """One task of the agent's backlog."""
    async def update_task(self, agent_id: str, task_id: str, **fields: Unpack[TaskPatch]) -> Task:
        """Changes the fields given; an absent field is unchanged, ``None`` clears
        description, blocker or result. A status change follows the lifecycle table."""
    async def delete_task(self, agent_id: str, task_id: str) -> Deleted:
        """Deletes the task for good; its number is never reused."""
    async def query_tasks(
        self,
        status: Optional[Status] = None,
        priority: Optional[int] = None,
        agent_id: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> QueryResult:
        """Tasks across all agents, each with its ``agent_id`` first."""
    async def summary(self, agent_id: str) -> Summary:
        """Counts of the agent's tasks by status."""
    async def claim_next(self, agent_id: str) -> Optional[Task]:
        """Atomically moves the agent's first ready task to in_progress and returns
        it; ``None`` when nothing is ready."""
    async def set_prefix(self, agent_id: str, prefix: str) -> PrefixSet:
        """Fixes the prefix of the agent's task IDs before its first task."""
    async def claim_lease(
        self, agent_id: str, worker: str, *, lease_seconds: int = 600, max_attempts: int = 3
    ) -> Optional[Claim]:
        """Claims the agent's most urgent queued task with a lease for ``worker``;
        ``None`` when nothing is ready. Renew the lease before it expires."""
    async def renew_lease(self, token: str, *, lease_seconds: Optional[int] = None) -> Lease:
        """Extends the lease to now + lease_seconds (default: its own duration)."""
    async def finish_lease(
        self,
        token: str,
        status: FinishStatus,
        *,
        result: Optional[str] = None,
        blocker: Optional[str] = None,
    ) -> Task:
        """Ends the lease by moving its task to complete, queued or blocked."""
    async def finish_and_claim(
        self,
        token: str,
        status: FinishStatus,
        *,
        result: Optional[str] = None,
        blocker: Optional[str] = None,
        lease_seconds: int = 600,
        max_attempts: int = 3,
    ) -> Finished:
        """finish_lease, then claim_lease for the same agent and worker, in one
        transaction."""
    async def get_lease(self, agent_id: str, task_id: str) -> Optional[Lease]:
        """The task's current lease, or ``None`` when it holds none."""
    async def reap_expired(self, agent_id: Optional[str] = None) -> Reaped:
        """Ends the expired leases of the agent (of every agent when ``None``)."""
    async def wait_for_task(
        self,
        agent_id: str,
        worker: str,
        timeout_seconds: float,
        *,
        lease_seconds: int = 600,
        max_attempts: int = 3,
    ) -> Optional[Claim]:
        """claim_lease, waiting up to timeout_seconds (0 to 300) for a task; ``None``
        when the timeout passes. Releases the GIL; Ctrl-C interrupts it."""
    async def task_history(self, agent_id: str, task_id: str) -> History:
        """The task's events, oldest first; they outlive the task."""
    async def events(
        self,
        *,
        after: Optional[int] = 0,
        limit: Optional[int] = 100,
        agent_id: Optional[str] = None,
        wait_seconds: Optional[float] = 0,
    ) -> EventPage:
        """The change feed after ``after``; waits up to ``wait_seconds`` for the next
        change when there is no event yet."""
    async def prune_events(self, before: int) -> Pruned:
        """Deletes the events with a seq below ``before`` (the newest is kept)."""
    async def list_agents(self, *, limit: Optional[int] = None, offset: Optional[int] = None) -> AgentList:
        """The agents by agent_id with their prefix and counts."""


async def _call_tool(
    store: AsyncStore, name: str, arguments: Any, agent_id: Optional[str]
) -> Dict[str, Any]: ...
