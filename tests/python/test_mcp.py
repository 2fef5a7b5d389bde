"""The MCP server of SPEC §15, driven by the official MCP SDK for Python (`mcp`).

The real program (see conftest.agent_backlog_bin) serves the backlog of a database file
in the test's temp directory, over stdio (`agent-backlog mcp`) and over Streamable HTTP
(`agent-backlog serve --port 0 --mcp`, at /mcp); every test runs on both. It checks:

- the tools listed: the core set by default, every operation with `--tools all`, each
  with the name, description, output schema and hints of `agent_backlog.tools`, a strict
  input schema, and no agent_id when the server is bound to an agent (`--agent`);
- a worker's calls (create_task, claim_lease, finish_lease, ...) give the structured
  results `agent_backlog.tools.call` gives, and leave the file as the Python Store sees
  it; the text content is the same JSON;
- a refused call is a tool result with isError and the error object of SPEC §7;
- wait_for_task waits, wakes on a task created by another process, and stops waiting
  when the client cancels the call.

The SDK's client validates every structured result against the tool's output schema,
so any result that does not match its schema fails here too. Every server is stopped at
the end of its test (the stdio one by the client, the HTTP one here); an autouse check
fails a test that leaves a process running on its database.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Iterator, List, Optional, Union

import anyio
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.types import CallToolResult, TextContent, Tool

from agent_backlog import Store, tools
import pgserver
from conftest import agent_backlog_bin, serving

Target = Union[StdioServerParameters, str]
Call = Callable[[str, Dict[str, Any]], Awaitable[Dict[str, Any]]]

TIMEOUT = 15.0  # seconds: for a server to start, a call to answer, a process to exit
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z")
TOKEN = re.compile(r"[A-Z0-9]+-\d{3,}\.\d+\.[0-9a-f]{16}")


@pytest.fixture(params=["stdio", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(autouse=True)
def no_process_left(tmp_path: Path) -> Iterator[None]:
    """Fails the test when a process that names its temp directory outlives it."""
    yield
    deadline = time.monotonic() + TIMEOUT
    while True:
        left = processes_naming(str(tmp_path))
        if not left:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"processes left running: {left}")
        time.sleep(0.05)


def processes_naming(text: str) -> List[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


@contextlib.contextmanager
def mcp_server(transport: str, db: Union[Path, str], tool_set: Optional[str] = None,
               agent: Optional[str] = None, log: Optional[Path] = None) -> Iterator[Target]:
    """What a client connects to: the stdio server's command line (the client starts and
    stops it), or the URL of a running `serve --mcp` (a server on a PostgreSQL URL needs
    its `log`)."""
    if transport == "stdio":
        args = ["--db", str(db), "mcp"]
        args += ["--tools", tool_set] if tool_set else []
        args += ["--agent", agent] if agent else []
        yield StdioServerParameters(command=agent_backlog_bin(), args=args)
        return
    options = ["--mcp-tools", tool_set] if tool_set else []
    options += ["--mcp-agent", agent] if agent else []
    with serving(db, "--mcp", *options, log=log) as (base, _):
        url = base + "/mcp"
        yield url


@contextlib.asynccontextmanager
async def connected(target: Target, mode: str = "auto") -> AsyncIterator[Client]:
    with anyio.fail_after(TIMEOUT):
        async with Client(target, read_timeout_seconds=TIMEOUT, mode=mode) as client:
            yield client


async def list_all(client: Client) -> List[Tool]:
    listed = await client.list_tools()
    found = list(listed.tools)
    while listed.next_cursor:
        listed = await client.list_tools(cursor=listed.next_cursor)
        found += listed.tools
    return found


def structured(reply: CallToolResult) -> Dict[str, Any]:
    """The structured content of a reply, checked against its text content."""
    assert reply.structured_content is not None, reply
    assert len(reply.content) == 1 and isinstance(reply.content[0], TextContent), reply.content
    content: Dict[str, Any] = reply.structured_content
    assert json.loads(reply.content[0].text) == content
    return content


def caller(client: Client) -> Call:
    async def call(name: str, arguments: Dict[str, Any]) -> Dict[str, Any]:
        reply = await client.call_tool(name, arguments)
        result = structured(reply)
        assert reply.is_error == ("error" in result), reply
        return result

    return call


def python_caller(store: Store) -> Call:
    async def call(name: str, arguments: Dict[str, Any]) -> Dict[str, Any]:
        return tools.call(store, name, arguments)

    return call


def normalised(value: Any) -> Any:
    """`value` with every time and lease token replaced by a placeholder."""
    return json.loads(TOKEN.sub("<token>", TIME.sub("<time>", json.dumps(value))))


async def worker_flow(call: Call) -> List[Dict[str, Any]]:
    """A planner and a worker: every result, in order."""
    out = [
        await call("create_task", {"agent_id": "ops", "title": "Write the release notes", "priority": 2}),
        await call("create_task", {"agent_id": "ops", "title": "Tag the release", "description": "after CI"}),
        await call("update_task", {"agent_id": "ops", "task_id": "OPS-002", "priority": 3, "description": ""}),
    ]
    claim = await call("claim_lease", {"agent_id": "ops", "worker": "w1", "lease_seconds": 60})
    out.append(claim)
    out.append(await call("finish_lease", {"token": claim["lease"]["token"], "status": "complete",
                                           "result": "notes written"}))
    claim = await call("claim_lease", {"agent_id": "ops", "worker": "w1", "lease_seconds": None,
                                       "max_attempts": None})
    out.append(claim)
    out.append(await call("finish_lease", {"token": claim["lease"]["token"], "status": "blocked",
                                           "blocker": "waiting for CI", "result": None}))
    out.append(await call("claim_lease", {"agent_id": "ops", "worker": "w1"}))
    out.append(await call("get_task", {"agent_id": "ops", "task_id": "OPS-001"}))
    out.append(await call("list_tasks", {"agent_id": "ops", "status": None}))
    out.append(await call("summary", {"agent_id": "ops"}))
    return out


def check_tools(listed: List[Tool], expected: List[tools.Tool]) -> None:
    assert [t.name for t in listed] == [t["name"] for t in expected]
    for tool, mine in zip(listed, expected):
        assert tool.description == mine["description"]
        schema = tool.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False, tool.name
        assert list(schema["properties"]) == list(mine["parameters"]["properties"]), tool.name
        assert set(schema.get("required", [])) <= set(schema["properties"]), tool.name
        assert tool.output_schema == mine["output_schema"], tool.name
        hints = tool.annotations
        assert hints is not None, tool.name
        assert hints.read_only_hint == mine["annotations"]["readOnlyHint"], tool.name
        assert hints.destructive_hint == mine["annotations"]["destructiveHint"], tool.name
        assert hints.idempotent_hint == mine["annotations"]["idempotentHint"], tool.name
        assert hints.open_world_hint is False, tool.name


def test_the_tools_listed(transport: str, tmp_path: Path) -> None:
    db = tmp_path / "backlogs.db"

    async def main() -> None:
        with mcp_server(transport, db) as target:
            async with connected(target) as client:
                listed = await list_all(client)
        check_tools(listed, tools.select("core"))
        assert [t.name for t in listed] == list(tools.CORE)
        read_only = {t.name: t.annotations.read_only_hint for t in listed if t.annotations is not None}
        for name in ["list_tasks", "get_task", "summary"]:
            assert read_only[name] is True, name
        for name in ["create_task", "update_task", "claim_lease", "finish_lease"]:
            assert read_only[name] is False, name

        with mcp_server(transport, db, "all") as target:
            async with connected(target) as client:
                listed = await list_all(client)
        check_tools(listed, tools.TOOLS)
        hints = {t.name: t.annotations for t in listed}
        assert hints["delete_task"] is not None and hints["delete_task"].destructive_hint is True

        with mcp_server(transport, db, "summary,get_task") as target:
            async with connected(target) as client:
                assert [t.name for t in await list_all(client)] == ["summary", "get_task"]

    anyio.run(main)


def test_a_worker_flow_gives_what_the_python_tools_give(transport: str, tmp_path: Path) -> None:
    db = tmp_path / "backlogs.db"

    async def main() -> None:
        with mcp_server(transport, db) as target:
            async with connected(target) as client:
                call = caller(client)
                over_mcp = await worker_flow(call)
                # The same calls through the Python tools, on a file of their own...
                with Store(tmp_path / "python.db") as other:
                    in_python = await worker_flow(python_caller(other))
                assert normalised(over_mcp) == normalised(in_python)
                # ... and on the server's file: exactly what the server answers now.
                with Store(db) as store:
                    for name, arguments in [
                        ("get_task", {"agent_id": "ops", "task_id": "OPS-001"}),
                        ("get_task", {"agent_id": "ops", "task_id": "OPS-002"}),
                        ("list_tasks", {"agent_id": "ops"}),
                        ("summary", {"agent_id": "ops"}),
                    ]:
                        assert await call(name, arguments) == tools.call(store, name, arguments)
                    assert await call("list_tasks", {"agent_id": "ops"}) == store.list_tasks("ops")
        # What the flow left in the file.
        with Store(db) as store:
            first, second = store.list_tasks("ops")["tasks"]
            assert first == over_mcp[-3]
            assert (first["status"], first["result"]) == ("complete", "notes written")
            assert (second["status"], second["blocker"], second["description"]) == ("blocked", "waiting for CI", None)
            assert store.summary("ops") == over_mcp[-1] == {
                "queued": 0, "in_progress": 0, "complete": 1, "blocked": 1, "total": 2}
            assert over_mcp[-4] == {"result": None}

    anyio.run(main)


@pytest.mark.skipif(pgserver.URL is None, reason="AGENT_BACKLOG_TEST_PG is not set (make test sets it)")
def test_a_worker_flow_on_postgresql(transport: str, tmp_path: Path) -> None:
    """The same flow over MCP on a store on PostgreSQL (SPEC §16): the same answers as
    the Python tools give on a file, and the server's store holds what it said."""
    url = pgserver.fresh_url()

    async def main() -> None:
        with mcp_server(transport, url, log=tmp_path / "mcp.serve.log") as target:
            async with connected(target) as client:
                over_mcp = await worker_flow(caller(client))
        with Store(tmp_path / "python.db") as other:
            in_python = await worker_flow(python_caller(other))
        assert normalised(over_mcp) == normalised(in_python)
        with Store(url) as store:
            assert store.summary("ops") == over_mcp[-1]
            assert store.list_tasks("ops")["tasks"][0] == over_mcp[-3]

    anyio.run(main)


REFUSED: List[tuple[str, Dict[str, Any], str, str]] = [
    ("create_task", {"agent_id": "ops", "title": "x", "priority": 11}, "invalid_argument", "priority"),
    ("create_task", {"agent_id": "ops", "title": "x", "priority": "high"}, "invalid_argument", "priority"),
    ("create_task", {"agent_id": "ops", "title": "x", "owner": "me"}, "invalid_argument", "owner"),
    ("create_task", {"agent_id": "ops"}, "invalid_argument", "title"),
    ("create_task", {"agent_id": "not an id", "title": "x"}, "invalid_argument", "agent_id"),
    ("get_task", {"agent_id": "ops", "task_id": "OPS-404"}, "not_found", "OPS-404"),
    ("update_task", {"agent_id": "ops", "task_id": "OPS-001", "status": "complete"}, "invalid_transition", "queued"),
    ("update_task", {"agent_id": "ops", "task_id": "OPS-001", "blocker": "why"}, "invalid_argument", "blocker"),
    ("finish_lease", {"token": "OPS-001.1.0000000000000000", "status": "complete"}, "not_found", "OPS-001"),
    ("claim_lease", {"agent_id": "ops", "worker": "w1", "lease_seconds": 0}, "invalid_argument", "lease_seconds"),
]


def test_refused_calls_are_error_results(transport: str, tmp_path: Path) -> None:
    db = tmp_path / "backlogs.db"
    with Store(db) as store:
        store.create_task("ops", "Queued")

        async def main() -> None:
            with mcp_server(transport, db) as target:
                async with connected(target) as client:
                    before = store.query_tasks()
                    for name, arguments, code, needle in REFUSED:
                        reply = await client.call_tool(name, arguments)
                        assert reply.is_error, (name, arguments, reply)
                        error = structured(reply)
                        assert list(error) == ["error"] and list(error["error"]) == ["code", "message"], error
                        assert error["error"]["code"] == code, (name, arguments, error)
                        assert needle in error["error"]["message"], error
                        # The very error object of the Python tools.
                        assert error == tools.call(store, name, arguments)
                    assert store.query_tasks() == before, "a refused call wrote something"
                    # A tool that is not served is an error of the protocol.
                    with pytest.raises(MCPError):
                        await client.call_tool("delete_task", {"agent_id": "ops", "task_id": "OPS-001"})
                    assert store.get_task("ops", "OPS-001")["status"] == "queued"

        anyio.run(main)


def test_a_server_bound_to_an_agent(transport: str, tmp_path: Path) -> None:
    db = tmp_path / "backlogs.db"

    async def main() -> None:
        with mcp_server(transport, db, "all", agent="ops") as target:
            async with connected(target) as client:
                listed = await list_all(client)
                check_tools(listed, tools.select("all", agent_id="ops"))
                names = [t.name for t in listed]
                assert "list_agents" not in names and "prune_events" not in names
                for tool in listed:
                    assert "agent_id" not in tool.input_schema["properties"], tool.name
                call = caller(client)
                created = await call("create_task", {"title": "Bound"})
                assert created["id"] == "OPS-001"
                for agent in ["ops", "other"]:
                    refused = await call("create_task", {"agent_id": agent, "title": "x"})
                    assert refused["error"]["code"] == "invalid_argument", refused
                    assert "agent_id" in refused["error"]["message"], refused
                claim = await call("claim_lease", {"worker": "w1"})
                assert claim["lease"]["agent_id"] == "ops"
                done = await call("finish_lease", {"token": claim["lease"]["token"], "status": "complete"})
                assert done["status"] == "complete"
                with Store(db) as store:
                    assert store.get_task("ops", "OPS-001") == done
                    assert store.query_tasks()["total"] == 1

    anyio.run(main)


def test_the_handshake_era_protocol(transport: str, tmp_path: Path) -> None:
    """Clients of the 2025 protocol (an initialize handshake) get the same tools."""
    db = tmp_path / "backlogs.db"

    async def main() -> None:
        with mcp_server(transport, db) as target:
            async with connected(target, mode="legacy") as client:
                assert [t.name for t in await list_all(client)] == list(tools.CORE)
                call = caller(client)
                created = await call("create_task", {"agent_id": "ops", "title": "Old client"})
                assert created["id"] == "OPS-001"
                refused = await call("get_task", {"agent_id": "ops", "task_id": "OPS-404"})
                assert refused["error"]["code"] == "not_found"

    anyio.run(main)


def test_wait_for_task_waits_and_ends_when_cancelled(transport: str, tmp_path: Path) -> None:
    db = tmp_path / "backlogs.db"
    wait = {"agent_id": "ops", "worker": "w1"}

    async def main() -> None:
        with mcp_server(transport, db, "wait_for_task,summary") as target, Store(db) as store:
            async with connected(target) as client:
                call = caller(client)
                started = time.monotonic()
                assert await call("wait_for_task", {**wait, "timeout_seconds": 0.1}) == {"result": None}
                assert time.monotonic() - started >= 0.1

                # A task created by another process wakes the waiting call.
                woke: Dict[str, Any] = {}

                async def waiter() -> None:
                    woke.update(await call("wait_for_task", {**wait, "timeout_seconds": 10}))
                    woke["after"] = time.monotonic() - created_at

                async with anyio.create_task_group() as group:
                    group.start_soon(waiter)
                    await anyio.sleep(0.3)
                    created_at = time.monotonic()
                    created = store.create_task("ops", "Wake up")
                assert woke["after"] < 5, woke
                assert woke["task"]["id"] == created["id"]
                assert woke["task"]["status"] == "in_progress"

                # A call the client cancels stops waiting: it claims nothing afterwards.
                with anyio.move_on_after(0.3) as scope:
                    await call("wait_for_task", {**wait, "timeout_seconds": 30})
                assert scope.cancelled_caught
                await anyio.sleep(0.5)
                store.create_task("ops", "For nobody")
                await anyio.sleep(0.5)
                assert await call("summary", {"agent_id": "ops"}) == {
                    "queued": 1, "in_progress": 1, "complete": 0, "blocked": 0, "total": 2}

    anyio.run(main)


def test_a_stopping_server_ends_a_waiting_call(tmp_path: Path) -> None:
    """SIGTERM to `serve --mcp` with a wait_for_task in flight: the server stops at
    once, not when the wait would have timed out."""
    db = tmp_path / "backlogs.db"
    stopped: List[float] = []

    async def main(url: str, server: "subprocess.Popen[bytes]") -> None:
        async with connected(url) as client:
            async def waiter() -> None:
                with contextlib.suppress(Exception):
                    await client.call_tool("wait_for_task", {"agent_id": "ops", "worker": "w1", "timeout_seconds": 60})

            async with anyio.create_task_group() as group:
                group.start_soon(waiter)
                await anyio.sleep(0.3)
                stopping = time.monotonic()
                server.terminate()
                await anyio.to_thread.run_sync(lambda: server.wait(TIMEOUT))
                stopped.append(time.monotonic() - stopping)
                group.cancel_scope.cancel()

    with serving(db, "--mcp", "--mcp-tools", "wait_for_task") as (base, server):
        url = base + "/mcp"
        try:
            anyio.run(main, url, server)
        except Exception as e:  # the client may fail to end its session with a stopped server
            print(f"the client ended with {e!r}")
        assert stopped and stopped[0] < 5, f"the server took {stopped} s to stop"


def test_a_signal_stops_the_stdio_server_while_the_client_keeps_stdin_open(tmp_path: Path) -> None:
    # A client that never closes stdin (or hangs) must not keep `mcp` alive after
    # SIGTERM: the read of stdin is left behind, the store closed, exit 0.
    with subprocess.Popen(
        [agent_backlog_bin(), "--db", str(tmp_path / "b.db"), "mcp"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    ) as server:
        try:
            assert server.stdin is not None and server.stdout is not None
            hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            server.stdin.write((json.dumps(hello) + "\n").encode())
            server.stdin.flush()
            assert json.loads(server.stdout.readline())["id"] == 1
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=10) == 0
            assert time.monotonic() - started < 5
        finally:
            if server.poll() is None:
                server.kill()
