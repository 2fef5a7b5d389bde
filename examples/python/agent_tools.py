#!/usr/bin/env python3
"""An LLM agent's tool loop over the backlog, with a scripted stand-in for the model.

``agent_backlog.tools`` offers the backlog the way function calling wants it: each
tool has a name, a description and a strict JSON schema (``tools.select("core")``),
and ``tools.call(store, name, arguments)`` runs a call the model made and returns its
result, or the error object ``{"error": {"code", "message"}}`` -- never an exception,
so that the model reads what went wrong and tries again. The MCP server
(``agent-backlog mcp``) serves the same tools.

This example plays both sides, with no framework and no model provider:

- the "model" (``ScriptedModel``) is shown the tools and answers each turn with one
  tool call whose arguments are JSON text, every parameter given (``null`` for the
  ones it leaves out), as a model in strict mode does. It plans by creating three
  tasks, then works: claim_lease, (pretend) work, finish_lease, until claim_lease
  gives ``{"result": null}``. Its first finish_lease uses a status that does not
  exist; it reads the error and corrects itself.
- the loop (``run``) executes every call with ``tools.call`` and hands the result back
  to the model as JSON text. One line per call and per result (long results cut):

    -> create_task {"agent_id":"writer","title":"Outline the post",...}
    <- {"id":"WRI-001","title":"Outline the post",...,"status":"queued",...}

At the end it checks that every task is complete, and exits 1 otherwise.

    python examples/python/agent_tools.py [--db backlogs.db]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any, Dict, Generator, List, Optional, Sequence

from agent_backlog import Store, tools

AGENT = "writer"
WORKER = "agent-1"
PLAN = [("Outline the post", 1), ("Write the draft", 2), ("Proofread", 3)]
SHOWN = 160  # characters of a result shown per line

ToolCall = Dict[str, str]  # {"name": ..., "arguments": JSON text}, as a model sends it
Script = Generator[ToolCall, str, None]


class ScriptedModel:
    """Stands in for the LLM: given the tools, it answers each tool result with its
    next tool call, or ``None`` when it is done."""

    def __init__(self, offered: List[tools.Tool]) -> None:
        self.schemas = {tool["name"]: tool["parameters"] for tool in offered}
        print(f"model is offered {len(offered)} tools: {', '.join(self.schemas)}")
        self._script = self._work()
        self._started = False

    def respond(self, tool_result: Optional[str]) -> Optional[ToolCall]:
        try:
            if not self._started:
                self._started = True
                return next(self._script)
            assert tool_result is not None
            return self._script.send(tool_result)
        except StopIteration:
            return None

    def _call(self, name: str, **given: Any) -> ToolCall:
        """A call in strict form: every parameter of the tool's schema, null when not given."""
        schema = self.schemas[name]
        unknown = set(given) - set(schema["properties"])
        assert not unknown, f"{name} has no parameter {unknown}"
        arguments = {param: given.get(param) for param in schema["required"]}
        return {"name": name, "arguments": json.dumps(arguments, separators=(",", ":"))}

    def _work(self) -> Script:
        # Plan: one task per step.
        for title, priority in PLAN:
            yield self._call("create_task", agent_id=AGENT, title=title, priority=priority)
        # Work through the backlog until nothing is left.
        status = "done"  # a first guess, which the error will correct
        while True:
            claim = json.loads((yield self._call("claim_lease", agent_id=AGENT, worker=WORKER, lease_seconds=60)))
            if claim == {"result": None}:
                break
            task, token = claim["task"], claim["lease"]["token"]
            output = f"{task['title']}: done by {WORKER}"  # the pretend work
            while True:
                reply = json.loads((yield self._call("finish_lease", token=token, status=status, result=output)))
                if "error" not in reply:
                    break
                # Read the error, as a model would, and change what it says is wrong.
                assert reply["error"]["code"] == "invalid_argument", reply
                assert "complete" in reply["error"]["message"], reply
                status = "complete"
        yield self._call("summary", agent_id=AGENT)


def run(db: str) -> int:
    with Store(db) as store:
        if store.summary(AGENT)["total"] != 0:
            print(f"agent_tools: {db} already has tasks for {AGENT}; use a new --db", file=sys.stderr)
            return 2
        model = ScriptedModel(tools.select("core"))
        result: Optional[str] = None
        calls = 0
        while True:
            call = model.respond(result)
            if call is None:
                break
            calls += 1
            print(f"-> {call['name']} {call['arguments']}")
            # The arguments go in as the model wrote them (JSON text); errors come back.
            result = json.dumps(tools.call(store, call["name"], call["arguments"]), separators=(",", ":"))
            print(f"<- {result if len(result) <= SHOWN else result[:SHOWN] + '...'}")

        tasks = store.list_tasks(AGENT)["tasks"]
        print(f"{calls} tool calls; summary: {store.summary(AGENT)}")
        problems = [f"{t['id']} is {t['status']}" for t in tasks if t["status"] != "complete"]
        if len(tasks) != len(PLAN):
            problems.append(f"{len(tasks)} tasks instead of {len(PLAN)}")
    if problems:
        for problem in problems:
            print(f"agent_tools: FAILED: {problem}", file=sys.stderr)
        return 1
    print("ok: every task complete")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", metavar="PATH",
                        help="the database file, which must not hold tasks of the agent 'writer' yet "
                             "(default: a new file in a temporary directory)")
    args = parser.parse_args(argv)
    if args.db is not None:
        return run(args.db)
    with tempfile.TemporaryDirectory() as tmp:
        return run(os.path.join(tmp, "backlogs.db"))


if __name__ == "__main__":
    sys.exit(main())
