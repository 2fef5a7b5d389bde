"""The backlog's tools (SPEC §15) as tools of the OpenAI Agents SDK.

    from agents import Agent, Runner
    from agent_backlog import Store
    from agent_backlog.openai_agents import backlog_tools

    store = Store("backlogs.db")
    agent = Agent(
        name="planner",
        instructions="Work through the backlog of the agent 'ops'.",
        tools=backlog_tools(store),               # the core set; "all" or a list of names
    )
    Runner.run_sync(agent, "Plan the release, then do the tasks one by one.")

Each tool is a ``FunctionTool`` over :func:`agent_backlog.tools.call`: the tool's name
and description, its strict JSON schema (``strict_json_schema=True``), and a call that
returns the result as JSON text. An error comes back as the text of the error object
(``{"error": {"code": "not_found", "message": ...}}``), not as an exception, so that
the model reads what to change. The event loop is never blocked: on an ``AsyncStore``
the call awaits :func:`agent_backlog.tools.acall` (calls that cannot wait run on the
loop; a cancelled wait ends at once), on a ``Store`` it runs in a worker thread (a
tool that waits, ``wait_for_task``, holds that thread at most its ``timeout_seconds``).

Needs the SDK: ``pip install 'agent-backlog[openai-agents]'``.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any, List, Optional, Sequence, Union

from agents import FunctionTool
from agents.tool_context import ToolContext

from . import tools as _tools
from ._async import AsyncStore
from ._native import Store

__all__ = ["backlog_tools"]


def backlog_tools(
    store: Union[Store, AsyncStore],
    tools: Union[str, Sequence[str]] = "core",
    *,
    agent_id: Optional[str] = None,
) -> List[FunctionTool]:
    """The tools named by ``tools`` (``"core"``, ``"all"`` or a list of names, as
    :func:`agent_backlog.tools.select` takes them) as Agents SDK tools on ``store``.
    With ``agent_id`` they are bound to that agent's backlog: the model never names
    the agent.

    Raises ``ValidationError`` for an unknown name or a bad agent_id."""
    return [_tool(store, tool, agent_id) for tool in _tools.select(tools, agent_id=agent_id)]


def _tool(store: Union[Store, AsyncStore], tool: _tools.Tool, agent_id: Optional[str]) -> FunctionTool:
    name = tool["name"]

    async def invoke(context: ToolContext[Any], arguments: str) -> str:
        # A model may send "" for a call without arguments.
        given: Optional[str] = arguments if arguments.strip() else None
        if isinstance(store, AsyncStore):
            result = await _tools.acall(store, name, given, agent_id=agent_id)
        else:
            result = await asyncio.to_thread(_tools.call, store, name, given, agent_id=agent_id)
        return json.dumps(result, ensure_ascii=False, separators=(",", ":"))

    return FunctionTool(
        name=name,
        description=tool["description"],
        params_json_schema=copy.deepcopy(tool["parameters"]),
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )
