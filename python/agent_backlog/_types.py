"""The shapes of agent-backlog's results and requests, as TypedDicts.

At run time every result is a plain ``dict`` (or ``list`` of them) equal to the JSON
of the contract, with the keys in the contract's order; these types only describe
them for type checkers and readers.
"""

from typing import Any, Dict, List, Literal, Optional, Sequence, TypedDict, Union

Status = Literal["queued", "in_progress", "complete", "blocked"]
"""Where a task is in its lifecycle."""


class Task(TypedDict):
    """One task, every key present, absent values ``None``."""

    id: str
    """``{PREFIX}-{NNN}``, unique in the store, never reused."""
    title: str
    """1..=500 characters, stored trimmed."""
    description: Optional[str]
    """Up to 65,536 characters."""
    priority: int
    """1 (highest) ..= 10 (lowest)."""
    status: Status
    created: str
    """RFC 3339, UTC, whole seconds: ``2026-03-28T10:00:00Z``."""
    started: Optional[str]
    """When the task last entered in_progress."""
    completed: Optional[str]
    """When the task entered complete."""
    result: Optional[str]
    """What the agent produced; only on a complete task."""
    blocker: Optional[str]
    """Why the task is blocked; only on a blocked task."""


class AgentTask(TypedDict):
    """A task in the cross-agent listing: ``agent_id`` first, then the task's keys."""

    agent_id: str
    id: str
    title: str
    description: Optional[str]
    priority: int
    status: Status
    created: str
    started: Optional[str]
    completed: Optional[str]
    result: Optional[str]
    blocker: Optional[str]


class TaskList(TypedDict):
    """One agent's backlog or a page of it (``list_tasks``, ``create_tasks``)."""

    agent_id: str
    tasks: List[Task]
    total: int
    """How many tasks match the filter, ignoring limit and offset."""


class QueryResult(TypedDict):
    """Tasks across agents (``query_tasks``)."""

    tasks: List[AgentTask]
    total: int
    """How many tasks match the filter, ignoring limit and offset."""


class Summary(TypedDict):
    """Counts of one agent's tasks by status."""

    queued: int
    in_progress: int
    complete: int
    blocked: int
    total: int


class Deleted(TypedDict):
    """The result of ``delete_task``: ``{"deleted": "MKT-001"}``."""

    deleted: str


class PrefixSet(TypedDict):
    """The result of ``set_prefix``."""

    agent_id: str
    prefix: str


class _NewTaskTitle(TypedDict):
    title: str


class NewTask(_NewTaskTitle, total=False):
    """One item of ``create_tasks``: ``{"title", "description"?, "priority"?,
    "depends_on"?}``."""

    description: Optional[str]
    priority: Optional[int]
    depends_on: Optional[Sequence[Union[str, int]]]
    """Task IDs (of any agent) that must be complete before this task is ready; in
    ``create_tasks`` an ``int`` names an earlier item of the same batch."""


class TaskPatch(TypedDict, total=False):
    """The keyword arguments of ``update_task``; ``None`` clears a nullable field."""

    status: Status
    priority: int
    title: str
    description: Optional[str]
    blocker: Optional[str]
    result: Optional[str]


FinishStatus = Literal["complete", "queued", "blocked"]
"""How a lease ends: complete, queued (released for another worker) or blocked."""


class Lease(TypedDict):
    """A lease on an in_progress task (SPEC §10). Times carry milliseconds."""

    token: str
    """Opaque and unguessable: the only way to renew or finish this lease."""
    agent_id: str
    task_id: str
    worker: str
    fence: int
    """Grows at every leased claim and every move of a leased task by anything else."""
    attempt: int
    """Leased claims of this task so far, this one included."""
    max_attempts: int
    """An expiry on this attempt or later blocks the task instead of requeueing it."""
    granted: str
    """RFC 3339, UTC, milliseconds: ``2026-12-02T10:00:00.000Z``."""
    expires: str
    """When the lease ends unless renewed."""


class Claim(TypedDict):
    """A leased claim: the task, now in_progress, and its lease."""

    task: Task
    lease: Lease


class Finished(TypedDict):
    """The result of ``finish_and_claim``."""

    finished: Task
    """The task the lease held, as the finish left it."""
    next: Optional[Claim]
    """The next task with its lease, or ``None`` when nothing was ready."""


class Reaped(TypedDict):
    """The tasks whose expired leases ``reap_expired`` ended."""

    requeued: List[str]
    blocked: List[str]


class Dependencies(TypedDict):
    """The result of ``add_dependency`` and ``remove_dependency``."""

    task_id: str
    depends_on: List[str]
    """The IDs of the tasks it depends on now, in creation order."""


class TaskRef(TypedDict):
    """Another task, as a dependency listing shows it."""

    agent_id: str
    id: str
    status: Status


class DependencyGraph(TypedDict):
    """The result of ``get_dependencies``."""

    task_id: str
    ready: bool
    """Queued, and every task it depends on complete."""
    depends_on: List[TaskRef]
    """The tasks it depends on, in creation order."""
    dependents: List[TaskRef]
    """The tasks that depend on it, in creation order."""


EventType = Literal[
    "created",
    "updated",
    "claimed",
    "finished",
    "lease_expired",
    "deleted",
    "dependency_added",
    "dependency_removed",
    "prefix_set",
]
"""What an event records."""


class Event(TypedDict):
    """One event of the history (SPEC §14)."""

    seq: int
    """Grows strictly with commit order; never reused."""
    at: str
    """RFC 3339, UTC, milliseconds."""
    agent_id: str
    task_id: Optional[str]
    """``None`` for ``prefix_set``."""
    type: EventType
    actor: Optional[str]
    """A lease's worker, or the store's actor; ``None`` when neither is set."""
    data: Dict[str, Any]
    """By type: ``created`` {title, priority}; ``updated`` {changed, from?, to?};
    ``claimed`` {worker, fence}; ``finished`` {to}; ``lease_expired`` {worker,
    attempt, to}; ``deleted`` {}; ``dependency_added``/``removed`` {depends_on};
    ``prefix_set`` {prefix}."""


class History(TypedDict):
    """The result of ``task_history``: the task's events, oldest first."""

    task_id: str
    events: List[Event]


class EventPage(TypedDict):
    """The result of ``events``."""

    events: List[Event]
    next: int
    """Pass it as ``after`` to read on."""


class Pruned(TypedDict):
    """The result of ``prune_events``."""

    pruned: int


class AgentSummary(TypedDict):
    """One agent of ``list_agents``, with its counts."""

    agent_id: str
    prefix: str
    queued: int
    in_progress: int
    complete: int
    blocked: int
    total: int


class AgentList(TypedDict):
    """The result of ``list_agents``."""

    agents: List[AgentSummary]
    total: int
