#!/usr/bin/env python3
"""The backlog's tools in a pydantic-ai agent, with a scripted stand-in for the model.

Each tool of ``tools.select(...)`` becomes a pydantic-ai ``Tool`` with its name,
description and strict JSON schema as they are (``Tool.from_schema``); its function
awaits ``tools.acall`` on an ``AsyncStore`` and gives the model the result as JSON
text -- or the error object ``{"error": {"code", "message"}}``, which is returned,
never raised, so that the model reads what to change. The tools are bound to one
agent's backlog (``agent_id=``), so the model cannot touch any other.

The model is pydantic-ai's ``FunctionModel`` running a script: it plans two tasks
(create_task twice in one turn), lists the queue, claims the most urgent task with a
lease, finishes it, and answers in text. No API key is needed. At the end the
example checks the backlog (one task complete, one queued) and prints the run's tool
calls and results, one line each (long results cut):

    -> create_task {"title":"Rotate the API keys","description":null,"priority":1,...}
    <- {"id":"OPS-001","title":"Rotate the API keys",...,"status":"queued",...}

    pip install "agent-backlog[pydantic-ai]"
    python examples/python/pydantic_ai_tools.py [backlogs.db]

For a real model, change the one line ``model: ... = FunctionModel(scripted)`` in
``run`` to a model name, e.g. ``model: Union[Model, str] = "openai:gpt-5"``
(``pip install "pydantic-ai-slim[openai]"``, and set OPENAI_API_KEY); the checks at
the end expect the script's steps, which a real model need not take.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Callable, Coroutine, List, Optional, Sequence, Union

from pydantic_ai import Agent, Tool
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agent_backlog import AsyncStore, tools

AGENT = "ops"
WORKER = "agent-1"
PLAN = [("Rotate the API keys", 1), ("Update the runbook", 3)]
SHOWN = 160  # characters of a call or result shown per line


def backlog_tools(store: AsyncStore, names: Sequence[str], agent_id: str) -> List[Tool[None]]:
    """The named tools, bound to ``agent_id``'s backlog, as pydantic-ai tools."""

    def runner(name: str) -> Callable[..., Coroutine[Any, Any, str]]:
        async def run(**arguments: Any) -> str:
            reply = await tools.acall(store, name, arguments, agent_id=agent_id)
            return json.dumps(reply, ensure_ascii=False, separators=(",", ":"))  # errors too

        return run

    # sequential: calls the model makes in one turn run one after another, in order.
    return [
        Tool.from_schema(runner(t["name"]), name=t["name"], description=t["description"],
                         json_schema=t["parameters"], sequential=True)
        for t in tools.select(names, agent_id=agent_id)
    ]


def _call(info: AgentInfo, name: str, **given: Any) -> ToolCallPart:
    """A call in strict form: every parameter of the tool's schema, null when not given."""
    schema = next(t.parameters_json_schema for t in info.function_tools if t.name == name)
    unknown = set(given) - set(schema["properties"])
    assert not unknown, f"{name} has no parameter {unknown}"
    return ToolCallPart(name, {param: given.get(param) for param in schema["required"]})


def scripted(messages: List[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Stands in for the LLM: given the conversation so far, its next response."""
    turn = sum(isinstance(message, ModelResponse) for message in messages)
    returns = [part for message in messages for part in message.parts if isinstance(part, ToolReturnPart)]
    last = json.loads(returns[-1].model_response_str()) if returns else None
    if turn == 0:  # plan
        return ModelResponse(parts=[_call(info, "create_task", title=title, priority=priority)
                                    for title, priority in PLAN])
    if turn == 1:  # look at the queue
        return ModelResponse(parts=[_call(info, "list_tasks", status="queued")])
    if turn == 2:  # take the most urgent task
        return ModelResponse(parts=[_call(info, "claim_lease", worker=WORKER, lease_seconds=60)])
    if turn == 3:  # (pretend) work, then finish it
        assert last is not None and "lease" in last, last
        task, token = last["task"], last["lease"]["token"]
        return ModelResponse(parts=[_call(info, "finish_lease", token=token, status="complete",
                                          result=f"{task['title']}: done by {WORKER}")])
    assert last is not None and "error" not in last, last
    return ModelResponse(parts=[TextPart(f"Completed {last['id']} ({last['title']}); "
                                         f"{len(PLAN) - 1} task(s) still queued.")])


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


async def run(db: str) -> int:
    async with AsyncStore(db) as store:
        if (await store.summary(AGENT))["total"] != 0:
            print(f"pydantic_ai_tools: {db} already has tasks for {AGENT}; use a new file", file=sys.stderr)
            return 2
        offered = backlog_tools(store, ["create_task", "list_tasks", "claim_lease", "finish_lease"], AGENT)
        print(f"model is offered {len(offered)} tools: {', '.join(tool.name for tool in offered)}")
        model: Union[Model, str] = FunctionModel(scripted)  # the model; a real one: "openai:gpt-5"
        agent = Agent(model, tools=offered)
        result = await agent.run(f"Plan the key rotation in the backlog of {AGENT}, then start on it.")

        calls = 0
        for message in result.all_messages():
            for part in message.parts:
                if isinstance(part, ToolCallPart):
                    calls += 1
                    print(_cut(f"-> {part.tool_name} {part.args_as_json_str()}"))
                elif isinstance(part, ToolReturnPart):
                    print(_cut(f"<- {part.model_response_str()}"))
        print(f"{calls} tool calls; output: {result.output}")

        tasks = (await store.list_tasks(AGENT))["tasks"]
        statuses = [task["status"] for task in tasks]
        print(f"summary: {await store.summary(AGENT)}")
    expected = ["complete"] + ["queued"] * (len(PLAN) - 1)
    if statuses != expected:
        print(f"pydantic_ai_tools: FAILED: statuses {statuses}, expected {expected}", file=sys.stderr)
        return 1
    print("ok: the first task complete, the rest queued")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("db", nargs="?", default=":memory:",
                        help="the database file, which must not hold tasks of the agent 'ops' yet "
                             "(default: an in-memory database)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.db))


if __name__ == "__main__":
    sys.exit(main())
