"""SPEC section 8 through the Python module: reads never wait for a write, queued
writes wait at most their timeout from the call, close() in a forked child never
hangs, close() is idempotent and final, and a relative path survives a chdir.

Times are bounded only generously from above (seconds), never as benchmarks.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import agent_backlog
from test_concurrency import WriteLock

TIMEOUT = 30.0


def prepared(db_path: Path) -> None:
    with agent_backlog.Store(db_path) as store:
        store.create_tasks("reader", [{"title": "one"}, {"title": "two", "priority": 1}])


def test_reads_return_while_a_write_of_the_same_store_waits(db_path: Path) -> None:
    prepared(db_path)
    with agent_backlog.Store(db_path, busy_timeout=TIMEOUT) as store, WriteLock(db_path) as lock:
        outcome: dict[str, Any] = {}
        entering = threading.Event()

        def writer() -> None:
            entering.set()
            try:
                outcome["task"] = store.create_task("reader", "three")
            except BaseException as err:
                outcome["error"] = err

        thread = threading.Thread(target=writer)
        thread.start()
        assert entering.wait(TIMEOUT)
        time.sleep(0.2)  # let the writer reach its wait; the checks hold either way
        for _ in range(20):
            assert store.summary("reader")["total"] == 2
            assert store.list_tasks("reader")["tasks"][0]["title"] == "two"
            assert store.get_task("reader", "REA-001")["title"] == "one"
            assert store.query_tasks()["total"] == 2
        # The reads above returned while the writer was still waiting for the lock.
        assert thread.is_alive() and outcome == {}
        lock.release()
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert outcome["task"]["id"] == "REA-003"


def test_queued_writes_each_wait_at_most_their_timeout(db_path: Path) -> None:
    prepared(db_path)
    timeout = 1.0
    with agent_backlog.Store(db_path, busy_timeout=timeout) as store, WriteLock(db_path):
        barrier = threading.Barrier(4)
        took: list[float] = []
        errors: list[BaseException] = []

        def writer(i: int) -> None:
            barrier.wait()
            start = time.monotonic()
            try:
                store.create_task("reader", f"w{i}")
            except BaseException as err:
                errors.append(err)
            took.append(time.monotonic() - start)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        assert len(errors) == 4
        assert all(isinstance(e, agent_backlog.StorageError) for e in errors), errors
        assert all(timeout <= t < 2 * timeout for t in took), took


def test_close_is_idempotent_concurrent_and_final(db_path: Path) -> None:
    prepared(db_path)
    store = agent_backlog.Store(db_path)
    store.summary("reader")
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def closer() -> None:
        barrier.wait()
        try:
            store.close()
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=closer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert failures == []
    store.close()
    with pytest.raises(agent_backlog.StorageError, match="closed"):
        store.create_tasks("reader", [])
    with pytest.raises(agent_backlog.StorageError, match="closed"):
        store.summary("reader")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_close_in_a_child_forked_mid_call_never_hangs(db_path: Path) -> None:
    prepared(db_path)
    with agent_backlog.Store(db_path) as store:
        stop = threading.Event()
        calls = [0]

        def busy() -> None:
            while not stop.is_set():
                store.create_task("forker", "t")
                store.list_tasks("forker", limit=5)
                calls[0] += 1

        thread = threading.Thread(target=busy)
        thread.start()
        try:
            for round_ in range(50):
                with warnings.catch_warnings():
                    # Python 3.12+ warns about fork() in a process that has threads.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the child
                    code = 1
                    try:
                        store.close()
                        try:
                            store.summary("forker")
                        except agent_backlog.StorageError:
                            code = 0
                    finally:
                        os._exit(code)
                deadline = time.monotonic() + 20
                while True:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done == pid:
                        break
                    if time.monotonic() > deadline:
                        os.kill(pid, 9)
                        os.waitpid(pid, 0)
                        pytest.fail(f"round {round_}: close() in the forked child hung")
                    time.sleep(0.001)
                assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, round_
        finally:
            stop.set()
            thread.join(TIMEOUT)
        assert store.summary("forker")["total"] == calls[0]


def test_a_relative_path_survives_a_chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    monkeypatch.chdir(a)
    with agent_backlog.Store("x.db") as store:
        store.create_task("mover", "before")
        monkeypatch.chdir(b)
        for i in range(2000):
            store.create_task("mover", f"after {i}", description="x" * 400)
        assert store.summary("mover")["total"] == 2001
        assert store.get_task("mover", "MOV-001")["title"] == "before"
    assert not (b / "x.db").exists()
    with agent_backlog.Store(a / "x.db") as again:
        assert again.summary("mover")["total"] == 2001
