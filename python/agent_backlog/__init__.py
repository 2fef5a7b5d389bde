"""agent-backlog: a prioritized task backlog for every AI agent, in one SQLite file.

    import agent_backlog

    with agent_backlog.Store("backlogs.db") as store:
        task = store.create_task("marketing-lead", "Write 3 LinkedIn posts", priority=3)
        claimed = store.claim_next("marketing-lead")      # a Task dict, or None
        store.update_task("marketing-lead", task["id"], status="complete", result="3 posts")

A worker that may die takes a lease instead, and holds it while it works::

        claim = store.wait_for_task("marketing-lead", "writer-7", 30, lease_seconds=60)
        if claim is not None:
            with agent_backlog.hold_lease(store, claim) as held:
                held.complete(write_posts(held.task))

On an event loop, ``AsyncStore`` has the same methods as coroutines, and
``hold_lease_async`` renews on the loop::

    async with agent_backlog.AsyncStore("backlogs.db") as store:
        claim = await store.wait_for_task("marketing-lead", "writer-7", 30)
        if claim is not None:
            async with agent_backlog.hold_lease_async(store, claim) as held:
                await held.complete(await write_posts(held.task))

Results are plain dicts and lists equal to the JSON shapes of the contract (see the
TypedDicts ``Task``, ``TaskList``, ``QueryResult``, ...). Errors raise subclasses of
``BacklogError``, each with a ``code`` attribute holding the stable error code. A
``Store`` may be shared by threads; SQLite work runs with the GIL released.
"""

from ._async import AsyncStore
from ._lease import AsyncHeldLease, HeldLease, hold_lease, hold_lease_async
from ._native import (
    BacklogError,
    ConflictError,
    InternalError,
    LeaseLostError,
    NotFoundError,
    StorageError,
    Store,
    TransitionError,
    ValidationError,
    __version__,
)
from . import tools
from ._types import (
    AgentList,
    AgentSummary,
    AgentTask,
    Claim,
    Deleted,
    Dependencies,
    DependencyGraph,
    Event,
    EventPage,
    EventType,
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
    TaskRef,
)

__all__ = [
    "AgentList",
    "AgentSummary",
    "AgentTask",
    "AsyncHeldLease",
    "AsyncStore",
    "BacklogError",
    "Claim",
    "ConflictError",
    "Deleted",
    "Dependencies",
    "DependencyGraph",
    "Event",
    "EventPage",
    "EventType",
    "FinishStatus",
    "Finished",
    "HeldLease",
    "History",
    "InternalError",
    "Lease",
    "LeaseLostError",
    "NewTask",
    "NotFoundError",
    "PrefixSet",
    "Pruned",
    "QueryResult",
    "Reaped",
    "Status",
    "StorageError",
    "Store",
    "Summary",
    "Task",
    "TaskList",
    "TaskPatch",
    "TaskRef",
    "tools",
    "TransitionError",
    "ValidationError",
    "__version__",
    "hold_lease",
    "hold_lease_async",
]
