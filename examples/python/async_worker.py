#!/usr/bin/env python3
"""Several workers on one event loop, waiting for work without blocking it.

Each worker is a coroutine: it waits for the agent's next ready task
(``wait_for_task``, which sleeps off the loop until a task is created, released or
its lease expires), holds the lease while it works (``hold_lease_async`` renews it on
the loop), and completes it. While they wait or work, the loop stays free for every
other coroutine of the program. A worker stops after ``--idle`` seconds without
work; Ctrl-C cancels every wait at once, and a task a cancelled wait had just claimed
goes straight back to the queue.

    python examples/python/async_worker.py backlogs.db --agent marketing-lead --workers 4
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import List, Optional, Sequence

import agent_backlog


async def work(task: agent_backlog.Task) -> str:
    """Does the task's work (here: a short sleep, as a call to a model would be)."""
    await asyncio.sleep(0.01)
    return f"done: {task['title']}"


async def worker(store: agent_backlog.AsyncStore, agent_id: str, name: str, idle: float) -> List[str]:
    """Works through the agent's backlog until nothing arrives for `idle` seconds;
    returns the IDs of the tasks it completed."""
    done: List[str] = []
    while (claim := await store.wait_for_task(agent_id, name, idle, lease_seconds=60)) is not None:
        async with agent_backlog.hold_lease_async(store, claim) as held:
            held.result = await work(held.task)
        print(f"{name} completed {held.task['id']}", flush=True)
        done.append(held.task["id"])
    return done


async def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("db", help="the database file (created if missing)")
    parser.add_argument("--agent", default="marketing-lead", help="whose backlog to work on")
    parser.add_argument("--workers", type=int, default=4, help="how many worker coroutines")
    parser.add_argument("--idle", type=float, default=5.0, help="stop after this many seconds without work")
    args = parser.parse_args(argv)
    async with agent_backlog.AsyncStore(args.db) as store:
        names = [f"worker-{i + 1}" for i in range(args.workers)]
        results = await asyncio.gather(*(worker(store, args.agent, n, args.idle) for n in names))
        total = sum(len(done) for done in results)
        summary = await store.summary(args.agent)
    print(f"{total} tasks completed by {args.workers} workers; {summary['queued']} still queued")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
