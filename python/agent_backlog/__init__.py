"""agent-backlog: a prioritized task backlog for every AI agent, in one SQLite file.

    import agent_backlog

    with agent_backlog.Store("backlogs.db") as store:
        task = store.create_task("marketing-lead", "Write 3 LinkedIn posts", priority=3)
        claimed = store.claim_next("marketing-lead")      # a Task dict, or None
        store.update_task("marketing-lead", task["id"], status="complete", result="3 posts")

Results are plain dicts and lists equal to the JSON shapes of the contract (see the
TypedDicts ``Task``, ``TaskList``, ``QueryResult``, ...). Errors raise subclasses of
``BacklogError``, each with a ``code`` attribute holding the stable error code. A
``Store`` may be shared by threads; SQLite work runs with the GIL released.
"""

from ._native import (
    BacklogError,
    ConflictError,
    InternalError,
    NotFoundError,
    StorageError,
    Store,
    TransitionError,
    ValidationError,
    __version__,
)
from ._types import (
    AgentTask,
    Deleted,
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
    "AgentTask",
    "BacklogError",
    "ConflictError",
    "Deleted",
    "InternalError",
    "NewTask",
    "NotFoundError",
    "PrefixSet",
    "QueryResult",
    "Status",
    "StorageError",
    "Store",
    "Summary",
    "Task",
    "TaskList",
    "TaskPatch",
    "TransitionError",
    "ValidationError",
    "__version__",
]
