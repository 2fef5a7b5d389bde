"""The exception hierarchy, the codes, and values of the wrong type or range."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable

import pytest

import agent_backlog
from agent_backlog import (
    BacklogError,
    ConflictError,
    InternalError,
    NotFoundError,
    StorageError,
    TransitionError,
    ValidationError,
)

CLASSES = [
    (ValidationError, "invalid_argument", ValueError),
    (NotFoundError, "not_found", LookupError),
    (TransitionError, "invalid_transition", None),
    (ConflictError, "conflict", None),
    (StorageError, "storage", None),
    (InternalError, "internal", None),
]


@pytest.mark.parametrize(("cls", "code", "builtin"), CLASSES)
def test_exception_classes(cls: type[BacklogError], code: str, builtin: type[Exception] | None) -> None:
    assert issubclass(cls, BacklogError)
    assert issubclass(cls, Exception)
    assert cls.code == code
    assert cls.__module__ == "agent_backlog"
    assert cls.__doc__
    others = {ValueError, LookupError} - ({builtin} if builtin else set())
    if builtin is not None:
        assert issubclass(cls, builtin)
    for other in others:
        assert not issubclass(cls, other)
    err = cls("message")
    assert err.code == code
    assert str(err) == "message"
    # Exceptions cross process boundaries (multiprocessing pickles them).
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls and str(again) == "message" and again.code == code


def test_base_class() -> None:
    assert issubclass(BacklogError, Exception)
    assert BacklogError.__module__ == "agent_backlog"
    assert BacklogError.code == "internal"
    assert len({cls for cls, _, _ in CLASSES}) == 6


def test_each_error_is_raised_with_its_code(store: agent_backlog.Store) -> None:
    store.create_task("marketing-lead", "Write posts")
    cases: list[tuple[type[BacklogError], Callable[[], object], str]] = [
        (ValidationError, lambda: store.create_task("bad agent!", "x"), "agent_id must be"),
        (NotFoundError, lambda: store.get_task("marketing-lead", "MKT-009"),
         "task MKT-009 is not in the backlog of marketing-lead"),
        (TransitionError, lambda: store.update_task("marketing-lead", "MKT-001", status="complete"),
         "cannot move MKT-001 from queued to complete"),
        (ConflictError, lambda: store.set_prefix("someone-else", "MKT"), "prefix MKT is held"),
    ]
    for cls, call, message in cases:
        with pytest.raises(cls) as info:
            call()
        assert type(info.value) is cls
        assert info.value.code == cls.code
        assert message in str(info.value)
    store.close()
    with pytest.raises(StorageError) as closed:
        store.summary("marketing-lead")
    assert closed.value.code == "storage"


def test_not_found_is_a_lookup_error_and_validation_a_value_error(store: agent_backlog.Store) -> None:
    with pytest.raises(LookupError):
        store.delete_task("ops", "OPS-001")
    with pytest.raises(ValueError):
        store.summary("")
    # A task of another agent is not in this agent's backlog.
    task = store.create_task("ops", "x")
    with pytest.raises(NotFoundError):
        store.get_task("design", task["id"])


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"priority": True}, "priority must be an integer from 1 to 10, got true"),
    ({"priority": False}, "priority must be an integer from 1 to 10, got false"),
    ({"priority": 3.0}, "priority must be an integer from 1 to 10, got 3.0"),
    ({"priority": "3"}, "priority must be an integer from 1 to 10, got the string \"3\""),
    ({"priority": 0}, "priority must be an integer from 1 to 10, got 0"),
    ({"priority": 11}, "priority must be an integer from 1 to 10, got 11"),
    ({"priority": 2**64}, "priority must be an integer that fits in 64 bits"),
    ({"priority": -(2**70)}, "priority must be an integer that fits in 64 bits"),
    ({"priority": float("nan")}, "priority must not be NaN or infinite"),
    ({"priority": float("inf")}, "priority must not be NaN or infinite"),
    ({"priority": [3]}, "priority must be an integer from 1 to 10, got an array"),
    ({"title": b"bytes title"}, "title must be a str, int, float, bool, None, list or dict, got bytes"),
    ({"title": bytearray(b"x")}, "got bytearray"),
    ({"title": object()}, "title must be a str, int, float, bool, None, list or dict, got object"),
    ({"title": None}, "title must be a string, got null"),
    ({"title": 5}, "title must be a string, got 5"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 501}, "title"),
    ({"title": "lone \ud800 surrogate"}, "title must be valid Unicode text"),
    ({"description": 1.5}, "description must be a string, got 1.5"),
    ({"description": {"a": 1}}, "description must be a string, got an object"),
    ({"description": {1: "a"}}, "description must have str keys, got a key of type int"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_CREATES)
def test_create_task_refuses_wrong_types_and_values(
    store: agent_backlog.Store, fields: dict[str, Any], message: str
) -> None:
    kwargs: dict[str, Any] = {"title": "A task"}
    kwargs.update(fields)
    with pytest.raises(ValidationError) as info:
        store.create_task("ops", **kwargs)
    assert info.value.code == "invalid_argument"
    assert message in str(info.value)
    # Nothing was written.
    assert store.summary("ops")["total"] == 0


@pytest.mark.parametrize("name", ["agent_id", "task_id"])
@pytest.mark.parametrize("value", [7, None, b"ops", ["ops"], 1.0, True])
def test_ids_must_be_str(store: agent_backlog.Store, name: str, value: object) -> None:
    args: dict[str, Any] = {"agent_id": "ops", "task_id": "OPS-001"}
    args[name] = value
    for call in (store.get_task, store.delete_task, store.update_task):
        with pytest.raises(ValidationError) as info:
            call(args["agent_id"], args["task_id"])
        assert str(info.value) == f"{name} must be a str, got {type(value).__name__}"


def test_agent_id_and_prefix_must_be_str(store: agent_backlog.Store) -> None:
    calls: list[Callable[[Any], object]] = [
        lambda a: store.create_task(a, "x"),
        lambda a: store.create_tasks(a, []),
        lambda a: store.list_tasks(a),
        lambda a: store.summary(a),
        lambda a: store.claim_next(a),
        lambda a: store.set_prefix(a, "ABC"),
    ]
    for call in calls:
        with pytest.raises(ValidationError, match="^agent_id must be a str, got int$"):
            call(42)
        with pytest.raises(ValidationError, match="^agent_id must be valid Unicode text"):
            call("ops\udc80")
    with pytest.raises(ValidationError, match="^prefix must be a str, got bytes$"):
        store.set_prefix("ops", b"ABC")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="prefix"):
        store.set_prefix("ops", "abc")
    assert store.query_tasks()["total"] == 0


def test_update_task_refusals(store: agent_backlog.Store) -> None:
    task = store.create_task("ops", "x")
    tid = task["id"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"unknown": 1}, 'unknown field "unknown"'),
        ({"id": "OPS-002"}, 'unknown field "id"'),
        ({"status": None}, "status cannot be null"),
        ({"priority": None}, "priority cannot be null"),
        ({"title": None}, "title cannot be null"),
        ({"status": "done"}, "status must be one of queued, in_progress, complete, blocked"),
        ({"status": 1}, "status must be a string, got 1"),
        ({"priority": True}, "priority must be an integer from 1 to 10, got true"),
        ({"priority": 2.5}, "priority must be an integer from 1 to 10, got 2.5"),
        ({"title": b"x"}, "title must be a str, int, float, bool, None, list or dict, got bytes"),
        ({"blocker": "too early"}, "blocker"),
        ({"result": "too early"}, "result"),
        ({"status": "blocked"}, "blocker"),
    ]
    for fields, message in cases:
        with pytest.raises(ValidationError) as info:
            store.update_task("ops", tid, **fields)
        assert message in str(info.value), (fields, str(info.value))
    assert store.get_task("ops", tid) == task


def test_query_and_list_refusals(store: agent_backlog.Store) -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: store.list_tasks("ops", status="done"), "status must be one of"),  # type: ignore[arg-type]
        (lambda: store.list_tasks("ops", limit=-1), "limit"),
        (lambda: store.list_tasks("ops", limit=1.0), "limit must be an integer of 0 or more, got 1.0"),  # type: ignore[arg-type]
        (lambda: store.list_tasks("ops", offset=True), "offset must be an integer of 0 or more, got true"),
        (lambda: store.list_tasks("ops", status=b"queued"), "status must be a str"),  # type: ignore[arg-type]
        (lambda: store.query_tasks(priority=0), "priority"),
        (lambda: store.query_tasks(priority=False), "priority must be an integer from 1 to 10, got false"),
        (lambda: store.query_tasks(agent_id=3), "agent_id must be a string, got 3"),  # type: ignore[arg-type]
        (lambda: store.query_tasks(status="nope"), "status must be one of"),  # type: ignore[arg-type]
    ]
    for call, message in cases:
        with pytest.raises(ValidationError) as info:
            call()
        assert message in str(info.value)


def test_create_tasks_refusals_write_nothing(store: agent_backlog.Store) -> None:
    cases: list[tuple[Any, str]] = [
        ([{"title": "a"}, {"title": "b", "extra": 1}], 'tasks[1]: unknown field "extra"'),
        ([{"title": "a"}, {"title": b"b"}], "tasks[1].title must be a str, int, float, bool, None, list or dict, got bytes"),
        ([{"title": "a"}, {"priority": 1}], "tasks[1]: title is required"),
        ([{"title": "a"}, "b"], "tasks[1]: the task must be a JSON object"),
        ([{"title": "a"}, {"title": "b", "priority": 3.0}], "tasks[1]: priority must be an integer"),
        ({"title": "a"}, "the task list must be an array"),
        ("abc", "the task list must be an array"),
        (None, "the task list must be an array"),
        ({"a", "b"}, "tasks must be a str, int, float, bool, None, list or dict, got set"),
        ((t for t in [{"title": "a"}]), "tasks must be a str, int, float, bool, None, list or dict, got generator"),
    ]
    for tasks, message in cases:
        with pytest.raises(ValidationError) as info:
            store.create_tasks("ops", tasks)
        assert message in str(info.value), (tasks, str(info.value))
    assert store.summary("ops")["total"] == 0
    assert store.create_task("ops", "first")["id"] == "OPS-001"


def test_self_containing_list_is_refused(store: agent_backlog.Store) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValidationError, match="nested more than"):
        store.create_tasks("ops", loop)


def test_argument_names_follow_python_rules(store: agent_backlog.Store) -> None:
    # Fixed signatures refuse unknown keyword arguments the Python way.
    with pytest.raises(TypeError):
        store.create_task("ops", "x", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        store.list_tasks("ops", priority=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        store.get_task("ops")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"busy_timeout": -1}, "busy_timeout must be a number of seconds of 0 or more, got -1"),
        ({"busy_timeout": float("nan")}, "busy_timeout must be a number of seconds of 0 or more"),
        ({"busy_timeout": True}, "busy_timeout must be a number of seconds of 0 or more, got bool"),
        ({"busy_timeout": "5"}, "busy_timeout must be a number of seconds of 0 or more, got str"),
        ({"busy_timeout": 10**400}, "busy_timeout must be a number of seconds of 0 or more"),
        ({"durability": "paranoid"}, 'durability must be "normal" or "full"'),
        ({"durability": 1}, "durability must be a string, got 1"),
    ],
)
def test_store_option_refusals(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        agent_backlog.Store(tmp_path / "x.db", **kwargs)
    assert message in str(info.value)


def test_store_path_refusals(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"^path_or_url must be a str or an os\.PathLike \(.*\), got int$"):
        agent_backlog.Store(3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="path"):
        agent_backlog.Store("")
    with pytest.raises(StorageError) as info:
        agent_backlog.Store(tmp_path / "missing-folder" / "x.db")
    assert info.value.code == "storage"
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(StorageError):
        agent_backlog.Store(not_a_db)
    assert not_a_db.read_text().startswith("hello")


def test_huge_busy_timeout_never_escapes_as_a_panic(tmp_path: Path) -> None:
    # Whatever the core decides for a timeout of ~31 years, it is a BacklogError,
    # never pyo3's PanicException (a BaseException).
    try:
        agent_backlog.Store(tmp_path / "x.db", busy_timeout=1e9).close()
    except BacklogError as err:
        assert err.code in ("invalid_argument", "internal")


def test_a_wrong_keyword_value_is_named_by_its_keyword() -> None:
    with agent_backlog.Store(":memory:") as store:
        task = store.create_task("x", "t")
        with pytest.raises(ValidationError) as info:
            store.update_task("x", task["id"], blocker=b"bytes")  # type: ignore[arg-type]
        assert str(info.value).startswith("blocker must be a str"), str(info.value)
