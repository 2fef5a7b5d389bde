"""Type stub of the extension module ``agent_backlog._native`` (src/python.rs).

Import the ``agent_backlog`` package rather than this module.
"""

import os
from types import TracebackType
from typing import Any, ClassVar, Dict, List, Literal, Optional, Sequence, Tuple, Type, Union, final

from typing_extensions import Self, Unpack

from ._types import (
    AgentList,
    Dependencies,
    EventPage,
    History,
    Pruned,
    DependencyGraph,
    Claim,
    Deleted,
    Finished,
    FinishStatus,
    Lease,
    Reaped,
    NewTask,
    PrefixSet,
    QueryResult,
    Status,
    Summary,
    Task,
    TaskList,
    TaskPatch,
)

__all__ = [
    "BacklogError",
    "ConflictError",
    "InternalError",
    "LeaseLostError",
    "NotFoundError",
    "StorageError",
    "Store",
    "TransitionError",
    "ValidationError",
    "Waiter",
    "WouldWait",
    "__version__",
    "tool_definitions",
]

__version__: str

class BacklogError(Exception):
    """The base class of every error agent-backlog raises.

    ``code`` holds the stable error code of the contract; the library raises only
    the subclasses below.
    """

    code: ClassVar[str]

class ValidationError(BacklogError, ValueError):
    """A bad agent_id, task_id, field, type, range or unknown field
    (code ``"invalid_argument"``); nothing was written."""

class NotFoundError(BacklogError, LookupError):
    """The task does not exist in that agent's backlog (code ``"not_found"``)."""

class TransitionError(BacklogError):
    """A lifecycle move the transition table forbids (code ``"invalid_transition"``)."""

class ConflictError(BacklogError):
    """A prefix held by another agent, or a prefix change after the first task
    (code ``"conflict"``)."""

class LeaseLostError(ConflictError):
    """The lease token no longer holds its task (code ``"lease_lost"``): the lease
    expired and the task was requeued, another worker claimed it, or the task was
    moved or deleted. Stop working on the task; nothing was written."""

class StorageError(BacklogError):
    """SQLite failed: busy past the timeout, disk full, read-only or corrupt file, a
    newer schema, a closed store or a store inherited across fork() (code ``"storage"``)."""

class InternalError(BacklogError):
    """A bug inside agent-backlog (code ``"internal"``); the store stays usable."""

class WouldWait(Exception):
    """A call made with ``Store._now`` would have waited, and did nothing."""

@final
class Waiter:
    """Ends one wait of a store from another thread, at once."""

    @property
    def cancelled(self) -> bool:
        """Whether cancel() was called."""
    def cancel(self) -> None:
        """Ends the wait given this waiter (it claims nothing)."""

@final
class Store:
    """A backlog store over one SQLite file (or ``":memory:"``), or on PostgreSQL by URL
    (``"postgresql://user@host/db"``; see docs/POSTGRES.md).

    ``busy_timeout`` is how many seconds a write waits for another connection's write
    lock (default 5.0); ``durability`` is ``"normal"`` (default: an acknowledged write
    survives any process crash) or ``"full"`` (also survives power loss, at an fsync
    per write). A Store may be shared by threads. Use it as a context manager or call
    ``close()``; a closed store, or one inherited across ``fork()``, raises
    ``StorageError``.
    """

    def __new__(
        cls,
        path_or_url: Union[str, "os.PathLike[str]"],
        *,
        busy_timeout: Optional[float] = None,
        durability: Optional[Literal["normal", "full"]] = None,
        actor: Optional[str] = None,
    ) -> Self: ...
    def list_tasks(
        self,
        agent_id: str,
        status: Optional[Status] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> TaskList:
        """The agent's backlog by priority, then creation order; ``total`` ignores
        limit and offset."""
    def create_task(
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
    def create_tasks(
        self,
        agent_id: str,
        tasks: Sequence[NewTask],
        *,
        idempotency_key: Optional[str] = None,
    ) -> TaskList:
        """Adds several tasks in one transaction: all of them, or on any error none.
        In an item's ``depends_on`` an ``int`` names an earlier item."""
    def add_dependency(self, agent_id: str, task_id: str, depends_on: str) -> Dependencies:
        """Makes ``task_id`` wait for ``depends_on`` (a task of any agent);
        ``ConflictError`` when that would close a cycle."""
    def remove_dependency(self, agent_id: str, task_id: str, depends_on: str) -> Dependencies:
        """Stops ``task_id`` waiting for ``depends_on``; nothing changes when it did not."""
    def get_dependencies(self, agent_id: str, task_id: str) -> DependencyGraph:
        """Whether the task is ready, what it depends on and what depends on it."""
    def ready_tasks(
        self, agent_id: str, *, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> TaskList:
        """The agent's ready tasks (queued, every dependency complete), in the order
        claims take them."""
    def get_task(self, agent_id: str, task_id: str) -> Task:
        """One task of the agent's backlog."""
    def update_task(self, agent_id: str, task_id: str, **fields: Unpack[TaskPatch]) -> Task:
        """Changes the fields given; an absent field is unchanged, ``None`` clears
        description, blocker or result. A status change follows the lifecycle table."""
    def delete_task(self, agent_id: str, task_id: str) -> Deleted:
        """Deletes the task for good; its number is never reused."""
    def query_tasks(
        self,
        status: Optional[Status] = None,
        priority: Optional[int] = None,
        agent_id: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> QueryResult:
        """Tasks across all agents, each with its ``agent_id`` first."""
    def summary(self, agent_id: str) -> Summary:
        """Counts of the agent's tasks by status."""
    def claim_next(self, agent_id: str) -> Optional[Task]:
        """Atomically moves the agent's first ready task to in_progress and returns
        it; ``None`` when nothing is ready."""
    def set_prefix(self, agent_id: str, prefix: str) -> PrefixSet:
        """Fixes the prefix of the agent's task IDs before its first task."""
    def claim_lease(
        self, agent_id: str, worker: str, *, lease_seconds: int = 600, max_attempts: int = 3
    ) -> Optional[Claim]:
        """Claims the agent's most urgent queued task with a lease for ``worker``;
        ``None`` when nothing is ready. Renew the lease before it expires."""
    def renew_lease(self, token: str, *, lease_seconds: Optional[int] = None) -> Lease:
        """Extends the lease to now + lease_seconds (default: its own duration)."""
    def finish_lease(
        self,
        token: str,
        status: FinishStatus,
        *,
        result: Optional[str] = None,
        blocker: Optional[str] = None,
    ) -> Task:
        """Ends the lease by moving its task to complete, queued or blocked."""
    def finish_and_claim(
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
    def get_lease(self, agent_id: str, task_id: str) -> Optional[Lease]:
        """The task's current lease, or ``None`` when it holds none."""
    def reap_expired(self, agent_id: Optional[str] = None) -> Reaped:
        """Ends the expired leases of the agent (of every agent when ``None``)."""
    def wait_for_task(
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
    def task_history(self, agent_id: str, task_id: str) -> History:
        """The task's events, oldest first; they outlive the task."""
    def events(
        self,
        *,
        after: Optional[int] = 0,
        limit: Optional[int] = 100,
        agent_id: Optional[str] = None,
        wait_seconds: Optional[float] = 0,
    ) -> EventPage:
        """The change feed after ``after``; waits up to ``wait_seconds`` for the next
        change when there is no event yet."""
    def prune_events(self, before: int) -> Pruned:
        """Deletes the events with a seq below ``before`` (the newest is kept)."""
    def list_agents(self, *, limit: Optional[int] = None, offset: Optional[int] = None) -> AgentList:
        """The agents by agent_id with their prefix and counts."""
    def _call_tool(
        self,
        name: str,
        arguments: Any,
        *,
        agent_id: Optional[str] = None,
        _waiter: Optional[Waiter] = None,
    ) -> Dict[str, Any]:
        """A tool call of SPEC §15; see ``agent_backlog.tools.call``."""
    def _now(
        self, name: str, args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]] = None
    ) -> Any:
        """Calls the method ``name`` such that it never waits; ``WouldWait`` when it
        would have (nothing was done)."""
    def _waiter(self) -> Waiter:
        """A new Waiter, to end one wait of this store from another thread."""
    def _return_lease(self, token: str) -> Task:
        """Undoes a leased claim that never reached its worker (attempt not counted)."""
    def close(self) -> None:
        """Closes the store; later calls raise StorageError. Closing twice is fine."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> Literal[False]: ...

def tool_definitions(tools: str = "all", *, agent_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """The tools of SPEC §15; see ``agent_backlog.tools``."""
