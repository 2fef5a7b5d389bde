"""The catalogue of bad inputs from Python: a table of (description, call, expected code).

Every case runs on a fresh store holding one task in each status. A refused call must
raise the exception of its code and leave the store exactly as it was (every task of
``query_tasks()`` and the summary of every agent involved, compared before and after),
and the next task created must get the next ID (MKT-005, and NEW-001 for an agent that
had none). Values of the wrong Python type (bytes, bools, floats, huge ints, lone
surrogates) are refused, never coerced.

Bad values that JSON can hold (ranges, lengths, formats, SQL-looking text, lifecycle
moves, conflicts) are cases of testdata/conformance/, which test_conformance.py runs
through this same module; this table keeps what only Python can pass.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional

import pytest

import agent_backlog
from agent_backlog import BacklogError, Store

ML = "marketing-lead"
AGENTS = [ML, "support-bot", "new-agent"]

Call = Callable[[Store], object]


class Case(NamedTuple):
    what: str
    call: Call
    code: Optional[str]  # None: success
    needle: str  # in the message, or in the result's repr on success
    creates: int = 0  # tasks of marketing-lead a successful call creates


def fixture(store: Store) -> None:
    """marketing-lead: MKT-001 complete, MKT-002 in_progress, MKT-003 blocked, MKT-004
    queued; support-bot: SUP-001 queued; new-agent: no tasks."""
    store.create_tasks(
        ML,
        [
            {"title": "Write posts", "priority": 1},
            {"title": "Audit pricing", "priority": 2},
            {"title": "Plan webinar", "priority": 3},
            {"title": "Draft newsletter", "priority": 4},
        ],
    )
    store.claim_next(ML)
    store.update_task(ML, "MKT-001", status="complete", result="done")
    store.claim_next(ML)
    store.update_task(ML, "MKT-003", status="blocked", blocker="waiting for the launch date")
    store.create_task("support-bot", "Draft FAQ", description="top 10")


def snapshot(store: Store) -> object:
    """Everything observable: every task with its agent, and each agent's summary."""
    everything = store.query_tasks()
    summaries = [store.summary(a) for a in AGENTS]
    assert everything["total"] == len(everything["tasks"]) == sum(s["total"] for s in summaries)
    return (everything, summaries)


def check_next_ids(store: Store, created: int) -> None:
    assert store.create_task(ML, "probe")["id"] == f"MKT-{5 + created:03d}"
    assert store.create_task("new-agent", "probe")["id"] == "NEW-001"


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def self_containing() -> list[Any]:
    items: list[Any] = []
    items.append(items)
    return items


CASES: list[Case] = [
    # agent_id
    Case("agent_id with a lone surrogate", lambda s: s.summary("ml\ud800"), "invalid_argument", "lone surrogate"),
    Case("agent_id as bytes", lambda s: s.create_task(b"marketing-lead", "t"),  # type: ignore[arg-type]
         "invalid_argument", "agent_id must be a str, got bytes"),
    Case("agent_id as an int", lambda s: s.summary(7),  # type: ignore[arg-type]
         "invalid_argument", "agent_id must be a str, got int"),
    Case("agent_id None", lambda s: s.claim_next(None),  # type: ignore[arg-type]
         "invalid_argument", "agent_id must be a str, got NoneType"),
    # task_id
    Case("task_id as bytes", lambda s: s.get_task(ML, b"MKT-001"),  # type: ignore[arg-type]
         "invalid_argument", "task_id must be a str, got bytes"),
    Case("task_id with a lone surrogate", lambda s: s.get_task(ML, "MKT-\udc00"), "invalid_argument",
         "lone surrogate"),
    # title
    Case("title as bytes", lambda s: s.create_task(ML, b"Write posts"),  # type: ignore[arg-type]
         "invalid_argument", "title must be a str, int, float, bool, None, list or dict, got bytes"),
    Case("title as a bool", lambda s: s.create_task(ML, True),  # type: ignore[arg-type]
         "invalid_argument", "title must be a string, got true"),
    Case("title of 9 MiB", lambda s: s.create_task(ML, "x" * (9 << 20)), "invalid_argument",
         "title must be 1 to 500"),
    Case("title with a lone surrogate", lambda s: s.create_task(ML, "a\ud83d"), "invalid_argument",
         "lone surrogate"),
    # description, blocker, result
    Case("description as bytes", lambda s: s.create_task(ML, "t", description=b"d"),  # type: ignore[arg-type]
         "invalid_argument", "description must be a str"),
    Case("blocker as bytes", lambda s: s.update_task(ML, "MKT-003", blocker=b"why"),  # type: ignore[arg-type]
         "invalid_argument", "blocker must be a str, int, float, bool, None, list or dict, got bytes"),
    # priority
    Case("priority True", lambda s: s.create_task(ML, "t", priority=True), "invalid_argument", "got true"),
    Case("priority False in a patch", lambda s: s.update_task(ML, "MKT-004", priority=False), "invalid_argument",
         "got false"),
    Case("priority 3.0", lambda s: s.create_task(ML, "t", priority=3.0),  # type: ignore[arg-type]
         "invalid_argument", "priority must be an integer from 1 to 10, got 3.0"),
    Case("priority b'3'", lambda s: s.create_task(ML, "t", priority=b"3"),  # type: ignore[arg-type]
         "invalid_argument", "got bytes"),
    Case("priority 2**64", lambda s: s.create_task(ML, "t", priority=2**64), "invalid_argument",
         "must be an integer that fits in 64 bits"),
    Case("priority NaN", lambda s: s.create_task(ML, "t", priority=math.nan),  # type: ignore[arg-type]
         "invalid_argument", "must not be NaN or infinite"),
    Case("priority infinity", lambda s: s.query_tasks(priority=math.inf),  # type: ignore[arg-type]
         "invalid_argument", "must not be NaN or infinite"),
    # batches
    Case("batch as a dict", lambda s: s.create_tasks(ML, {"title": "t"}),  # type: ignore[arg-type]
         "invalid_argument", "the task list must be an array"),
    Case("batch item with bytes", lambda s: s.create_tasks(ML, [{"title": b"a"}]),  # type: ignore[typeddict-item]
         "invalid_argument", "tasks[0].title must be a str"),
    Case("batch item with a non-str key", lambda s: s.create_tasks(ML, [{1: "a"}]),  # type: ignore[misc]
         "invalid_argument", "must have str keys"),
    Case("batch nested 100 deep", lambda s: s.create_tasks(ML, nested_list(100)), "invalid_argument",
         "nested more than 32 levels"),
    Case("batch containing itself", lambda s: s.create_tasks(ML, self_containing()), "invalid_argument",
         "nested more than 32 levels"),
    Case("batch as a generator", lambda s: s.create_tasks(ML, ({"title": "t"} for _ in range(2))),  # type: ignore[arg-type]
         "invalid_argument", "got generator"),
    Case("batch of 10001 tasks", lambda s: s.create_tasks(ML, [{"title": "t"}] * 10_001), "invalid_argument",
         "at most 10000 tasks"),
    # patches
    Case("status as bytes", lambda s: s.update_task(ML, "MKT-004", status=b"queued"),  # type: ignore[arg-type]
         "invalid_argument", "got bytes"),
    # filters
    Case("limit True", lambda s: s.list_tasks(ML, limit=True), "invalid_argument", "limit must be an integer"),
    Case("limit 1.5", lambda s: s.query_tasks(limit=1.5),  # type: ignore[arg-type]
         "invalid_argument", "limit must be an integer"),
    Case("offset 2**64", lambda s: s.query_tasks(offset=2**64), "invalid_argument", "fits in 64 bits"),
    Case("offset '10'", lambda s: s.list_tasks(ML, offset="10"),  # type: ignore[arg-type]
         "invalid_argument", "offset must be an integer"),
    Case("agent_id filter as bytes", lambda s: s.query_tasks(agent_id=b"ops"),  # type: ignore[arg-type]
         "invalid_argument", "got bytes"),
    # prefixes
    Case("prefix as bytes", lambda s: s.set_prefix("new-agent", b"NEW"),  # type: ignore[arg-type]
         "invalid_argument", "prefix must be a str, got bytes"),
]


@pytest.fixture
def fixture_store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "catalogue.db") as store:
        fixture(store)
        yield store


def test_the_catalogue_is_large_and_its_names_unique() -> None:
    assert len(CASES) >= 30
    assert len({c.what for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_catalogue(fixture_store: Store, case: Case) -> None:
    store = fixture_store
    before = snapshot(store)
    if case.code is None:
        result = case.call(store)
        assert case.needle in repr(result)
    else:
        with pytest.raises(BacklogError) as info:
            case.call(store)
        assert info.value.code == case.code, str(info.value)
        assert type(info.value).code == case.code
        assert case.needle in str(info.value)
        assert len(str(info.value)) < 1000
        assert snapshot(store) == before, "a refused call wrote something"
    check_next_ids(store, case.creates if case.code is None else 0)


CLOSED_CALLS: list[tuple[str, Call]] = [
    ("list_tasks", lambda s: s.list_tasks(ML)),
    ("create_task", lambda s: s.create_task(ML, "t")),
    ("create_tasks", lambda s: s.create_tasks(ML, [{"title": "t"}])),
    ("get_task", lambda s: s.get_task(ML, "MKT-001")),
    ("update_task", lambda s: s.update_task(ML, "MKT-004", priority=1)),
    ("delete_task", lambda s: s.delete_task(ML, "MKT-001")),
    ("query_tasks", lambda s: s.query_tasks()),
    ("summary", lambda s: s.summary(ML)),
    ("claim_next", lambda s: s.claim_next(ML)),
    ("set_prefix", lambda s: s.set_prefix("new-agent", "NEW")),
]


@pytest.mark.parametrize(("what", "call"), CLOSED_CALLS, ids=[w for w, _ in CLOSED_CALLS])
def test_calls_after_close(tmp_path: Path, what: str, call: Call) -> None:
    path = tmp_path / "closed.db"
    with Store(path) as store:
        fixture(store)
        before = snapshot(store)
    with pytest.raises(agent_backlog.StorageError) as info:
        call(store)
    assert info.value.code == "storage"
    assert "closed" in str(info.value)
    store.close()  # closing again is fine
    with Store(path) as again:
        assert snapshot(again) == before
        check_next_ids(again, 0)


OPEN_CASES: list[tuple[str, Callable[[Path], Store], str, str]] = [
    ("empty path", lambda d: Store(""), "invalid_argument", "empty path"),
    ("path with a NUL", lambda d: Store("a\x00b.db"), "invalid_argument", "NUL"),
    ("path as bytes", lambda d: Store(b"x.db"),  # type: ignore[arg-type]
     "invalid_argument", "path_or_url must be a str or an os.PathLike"),
    ("path as an int", lambda d: Store(3),  # type: ignore[arg-type]
     "invalid_argument", "got int"),
    ("file: URI of an absolute path", lambda d: Store(f"file:{d}/target.db?mode=memory"), "storage", "cannot open"),
    ("folder that does not exist", lambda d: Store(d / "no" / "such" / "x.db"), "storage", "cannot open"),
    ("a folder", lambda d: Store(d), "storage", "database"),
    ("a text file", lambda d: Store(d / "notes.txt"), "storage", "not an SQLite database"),
    ("busy_timeout True", lambda d: Store(d / "good.db", busy_timeout=True), "invalid_argument", "got bool"),
    ("busy_timeout -1", lambda d: Store(d / "good.db", busy_timeout=-1), "invalid_argument", "got -1"),
    ("busy_timeout NaN", lambda d: Store(d / "good.db", busy_timeout=math.nan), "invalid_argument", "got NaN"),
    ("busy_timeout as a str", lambda d: Store(d / "good.db", busy_timeout="5"),  # type: ignore[arg-type]
     "invalid_argument", "got str"),
    ("busy_timeout past i32::MAX ms", lambda d: Store(d / "good.db", busy_timeout=1e7), "invalid_argument",
     "busy_timeout must be at most 2147483647 ms"),
    ("busy_timeout 10**400", lambda d: Store(d / "good.db", busy_timeout=10**400), "invalid_argument",
     "busy_timeout must be"),
    ("durability FULL", lambda d: Store(d / "good.db", durability="FULL"),  # type: ignore[arg-type]
     "invalid_argument", "durability must be"),
    ("durability as bytes", lambda d: Store(d / "good.db", durability=b"full"),  # type: ignore[arg-type]
     "invalid_argument", "got bytes"),
]


@pytest.mark.parametrize(("what", "call", "code", "needle"), OPEN_CASES, ids=[c[0] for c in OPEN_CASES])
def test_bad_paths_and_options(tmp_path: Path, what: str, call: Callable[[Path], Store], code: str,
                               needle: str) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("plain text, not SQLite\n" * 100)
    with pytest.raises(BacklogError) as info:
        call(tmp_path).close()
    assert info.value.code == code, str(info.value)
    assert needle in str(info.value)
    assert notes.read_text() == "plain text, not SQLite\n" * 100
    assert not (tmp_path / "target.db").exists()
    assert not (tmp_path / "good.db").exists()


def test_relative_file_uri_is_a_plain_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store("file:x.db?mode=memory&nolock=1") as store:
        fixture(store)
    assert (tmp_path / "file:x.db?mode=memory&nolock=1").is_file()
    assert not (tmp_path / "x.db").exists()
    with Store(tmp_path / "file:x.db?mode=memory&nolock=1") as again:
        assert again.summary(ML)["total"] == 4
