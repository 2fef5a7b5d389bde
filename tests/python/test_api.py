"""Every method of Store and the exact shape (keys, order, types) of every result."""

from __future__ import annotations

import json
import re

import pytest

import agent_backlog
from conftest import AGENT_TASK_KEYS, SUMMARY_KEYS, TASK_KEYS, TIMESTAMP


def check_task(task: object, **expected: object) -> None:
    assert type(task) is dict
    assert list(task) == TASK_KEYS
    assert re.match(TIMESTAMP, task["created"])
    for key, value in expected.items():
        assert task[key] == value, key


def test_create_task_returns_the_full_task(store: agent_backlog.Store) -> None:
    task = store.create_task(
        "marketing-lead", "Write 3 LinkedIn posts", "Focus on ROI...", 3
    )
    check_task(
        task,
        id="MKT-001",
        title="Write 3 LinkedIn posts",
        description="Focus on ROI...",
        priority=3,
        status="queued",
        started=None,
        completed=None,
        result=None,
        blocker=None,
    )
    assert type(task["priority"]) is int
    # Equal to the contract's JSON, key order included.
    assert json.loads(json.dumps(task)) == task
    assert list(json.loads(json.dumps(task))) == TASK_KEYS


def test_create_task_defaults_and_keywords(store: agent_backlog.Store) -> None:
    task = store.create_task("marketing-lead", title="Audit pricing pages")
    check_task(task, id="MKT-001", description=None, priority=5)
    # None means "not given", for both optional arguments.
    task = store.create_task("marketing-lead", "x", description=None, priority=None)
    check_task(task, id="MKT-002", description=None, priority=5)
    task = store.create_task("marketing-lead", "  padded  ", priority=10)
    check_task(task, id="MKT-003", title="padded", priority=10)


def test_get_task(store: agent_backlog.Store) -> None:
    created = store.create_task("support-bot", "Draft FAQ responses", priority=2)
    assert store.get_task("support-bot", created["id"]) == created
    check_task(store.get_task("support-bot", "SUP-001"), id="SUP-001")


def test_list_tasks_shape_order_and_filters(store: agent_backlog.Store) -> None:
    empty = store.list_tasks("ops-bot")
    assert empty == {"agent_id": "ops-bot", "tasks": [], "total": 0}
    assert list(empty) == ["agent_id", "tasks", "total"]

    low = store.create_task("ops-bot", "low", priority=9)
    high = store.create_task("ops-bot", "high", priority=1)
    mid1 = store.create_task("ops-bot", "mid 1")
    mid2 = store.create_task("ops-bot", "mid 2")
    page = store.list_tasks("ops-bot")
    assert list(page) == ["agent_id", "tasks", "total"]
    assert page["agent_id"] == "ops-bot"
    assert page["total"] == 4
    assert type(page["tasks"]) is list
    assert [t["id"] for t in page["tasks"]] == [high["id"], mid1["id"], mid2["id"], low["id"]]
    for t in page["tasks"]:
        check_task(t)

    paged = store.list_tasks("ops-bot", limit=2, offset=1)
    assert [t["title"] for t in paged["tasks"]] == ["mid 1", "mid 2"]
    assert paged["total"] == 4
    assert store.list_tasks("ops-bot", None, 1, None)["tasks"][0]["title"] == "high"
    assert store.list_tasks("ops-bot", limit=0)["tasks"] == []

    store.claim_next("ops-bot")
    in_progress = store.list_tasks("ops-bot", status="in_progress")
    assert [t["title"] for t in in_progress["tasks"]] == ["high"]
    assert in_progress["total"] == 1
    queued = store.list_tasks("ops-bot", status="queued", limit=1)
    assert queued["total"] == 3
    assert [t["title"] for t in queued["tasks"]] == ["mid 1"]


def test_create_tasks_batch(store: agent_backlog.Store) -> None:
    batch = store.create_tasks(
        "support-bot",
        [
            {"title": "a"},
            {"title": "b", "priority": 1},
            {"title": "c", "description": "d", "priority": None},
            {"title": "e", "description": None},
        ],
    )
    assert list(batch) == ["agent_id", "tasks", "total"]
    assert batch["agent_id"] == "support-bot"
    assert batch["total"] == 4
    assert [t["id"] for t in batch["tasks"]] == ["SUP-001", "SUP-002", "SUP-003", "SUP-004"]
    for t in batch["tasks"]:
        check_task(t, status="queued")
    assert [t["priority"] for t in batch["tasks"]] == [5, 1, 5, 5]
    assert batch["tasks"][2]["description"] == "d"
    # A tuple is a sequence too; an empty batch creates nothing.
    assert store.create_tasks("support-bot", ({"title": "f"},))["total"] == 1
    assert store.create_tasks("support-bot", []) == {
        "agent_id": "support-bot",
        "tasks": [],
        "total": 0,
    }
    assert store.summary("support-bot")["total"] == 5


def test_update_task_lifecycle(store: agent_backlog.Store) -> None:
    task = store.create_task("marketing-lead", "Write posts", "Focus on ROI", 3)
    tid = task["id"]

    # An empty patch changes nothing.
    assert store.update_task("marketing-lead", tid) == task

    started = store.update_task("marketing-lead", tid, status="in_progress")
    check_task(started, status="in_progress", completed=None)
    assert re.match(TIMESTAMP, started["started"] or "")

    blocked = store.update_task(
        "marketing-lead", tid, status="blocked", blocker="waiting for brand colors"
    )
    check_task(blocked, status="blocked", blocker="waiting for brand colors")

    resumed = store.update_task("marketing-lead", tid, status="in_progress")
    check_task(resumed, status="in_progress", blocker=None)

    done = store.update_task(
        "marketing-lead", tid, status="complete", result="Generated 3 LinkedIn posts"
    )
    check_task(done, status="complete", result="Generated 3 LinkedIn posts")
    assert done["started"] and done["completed"]
    assert done["started"] <= done["completed"]

    edited = store.update_task(
        "marketing-lead", tid, title="Write 4 posts", priority=1, description=None
    )
    check_task(edited, title="Write 4 posts", priority=1, description=None, status="complete")

    cleared = store.update_task("marketing-lead", tid, result=None)
    check_task(cleared, result=None, status="complete")

    reopened = store.update_task("marketing-lead", tid, status="queued")
    check_task(reopened, status="queued", started=None, completed=None, result=None)
    assert store.get_task("marketing-lead", tid) == reopened


def test_delete_task(store: agent_backlog.Store) -> None:
    first = store.create_task("design", "Logo")
    deleted = store.delete_task("design", first["id"])
    assert deleted == {"deleted": "DSN-001"}
    assert list(deleted) == ["deleted"]
    with pytest.raises(agent_backlog.NotFoundError):
        store.get_task("design", "DSN-001")
    # The number is never given again.
    assert store.create_task("design", "Palette")["id"] == "DSN-002"


def test_query_tasks(store: agent_backlog.Store) -> None:
    store.create_task("marketing-lead", "Write LinkedIn posts", priority=3)
    store.create_task("support-bot", "Draft FAQ responses", priority=2)
    store.create_task("support-bot", "Triage tickets", priority=3)

    everything = store.query_tasks()
    assert list(everything) == ["tasks", "total"]
    assert everything["total"] == 3
    for t in everything["tasks"]:
        assert list(t) == AGENT_TASK_KEYS
    assert [(t["agent_id"], t["id"]) for t in everything["tasks"]] == [
        ("support-bot", "SUP-001"),
        ("marketing-lead", "MKT-001"),
        ("support-bot", "SUP-002"),
    ]

    by_priority = store.query_tasks(priority=3)
    assert [t["id"] for t in by_priority["tasks"]] == ["MKT-001", "SUP-002"]
    by_agent = store.query_tasks(agent_id="support-bot", limit=1)
    assert by_agent["total"] == 2
    assert [t["id"] for t in by_agent["tasks"]] == ["SUP-001"]
    assert store.query_tasks(None, None, None, None, 2)["tasks"][0]["id"] == "SUP-002"
    store.claim_next("marketing-lead")
    assert [t["id"] for t in store.query_tasks(status="in_progress")["tasks"]] == ["MKT-001"]
    assert store.query_tasks(status="blocked") == {"tasks": [], "total": 0}


def test_summary(store: agent_backlog.Store) -> None:
    zero = store.summary("nobody")
    assert zero == dict.fromkeys(SUMMARY_KEYS, 0)
    assert list(zero) == SUMMARY_KEYS

    for n in range(4):
        store.create_task("qa-bot", f"task {n}")
    store.claim_next("qa-bot")
    second = store.claim_next("qa-bot")
    assert second is not None
    store.update_task("qa-bot", second["id"], status="complete")
    third = store.claim_next("qa-bot")
    assert third is not None
    store.update_task("qa-bot", third["id"], status="blocked", blocker="needs input")
    summary = store.summary("qa-bot")
    assert list(summary) == SUMMARY_KEYS
    assert summary == {"queued": 1, "in_progress": 1, "complete": 1, "blocked": 1, "total": 4}
    assert all(type(v) is int for v in summary.values())


def test_claim_next(store: agent_backlog.Store) -> None:
    assert store.claim_next("marketing-lead") is None
    store.create_task("marketing-lead", "later", priority=5)
    store.create_task("marketing-lead", "urgent", priority=1)
    first = store.claim_next("marketing-lead")
    assert first is not None
    check_task(first, title="urgent", status="in_progress")
    assert re.match(TIMESTAMP, first["started"] or "")
    second = store.claim_next("marketing-lead")
    assert second is not None and second["title"] == "later"
    assert store.claim_next("marketing-lead") is None


def test_set_prefix(store: agent_backlog.Store) -> None:
    result = store.set_prefix("growth-bot", "GRW")
    assert result == {"agent_id": "growth-bot", "prefix": "GRW"}
    assert list(result) == ["agent_id", "prefix"]
    assert store.create_task("growth-bot", "Plan")["id"] == "GRW-001"
    # The same prefix again is fine; another one after the first task is not.
    assert store.set_prefix("growth-bot", "GRW")["prefix"] == "GRW"
    with pytest.raises(agent_backlog.ConflictError):
        store.set_prefix("growth-bot", "GROW")


def test_derived_prefixes_are_unique(store: agent_backlog.Store) -> None:
    assert store.create_task("support-bot", "a")["id"] == "SUP-001"
    assert store.create_task("supply-chain", "b")["id"] == "SUP2-001"


def test_results_are_independent_plain_objects(store: agent_backlog.Store) -> None:
    task = store.create_task("ops", "x")
    task["title"] = "changed locally"
    assert store.get_task("ops", task["id"])["title"] == "x"
    listing = store.list_tasks("ops")
    assert type(listing) is dict and type(listing["tasks"]) is list


def test_unicode_round_trips(store: agent_backlog.Store) -> None:
    title = "Écrire 3 posts — 日本語 🚀"
    task = store.create_task("ops", title, description="naïve\nmulti-line")
    assert store.get_task("ops", task["id"])["title"] == title
    assert store.get_task("ops", task["id"])["description"] == "naïve\nmulti-line"


def test_module_surface() -> None:
    assert isinstance(agent_backlog.__version__, str) and agent_backlog.__version__
    for name in agent_backlog.__all__:
        assert hasattr(agent_backlog, name), name
    assert agent_backlog.Store.__module__ == "agent_backlog"
    assert agent_backlog.Store.__doc__ and "busy_timeout" in agent_backlog.Store.__doc__
    for method in ("list_tasks", "create_task", "create_tasks", "get_task", "update_task",
                   "delete_task", "query_tasks", "summary", "claim_next", "set_prefix", "close"):
        assert getattr(agent_backlog.Store, method).__doc__, method
