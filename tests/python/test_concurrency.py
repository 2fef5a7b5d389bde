"""Threads sharing a store, the GIL released while SQLite waits, several processes
claiming from one file, and fork().

Nothing here asserts on wall-clock time: waits are bounded by counts, with generous
timeouts only to turn a hang into a failure.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import agent_backlog
from conftest import run_example

TIMEOUT = 120.0  # seconds; only ever reached when something hangs


def claim_and_complete(store: agent_backlog.Store, agent_id: str, name: str) -> list[str]:
    """Claims until nothing is queued, completing each task; returns the IDs claimed."""
    claimed: list[str] = []
    while (task := store.claim_next(agent_id)) is not None:
        claimed.append(task["id"])
        store.update_task(agent_id, task["id"], status="complete", result=name)
    return claimed


def run_threads(targets: list[Any]) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive()


def test_threads_sharing_one_store_never_claim_a_task_twice(store: agent_backlog.Store) -> None:
    created = store.create_tasks("ops", [{"title": f"t{n}", "priority": n % 10 + 1} for n in range(300)])
    ids = {t["id"] for t in created["tasks"]}
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            results[name] = claim_and_complete(store, "ops", name)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    run_threads([lambda n=f"w{i}": worker(n) for i in range(6)])
    assert errors == []
    claimed = [tid for ids_ in results.values() for tid in ids_]
    assert len(claimed) == len(set(claimed)) == 300
    assert set(claimed) == ids
    assert store.summary("ops")["complete"] == 300
    # Each task carries the name of the one worker that claimed it.
    by_id = {t["id"]: t["result"] for t in store.list_tasks("ops")["tasks"]}
    for name, ids_ in results.items():
        assert all(by_id[tid] == name for tid in ids_)


def test_threads_with_their_own_stores_on_one_file(db_path: Path) -> None:
    with agent_backlog.Store(db_path) as setup:
        setup.create_tasks("ops", [{"title": f"t{n}"} for n in range(200)])
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with agent_backlog.Store(db_path, busy_timeout=60) as own:
                results.append(claim_and_complete(own, "ops", name))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    run_threads([lambda n=f"w{i}": worker(n) for i in range(4)])
    assert errors == []
    claimed = [tid for r in results for tid in r]
    assert len(claimed) == len(set(claimed)) == 200


def test_threads_creating_concurrently_get_distinct_ids(store: agent_backlog.Store) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def creator() -> None:
        for n in range(50):
            task = store.create_task("marketing-lead", f"task {n}")
            with lock:
                ids.append(task["id"])

    run_threads([creator for _ in range(4)])
    assert len(ids) == len(set(ids)) == 200
    assert sorted(ids) == [f"MKT-{n:03d}" for n in range(1, 201)]


class Ticker:
    """A thread that counts while it is allowed to run."""

    def __init__(self) -> None:
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.count += 1
            time.sleep(0.001)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)


LOCKER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
con.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
con.execute("ROLLBACK")
"""


class WriteLock:
    """The database's write lock, held by a Python sqlite3 connection in another
    process. (Not in this process: two copies of SQLite in one process -- the stdlib's
    and the module's bundled one -- do not see each other's POSIX locks.)"""

    def __init__(self, db_path: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(db_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            assert self._proc.wait(TIMEOUT) == 0
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> WriteLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_other_threads_run_while_a_call_waits_for_the_lock(db_path: Path) -> None:
    with agent_backlog.Store(db_path, busy_timeout=30) as store, WriteLock(db_path) as lock:
        outcome: dict[str, Any] = {}
        entering = threading.Event()

        def writer() -> None:
            entering.set()
            try:
                outcome["task"] = store.create_task("ops", "waits for the lock")
            except BaseException as err:
                outcome["error"] = err

        thread = threading.Thread(target=writer)
        with Ticker() as ticker:
            thread.start()
            assert entering.wait(TIMEOUT)
            start = ticker.count
            deadline = time.monotonic() + TIMEOUT
            while ticker.count < start + 100 and time.monotonic() < deadline:
                time.sleep(0.005)
            # The ticker and this thread ran 100 steps while the writer waited: had the
            # writer held the GIL during its wait, it would have finished (with a busy
            # error after 30 s) before either of them could run again.
            assert ticker.count >= start + 100
            assert thread.is_alive() and outcome == {}
            lock.release()
            thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert "error" not in outcome, outcome.get("error")
        assert outcome["task"]["id"] == "OPS-001"


def test_busy_timeout_gives_a_storage_error_and_releases_the_gil(db_path: Path) -> None:
    with agent_backlog.Store(db_path, busy_timeout=1.0) as store:
        outcome: dict[str, Any] = {}
        with WriteLock(db_path), Ticker() as ticker:

            def writer() -> None:
                before = ticker.count
                try:
                    store.create_task("ops", "never written")
                except BaseException as err:
                    outcome["error"] = err
                outcome["ticks"] = ticker.count - before

            run_threads([writer])
        err = outcome["error"]
        assert isinstance(err, agent_backlog.StorageError), err
        assert err.code == "storage"
        assert "busy" in str(err)
        # The ticker kept running during the one-second wait (it sleeps 1 ms a step).
        assert outcome["ticks"] >= 10
        # Nothing was written; the store works once the lock is free.
        assert store.summary("ops")["total"] == 0
        assert store.create_task("ops", "second")["id"] == "OPS-001"


CLAIMED = re.compile(r"^(\S+) claimed (\S+) ")


def test_worker_processes_never_do_a_task_twice(db_path: Path) -> None:
    fill = subprocess.run(
        run_example("fill.py", str(db_path), "marketing-lead", "90", "--needs-input", "9"),
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert fill.returncode == 0, fill.stderr
    created = fill.stdout.split("\n")[0].split()
    assert len(created) == 90 and created[0] == "MKT-001"

    workers = [
        subprocess.Popen(
            run_example("worker.py", str(db_path), "marketing-lead", f"worker-{n}", "--work", "0.01"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in range(3)
    ]
    claims: list[tuple[str, str]] = []
    for proc in workers:
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
        claims += [m.groups() for m in map(CLAIMED.match, out.splitlines()) if m]  # type: ignore[misc]
        assert out.rstrip().splitlines()[-1].startswith("worker-")

    ids = [task_id for _, task_id in claims]
    duplicates = [tid for tid, n in Counter(ids).items() if n > 1]
    assert duplicates == []
    assert sorted(ids) == sorted(created)

    with agent_backlog.Store(db_path) as store:
        summary = store.summary("marketing-lead")
        assert summary == {"queued": 0, "in_progress": 0, "complete": 80, "blocked": 10, "total": 90}
        who = dict((tid, name) for name, tid in claims)
        for task in store.list_tasks("marketing-lead")["tasks"]:
            if task["status"] == "complete":
                assert task["result"] == f"done: {task['title']}"
            else:
                assert "[needs-input]" in task["title"]
                assert task["blocker"] and "needs human input" in task["blocker"]
            assert task["id"] in who


def _claim_all_in_child(db: str) -> list[str]:
    with agent_backlog.Store(db, busy_timeout=60) as store:
        return claim_and_complete(store, "support-bot", f"pid {os.getpid()}")


def test_multiprocessing_pool_claims_each_task_once(db_path: Path) -> None:
    with agent_backlog.Store(db_path) as store:
        store.create_tasks("support-bot", [{"title": f"ticket {n}"} for n in range(150)])
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_claim_all_in_child, [str(db_path)] * 3)
    claimed = [tid for r in results for tid in r]
    assert len(claimed) == len(set(claimed)) == 150
    with agent_backlog.Store(db_path) as store:
        assert store.summary("support-bot")["complete"] == 150


def _raise_not_found(db: str) -> None:
    with agent_backlog.Store(db) as store:
        store.get_task("ops", "OPS-404")


def test_errors_cross_process_boundaries(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        with pytest.raises(agent_backlog.NotFoundError) as info:
            pool.apply(_raise_not_found, (str(db_path),))
    assert info.value.code == "not_found"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_store_inherited_across_fork_refuses_and_a_new_one_works(db_path: Path) -> None:
    with agent_backlog.Store(db_path) as store:
        store.create_task("ops", "made by the parent")
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork() in a process that has threads.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            report: dict[str, Any] = {}
            try:
                try:
                    store.summary("ops")
                    report["inherited"] = "no error"
                except agent_backlog.BacklogError as err:
                    report["inherited"] = [type(err).__name__, err.code, str(err)]
                with agent_backlog.Store(db_path) as own:
                    report["created"] = own.create_task("ops", "made by the child")["id"]
            except BaseException as err:
                report["unexpected"] = repr(err)
            os.write(write_end, json.dumps(report).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            report = json.loads(pipe.read())
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert "unexpected" not in report, report
        name, code, message = report["inherited"]
        assert (name, code) == ("StorageError", "storage")
        assert "fork" in message
        assert report["created"] == "OPS-002"
        # The parent's store is unaffected and sees the child's write.
        assert store.get_task("ops", "OPS-002")["title"] == "made by the child"


def test_the_readme_workers_with_their_defaults_share_the_backlog(db_path: Path) -> None:
    """The README's two workers, started together with the default simulated work,
    each do part of the backlog (with no work at all, the first would take it all)."""
    fill = subprocess.run(
        run_example("fill.py", str(db_path), "marketing-lead", "20"),
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert fill.returncode == 0, fill.stderr
    workers = [
        subprocess.Popen(
            run_example("worker.py", str(db_path), "marketing-lead", f"worker-{n}"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in (1, 2)
    ]
    counts = []
    for proc in workers:
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
        counts.append(sum(1 for line in out.splitlines() if CLAIMED.match(line)))
    assert sum(counts) == 20
    assert all(n > 0 for n in counts), counts
