"""Benchmarks of leases and waiting (SPEC §10-§11) through the Python module.

- A worker's loop through ``finish_and_claim`` (one commit per task), and the
  two-call cycle (``claim_next`` + ``update_task`` to complete), against the
  hand-written stdlib-sqlite3 claim + complete of handwritten.py, side by side.
- ``claim_lease`` against ``claim_next``: the cost of a claim alone.
- Wake latency: a worker waits in ``wait_for_task`` in one process; another process
  creates a task; the time from that commit to the waiter's return (p50, p99).
- CPU of a waiting worker: the CPU time of a process that waits 10 s with nothing
  to do, as a share of one core.

    .venv/bin/python bench/python/leases.py [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import agent_backlog

sys.path.insert(0, str(Path(__file__).parent))
from bench import median_rate  # noqa: E402
from handwritten import HandwrittenBacklog  # noqa: E402

AGENT = "bench-agent"


class Dirs:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="agent-backlog-leases-"))
        self.count = 0

    def db(self) -> str:
        self.count += 1
        return str(self.root / f"b{self.count}.db")


def filled_store(dirs: Dirs, n: int) -> agent_backlog.Store:
    store = agent_backlog.Store(dirs.db())
    store.create_tasks(AGENT, [{"title": f"t{i}", "priority": 1 + i % 10} for i in range(n)])
    return store


def filled_handwritten(dirs: Dirs, n: int) -> HandwrittenBacklog:
    hand = HandwrittenBacklog(dirs.db())
    hand.create_tasks(AGENT, [{"title": f"t{i}", "priority": 1 + i % 10} for i in range(n)])
    return hand


def loops(dirs: Dirs, n: int, rounds: int) -> dict[str, float]:
    def finish_and_claim(store: agent_backlog.Store) -> None:
        claim = store.claim_lease(AGENT, "w")
        while claim is not None:
            claim = store.finish_and_claim(claim["lease"]["token"], "complete", result="done")["next"]

    def two_calls(store: agent_backlog.Store) -> None:
        for _ in range(n):
            t = store.claim_next(AGENT)
            assert t is not None
            store.update_task(AGENT, t["id"], status="complete", result="done")

    def leased_two_calls(store: agent_backlog.Store) -> None:
        for _ in range(n):
            c = store.claim_lease(AGENT, "w")
            assert c is not None
            store.finish_lease(c["lease"]["token"], "complete", result="done")

    def hand_cycles(hand: HandwrittenBacklog) -> None:
        for _ in range(n):
            t = hand.claim_next(AGENT)
            assert t is not None
            hand.complete(AGENT, t["id"], "done")

    def claims_next(store: agent_backlog.Store) -> None:
        for _ in range(n):
            store.claim_next(AGENT)

    def claims_leased(store: agent_backlog.Store) -> None:
        for _ in range(n):
            store.claim_lease(AGENT, "w")

    samples: dict[str, list[float]] = {}
    # Interleaved, so that a slow moment of the machine hits every variant alike.
    for _ in range(rounds):
        variants: list[tuple[str, Callable[[], Any], Callable[[Any], None]]] = [
            ("handwritten", lambda: filled_handwritten(dirs, n), hand_cycles),
            ("finish_and_claim", lambda: filled_store(dirs, n), finish_and_claim),
            ("two_calls", lambda: filled_store(dirs, n), two_calls),
            ("claim_lease_finish_lease", lambda: filled_store(dirs, n), leased_two_calls),
            ("claim_next_only", lambda: filled_store(dirs, n), claims_next),
            ("claim_lease_only", lambda: filled_store(dirs, n), claims_leased),
        ]
        for key, setup, run in variants:
            samples.setdefault(key, []).append(median_rate(1, n, setup, run))
    return {k: statistics.median(v) for k, v in samples.items()}


def producer(db: str, times: "multiprocessing.Queue[float]", count: int, go: Any) -> None:
    store = agent_backlog.Store(db)
    for i in range(count):
        go.wait()
        go.clear()
        time.sleep(0.005 + (i % 7) * 0.003)
        store.create_task("waiter", f"t{i}")
        times.put(time.time())


def wake_latency(dirs: Dirs, count: int) -> dict[str, float]:
    db = dirs.db()
    store = agent_backlog.Store(db)
    store.create_task("warm", "x")
    ctx = multiprocessing.get_context("spawn")
    times: "multiprocessing.Queue[float]" = ctx.Queue()
    go = ctx.Event()
    proc = ctx.Process(target=producer, args=(db, times, count, go))
    proc.start()
    lags = []
    for _ in range(count):
        go.set()
        claim = store.wait_for_task("waiter", "w", 60, lease_seconds=60)
        woke = time.time()
        assert claim is not None
        lags.append(woke - times.get(timeout=60))
        store.finish_lease(claim["lease"]["token"], "complete")
    proc.join()
    lags.sort()
    return {"p50_ms": lags[len(lags) // 2] * 1e3, "p99_ms": lags[int(len(lags) * 0.99) - 1] * 1e3,
            "max_ms": lags[-1] * 1e3, "samples": float(count)}


def idle_waiter(db: str, seconds: float, out: "multiprocessing.Queue[float]") -> None:
    store = agent_backlog.Store(db)
    before = os.times()
    assert store.wait_for_task("nobody", "w", seconds) is None
    after = os.times()
    out.put((after.user - before.user) + (after.system - before.system))


def waiting_cpu(dirs: Dirs, seconds: float) -> float:
    db = dirs.db()
    agent_backlog.Store(db).create_task("warm", "x")
    ctx = multiprocessing.get_context("spawn")
    out: "multiprocessing.Queue[float]" = ctx.Queue()
    proc = ctx.Process(target=idle_waiter, args=(db, seconds, out))
    proc.start()
    cpu = out.get(timeout=seconds + 60)
    proc.join()
    return cpu / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, rounds, wakes, idle = (300, 3, 50, 2.0) if args.quick else (2000, 7, 400, 10.0)
    dirs = Dirs()
    try:
        print(f"agent_backlog {agent_backlog.__version__}, Python {platform.python_version()}, "
              f"{platform.machine()}, {os.cpu_count()} cores; {n} tasks per round, median of "
              f"{rounds} interleaved rounds", flush=True)
        r = loops(dirs, n, rounds)
        lat = wake_latency(dirs, wakes)
        cpu = waiting_cpu(dirs, idle)
    finally:
        shutil.rmtree(dirs.root, ignore_errors=True)
    hand = r["handwritten"]
    print("\n| workload | per second | / hand-written claim + complete |")
    print("|---|---:|---:|")
    for key, label in [("handwritten", "hand-written sqlite3: claim + complete, cycles"),
                       ("finish_and_claim", "finish_and_claim loop, tasks (one commit each)"),
                       ("two_calls", "claim_next + update_task, cycles"),
                       ("claim_lease_finish_lease", "claim_lease + finish_lease, cycles")]:
        print(f"| {label} | {r[key]:,.0f} | {r[key] / hand:.2f}× |")
    print(f"\nclaim_lease costs {r['claim_next_only'] / r['claim_lease_only']:.2f}× a claim_next "
          f"({r['claim_lease_only']:,.0f} vs {r['claim_next_only']:,.0f} claims/s)")
    print(f"wake latency from another process's commit: p50 {lat['p50_ms']:.1f} ms, "
          f"p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms ({lat['samples']:.0f} wakes)")
    print(f"a worker waiting {idle:.0f} s with nothing to do used {cpu * 100:.2f}% of a core")


if __name__ == "__main__":
    main()
