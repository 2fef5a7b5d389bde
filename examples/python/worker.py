#!/usr/bin/env python3
"""An agent's worker loop on an agent-backlog database.

Claims the agent's most urgent queued task with a lease, "works" on it while the
lease is renewed in the background, then completes it with a result -- or, when the
task needs a human (its title or description contains "[needs-input]"), blocks it
with the reason. Each step is printed as one line:

    worker-1 claimed MKT-001 (priority 3): Write 3 LinkedIn posts
    worker-1 completed MKT-001

Several workers, in several processes, can run on the same file at once: every task
is claimed by exactly one of them. Without --wait a worker stops when nothing is
ready; with --wait it sleeps until a task is created (or a lease expires) for up to
that many seconds (Ctrl-C to stop). If the work fails or is interrupted, the task is
released back to the queue; if the worker dies, its lease expires and another worker
takes the task.

    python examples/python/worker.py backlogs.db marketing-lead worker-1
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

import agent_backlog

NEEDS_INPUT = "[needs-input]"


class NeedsInput(Exception):
    """The task cannot be finished without outside help; the message is the reason."""


def work(task: agent_backlog.Task, seconds: float) -> str:
    """Does the task's work (here: waits `seconds`) and returns the result."""
    text = f"{task['title']} {task['description'] or ''}"
    if NEEDS_INPUT in text:
        raise NeedsInput(f"needs human input before it can go on: {task['title']}")
    time.sleep(seconds)
    return f"done: {task['title']}"


def run(
    store: agent_backlog.Store,
    agent_id: str,
    name: str,
    work_seconds: float = 0.0,
    wait: float = 0.0,
    lease_seconds: int = 60,
) -> int:
    """Works through the agent's backlog with leases; returns how many tasks this
    worker claimed. Stops when nothing became ready within `wait` seconds."""
    claimed = 0
    while True:
        claim = store.wait_for_task(agent_id, name, wait, lease_seconds=lease_seconds)
        if claim is None:
            return claimed
        claimed += 1
        task = claim["task"]
        print(f"{name} claimed {task['id']} (priority {task['priority']}): {task['title']}", flush=True)
        # The lease is renewed in the background while the work runs. Should this
        # process die or stall, the lease expires and another worker gets the task.
        with agent_backlog.hold_lease(store, claim) as held:
            try:
                held.result = work(task, work_seconds)
            except NeedsInput as blocked:
                held.block(str(blocked))
                print(f"{name} blocked {task['id']}: {blocked}", flush=True)
            except BaseException:
                # Failed or interrupted: leaving the block releases the task.
                print(f"{name} released {task['id']}", flush=True)
                raise
        if held.finished is not None and held.finished["status"] == "complete":
            print(f"{name} completed {task['id']}", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("db", help="path of the database file")
    parser.add_argument("agent_id", help="whose backlog to work on, e.g. marketing-lead")
    parser.add_argument("name", help="this worker's name, printed on each line")
    parser.add_argument("--work", type=float, default=0.2, metavar="SECONDS",
                        help="how long each task's simulated work takes (default 0.2, so "
                             "that workers started together share the backlog; 0 for none)")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="when nothing is ready, wait up to this long (at most 300) for a "
                             "task before stopping; woken at once by a new task (default 0)")
    parser.add_argument("--lease", type=int, default=60, metavar="SECONDS",
                        help="how long a lease lasts unless renewed (default 60)")
    args = parser.parse_args(argv)
    try:
        with agent_backlog.Store(args.db, busy_timeout=30.0) as store:
            claimed = run(store, args.agent_id, args.name, args.work, args.wait, args.lease)
            summary = store.summary(args.agent_id)
    except agent_backlog.BacklogError as err:
        print(f"{args.name}: {err.code}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"{args.name} finished: claimed {claimed}; backlog now {summary}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
