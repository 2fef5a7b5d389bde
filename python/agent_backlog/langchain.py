"""The backlog's tools (SPEC §15) as LangChain tools.

    from agent_backlog import Store
    from agent_backlog.langchain import backlog_tools

    store = Store("backlogs.db")
    tools = backlog_tools(store)                  # the core set; "all" or a list of names
    by_name = {tool.name: tool for tool in tools}
    model = ChatOpenAI(model="gpt-5").bind_tools(tools, strict=True)   # any tool-calling model
    reply = model.invoke(messages)
    for call in reply.tool_calls:
        messages.append(by_name[call["name"]].invoke(call))   # a ToolMessage: the JSON result

Each tool is a ``StructuredTool`` over :func:`agent_backlog.tools.call`: the tool's
name and description, its strict JSON schema as ``args_schema``, and a function that
returns the result as JSON text. An error comes back as the text of the error object
(``{"error": {"code": "not_found", "message": ...}}``), not as an exception, so that
the model reads what to change. ``ainvoke`` never blocks the event loop: on an
``AsyncStore`` it awaits :func:`agent_backlog.tools.acall` (calls that cannot wait
run on the loop, a cancelled wait ends at once); on a ``Store`` it runs the call in a
worker thread. ``invoke`` is the blocking call on either.

Needs langchain-core: ``pip install 'agent-backlog[langchain]'``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, List, Optional, Sequence, Union

from langchain_core.tools import StructuredTool

from . import tools as _tools
from ._async import AsyncStore
from ._native import Store

__all__ = ["backlog_tools"]


def backlog_tools(
    store: Union[Store, AsyncStore],
    tools: Union[str, Sequence[str]] = "core",
    *,
    agent_id: Optional[str] = None,
) -> List[StructuredTool]:
    """The tools named by ``tools`` (``"core"``, ``"all"`` or a list of names, as
    :func:`agent_backlog.tools.select` takes them) as LangChain tools on ``store``.
    With ``agent_id`` they are bound to that agent's backlog: the model never names
    the agent.

    Raises ``ValidationError`` for an unknown name or a bad agent_id."""
    return [_tool(store, tool, agent_id) for tool in _tools.select(tools, agent_id=agent_id)]


def _tool(store: Union[Store, AsyncStore], tool: _tools.Tool, agent_id: Optional[str]) -> StructuredTool:
    name = tool["name"]
    blocking = store.store if isinstance(store, AsyncStore) else store

    def run(**arguments: Any) -> str:
        return _text(_tools.call(blocking, name, arguments, agent_id=agent_id))

    async def arun(**arguments: Any) -> str:
        if isinstance(store, AsyncStore):
            return _text(await _tools.acall(store, name, arguments, agent_id=agent_id))
        return await asyncio.to_thread(run, **arguments)

    return StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name=name,
        description=tool["description"],
        args_schema=tool["parameters"],
    )


def _text(result: Any) -> str:
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))
