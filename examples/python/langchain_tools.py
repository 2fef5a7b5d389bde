#!/usr/bin/env python3
"""The backlog's tools as async LangChain tools, with a scripted stand-in for the model.

Each tool of ``tools.select(...)`` becomes a ``StructuredTool`` with its name,
description and strict JSON schema as they are (``args_schema``); its coroutine
awaits ``tools.acall`` on an ``AsyncStore`` and gives the model the result as JSON
text -- or the error object ``{"error": {"code", "message"}}``, which is returned,
never raised, so that the model reads what to change. The tools are bound to one
agent's backlog (``agent_id=``), so the model cannot touch any other. (For a
blocking ``Store``, ``agent_backlog.langchain.backlog_tools`` builds such tools.)

The model is LangChain's ``GenericFakeChatModel`` fed by a script that reads the
conversation: it plans two tasks (create_task twice in one message), lists the
queue, claims the most urgent task with a lease, finishes it, and answers in text.
No API key is needed. The agent loop runs each tool call in turn and prints it and
its result, one line each (long results cut):

    -> create_task {"title":"Rotate the API keys","description":null,"priority":1,...}
    <- {"id":"OPS-001","title":"Rotate the API keys",...,"status":"queued",...}

At the end it checks the backlog (one task complete, one queued), and exits 1 otherwise.

    pip install "agent-backlog[langchain]"
    python examples/python/langchain_tools.py [backlogs.db]

For a real model, change the one line ``model: ... = GenericFakeChatModel(...)`` in
``run`` to a chat model with the tools bound, e.g.
``ChatOpenAI(model="gpt-5").bind_tools(offered, strict=True)`` (``pip install
langchain-openai``, and set OPENAI_API_KEY); the checks at the end expect the
script's steps, which a real model need not take.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Callable, Coroutine, Dict, Iterator, List, Optional, Sequence

from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.runnables import Runnable
from langchain_core.tools import StructuredTool

from agent_backlog import AsyncStore, tools

AGENT = "ops"
WORKER = "agent-1"
PLAN = [("Rotate the API keys", 1), ("Update the runbook", 3)]
SHOWN = 160  # characters of a call or result shown per line


def backlog_tools(store: AsyncStore, names: Sequence[str], agent_id: str) -> List[StructuredTool]:
    """The named tools, bound to ``agent_id``'s backlog, as async LangChain tools."""

    def runner(name: str) -> Callable[..., Coroutine[Any, Any, str]]:
        async def run(**arguments: Any) -> str:
            reply = await tools.acall(store, name, arguments, agent_id=agent_id)
            return json.dumps(reply, ensure_ascii=False, separators=(",", ":"))  # errors too

        return run

    return [
        StructuredTool.from_function(coroutine=runner(t["name"]), name=t["name"],
                                     description=t["description"], args_schema=t["parameters"])
        for t in tools.select(names, agent_id=agent_id)
    ]


class Script:
    """Stands in for the LLM: each message it yields reads the conversation so far."""

    def __init__(self, offered: List[StructuredTool], conversation: List[BaseMessage]) -> None:
        self.schemas: Dict[str, Dict[str, Any]] = {}
        for tool in offered:
            assert isinstance(tool.args_schema, dict)
            self.schemas[tool.name] = tool.args_schema
        self.conversation = conversation
        self.calls = 0

    def _call(self, name: str, **given: Any) -> ToolCall:
        """A call in strict form: every parameter of the tool's schema, null when not given."""
        schema = self.schemas[name]
        unknown = set(given) - set(schema["properties"])
        assert not unknown, f"{name} has no parameter {unknown}"
        self.calls += 1
        arguments = {param: given.get(param) for param in schema["required"]}
        return tool_call(name=name, args=arguments, id=f"call_{self.calls}")

    def _last_result(self) -> Any:
        last = self.conversation[-1]
        assert isinstance(last, ToolMessage), last
        return json.loads(str(last.content))

    def messages(self) -> Iterator[AIMessage]:
        # Plan.
        yield AIMessage(content="", tool_calls=[self._call("create_task", title=title, priority=priority)
                                                for title, priority in PLAN])
        # Look at the queue, then take the most urgent task.
        yield AIMessage(content="", tool_calls=[self._call("list_tasks", status="queued")])
        yield AIMessage(content="", tool_calls=[self._call("claim_lease", worker=WORKER, lease_seconds=60)])
        # (Pretend) work, then finish it.
        claim = self._last_result()  # the claim, or {"result": None} when nothing is ready
        assert "lease" in claim, claim
        task, token = claim["task"], claim["lease"]["token"]
        yield AIMessage(content="", tool_calls=[self._call(
            "finish_lease", token=token, status="complete", result=f"{task['title']}: done by {WORKER}")])
        finished = self._last_result()
        assert "error" not in finished, finished
        yield AIMessage(content=f"Completed {finished['id']} ({finished['title']}); "
                                f"{len(PLAN) - 1} task(s) still queued.")


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


async def run(db: str) -> int:
    async with AsyncStore(db) as store:
        if (await store.summary(AGENT))["total"] != 0:
            print(f"langchain_tools: {db} already has tasks for {AGENT}; use a new file", file=sys.stderr)
            return 2
        offered = backlog_tools(store, ["create_task", "list_tasks", "claim_lease", "finish_lease"], AGENT)
        by_name = {tool.name: tool for tool in offered}
        print(f"model is offered {len(offered)} tools: {', '.join(by_name)}")
        conversation: List[BaseMessage] = [
            HumanMessage(f"Plan the key rotation in the backlog of {AGENT}, then start on it.")]
        script = Script(offered, conversation)
        # The model; a real one: ChatOpenAI(model="gpt-5").bind_tools(offered, strict=True)
        model: Runnable[LanguageModelInput, AIMessage] = GenericFakeChatModel(messages=script.messages())

        calls = 0
        while True:  # the agent loop: call the model, run its tool calls, until it answers in text
            reply = await model.ainvoke(conversation)
            conversation.append(reply)
            if not reply.tool_calls:
                break
            for call in reply.tool_calls:  # one after another, in the order given
                calls += 1
                print(_cut(f"-> {call['name']} {json.dumps(call['args'], separators=(',', ':'))}"))
                result = await by_name[call["name"]].ainvoke(call)
                assert isinstance(result, ToolMessage)  # ainvoke(ToolCall) gives a ToolMessage
                print(_cut(f"<- {result.content}"))
                conversation.append(result)
        print(f"{calls} tool calls; output: {reply.content}")

        tasks = (await store.list_tasks(AGENT))["tasks"]
        statuses = [task["status"] for task in tasks]
        print(f"summary: {await store.summary(AGENT)}")
    expected = ["complete"] + ["queued"] * (len(PLAN) - 1)
    if statuses != expected:
        print(f"langchain_tools: FAILED: statuses {statuses}, expected {expected}", file=sys.stderr)
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
