"""Issue 5, promise 1 through Python: no task is ever claimed twice.

One backlog of tasks at mixed priorities; several processes (this file run as a
script), each with several threads sharing one ``Store`` opened with the default
options, claim and complete until nothing is queued, each worker logging what it got
to its own file. Then: the union of the logs is every task exactly once, every task is
complete with the result of the worker that logged it, no call raised (so no busy
error reached a caller with the default 5 s timeout), and each worker's claims came in
priority, then creation order.

``make test``: 500 tasks, 4 processes x 2 threads. ``make stress``
(``AGENT_BACKLOG_STRESS=1``): 5,000 tasks, 8 processes x 2 threads. The Rust and C
variants are ``tests/reliability_claims.rs`` and ``tests/c/race.c``.

Nothing here depends on time: the children are bounded by a generous timeout only to
turn a hang into a failure.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import agent_backlog

AGENT = "race-py"
TIMEOUT = 600.0  # seconds; only ever reached when something hangs


def stress() -> bool:
    return os.environ.get("AGENT_BACKLOG_STRESS", "") not in ("", "0")


def number(task_id: str) -> int:
    """The creation order of a task: the number of its ID."""
    return int(task_id.rsplit("-", 1)[1])


def worker(store: agent_backlog.Store, name: str, log: Path, errors: list[str]) -> None:
    """Claims and completes until nothing is queued, logging each claim."""
    try:
        with log.open("w") as out:
            while (task := store.claim_next(AGENT)) is not None:
                assert task["status"] == "in_progress" and task["started"] is not None
                out.write(f"{task['priority']} {number(task['id'])} {task['id']}\n")
                store.update_task(AGENT, task["id"], status="complete", result=name)
            out.flush()
            os.fsync(out.fileno())
    except BaseException as err:  # reported by the child's exit status
        errors.append(f"{name}: {type(err).__name__}: {err}")


def child(db: str, logs: str, index: int, threads: int) -> int:
    """A race child: opens the store, says it is ready, waits for the start (its stdin
    closing), then runs its threads. Exits non-zero if any call raised."""
    with agent_backlog.Store(db) as store:
        print("ready", flush=True)
        sys.stdin.read()
        errors: list[str] = []
        workers = [
            threading.Thread(
                target=worker,
                args=(store, f"p{index}t{t}", Path(logs) / f"p{index}t{t}.log", errors),
            )
            for t in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


def test_race_python_processes_and_threads(tmp_path: Path) -> None:
    tasks, processes, threads = (5000, 8, 2) if stress() else (500, 4, 2)
    db = tmp_path / "race.db"
    logs = tmp_path / "logs"
    logs.mkdir()
    seed = int(os.environ.get("AGENT_BACKLOG_SEED", time.time_ns()))
    print(f"race (Python): AGENT_BACKLOG_SEED={seed}")
    rng = random.Random(seed)
    with agent_backlog.Store(db) as store:
        for start in range(0, tasks, 1000):
            store.create_tasks(
                AGENT,
                [
                    {"title": f"race task {i}", "priority": rng.randint(1, 10)}
                    for i in range(start, min(tasks, start + 1000))
                ],
            )

    children = [
        subprocess.Popen(
            [sys.executable, __file__, str(db), str(logs), str(i), str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for i in range(processes)
    ]
    try:
        for proc in children:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        started = time.monotonic()
        for proc in children:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in children:
            proc.wait(TIMEOUT)
            assert proc.returncode == 0, "a race child failed: a call raised"
        elapsed = time.monotonic() - started
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    owner: dict[str, str] = {}
    priority_of: dict[str, int] = {}
    per_worker: list[int] = []
    for log in sorted(logs.iterdir()):
        name = log.stem
        got = [line.split() for line in log.read_text().splitlines()]
        per_worker.append(len(got))
        keys = [(int(p), int(n)) for p, n, _ in got]
        # Every claim takes the global minimum of what is queued, and nothing is added
        # during the race, so each worker's sequence only goes up.
        assert keys == sorted(keys), f"{name} claimed out of priority order"
        for p, n, task_id in got:
            assert number(task_id) == int(n) and 1 <= int(p) <= 10
            assert task_id not in owner, f"{task_id} claimed by {owner[task_id]} and by {name}"
            owner[task_id] = name
            priority_of[task_id] = int(p)
    assert len(per_worker) == processes * threads
    assert len(owner) == tasks, "the union of the claims is not every task"

    with agent_backlog.Store(db) as store:
        assert store.summary(AGENT) == {
            "queued": 0, "in_progress": 0, "complete": tasks, "blocked": 0, "total": tasks,
        }
        listed = store.list_tasks(AGENT)["tasks"]
        assert len(listed) == tasks
        for task in listed:
            assert task["status"] == "complete"
            assert task["result"] == owner[task["id"]], f"{task['id']} completed by another worker"
            assert task["priority"] == priority_of[task["id"]]
    print(
        f"race (Python): {tasks} tasks, {processes} processes x {threads} threads: "
        f"{len(owner)} claims, 0 duplicates, 0 errors, per worker "
        f"{min(per_worker)}..{max(per_worker)}, {elapsed:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
