"""The framework adapters over ``agent_backlog.tools``: ``agent_backlog.langchain`` and
``agent_backlog.openai_agents``, each driven by that framework's own loop with a
scripted model (offline: no model provider is ever called).

A scripted model plays a small agent: it creates a task, claims it with claim_lease,
reads the lease token out of the tool's result, finishes the lease, and looks up a
task that does not exist. The tests check what the store holds afterwards, that the
model was offered the tools with their strict schemas, and that an error reaches the
model as the text of the error object rather than as an exception.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Dict, List, Optional, Sequence

import pytest
from agents import Agent, FunctionTool, RunConfig, RunResult, Runner, set_tracing_disabled
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent_backlog import AsyncStore, Store, ValidationError, tools
from agent_backlog import langchain as lc
from agent_backlog import openai_agents as oa

set_tracing_disabled(True)  # no trace export: these tests never touch the network

TOKEN = "<token of the last claim>"  # what a scripted model writes for the lease token


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dummy key, so that nothing could reach a real account."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")


def expected_state(store: Store) -> None:
    task = store.get_task("ops", "OPS-001")
    assert task["status"] == "complete" and task["result"] == "3 posts written", task
    assert task["title"] == "Write 3 posts" and task["priority"] == 2
    assert store.summary("ops") == {"queued": 0, "in_progress": 0, "complete": 1, "blocked": 0, "total": 1}
    assert store.get_lease("ops", "OPS-001") is None
    assert [e["type"] for e in store.task_history("ops", "OPS-001")["events"]] == ["created", "claimed", "finished"]


# --- LangChain -------------------------------------------------------------------------


class ToolCallingFake(FakeMessagesListChatModel):
    """FakeMessagesListChatModel that takes tools (recording them as the OpenAI API
    would get them) and, like a model, copies the lease token out of the last tool
    result into its next call."""

    offered: List[Dict[str, Any]] = []

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Optional[str] = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        self.offered = [convert_to_openai_tool(t, strict=True) for t in tools]
        return self

    def _generate(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        result = super()._generate(messages, stop, run_manager, **kwargs)
        message = result.generations[0].message
        if isinstance(message, AIMessage) and message.tool_calls:
            results = [json.loads(str(m.content)) for m in messages if isinstance(m, ToolMessage)]
            for call in message.tool_calls:
                if call["args"].get("token") == TOKEN:
                    call["args"]["token"] = results[-1]["lease"]["token"]
        return result


def tool_call(name: str, call_id: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


def run_langchain(model: ToolCallingFake, backlog: List[StructuredTool]) -> List[BaseMessage]:
    """The agent loop of LangChain's docs: model, tool calls, tool messages, until the
    model answers with text."""
    by_name: Dict[str, BaseTool] = {tool.name: tool for tool in backlog}
    bound = model.bind_tools(backlog)
    messages: List[BaseMessage] = [HumanMessage("Plan the posts, then do them.")]
    for _ in range(20):
        reply = bound.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        for call in reply.tool_calls:
            answer = by_name[call["name"]].invoke(call)
            assert isinstance(answer, ToolMessage)
            messages.append(answer)
    pytest.fail("the loop did not end")


def test_langchain_tools(store: Store) -> None:
    backlog = lc.backlog_tools(store)
    assert [t.name for t in backlog] == list(tools.CORE)
    for tool, spec in zip(backlog, tools.select("core")):
        assert isinstance(tool, StructuredTool)
        assert tool.description == spec["description"]
        assert tool.args_schema == spec["parameters"]
    everything = lc.backlog_tools(store, "all", agent_id="ops")
    assert [t.name for t in everything] == [t["name"] for t in tools.select("all", agent_id="ops")]
    assert [t.name for t in lc.backlog_tools(store, ["summary"])] == ["summary"]
    with pytest.raises(ValidationError):
        lc.backlog_tools(store, ["bogus"])


def test_a_langchain_agent_loop(store: Store) -> None:
    model = ToolCallingFake(responses=[
        tool_call("create_task", "c1", agent_id="ops", title="Write 3 posts", description=None, priority=2,
                  depends_on=None, idempotency_key=None),
        tool_call("claim_lease", "c2", agent_id="ops", worker="lc-1", lease_seconds=60, max_attempts=None),
        tool_call("finish_lease", "c3", token=TOKEN, status="complete", result="3 posts written", blocker=None),
        tool_call("get_task", "c4", agent_id="ops", task_id="OPS-404"),
        AIMessage(content="Done: OPS-001 is complete."),
    ])
    messages = run_langchain(model, lc.backlog_tools(store))
    # The model was offered the core tools, each with its strict schema.
    assert [spec["function"]["name"] for spec in model.offered] == list(tools.CORE)
    for spec, tool in zip(model.offered, tools.select("core")):
        assert spec["function"]["parameters"] == tool["parameters"]
        assert spec["function"]["strict"] is True
    answers = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in answers] == ["c1", "c2", "c3", "c4"]
    results = [json.loads(str(m.content)) for m in answers]
    assert results[0]["id"] == "OPS-001"
    assert results[1]["task"]["id"] == "OPS-001"
    assert results[2]["status"] == "complete"
    # An error is a tool result the model reads, not an exception in the loop.
    assert results[3] == {"error": {"code": "not_found", "message": "task OPS-404 is not in the backlog of ops"}}
    assert "not_found" in str(answers[3].content)
    expected_state(store)


def test_langchain_bound_and_async(store: Store) -> None:
    backlog = {t.name: t for t in lc.backlog_tools(store, agent_id="ops")}
    created = json.loads(backlog["create_task"].invoke({"title": "Bound", "description": None, "priority": None,
                                                        "depends_on": None, "idempotency_key": None}))
    assert created["id"] == "OPS-001"
    refused = json.loads(backlog["create_task"].invoke({"agent_id": "ops", "title": "x"}))
    assert refused["error"]["code"] == "invalid_argument"

    async def both() -> List[Any]:
        return list(await asyncio.gather(
            backlog["get_task"].ainvoke({"task_id": "OPS-001"}),
            backlog["summary"].ainvoke({}),
        ))

    task, summary = (json.loads(text) for text in asyncio.run(both()))
    assert task == store.get_task("ops", "OPS-001")
    assert summary == store.summary("ops")


def test_langchain_tools_on_an_asyncstore(store: Store, db_path: Any) -> None:
    async def main() -> None:
        async with AsyncStore(db_path) as on_loop:
            backlog = {t.name: t for t in lc.backlog_tools(on_loop, "all", agent_id="ops")}
            created = json.loads(await backlog["create_task"].ainvoke(
                {"title": "Async", "description": None, "priority": 2, "depends_on": None, "idempotency_key": None}))
            assert created == store.get_task("ops", "OPS-001")
            # The blocking form works on the same tools.
            assert json.loads(backlog["summary"].invoke({}))["queued"] == 1
            # A wait on the loop's store is cancellable and leaves the task queued.
            wait = asyncio.create_task(backlog["wait_for_task"].ainvoke(
                {"worker": "lc", "timeout_seconds": 60, "lease_seconds": None, "max_attempts": None}))
            claimed = json.loads(await wait)
            assert claimed["task"]["id"] == "OPS-001"
            idle = asyncio.create_task(backlog["wait_for_task"].ainvoke(
                {"worker": "lc", "timeout_seconds": 60, "lease_seconds": None, "max_attempts": None}))
            await asyncio.sleep(0.1)
            idle.cancel()
            await asyncio.wait([idle])
            assert idle.cancelled()
            # It claimed nothing, also once a task comes.
            await on_loop.create_task("ops", "after the cancel")
            await asyncio.sleep(0.2)
            assert (await on_loop.summary("ops"))["queued"] == 1

    asyncio.run(main())


# --- OpenAI Agents SDK --------------------------------------------------------------------


def last_output(call: ModelCall) -> Any:
    """The result of the last tool call the model saw, parsed."""
    outputs = [item for item in call.input if isinstance(item, dict) and item.get("type") == "function_call_output"]
    return json.loads(outputs[-1]["output"])


def finish_with_token(call: ModelCall) -> Any:
    """A model's turn after claim_lease: finish the lease it got."""
    token = last_output(call)["lease"]["token"]
    return [function_call("finish_lease", {"token": token, "status": "complete", "result": "3 posts written",
                                           "blocker": None}, call_id="c3")]


def run_agent(agent: Agent[Any], prompt: str) -> RunResult:
    """``Runner.run_sync`` on an event loop of its own, closed afterwards (run_sync keeps
    the thread's default loop open for later runs: a leak, for a test)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return Runner.run_sync(agent, prompt, run_config=RunConfig(tracing_disabled=True))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_openai_agents_tools(store: Store) -> None:
    backlog = oa.backlog_tools(store)
    assert [t.name for t in backlog] == list(tools.CORE)
    for tool, spec in zip(backlog, tools.select("core")):
        assert isinstance(tool, FunctionTool)
        assert tool.strict_json_schema is True
        assert tool.description == spec["description"]
        assert tool.params_json_schema == spec["parameters"]
    bound = oa.backlog_tools(store, "all", agent_id="ops")
    assert [t.name for t in bound] == [t["name"] for t in tools.select("all", agent_id="ops")]
    with pytest.raises(ValidationError):
        oa.backlog_tools(store, "bogus")


def test_an_openai_agents_run(store: Store) -> None:
    model = ScriptedModel([
        [function_call("create_task", {"agent_id": "ops", "title": "Write 3 posts", "description": None,
                                       "priority": 2, "depends_on": None, "idempotency_key": None}, call_id="c1")],
        [function_call("claim_lease", {"agent_id": "ops", "worker": "oa-1", "lease_seconds": 60,
                                       "max_attempts": None}, call_id="c2")],
        ModelStep.respond(finish_with_token),
        [function_call("get_task", {"agent_id": "ops", "task_id": "OPS-404"}, call_id="c4")],
        [assistant_message("Done: OPS-001 is complete.")],
    ])
    agent = Agent(name="planner", instructions="Work through the backlog of ops.", model=model,
                  tools=list(oa.backlog_tools(store)))
    run = run_agent(agent, "Plan the posts, then do them.")
    assert run.final_output == "Done: OPS-001 is complete."
    model.assert_complete()
    calls = model.calls
    assert [t.name for t in calls[0].tools] == list(tools.CORE)
    assert last_output(calls[1])["id"] == "OPS-001"
    assert last_output(calls[3])["status"] == "complete"
    # The error went back to the model as the text of the error object.
    error_text = [item for item in calls[4].input
                  if isinstance(item, dict) and item.get("type") == "function_call_output"][-1]["output"]
    assert isinstance(error_text, str) and "not_found" in error_text
    assert json.loads(error_text) == {"error": {"code": "not_found",
                                                "message": "task OPS-404 is not in the backlog of ops"}}
    expected_state(store)


def test_a_waiting_tool_does_not_block_the_loop(store: Store) -> None:
    """Two calls of one turn run together: wait_for_task waits in a thread while
    create_task makes the task it then claims."""
    model = ScriptedModel([
        [function_call("wait_for_task", {"worker": "oa-1", "timeout_seconds": 10, "lease_seconds": None,
                                         "max_attempts": None}, call_id="w1"),
         function_call("create_task", {"title": "Arrives later", "description": None, "priority": None,
                                       "depends_on": None, "idempotency_key": None}, call_id="c1")],
        [assistant_message("ok")],
    ])
    agent = Agent(name="worker", model=model,
                  tools=list(oa.backlog_tools(store, ["wait_for_task", "create_task"], agent_id="ops")))
    started = time.monotonic()
    run_agent(agent, "Wait for work.")
    assert time.monotonic() - started < 5
    outputs = {item["call_id"]: json.loads(item["output"]) for item in model.calls[1].input
               if isinstance(item, dict) and item.get("type") == "function_call_output"}
    assert outputs["c1"]["id"] == "OPS-001"
    assert outputs["w1"]["task"]["id"] == "OPS-001"
    assert store.get_task("ops", "OPS-001")["status"] == "in_progress"


def test_openai_agents_tools_on_an_asyncstore(store: Store, db_path: Any) -> None:
    """The same waiting turn on an AsyncStore: create_task runs on the loop, the wait
    on a thread of its own."""
    model = ScriptedModel([
        [function_call("wait_for_task", {"worker": "oa-1", "timeout_seconds": 10, "lease_seconds": None,
                                         "max_attempts": None}, call_id="w1"),
         function_call("create_task", {"title": "Arrives later", "description": None, "priority": None,
                                       "depends_on": None, "idempotency_key": None}, call_id="c1")],
        [assistant_message("ok")],
    ])
    on_loop = AsyncStore(db_path)
    agent = Agent(name="worker", model=model,
                  tools=list(oa.backlog_tools(on_loop, ["wait_for_task", "create_task"], agent_id="ops")))
    run_agent(agent, "Wait for work.")
    outputs = {item["call_id"]: json.loads(item["output"]) for item in model.calls[1].input
               if isinstance(item, dict) and item.get("type") == "function_call_output"}
    assert outputs["w1"]["task"]["id"] == outputs["c1"]["id"] == "OPS-001"
    assert store.get_task("ops", "OPS-001")["status"] == "in_progress"
    on_loop.store.close()


def test_openai_agents_odd_arguments(store: Store) -> None:
    """What a model may send that is not a valid call: still a result, never a raise."""
    tool = {t.name: t for t in oa.backlog_tools(store, "all")}

    async def invoke(name: str, arguments: str) -> Any:
        context: Any = None  # the adapter does not use the context
        return json.loads(await tool[name].on_invoke_tool(context, arguments))

    assert asyncio.run(invoke("list_agents", "")) == {"agents": [], "total": 0}
    assert asyncio.run(invoke("create_task", "{not json"))["error"]["code"] == "invalid_argument"
    assert asyncio.run(invoke("create_task", '{"agent_id": "ops"}'))["error"]["code"] == "invalid_argument"
    assert asyncio.run(invoke("create_task", '{"agent_id": "ops", "title": "x"}'))["id"] == "OPS-001"
