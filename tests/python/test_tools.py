"""The tools of SPEC §15 in Python: ``agent_backlog.tools``.

- Every conformance case of testdata/conformance/ that applies to the tools (no
  ``surfaces``, or ``"tools"`` among them) runs through ``tools.call`` with its request
  flattened into a tool's arguments, as the Rust runner tests/tools.rs does: the fields
  of a body (``task`` of create_task, ``patch`` of update_task) beside the other inputs,
  and ``""`` where a patch clears description, blocker or result with ``null``. A
  success must give the case's result (``{"result": null}`` for a null, which only the
  operations in WRAPPED give) and match the tool's ``output_schema``; a failure must give
  the error object of the case's code, with nothing written.
- ``TOOLS``, ``CORE`` and ``select``: a tool per operation, strict parameter schemas,
  the bound form.
- ``call`` never raises: bad argument values and types, JSON text, an unknown tool, a
  closed store and a bound call all come back as the error object.
"""

from __future__ import annotations

import json
import subprocess
import types
from typing import Any, Dict, Iterator, List

import jsonschema
import pytest

from agent_backlog import Store, ValidationError, tools
from conftest import agent_backlog_bin
from test_conformance import (
    CASES,
    Case,
    expand,
    expected_probe,
    mismatches,
    probe,
    run_setup,
    snapshot,
)

SURFACE = "tools"
MINE = [c for c in CASES if "surfaces" not in c.data or SURFACE in c.data["surfaces"]]
# The body objects of the requests, whose fields are a tool's own arguments.
BODIES = {"create_task": "task", "update_task": "patch"}
# In update_task, "" clears these (null is "not given" for a tool argument).
CLEARABLE = {"description", "blocker", "result"}
# The operations whose result may be null: a claim or lease is the tool's result as it
# is, and null is {"result": null}.
WRAPPED = {"claim_next", "claim_lease", "wait_for_task", "get_lease"}
SPEC_CORE = ("list_tasks", "get_task", "create_task", "update_task", "claim_lease", "finish_lease", "summary")
ANNOTATIONS = {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
BY_NAME = {tool["name"]: tool for tool in tools.TOOLS}


class Inexpressible(Exception):
    """A request that no tool call can say: the case should leave "tools" out."""


def flatten(op: str, request: Any) -> Dict[str, Any]:
    """The tool arguments of a conformance request."""
    if not isinstance(request, dict):
        raise Inexpressible("the request is not an object")
    body_key = BODIES.get(op)
    outer = {k: v for k, v in request.items() if k != body_key}
    arguments = dict(outer)
    if body_key is not None and body_key in request:
        body = request[body_key]
        if not isinstance(body, dict):
            raise Inexpressible(f"{body_key} is not an object")
        for field, value in body.items():
            if field in outer:
                raise Inexpressible(f"{field} is both an input and a field of {body_key}")
            if op == "update_task" and value is None and field in CLEARABLE:
                value = ""
            arguments[field] = value
    return arguments


def validate(name: str, reply: Dict[str, Any]) -> None:
    """A success result matches the tool's output schema."""
    jsonschema.Draft202012Validator(BY_NAME[name]["output_schema"]).validate(reply)


def error_of(reply: Dict[str, Any]) -> Dict[str, Any]:
    """The error object of a failed call, checked for its shape."""
    assert list(reply) == ["error"], reply
    error = reply["error"]
    assert isinstance(error, dict) and list(error) == ["code", "message"], error
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    assert 0 < len(error["message"]) < 1000, error
    return error


def test_the_tools_run_most_cases() -> None:
    assert len(MINE) >= 500
    for case in MINE:
        assert case.data["op"] in BY_NAME, case.name


@pytest.mark.parametrize("case", MINE, ids=[c.name for c in MINE])
def test_conformance_through_the_tools(case: Case) -> None:
    data = case.data
    op = data["op"]
    if "request" not in data:
        pytest.fail("a request_text cannot be flattened into tool arguments; leave tools out of its surfaces")
    try:
        arguments = flatten(op, expand(data["request"]))
    except Inexpressible as e:
        pytest.fail(f"no tool call for this case ({e}); leave tools out of its surfaces")
    setup = data.get("setup")
    with Store(":memory:") as store:
        run_setup(store, setup)
        before = snapshot(store)
        reply = tools.call(store, op, arguments)
        assert isinstance(reply, dict), reply
        failed = "error" in reply
        if "result" in data:
            if failed:
                error = error_of(reply)
                pytest.fail(f"expected success, got {error['code']}: {error['message']}")
            validate(op, reply)
            result: Any = reply
            if data["result"] is None:
                assert op in WRAPPED, op
                assert reply == {"result": None}, reply
                result = None
            problems = mismatches(expand(data["result"]), result)
            assert not problems, "\n".join(problems)
            return
        if not failed:
            pytest.fail(f"expected {data['error']}, got success: {json.dumps(reply)[:500]}")
        error = error_of(reply)
        assert error["code"] == data["error"], error
        for needle in data.get("message", []):
            assert needle in error["message"], f"{needle!r} is not in the message {error['message']!r}"
        assert snapshot(store) == before, "a refused call wrote something"
        assert probe(store) == expected_probe(setup), "a refused call took a number or registered an agent"


# --- TOOLS, CORE and select ---------------------------------------------------------


def operations() -> List[Dict[str, Any]]:
    """The operations of the contract, as `agent-backlog call --list` prints them."""
    done = subprocess.run([agent_backlog_bin(), "call", "--list"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed: List[Dict[str, Any]] = json.loads(done.stdout)
    return listed


def object_schemas(schema: Any, path: str = "$") -> Iterator[tuple[str, Dict[str, Any]]]:
    """Every object schema with properties in `schema`, nested ones included."""
    if isinstance(schema, dict):
        if "properties" in schema:
            yield path, schema
        for key, value in schema.items():
            yield from object_schemas(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from object_schemas(value, f"{path}[{i}]")


def nullable(schema: Dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind)


def test_a_tool_per_operation_with_its_name() -> None:
    ops = operations()
    assert [tool["name"] for tool in tools.TOOLS] == [op["name"] for op in ops]
    for tool in tools.TOOLS:
        assert callable(getattr(Store, tool["name"])), tool["name"]
    assert tools.CORE == SPEC_CORE
    assert [tool["name"] for tool in tools.select()] == list(SPEC_CORE)
    assert [tool["name"] for tool in tools.select("core")] == list(SPEC_CORE)
    assert tools.select("all") == tools.TOOLS
    assert [tool["name"] for tool in tools.select(["summary", "get_task"])] == ["summary", "get_task"]
    assert [tool["name"] for tool in tools.select(("delete_task",))] == ["delete_task"]


def test_every_tool_is_complete() -> None:
    for tool in tools.TOOLS:
        assert list(tool) == ["name", "description", "parameters", "output_schema", "annotations"], tool["name"]
        assert tool["description"].strip(), tool["name"]
        jsonschema.Draft202012Validator.check_schema(tool["parameters"])
        jsonschema.Draft202012Validator.check_schema(tool["output_schema"])
        assert tool["parameters"]["type"] == "object"
        assert tool["output_schema"]["type"] == "object"
        annotations = tool["annotations"]
        assert set(annotations) == ANNOTATIONS, tool["name"]
        assert annotations["openWorldHint"] is False
        assert not (annotations["readOnlyHint"] and annotations["destructiveHint"]), tool["name"]
    hints = {tool["name"]: tool["annotations"] for tool in tools.TOOLS}
    for name in ["list_tasks", "get_task", "summary", "query_tasks", "get_lease", "list_agents"]:
        assert hints[name]["readOnlyHint"], name
    for name in ["create_task", "update_task", "claim_lease", "finish_lease", "delete_task"]:
        assert not hints[name]["readOnlyHint"], name
    assert {n for n, h in hints.items() if h["destructiveHint"]} == {"delete_task", "prune_events", "update_task"}


def test_the_parameters_are_strict() -> None:
    for tool in tools.TOOLS:
        found = list(object_schemas(tool["parameters"]))
        assert found and found[0][0] == "$", tool["name"]
        for path, schema in found:
            where = f"{tool['name']} {path}"
            assert schema.get("additionalProperties") is False, where
            assert schema.get("required") == list(schema["properties"]), where
            for name, prop in schema["properties"].items():
                assert "type" in prop or "anyOf" in prop, f"{where}.{name}"


def test_optional_inputs_take_null_and_required_ones_do_not() -> None:
    for op in operations():
        properties = BY_NAME[op["name"]]["parameters"]["properties"]
        for given in op["inputs"]:
            if given["name"] not in properties:
                continue  # a body: its fields are the tool's arguments
            assert nullable(properties[given["name"]]) != given["required"], (op["name"], given["name"])
    create = BY_NAME["create_task"]["parameters"]["properties"]
    assert list(create) == ["agent_id", "title", "description", "priority", "depends_on", "idempotency_key"]
    assert not nullable(create["title"]) and nullable(create["description"]) and nullable(create["priority"])
    update = BY_NAME["update_task"]["parameters"]["properties"]
    assert list(update) == ["agent_id", "task_id", "status", "priority", "title", "description", "blocker", "result"]
    assert all(nullable(update[name]) for name in list(update)[2:])


def test_bound_tools_take_no_agent_id() -> None:
    every = [tool["name"] for tool in tools.TOOLS]
    bound = tools.select("all", agent_id="ops")
    assert [tool["name"] for tool in bound] == [n for n in every if n not in ("list_agents", "prune_events")]
    for tool in bound:
        for path, schema in object_schemas(tool["parameters"]):
            assert "agent_id" not in schema["properties"], f"{tool['name']} {path}"
            assert schema.get("additionalProperties") is False
            assert schema.get("required") == list(schema["properties"])
        unbound = BY_NAME[tool["name"]]
        assert tool["output_schema"] == unbound["output_schema"]
        assert tool["annotations"] == unbound["annotations"]
        expected = {k: v for k, v in unbound["parameters"]["properties"].items() if k != "agent_id"}
        assert tool["parameters"]["properties"] == expected, tool["name"]
    assert [tool["name"] for tool in tools.select(agent_id="ops")] == list(SPEC_CORE)


@pytest.mark.parametrize("names", ["bogus", ["get_task", "bogus"], ["list_agents"], "", []])
def test_select_refuses_unknown_names(names: Any) -> None:
    agent = "ops" if names == ["list_agents"] else None  # list_agents is not a bound tool
    with pytest.raises(ValidationError) as raised:
        tools.select(names, agent_id=agent)
    assert raised.value.code == "invalid_argument"


def test_select_refuses_a_bad_agent_id() -> None:
    with pytest.raises(ValidationError, match="agent_id"):
        tools.select("core", agent_id="not an id")


# --- call never raises ---------------------------------------------------------------


def test_arguments_as_json_text_or_any_mapping(store: Store) -> None:
    created = tools.call(store, "create_task", '{"agent_id": "ops", "title": "From text", "priority": 2}')
    assert created["id"] == "OPS-001" and created["priority"] == 2
    validate("create_task", created)
    proxy = types.MappingProxyType({"agent_id": "ops", "task_id": "OPS-001"})
    assert tools.call(store, "get_task", proxy) == created
    assert tools.call(store, "list_agents") == tools.call(store, "list_agents", {}) == tools.call(store, "list_agents", "{}")
    assert tools.call(store, "list_agents", None)["total"] == 1


def test_null_is_not_given_and_empty_text_clears(store: Store) -> None:
    created = tools.call(store, "create_task", {
        "agent_id": "ops", "title": "Nulls", "description": "first", "priority": None,
        "depends_on": None, "idempotency_key": None,
    })
    assert created["priority"] == 5 and created["description"] == "first"
    unchanged = tools.call(store, "update_task", {
        "agent_id": "ops", "task_id": "OPS-001", "status": None, "priority": None, "title": None,
        "description": None, "blocker": None, "result": None,
    })
    assert unchanged == created
    cleared = tools.call(store, "update_task", {"agent_id": "ops", "task_id": "OPS-001", "description": ""})
    assert cleared["description"] is None
    assert store.get_task("ops", "OPS-001") == cleared


ALWAYS_INVALID: List[tuple[str, Any, str]] = [
    ("create_task", [1, 2], "JSON object"),
    ("create_task", 42, "JSON object"),
    ("create_task", True, "JSON object"),
    ("create_task", "[1]", "JSON object"),
    ("create_task", '{"agent_id": ', "JSON object"),
    ("create_task", "", "JSON object"),
    ("create_task", None, "agent_id"),
    ("create_task", {"agent_id": "ops"}, "title"),
    ("create_task", {"agent_id": "ops", "title": "x", "priority": "high"}, "priority"),
    ("create_task", {"agent_id": "ops", "title": "x", "priority": 3.0}, "priority"),
    ("create_task", {"agent_id": "ops", "title": "x", "priority": float("nan")}, "priority"),
    ("create_task", {"agent_id": "ops", "title": 5}, "title"),
    ("create_task", {"agent_id": 7, "title": "x"}, "agent_id"),
    ("create_task", {"agent_id": "ops", "title": "x", "description": object()}, "description"),
    ("create_task", {1: "x"}, "keys"),
    ("create_task", {"agent_id": "ops", "title": "x", "owner": "me"}, "owner"),
    ("update_task", {"agent_id": "ops", "task_id": "OPS-001", "patch": {"title": "x"}}, "patch"),
    ("finish_lease", {"token": "OPS-001.1.0000000000000000", "status": "done"}, "status"),
    ("nosuch", {}, "nosuch"),
    ("", {}, "tool"),
]


@pytest.mark.parametrize("name,arguments,needle", ALWAYS_INVALID, ids=[repr(a)[:60] for _, a, _ in ALWAYS_INVALID])
def test_bad_calls_are_error_objects(store: Store, name: str, arguments: Any, needle: str) -> None:
    error = error_of(tools.call(store, name, arguments))
    assert error["code"] == "invalid_argument", error
    assert needle in error["message"], error
    assert store.query_tasks()["total"] == 0


def test_operation_errors_are_error_objects(store: Store) -> None:
    assert error_of(tools.call(store, "get_task", {"agent_id": "ops", "task_id": "OPS-404"})) == {
        "code": "not_found", "message": "task OPS-404 is not in the backlog of ops"}
    tools.call(store, "create_task", {"agent_id": "ops", "title": "x"})
    moved = error_of(tools.call(store, "update_task", {"agent_id": "ops", "task_id": "OPS-001", "status": "complete"}))
    assert moved["code"] == "invalid_transition"
    assert error_of(tools.call(store, "finish_lease", {"token": "OPS-001.1.0000000000000000", "status": "complete"}))[
        "code"] == "not_found"
    tools.call(store, "set_prefix", {"agent_id": "sales", "prefix": "SLS"})
    assert error_of(tools.call(store, "set_prefix", {"agent_id": "other", "prefix": "SLS"}))["code"] == "conflict"


def test_not_a_store_nor_a_name(store: Store) -> None:
    not_a_store: Any = "backlogs.db"
    assert error_of(tools.call(not_a_store, "summary", {"agent_id": "ops"}))["code"] == "invalid_argument"
    not_a_name: Any = 5
    assert error_of(tools.call(store, not_a_name, {}))["code"] == "invalid_argument"


def test_a_closed_store_is_a_storage_error() -> None:
    store = Store(":memory:")
    store.close()
    for name, arguments in [("summary", {"agent_id": "ops"}), ("create_task", {"agent_id": "ops", "title": "x"}),
                            ("list_agents", {})]:
        error = error_of(tools.call(store, name, arguments))
        assert error["code"] == "storage", error
        assert "closed" in error["message"], error


def test_a_bound_call(store: Store) -> None:
    created = tools.call(store, "create_task", {"title": "Bound"}, agent_id="ops")
    assert created["id"] == "OPS-001"
    assert store.get_task("ops", "OPS-001") == created
    # agent_id is no argument of a bound tool, not even the same one.
    for agent in ["ops", "other", None]:
        error = error_of(tools.call(store, "create_task", {"agent_id": agent, "title": "x"}, agent_id="ops"))
        assert error["code"] == "invalid_argument" and "agent_id" in error["message"], error
    # The tools across every agent are not there when bound.
    for name in ["list_agents", "prune_events"]:
        error = error_of(tools.call(store, name, {}, agent_id="ops"))
        assert error["code"] == "invalid_argument" and name in error["message"], error
    error = error_of(tools.call(store, "create_task", {"title": "x"}, agent_id="not an id"))
    assert error["code"] == "invalid_argument" and "agent_id" in error["message"], error
    listed = tools.call(store, "list_tasks", {"status": None, "limit": None, "offset": None}, agent_id="ops")
    validate("list_tasks", listed)
    assert listed == store.list_tasks("ops")
    assert store.query_tasks()["total"] == 1


def test_a_worker_loop_through_the_tools(store: Store) -> None:
    for title in ["First", "Second"]:
        validate("create_task", tools.call(store, "create_task", {"agent_id": "ops", "title": title}))
    done = []
    while True:
        claim = tools.call(store, "claim_lease", {"agent_id": "ops", "worker": "w1", "lease_seconds": 60,
                                                  "max_attempts": None})
        validate("claim_lease", claim)
        if claim == {"result": None}:
            break
        token = claim["lease"]["token"]
        lease = tools.call(store, "get_lease", {"agent_id": "ops", "task_id": claim["task"]["id"]})
        validate("get_lease", lease)
        assert lease == claim["lease"]
        finished = tools.call(store, "finish_lease", {"token": token, "status": "complete", "result": "ok",
                                                      "blocker": None})
        validate("finish_lease", finished)
        done.append(finished["id"])
        again = error_of(tools.call(store, "finish_lease", {"token": token, "status": "complete"}))
        assert again["code"] == "lease_lost", again
    assert done == ["OPS-001", "OPS-002"]
    summary = tools.call(store, "summary", {"agent_id": "ops"})
    validate("summary", summary)
    assert summary == {"queued": 0, "in_progress": 0, "complete": 2, "blocked": 0, "total": 2}
    waited = tools.call(store, "wait_for_task", {"agent_id": "ops", "worker": "w1", "timeout_seconds": 0.05,
                                                 "lease_seconds": None, "max_attempts": None})
    assert waited == {"result": None}
    validate("wait_for_task", waited)
