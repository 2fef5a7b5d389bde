"""Benchmarks of AsyncStore (SPEC §18) through the Python module, side by side in one run.

- Throughput, one task per transaction, on a file: creates, and claim + complete
  cycles (``claim_next`` + ``update_task``), for the blocking ``Store`` in one thread,
  ``AsyncStore`` awaited one call at a time, ``AsyncStore`` with 8 concurrent
  coroutines, the blocking Store through ``asyncio.to_thread`` per call, and the same
  statements as bench/python/handwritten.py through aiosqlite (a thread hop per
  statement).
- Loop lag: a coroutine that sleeps 1 ms in a loop records how late each wake-up
  is, (a) while four coroutines write on a file whose lock another process holds for
  2 s, (b) while a coroutine runs calls that never wait back to back, (c) while 8
  coroutines wait in ``wait_for_task``.
- Cancellation: the time from cancelling a coroutine that awaits ``wait_for_task``
  to its return, and until the wait's thread has ended.

    .venv/bin/python bench/python/async_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List

import aiosqlite

import agent_backlog

sys.path.insert(0, str(Path(__file__).parent))
from handwritten import SCHEMA, _now  # noqa: E402

AGENT = "bench-agent"
SELECT = "id, title, description, priority, status, created, started, completed, result, blocker"


class Dirs:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="agent-backlog-async-"))
        self.count = 0

    def db(self) -> str:
        self.count += 1
        return str(self.root / f"b{self.count}.db")


# --- the aiosqlite version of handwritten.py's create and claim + complete ---------


async def aio_open(path: str) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, isolation_level=None)
    await db.execute("PRAGMA journal_mode = WAL")
    await db.execute("PRAGMA synchronous = NORMAL")
    await db.execute("PRAGMA busy_timeout = 5000")
    await db.executescript(SCHEMA)
    return db


async def aio_create(db: aiosqlite.Connection, agent_id: str, title: str) -> Dict[str, Any]:
    now = _now()
    await db.execute("BEGIN IMMEDIATE")
    try:
        cursor = await db.execute(
            "UPDATE agents SET next_number = next_number + 1 WHERE agent_id = ? "
            "RETURNING prefix, next_number - 1", (agent_id,))
        row = await cursor.fetchone()
        if row is None:
            await db.execute("INSERT INTO agents VALUES (?, 'BEN', 2)", (agent_id,))
            row = ("BEN", 1)
        task_id = f"{row[0]}-{row[1]:03d}"
        await db.execute(
            "INSERT INTO tasks (id, agent_id, title, description, priority, status, created) "
            "VALUES (?, ?, ?, NULL, 5, 'queued', ?)", (task_id, agent_id, title, now))
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    return {"id": task_id, "title": title, "status": "queued", "created": now}


async def aio_cycle(db: aiosqlite.Connection, agent_id: str) -> None:
    await db.execute("BEGIN IMMEDIATE")
    cursor = await db.execute(
        "UPDATE tasks SET status = 'in_progress', started = ? WHERE seq = ("
        " SELECT seq FROM tasks WHERE agent_id = ? AND status = 'queued'"
        " ORDER BY priority, seq LIMIT 1) RETURNING " + SELECT, (_now(), agent_id))
    row = await cursor.fetchone()
    await db.execute("COMMIT")
    assert row is not None
    await db.execute("BEGIN IMMEDIATE")
    cursor = await db.execute(
        "UPDATE tasks SET status = 'complete', completed = ?, result = 'ok' "
        "WHERE id = ? AND agent_id = ? AND status = 'in_progress' RETURNING " + SELECT,
        (_now(), row[0], agent_id))
    await cursor.fetchone()
    await db.execute("COMMIT")


# --- throughput ------------------------------------------------------------------------


def rate(n: int, seconds: float) -> float:
    return n / seconds


def blocking(dirs: Dirs, n: int, op: str) -> float:
    store = agent_backlog.Store(dirs.db())
    if op == "cycle":
        store.create_tasks(AGENT, [{"title": f"t{i}"} for i in range(n)])
    start = time.perf_counter()
    if op == "create":
        for i in range(n):
            store.create_task(AGENT, f"t{i}")
    else:
        for _ in range(n):
            task = store.claim_next(AGENT)
            assert task is not None
            store.update_task(AGENT, task["id"], status="complete", result="ok")
    elapsed = time.perf_counter() - start
    store.close()
    return rate(n, elapsed)


async def asynchronous(dirs: Dirs, n: int, op: str, coroutines: int, hop: bool) -> float:
    async with agent_backlog.AsyncStore(dirs.db()) as store:
        if op == "cycle":
            await store.create_tasks(AGENT, [{"title": f"t{i}"} for i in range(n)])
        sync = store.store

        async def create(i: int) -> None:
            if hop:
                await asyncio.to_thread(sync.create_task, AGENT, f"t{i}")
            else:
                await store.create_task(AGENT, f"t{i}")

        async def cycle() -> None:
            if hop:
                task = await asyncio.to_thread(sync.claim_next, AGENT)
                assert task is not None
                await asyncio.to_thread(sync.update_task, AGENT, task["id"], status="complete", result="ok")
            else:
                task = await store.claim_next(AGENT)
                assert task is not None
                await store.update_task(AGENT, task["id"], status="complete", result="ok")

        async def part(count: int, base: int) -> None:
            for i in range(count):
                await (create(base + i) if op == "create" else cycle())

        share = n // coroutines
        start = time.perf_counter()
        await asyncio.gather(*(part(share, k * share) for k in range(coroutines)))
        return rate(share * coroutines, time.perf_counter() - start)


async def aio(dirs: Dirs, n: int, op: str) -> float:
    db = await aio_open(dirs.db())
    try:
        if op == "cycle":
            for i in range(n):
                await aio_create(db, AGENT, f"t{i}")
        start = time.perf_counter()
        for i in range(n):
            if op == "create":
                await aio_create(db, AGENT, f"t{i}")
            else:
                await aio_cycle(db, AGENT)
        return rate(n, time.perf_counter() - start)
    finally:
        await db.close()


def throughput(dirs: Dirs, n: int, rounds: int) -> Dict[str, Dict[str, float]]:
    table: Dict[str, Dict[str, float]] = {}
    runs: Dict[str, Callable[[str], float]] = {
        "Store, blocking": lambda op: blocking(dirs, n, op),
        "AsyncStore, one at a time": lambda op: asyncio.run(asynchronous(dirs, n, op, 1, False)),
        "AsyncStore, 8 coroutines": lambda op: asyncio.run(asynchronous(dirs, n, op, 8, False)),
        "Store via asyncio.to_thread": lambda op: asyncio.run(asynchronous(dirs, n // 4, op, 1, True)),
        "aiosqlite (hand-written)": lambda op: asyncio.run(aio(dirs, n // 4, op)),
    }
    for op in ("create", "cycle"):
        samples: Dict[str, List[float]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, run in runs.items():  # interleaved, so drift hits all alike
                samples[name].append(run(op))
        for name, values in samples.items():
            table.setdefault(name, {})[op] = statistics.median(values)
    return table


# --- loop lag --------------------------------------------------------------------------


class LagMeter:
    """Sleeps 1 ms in a loop and records how late each wake-up is."""

    def __init__(self) -> None:
        self.lags: List[float] = []
        self._task: "asyncio.Task[None] | None" = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            self.lags.append(time.perf_counter() - before - 0.001)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> Dict[str, float]:
        assert self._task is not None
        self._task.cancel()
        await asyncio.wait([self._task])
        lags = sorted(self.lags)
        return {
            "wakes": len(lags),
            "p50_ms": lags[len(lags) // 2] * 1000,
            "p99_ms": lags[int(len(lags) * 0.99)] * 1000,
            "max_ms": lags[-1] * 1000,
        }


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


async def lag_locked(dirs: Dirs, hold: float) -> Dict[str, float]:
    path = dirs.db()
    agent_backlog.Store(path).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, path, str(hold)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    async with agent_backlog.AsyncStore(path, busy_timeout=hold + 10) as store:
        meter = LagMeter()
        meter.start()

        async def writer(k: int) -> None:
            for i in range(50):
                await store.create_task(AGENT, f"w{k}-{i}")

        await asyncio.gather(*(writer(k) for k in range(4)))
        result = await meter.stop()
    holder.wait()
    holder.stdout.close()
    return result


async def lag_busy(dirs: Dirs, seconds: float) -> Dict[str, float]:
    async with agent_backlog.AsyncStore(dirs.db()) as store:
        meter = LagMeter()
        meter.start()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await store.create_task(AGENT, "busy")
            task = await store.claim_next(AGENT)
            assert task is not None
            await store.update_task(AGENT, task["id"], status="complete")
        return await meter.stop()


async def lag_waiting(dirs: Dirs, seconds: float) -> Dict[str, float]:
    async with agent_backlog.AsyncStore(dirs.db()) as store:
        meter = LagMeter()
        meter.start()
        waits = [asyncio.create_task(store.wait_for_task(AGENT, f"w{i}", seconds)) for i in range(8)]
        await asyncio.gather(*waits)
        return await meter.stop()


# --- cancellation ----------------------------------------------------------------------


async def cancellation(dirs: Dirs, times: int) -> Dict[str, float]:
    returned: List[float] = []
    ended: List[float] = []
    async with agent_backlog.AsyncStore(dirs.db()) as store:
        for _ in range(times):
            wait = asyncio.create_task(store.wait_for_task(AGENT, "w1", 120))
            await asyncio.sleep(0.02)
            start = time.perf_counter()
            wait.cancel()
            await asyncio.wait([wait])
            returned.append(time.perf_counter() - start)
            while any(t.name == "agent-backlog wait_for_task" for t in threading.enumerate()):
                await asyncio.sleep(0.0002)
            ended.append(time.perf_counter() - start)
        assert (await store.summary(AGENT))["total"] == 0
    returned.sort()
    ended.sort()
    return {
        "returned_p50_ms": returned[len(returned) // 2] * 1000,
        "returned_max_ms": returned[-1] * 1000,
        "thread_ended_p50_ms": ended[len(ended) // 2] * 1000,
        "thread_ended_max_ms": ended[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="AsyncStore benchmarks")
    parser.add_argument("--quick", action="store_true", help="a smoke run with small numbers")
    args = parser.parse_args()
    n, rounds = (800, 1) if args.quick else (4000, 3)
    dirs = Dirs()
    try:
        print(f"AsyncStore benchmarks, Python {platform.python_version()}, {n} operations per run, median of {rounds}")
        table = throughput(dirs, n, rounds)
        base = table["Store, blocking"]
        aio_row = table["aiosqlite (hand-written)"]
        print(f"\n{'':32} {'creates/s':>10} {'x Store':>8} {'cycles/s':>10} {'x Store':>8}")
        for name, row in table.items():
            print(f"{name:32} {row['create']:>10,.0f} {row['create'] / base['create']:>8.2f}"
                  f" {row['cycle']:>10,.0f} {row['cycle'] / base['cycle']:>8.2f}")
        one = table["AsyncStore, one at a time"]
        eight = table["AsyncStore, 8 coroutines"]
        print(f"\nAsyncStore vs aiosqlite: creates {one['create'] / aio_row['create']:.1f}x, "
              f"cycles {one['cycle'] / aio_row['cycle']:.1f}x")
        print(f"8 coroutines vs one: creates {eight['create'] / one['create']:.2f}x, "
              f"cycles {eight['cycle'] / one['cycle']:.2f}x")

        hold = 0.5 if args.quick else 2.0
        print("\nloop lag (a 1 ms sleeper's lateness)")
        for name, run in (
            (f"4 writers waiting {hold:g} s for another process's lock", lambda: lag_locked(dirs, hold)),
            ("calls that never wait, back to back", lambda: lag_busy(dirs, hold)),
            ("8 coroutines in wait_for_task", lambda: lag_waiting(dirs, hold)),
        ):
            lag = asyncio.run(run())
            print(f"  {name:52} p50 {lag['p50_ms']:5.2f} ms  p99 {lag['p99_ms']:5.2f} ms  "
                  f"max {lag['max_ms']:5.2f} ms  ({lag['wakes']:.0f} wakes)")

        cancel = asyncio.run(cancellation(dirs, 20 if args.quick else 100))
        print(f"\ncancelling a wait_for_task: returned p50 {cancel['returned_p50_ms']:.2f} ms, "
              f"max {cancel['returned_max_ms']:.2f} ms; its thread ended p50 "
              f"{cancel['thread_ended_p50_ms']:.2f} ms, max {cancel['thread_ended_max_ms']:.2f} ms")
    finally:
        shutil.rmtree(dirs.root, ignore_errors=True)


if __name__ == "__main__":
    main()
