"""The conformance cases of testdata/conformance/, run through the Python module.

One pytest case per data case and class (``Store``, and ``AsyncStore`` with each
call awaited) (see testdata/conformance/README.md for the format). A
request becomes a call of the Store's method (SPEC §9): agent_id, task_id, prefix and
the task list positional, everything else by keyword (``create_task(agent, **task)``,
``update_task(agent, task, **patch)``). A success must return exactly the expected
JSON, key order included; a failure must raise the ``BacklogError`` of the expected
code, whose message holds the expected substrings, and leave the store as it was:
``query_tasks()`` and the summaries of marketing-lead, support-bot and new-agent are
unchanged, and the next tasks of marketing-lead and new-agent get the IDs they would
have got without the call.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, NamedTuple, Optional, Type, Union

import pytest

from agent_backlog import AsyncStore, BacklogError, Store

import pgserver

DATA = Path(__file__).resolve().parents[2] / "testdata" / "conformance"
SURFACE = "python"
SURFACES = {"rust", "c", "python", "http", "tools"}
ML = "marketing-lead"
NEW = "new-agent"
SNAPSHOT_AGENTS = [ML, "support-bot", NEW]
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
CASE_KEYS = {"name", "setup", "op", "request", "request_text", "result", "error", "message", "surfaces", "why"}

# What each operation takes: positional parameters (in order), and where its keywords
# come from: a named body object of the request, or the request's other keys.
POSITIONAL: dict[str, list[str]] = {
    "create_task": ["agent_id"],
    "create_tasks": ["agent_id", "tasks"],
    "list_tasks": ["agent_id"],
    "get_task": ["agent_id", "task_id"],
    "update_task": ["agent_id", "task_id"],
    "delete_task": ["agent_id", "task_id"],
    "query_tasks": [],
    "summary": ["agent_id"],
    "claim_next": ["agent_id"],
    "set_prefix": ["agent_id", "prefix"],
    "claim_lease": ["agent_id", "worker"],
    "renew_lease": ["token"],
    "finish_lease": ["token", "status"],
    "finish_and_claim": ["token", "status"],
    "get_lease": ["agent_id", "task_id"],
    "reap_expired": [],
    "wait_for_task": ["agent_id", "worker", "timeout_seconds"],
    "add_dependency": ["agent_id", "task_id", "depends_on"],
    "remove_dependency": ["agent_id", "task_id", "depends_on"],
    "get_dependencies": ["agent_id", "task_id"],
    "ready_tasks": ["agent_id"],
    "task_history": ["agent_id", "task_id"],
    "events": [],
    "prune_events": ["before"],
    "list_agents": [],
}
BODY: dict[str, str] = {"create_task": "task", "update_task": "patch"}
KEYWORDS: dict[str, set[str]] = {
    "create_task": {"title", "description", "priority", "depends_on", "idempotency_key"},
    "create_tasks": {"idempotency_key"},
    "ready_tasks": {"limit", "offset"},
    "list_tasks": {"status", "limit", "offset"},
    "query_tasks": {"status", "priority", "agent_id", "limit", "offset"},
    "claim_lease": {"lease_seconds", "max_attempts"},
    "renew_lease": {"lease_seconds"},
    "finish_lease": {"result", "blocker"},
    "finish_and_claim": {"result", "blocker", "lease_seconds", "max_attempts"},
    "reap_expired": {"agent_id"},
    "wait_for_task": {"lease_seconds", "max_attempts"},
    "events": {"after", "limit", "agent_id", "wait_seconds"},
    "list_agents": {"limit", "offset"},
}


class Inexpressible(Exception):
    """A request that has no Python call: the case should not list "python"."""


class Case(NamedTuple):
    file: str
    name: str
    data: dict[str, Any]


def expand(value: Any) -> Any:
    """Replaces every ``{"$repeat": [text, n]}`` by the text repeated n times."""
    if isinstance(value, dict):
        if list(value) == ["$repeat"]:
            text, times = value["$repeat"]
            assert isinstance(text, str) and isinstance(times, int), value
            return text * times
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(DATA.glob("*.json")):
        if path.name == "fixture.json":
            continue
        document = load_json(path)
        assert set(document) == {"about", "cases"}, path
        for data in document["cases"]:
            cases.append(Case(path.name, data["name"], data))
    return cases


CASES = load_cases()
FIXTURE: list[Any] = load_json(DATA / "fixture.json")
MINE = [c for c in CASES if SURFACE in c.data.get("surfaces", SURFACES)]


class Awaited:
    """An in-memory AsyncStore whose every method is awaited to the end on a loop of
    its own: the cases through AsyncStore (SPEC §18: the same results and errors)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = AsyncStore(":memory:")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.store, name)
        return lambda *args, **kwargs: self.loop.run_until_complete(method(*args, **kwargs))

    def __enter__(self) -> "Awaited":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.loop.run_until_complete(self.store.aclose())
        self.loop.close()


Backlog = Union[Store, Awaited]
OPENERS: dict[str, Callable[[], Backlog]] = {"Store": lambda: Store(":memory:"), "AsyncStore": Awaited}
if pgserver.URL is not None:
    # The same cases on PostgreSQL (SPEC §16: word for word on both backends).
    OPENERS["PostgreSQL"] = lambda: Store(pgserver.fresh_url())


def call(store: Backlog, op: str, request: Any) -> Any:
    """Runs one operation; raises Inexpressible when the request has no Python call."""
    if op not in POSITIONAL:
        raise Inexpressible(f"there is no Store method {op!r}")
    if not isinstance(request, dict):
        raise Inexpressible("the request is not an object")
    rest = dict(request)
    args = []
    for name in POSITIONAL[op]:
        if name not in rest:
            raise Inexpressible(f"{name} is a required parameter")
        args.append(rest.pop(name))
    if op in BODY:
        body_key = BODY[op]
        # The idempotency key is a keyword beside the body's fields.
        extra = {k: rest.pop(k) for k in ["idempotency_key"] if k in rest and op == "create_task"}
        if set(rest) != {body_key}:
            raise Inexpressible(f"the request must hold {body_key} beside {POSITIONAL[op]}, got {sorted(rest)}")
        kwargs = rest[body_key]
        if not isinstance(kwargs, dict):
            raise Inexpressible(f"{body_key} is not an object")
        if op == "create_task" and "title" not in kwargs:
            raise Inexpressible("title is a required parameter")
        if set(kwargs) & set(POSITIONAL[op]):
            raise Inexpressible(f"{sorted(set(kwargs) & set(POSITIONAL[op]))} is a parameter, not a keyword of the body")
        if set(kwargs) & set(extra):
            raise Inexpressible("idempotency_key is a parameter, not a field of the body")
        kwargs = {**kwargs, **extra}
    else:
        kwargs = rest
    allowed = KEYWORDS.get(op)
    if allowed is not None and not set(kwargs) <= allowed:
        raise Inexpressible(f"{op} has no parameter {sorted(set(kwargs) - allowed)}")
    if allowed is None and op not in BODY and kwargs:
        raise Inexpressible(f"{op} takes no other input than {POSITIONAL[op]}, got {sorted(kwargs)}")
    method: Callable[..., object] = getattr(store, op)
    return method(*args, **kwargs)


def setup_steps(setup: Any) -> list[Any]:
    if setup is None:
        return []
    if setup == "fixture":
        return list(FIXTURE)
    assert isinstance(setup, list), setup
    steps: list[Any] = []
    for item in setup:
        steps.extend(FIXTURE if item == "fixture" else [item])
    return steps


def run_setup(store: Backlog, setup: Any) -> None:
    for i, step in enumerate(setup_steps(setup)):
        assert set(step) == {"op", "request"}, step
        try:
            call(store, step["op"], expand(step["request"]))
        except BacklogError as e:
            pytest.fail(f"setup step {i} ({step['op']}) failed: {e.code}: {e}")


def snapshot(store: Backlog) -> object:
    everything = store.query_tasks()
    summaries = [store.summary(a) for a in SNAPSHOT_AGENTS]
    return (everything, summaries)


def probe(store: Backlog) -> tuple[str, str]:
    """The IDs the next tasks of marketing-lead and new-agent get."""
    return (store.create_task(ML, "probe")["id"], store.create_task(NEW, "probe")["id"])


def expected_probe(setup: Any) -> tuple[str, str]:
    if setup is None:
        return ("MKT-001", "NEW-001")
    if setup == "fixture":
        return ("MKT-005", "NEW-001")
    # Any other setup: what a store with the same setup and no refused call gives.
    with Store(":memory:") as control:
        run_setup(control, setup)
        return probe(control)


def mismatches(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Where `actual` differs from `expected` (types, values, key order)."""
    if expected == "<any>":
        return []
    if expected == "<time>":
        if isinstance(actual, str) and TIME.match(actual):
            return []
        return [f"{path}: expected an RFC 3339 UTC time in whole seconds, got {actual!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        if list(expected) != list(actual):
            return [f"{path}: expected the keys {list(expected)}, got {list(actual)}"]
        return [m for k in expected for m in mismatches(expected[k], actual[k], f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected an array, got {actual!r}"]
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}: {actual!r}"]
        return [m for i, (e, a) in enumerate(zip(expected, actual)) for m in mismatches(e, a, f"{path}[{i}]")]
    if type(expected) is not type(actual) or expected != actual:
        shown = repr(actual) if len(repr(actual)) < 200 else repr(actual)[:200] + "..."
        return [f"{path}: expected {expected!r}, got {shown}"]
    return []


def test_the_cases_are_well_formed() -> None:
    assert len(CASES) >= 150
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names), "two cases with one name"
    for case in CASES:
        data = case.data
        assert set(data) <= CASE_KEYS, (case.name, set(data) - CASE_KEYS)
        assert isinstance(data["op"], str), case.name
        assert ("request" in data) != ("request_text" in data), case.name
        assert ("result" in data) != ("error" in data), case.name
        assert "message" not in data or "error" in data, case.name
        assert ("surfaces" in data) == ("why" in data), case.name
        assert set(data.get("surfaces", [])) <= SURFACES, case.name
        if "request_text" in data:
            assert SURFACE not in data.get("surfaces", []), f"{case.name}: Python cannot send JSON text"
    assert len(MINE) >= 150


@pytest.mark.parametrize("case", MINE, ids=[c.name for c in MINE])
@pytest.mark.parametrize("opened", list(OPENERS))
def test_conformance(case: Case, opened: str) -> None:
    data = case.data
    setup = data.get("setup")
    request = expand(data["request"])
    with OPENERS[opened]() as store:
        run_setup(store, setup)
        before = snapshot(store)
        try:
            result: Optional[object] = call(store, data["op"], request)
            error: Optional[BacklogError] = None
        except Inexpressible as e:
            pytest.fail(f"no Python call for this case ({e}); list its surfaces without python")
        except BacklogError as e:
            result, error = None, e
        if "result" in data:
            if error is not None:
                pytest.fail(f"expected success, got {error.code}: {error}")
            problems = mismatches(expand(data["result"]), result)
            assert not problems, "\n".join(problems)
            return
        code = data["error"]
        if error is None:
            pytest.fail(f"expected {code}, got success: {json.dumps(result)[:500]}")
        message = str(error)
        assert error.code == code, f"expected {code}, got {error.code}: {message}"
        assert type(error).code == code
        for needle in data.get("message", []):
            assert needle in message, f"{needle!r} is not in the message {message!r}"
        assert 0 < len(message) < 1000, f"a message of {len(message)} characters"
        assert snapshot(store) == before, "a refused call wrote something"
        assert probe(store) == expected_probe(setup), "a refused call took a number or registered an agent"
