"""Opening, options, persistence across reopen, close and the context manager."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest

import agent_backlog


def test_persistence_across_reopen(db_path: Path) -> None:
    with agent_backlog.Store(db_path) as store:
        store.set_prefix("growth-bot", "GRW")
        created = store.create_task("growth-bot", "Plan the launch", "details", 2)
        store.claim_next("growth-bot")
        store.create_task("growth-bot", "Second")
    with agent_backlog.Store(str(db_path)) as store:
        got = store.get_task("growth-bot", created["id"])
        assert got["title"] == "Plan the launch"
        assert got["status"] == "in_progress"
        assert store.summary("growth-bot") == {
            "queued": 1, "in_progress": 1, "complete": 0, "blocked": 0, "total": 2,
        }
        # The counter and the prefix survive too.
        assert store.create_task("growth-bot", "Third")["id"] == "GRW-003"


def test_path_types(tmp_path: Path) -> None:
    for path in (tmp_path / "a.db", str(tmp_path / "b.db")):
        with agent_backlog.Store(path) as store:
            store.create_task("ops", "x")
    assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()
    with pytest.raises(agent_backlog.ValidationError, match=r"^path_or_url must be a str or an os\.PathLike \(.*\), got bytes$"):
        agent_backlog.Store(os.fsencode(tmp_path / "c.db"))  # type: ignore[arg-type]
    assert not (tmp_path / "c.db").exists()


def test_memory_stores_are_private() -> None:
    with agent_backlog.Store(":memory:") as one, agent_backlog.Store(":memory:") as two:
        one.create_task("ops", "x")
        assert one.summary("ops")["total"] == 1
        assert two.summary("ops")["total"] == 0


def test_options(tmp_path: Path) -> None:
    options: list[dict[str, Any]] = [
        {"busy_timeout": 0},
        {"busy_timeout": 0.25},
        {"busy_timeout": 30, "durability": "full"},
        {"durability": "normal"},
        {"busy_timeout": None, "durability": None},
    ]
    for kwargs in options:
        with agent_backlog.Store(tmp_path / "o.db", **kwargs) as store:
            store.create_task("ops", "x")
    with pytest.raises(TypeError):
        agent_backlog.Store(tmp_path / "o.db", 5.0)  # type: ignore[call-arg]


def test_the_file_is_a_wal_sqlite_database(db_path: Path) -> None:
    with agent_backlog.Store(db_path) as store:
        store.create_task("ops", "visible to sqlite3")
    # Only once the store is closed: two copies of SQLite in one process (the stdlib's
    # and the module's) must not have the same file open at once.
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT count(*) FROM tasks").fetchone()[0] == 1
    finally:
        con.close()


def test_context_manager_closes(db_path: Path) -> None:
    with agent_backlog.Store(db_path) as store:
        assert isinstance(store, agent_backlog.Store)
        store.create_task("ops", "x")
    with pytest.raises(agent_backlog.StorageError) as info:
        store.summary("ops")
    assert info.value.code == "storage"
    assert "closed" in str(info.value)


def test_context_manager_does_not_swallow_exceptions(db_path: Path) -> None:
    with pytest.raises(KeyError):
        with agent_backlog.Store(db_path) as store:
            store.create_task("ops", "x")
            raise KeyError("boom")
    with pytest.raises(agent_backlog.StorageError):
        store.claim_next("ops")
    with agent_backlog.Store(db_path) as again:
        assert again.summary("ops")["total"] == 1


def test_close_is_idempotent_and_every_method_refuses_afterwards(db_path: Path) -> None:
    store = agent_backlog.Store(db_path)
    store.create_task("ops", "x")
    store.close()
    store.close()
    calls: list[Callable[[], object]] = [
        lambda: store.list_tasks("ops"),
        lambda: store.create_task("ops", "y"),
        lambda: store.create_tasks("ops", [{"title": "y"}]),
        lambda: store.get_task("ops", "OPS-001"),
        lambda: store.update_task("ops", "OPS-001", priority=1),
        lambda: store.delete_task("ops", "OPS-001"),
        lambda: store.query_tasks(),
        lambda: store.summary("ops"),
        lambda: store.claim_next("ops"),
        lambda: store.set_prefix("other", "OTH"),
    ]
    for call in calls:
        with pytest.raises(agent_backlog.StorageError, match="closed"):
            call()
    with agent_backlog.Store(db_path) as again:
        assert again.get_task("ops", "OPS-001")["title"] == "x"
        assert again.summary("other")["total"] == 0


def test_repr(db_path: Path) -> None:
    with agent_backlog.Store(db_path) as store:
        assert repr(store) == f'<agent_backlog.Store path="{db_path}">'


def test_store_cannot_be_subclassed() -> None:
    with pytest.raises(TypeError):
        type("Sub", (agent_backlog.Store,), {})


def test_a_store_is_not_picklable(db_path: Path) -> None:
    # A handle cannot travel to another process: open a Store there instead.
    import pickle

    with agent_backlog.Store(db_path) as store:
        with pytest.raises(TypeError, match="cannot pickle"):
            pickle.dumps(store)
