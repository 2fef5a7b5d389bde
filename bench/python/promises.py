"""The six figures of SPEC section 8 under threads, forks and fleets, measured through
the Python module (docs/RELIABILITY.md, "Threads, forks and fleets").

    .venv/bin/python bench/python/promises.py [--agents N]

1. How long summary() and list_tasks() take while a write of the same Store waits
   for another process's lock (busy_timeout=3).
2. When each of four writers queued on one Store gives up (busy_timeout=1).
3. How many of 20 children, forked while a parent thread is inside calls, hang in
   close() (a child that has not exited after 5 s counts as hung).
4. How many of 30 stores opened by a relative path create a second file after chdir.
5. The first task of the 2nd, 10,000th and N-th agent sharing a derived base.
6. What create_tasks(agent, []) does on a closed store.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import agent_backlog

LOCKER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
con.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
con.execute("ROLLBACK")
"""


def hold_lock(db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(30)


def reads_behind_a_waiting_write(tmp: Path) -> str:
    db = tmp / "reads.db"
    with agent_backlog.Store(db) as s:
        s.create_task("ops", "one")
    with agent_backlog.Store(db, busy_timeout=3.0) as store:
        lock = hold_lock(db)
        writer = threading.Thread(target=lambda: _swallow(lambda: store.create_task("ops", "w")))
        writer.start()
        time.sleep(0.2)
        start = time.monotonic()
        store.summary("ops")
        store.list_tasks("ops")
        took = time.monotonic() - start
        writer.join()
        release(lock)
    return f"summary + list_tasks while a write of the same store waits: {took * 1000:.1f} ms"


def _swallow(call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except agent_backlog.BacklogError:
        pass


def queued_writers(tmp: Path) -> str:
    db = tmp / "queued.db"
    agent_backlog.Store(db).close()
    with agent_backlog.Store(db, busy_timeout=1.0) as store:
        lock = hold_lock(db)
        barrier = threading.Barrier(4)
        took: list[float] = []

        def writer() -> None:
            barrier.wait()
            start = time.monotonic()
            _swallow(lambda: store.create_task("ops", "w"))
            took.append(time.monotonic() - start)

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        release(lock)
    return "four queued writers, busy_timeout=1: gave up after " + ", ".join(
        f"{t:.2f}" for t in sorted(took)) + " s"


def forks(tmp: Path) -> str:
    db = tmp / "fork.db"
    hung = 0
    with agent_backlog.Store(db) as store:
        stop = threading.Event()

        def busy() -> None:
            while not stop.is_set():
                store.create_task("forker", "t")
                store.list_tasks("forker", limit=5)

        thread = threading.Thread(target=busy)
        thread.start()
        for _ in range(20):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                store.close()
                os._exit(0)
            deadline = time.monotonic() + 5
            while os.waitpid(pid, os.WNOHANG)[0] != pid:
                if time.monotonic() > deadline:
                    hung += 1
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.001)
        stop.set()
        thread.join()
    return f"close() in a child forked mid-call: {hung} of 20 hung"


def relative_paths(tmp: Path) -> str:
    second = 0
    here = os.getcwd()
    for i in range(30):
        a, b = tmp / f"a{i}", tmp / f"b{i}"
        a.mkdir()
        b.mkdir()
        os.chdir(a)
        with agent_backlog.Store("x.db") as store:
            os.chdir(b)
            for j in range(300):
                store.create_task("mover", f"t{j}")
            store.summary("mover")
        os.chdir(here)
        second += (b / "x.db").exists()
    return f"relative path, then chdir: a second x.db in {second} of 30"


def fleet(tmp: Path, agents: int) -> str:
    with agent_backlog.Store(tmp / "fleet.db") as store:
        costs = []
        for i in range(1, agents + 1):
            start = time.perf_counter()
            store.create_task(f"worker-{i}", "first")
            costs.append(time.perf_counter() - start)
        last = store.list_tasks(f"worker-{agents}")["tasks"][0]["id"]
        fetched = store.get_task(f"worker-{agents}", last)["id"] == last

    def median(at: int) -> float:
        window = sorted(costs[at - 1:at + 9])
        return window[len(window) // 2] * 1e6

    points = [2, min(10_000, agents - 9), agents - 9]
    return ("first task of an agent sharing a base (median of 10): " + ", ".join(
        f"agent {p}: {median(p):.0f} µs" for p in points)
        + f"; the last one's ID {last} fetchable: {fetched}")


def closed_batch(tmp: Path) -> str:
    store = agent_backlog.Store(tmp / "closed.db")
    store.close()
    try:
        result = store.create_tasks("ops", [])
        return f"create_tasks(agent, []) on a closed store: returned {result!r}"
    except agent_backlog.BacklogError as err:
        return f"create_tasks(agent, []) on a closed store: {type(err).__name__} ({err})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for line in (
            reads_behind_a_waiting_write(t),
            queued_writers(t),
            forks(t),
            relative_paths(t),
            fleet(t, args.agents),
            closed_batch(t),
        ):
            print(line, flush=True)


if __name__ == "__main__":
    main()
