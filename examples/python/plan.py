#!/usr/bin/env python3
"""A plan of dependent tasks, created in one safe-to-retry call and run by two workers.

Creates five tasks for the agent "launch" in ONE create_tasks call, with an
idempotency key; in an item's "depends_on" an int names an earlier item of the batch:

    LAU-001 Get the launch date
    LAU-002 Write the launch post        after LAU-001
    LAU-003 Design the banner            after LAU-001
    LAU-004 Review the post and banner   after LAU-002, LAU-003
    LAU-005 Publish                      after LAU-004

Sending the same call again (as a client does when it never saw the answer) creates
nothing and returns the same tasks. Then two worker threads, each with its own Store
on the file, loop wait_for_task + hold_lease. A claim takes only a ready task (queued,
every dependency complete), and a worker waiting for one wakes as soon as a completion
makes one ready. One line per event:

    w1 took LAU-001 Get the launch date
    w1 completed LAU-001
    w2 took LAU-002 Write the launch post

At the end it checks that every task is complete and that each one was taken only
after all the tasks it depends on were complete; it exits 1 otherwise.

    python examples/python/plan.py [--db backlogs.db] [--work 0.1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import agent_backlog

AGENT = "launch"
KEY = "launch-plan-v1"
WORKERS = ("w1", "w2")

PLAN: List[agent_backlog.NewTask] = [
    {"title": "Get the launch date", "priority": 1},                         # 0
    {"title": "Write the launch post", "priority": 2, "depends_on": [0]},    # 1
    {"title": "Design the banner", "priority": 3, "depends_on": [0]},        # 2
    {"title": "Review the post and banner", "depends_on": [1, 2]},           # 3
    {"title": "Publish", "depends_on": [3]},                                 # 4
]


class Log:
    """What the workers did, in order: ("took" | "completed", task_id).

    A completion is written to the store and logged under one lock, and a claim is
    logged under that lock too, so a claim that a completion made possible is always
    logged after that completion."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: List[Tuple[str, str]] = []
        self.errors: List[str] = []


def worker(db: str, name: str, log: Log, work_seconds: float, deadline: float) -> None:
    """Takes ready tasks until the plan is done (nothing queued or in progress), or
    until the deadline passes."""
    try:
        with agent_backlog.Store(db, busy_timeout=30.0) as store:
            while time.monotonic() < deadline:
                wait = min(0.5, max(deadline - time.monotonic(), 0.0))
                claim = store.wait_for_task(AGENT, name, wait, lease_seconds=30)
                if claim is None:
                    # Nothing ready: done, or another worker holds what the rest waits for.
                    summary = store.summary(AGENT)
                    if summary["queued"] == 0 and summary["in_progress"] == 0:
                        return
                    continue
                task = claim["task"]
                with log.lock:
                    print(f"{name} took {task['id']} {task['title']}", flush=True)
                    log.events.append(("took", task["id"]))
                with agent_backlog.hold_lease(store, claim) as held:
                    time.sleep(work_seconds)  # the work
                    with log.lock:
                        held.complete(f"done by {name}")
                        print(f"{name} completed {task['id']}", flush=True)
                        log.events.append(("completed", task["id"]))
            log.errors.append(f"{name}: the plan was not done before the deadline")
    except agent_backlog.BacklogError as err:
        log.errors.append(f"{name}: {err.code}: {err}")


def check(store: agent_backlog.Store, ids: List[str], log: Log) -> List[str]:
    """What went wrong: tasks not complete, taken twice, or taken before one of their
    dependencies was complete. Empty when all is well."""
    problems = list(log.errors)
    for task in store.list_tasks(AGENT)["tasks"]:
        if task["status"] != "complete":
            problems.append(f"{task['id']} is {task['status']}, not complete")
    position: Dict[Tuple[str, str], int] = {}
    for n, event in enumerate(log.events):
        if event in position:
            problems.append(f"{event[1]} was {event[0]} twice")
        position[event] = n
    for task_id in ids:
        took = position.get(("took", task_id))
        if took is None:
            problems.append(f"{task_id} was never taken")
            continue
        for dep in store.get_dependencies(AGENT, task_id)["depends_on"]:
            done = position.get(("completed", dep["id"]))
            if done is None or done > took:
                problems.append(f"{task_id} was taken before {dep['id']} was complete")
    return problems


def run(db: str, work_seconds: float, timeout: float) -> int:
    with agent_backlog.Store(db, busy_timeout=30.0) as store:
        if store.summary(AGENT)["total"] != 0:
            print(f"plan: {db} already has tasks for {AGENT}; use a new --db", file=sys.stderr)
            return 2
        # The whole plan lands in one transaction, edges included.
        created = store.create_tasks(AGENT, PLAN, idempotency_key=KEY)
        ids = [task["id"] for task in created["tasks"]]
        print(f"created {len(ids)} tasks in one call with idempotency key {KEY!r}:")
        for task_id, task in zip(ids, created["tasks"]):
            deps = store.get_dependencies(AGENT, task_id)["depends_on"]
            after = f"  (after {', '.join(d['id'] for d in deps)})" if deps else ""
            print(f"  {task_id} {task['title']}{after}")

        # A retry with the same key and body is a replay: the same tasks, nothing new.
        retry = store.create_tasks(AGENT, PLAN, idempotency_key=KEY)
        retry_ids = [task["id"] for task in retry["tasks"]]
        total = store.summary(AGENT)["total"]
        print(f"retry with the same key: replayed {' '.join(retry_ids)}; total still {total}")
        if retry_ids != ids or total != len(PLAN):
            print("plan: FAILED: the retry created tasks", file=sys.stderr)
            return 1

        ready = [task["id"] for task in store.ready_tasks(AGENT)["tasks"]]
        print(f"ready: {' '.join(ready)}")

        log = Log()
        deadline = time.monotonic() + timeout
        threads = [
            threading.Thread(target=worker, args=(db, name, log, work_seconds, deadline), name=name)
            for name in WORKERS
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        problems = check(store, ids, log)
        order = " ".join(task_id for event, task_id in log.events if event == "took")
        print(f"taken in this order: {order}")
        print(f"summary: {store.summary(AGENT)}")
    if problems:
        for problem in problems:
            print(f"plan: FAILED: {problem}", file=sys.stderr)
        return 1
    print("ok: every task complete, each taken only after its dependencies were complete")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", metavar="PATH",
                        help="the database file, which must not hold tasks of the agent "
                             "'launch' yet (default: a new file in a temporary directory)")
    parser.add_argument("--work", type=float, default=0.1, metavar="SECONDS",
                        help="how long each task's simulated work takes (default 0.1)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="give up (and fail) when the plan is not done by then (default 30)")
    args = parser.parse_args(argv)
    try:
        if args.db is not None:
            return run(args.db, args.work, args.timeout)
        with tempfile.TemporaryDirectory() as tmp:
            return run(os.path.join(tmp, "backlogs.db"), args.work, args.timeout)
    except agent_backlog.BacklogError as err:
        print(f"plan: {err.code}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
