"""The backlog as tools for LLM agents (SPEC §15), for frameworks that take plain
functions and JSON schemas.

    from agent_backlog import Store, tools

    store = Store("backlogs.db")
    for tool in tools.select("core"):
        register(tool["name"], tool["description"], tool["parameters"])   # your framework
    reply = tools.call(store, "create_task", {"agent_id": "ops", "title": "Rotate keys"})
    reply["id"]                                       # 'OPS-001'
    tools.call(store, "get_task", {"agent_id": "ops", "task_id": "OPS-404"})
    # {'error': {'code': 'not_found', 'message': 'task OPS-404 is not in the backlog of ops'}}

On an event loop, ``await tools.acall(async_store, name, arguments)`` does the same
with an ``AsyncStore``.

The tools are the ones ``agent-backlog mcp`` serves, from the same definition in the
core: a tool per operation, with the operation's name; flat arguments (the fields of
a body beside the other inputs); the result is the operation's JSON when that is an
object and ``{"result": ...}`` around it otherwise (a claim is the claim, no claim is
``{"result": None}``); an error is the error object
``{"error": {"code", "message"}}``, returned, never raised, so that the model reads
what to change.

``parameters`` is in the strict form of OpenAI's function calling (also valid for
LangChain and pydantic-ai): every property is listed in ``required`` and the optional
ones also take ``null``, which means "not given". An empty string clears
``description``, ``blocker`` or ``result`` in ``update_task``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, TypedDict, Union

from ._async import AsyncStore, _call_tool
from ._native import Store, tool_definitions

__all__ = ["CORE", "TOOLS", "Tool", "ToolAnnotations", "acall", "call", "select"]


class ToolAnnotations(TypedDict):
    """The behaviour hints of a tool, as MCP names them."""

    readOnlyHint: bool
    destructiveHint: bool
    idempotentHint: bool
    openWorldHint: Literal[False]


class Tool(TypedDict):
    """One tool: what a framework needs to offer it to a model."""

    name: str
    description: str
    parameters: Dict[str, Any]
    output_schema: Dict[str, Any]
    annotations: ToolAnnotations


def select(tools: Union[str, Sequence[str]] = "core", *, agent_id: Optional[str] = None) -> List[Tool]:
    """The tools named by ``tools``: ``"core"`` (the default set, :data:`CORE`),
    ``"all"``, or a list of names. With ``agent_id`` they are bound to that agent's
    backlog: ``agent_id`` leaves their parameters (pass the same ``agent_id`` to
    :func:`call`), and the tools that span every agent are left out.

    Raises ``ValidationError`` for an unknown name or a bad agent_id."""
    names = tools if isinstance(tools, str) else ",".join(tools)
    found: List[Tool] = tool_definitions(names, agent_id=agent_id)  # type: ignore[assignment]
    return found


def call(
    store: Store,
    name: str,
    arguments: Union[Mapping[str, Any], str, None] = None,
    *,
    agent_id: Optional[str] = None,
) -> Dict[str, Any]:
    """Calls the tool ``name`` on ``store`` and returns its structured result, or the
    error object ``{"error": {"code", "message"}}`` — it never raises a backlog
    error into the agent's loop. ``arguments`` is a dict, or its JSON text as models
    write it. With ``agent_id``, the call is bound to that agent as :func:`select`'s
    tools are. A tool that waits (``wait_for_task``) releases the GIL and Ctrl-C
    interrupts it."""
    if not isinstance(store, Store):
        return _error("store must be an agent_backlog.Store, got " + type(store).__name__)
    checked = _arguments(name, arguments)
    if isinstance(checked, _Refused):
        return _error(checked.message)
    return store._call_tool(name, checked, agent_id=agent_id)


class _Refused:
    """Arguments that cannot be sent: ``message`` says why."""

    def __init__(self, message: str) -> None:
        self.message = message


def _arguments(name: Any, arguments: Union[Mapping[str, Any], str, None]) -> Any:
    """The arguments as the native call takes them (a dict, or anything else for the
    core to refuse by name), or ``_Refused`` with why they cannot be."""
    if not isinstance(name, str):
        return _Refused("name must be a tool's name as a string, got " + type(name).__name__)
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError as e:
            return _Refused(f"the arguments of {name} must be a JSON object: {e}")
    if arguments is None:
        return {}
    if isinstance(arguments, Mapping) and not isinstance(arguments, dict):
        return dict(arguments)
    return arguments


def _error(message: str) -> Dict[str, Any]:
    return {"error": {"code": "invalid_argument", "message": message}}


TOOLS: List[Tool] = select("all")
"""Every tool, unbound: a tool per operation of the contract."""

CORE: tuple[str, ...] = tuple(tool["name"] for tool in select("core"))
"""The names of the default set: list_tasks, get_task, create_task, update_task,
claim_lease, finish_lease and summary."""


async def acall(
    store: AsyncStore,
    name: str,
    arguments: Union[Mapping[str, Any], str, None] = None,
    *,
    agent_id: Optional[str] = None,
) -> Dict[str, Any]:
    """:func:`call` for an ``AsyncStore``: the same results and error objects, and it
    never blocks the event loop — a call that would wait (``wait_for_task``, a write
    while another process holds the lock) runs on a thread, and cancelling the
    coroutine ends that wait at once (a task it had claimed goes back to the queue)."""
    if not isinstance(store, AsyncStore):
        return _error("store must be an agent_backlog.AsyncStore, got " + type(store).__name__)
    checked = _arguments(name, arguments)
    if isinstance(checked, _Refused):
        return _error(checked.message)
    return await _call_tool(store, name, checked, agent_id)
