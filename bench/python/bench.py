"""Benchmarks of the Python surface against a careful hand-written stdlib-sqlite3
version of the same API (handwritten.py) and, where it can express the workload,
litequeue. Prints a table of medians and ratios, checks a 4-process drain for
duplicates, and draws list-page and summary latency against backlog size as SVG.

    .venv/bin/python bench/python/bench.py            # full run (sizes up to 1M)
    .venv/bin/python bench/python/bench.py --quick    # small sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import agent_backlog

sys.path.insert(0, str(Path(__file__).parent))
from handwritten import HandwrittenBacklog  # noqa: E402

try:
    from litequeue import LiteQueue  # type: ignore[import-untyped]
except ImportError:  # optional third baseline
    LiteQueue = None

AGENT = "bench-agent"
ROOT = Path(__file__).resolve().parents[2]


def median_rate(rounds: int, n: int, setup: Callable[[], Any], run: Callable[[Any], None]) -> float:
    """Median operations per second over `rounds` runs of `n` operations each."""
    rates = []
    for _ in range(rounds):
        state = setup()
        start = time.perf_counter()
        run(state)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def median_latency(calls: int, call: Callable[[], Any]) -> float:
    """Median seconds of one call, over `calls` calls after a warm-up."""
    for _ in range(min(20, calls)):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Lib:
    """agent_backlog behind the same small interface as HandwrittenBacklog."""

    def __init__(self, path: str) -> None:
        self.store = agent_backlog.Store(path)

    def close(self) -> None:
        self.store.close()

    def create_task(self, agent_id: str, title: str, priority: int = 5) -> Any:
        return self.store.create_task(agent_id, title, priority=priority)

    def create_tasks(self, agent_id: str, tasks: list[dict[str, Any]]) -> Any:
        return self.store.create_tasks(agent_id, tasks)  # type: ignore[arg-type]

    def claim_next(self, agent_id: str) -> Any:
        return self.store.claim_next(agent_id)

    def complete(self, agent_id: str, task_id: str, result: str) -> Any:
        return self.store.update_task(agent_id, task_id, status="complete", result=result)

    def list_tasks(self, agent_id: str, status: Optional[agent_backlog.Status] = None,
                   limit: Optional[int] = None) -> Any:
        return self.store.list_tasks(agent_id, status=status, limit=limit)

    def summary(self, agent_id: str) -> Any:
        return self.store.summary(agent_id)


IMPLS: dict[str, Callable[[str], Any]] = {"agent_backlog": Lib, "handwritten": HandwrittenBacklog}


class Workdir:
    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="ab-bench-"))
        self.n = 0

    def db(self) -> str:
        self.n += 1
        return str(self.path / f"b{self.n}.db")

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def populate(impl: Any, n: int) -> None:
    made = 0
    while made < n:
        batch = min(10_000, n - made)
        impl.create_tasks(AGENT, [{"title": f"task {i}", "priority": 1 + (i * 7) % 10}
                                  for i in range(made, made + batch)])
        made += batch
    for other in ("other-1", "other-2"):
        impl.create_tasks(other, [{"title": f"o{i}"} for i in range(100)])
    for i in range(200):  # a few tasks in other states
        t = impl.claim_next(AGENT)
        if i % 2 == 0:
            impl.complete(AGENT, t["id"], "done")


def throughput(work: Workdir, n: int, rounds: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, make in IMPLS.items():
        def fresh() -> Any:
            return make(work.db())

        def creates(impl: Any) -> None:
            for i in range(n):
                impl.create_task(AGENT, f"task {i}", priority=1 + i % 10)

        def filled() -> Any:
            impl = fresh()
            impl.create_tasks(AGENT, [{"title": f"t{i}", "priority": 1 + i % 10} for i in range(n)])
            return impl

        def cycles(impl: Any) -> None:
            for _ in range(n):
                t = impl.claim_next(AGENT)
                impl.complete(AGENT, t["id"], "done")

        def batches(impl: Any) -> None:
            for b in range(n // 100):
                impl.create_tasks(AGENT, [{"title": f"b{b}-{i}", "priority": 5} for i in range(100)])

        out[name] = {
            "create": median_rate(rounds, n, fresh, creates),
            "claim_complete": median_rate(rounds, n, filled, cycles),
            "create_batch_100_rows": median_rate(rounds, (n // 100) * 100, fresh, batches),
        }
    if LiteQueue is not None:
        def lq() -> Any:
            return LiteQueue(work.db())

        def puts(q: Any) -> None:
            for i in range(n):
                q.put(f"task {i}")

        def lq_filled() -> Any:
            q = lq()
            for i in range(n):
                q.put(f"task {i}")
            return q

        def pops(q: Any) -> None:
            for _ in range(n):
                m = q.pop()
                q.done(m.message_id)

        out["litequeue"] = {
            "create": median_rate(rounds, n, lq, puts),
            "claim_complete": median_rate(rounds, n, lq_filled, pops),
        }
    return out


def latencies(work: Workdir, sizes: list[int], calls: int) -> dict[str, dict[str, dict[int, float]]]:
    out: dict[str, dict[str, dict[int, float]]] = {}
    for name, make in IMPLS.items():
        res: dict[str, dict[int, float]] = {"list_page": {}, "list_queued_page": {}, "summary": {}}
        if name == "handwritten":
            res["list_queued_page_no_total"] = {}
        for size in sizes:
            impl = make(work.db())
            populate(impl, size)
            res["list_page"][size] = median_latency(calls, lambda: impl.list_tasks(AGENT, limit=50))
            res["list_queued_page"][size] = median_latency(
                calls, lambda: impl.list_tasks(AGENT, status="queued", limit=50))
            res["summary"][size] = median_latency(calls, lambda: impl.summary(AGENT))
            if name == "handwritten":  # the page alone, without counting the total
                res["list_queued_page_no_total"][size] = median_latency(
                    calls, lambda: impl.list_tasks(AGENT, status="queued", limit=50,
                                                   with_total=False))
            impl.close()
            print(f"  {name} at {size:,} tasks: list page {res['list_page'][size] * 1e3:.3f} ms, "
                  f"summary {res['summary'][size] * 1e3:.3f} ms", flush=True)
        out[name] = res
    return out


def drain_worker(path: str, out: str) -> None:
    store = agent_backlog.Store(path)
    got = []
    while (t := store.claim_next(AGENT)) is not None:
        store.update_task(AGENT, t["id"], status="complete", result="done")
        got.append(t["id"])
    Path(out).write_text("\n".join(got))


def drain(work: Workdir, n: int, procs: int) -> dict[str, float]:
    path = work.db()
    store = agent_backlog.Store(path)
    store.create_tasks(AGENT, [{"title": f"t{i}", "priority": 1 + i % 10} for i in range(n)])
    store.close()
    ctx = multiprocessing.get_context("spawn")
    outs = [str(work.path / f"drain-{i}.txt") for i in range(procs)]
    workers = [ctx.Process(target=drain_worker, args=(path, o)) for o in outs]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    ids = [i for o in outs for i in Path(o).read_text().split("\n") if i]
    assert all(w.exitcode == 0 for w in workers), "a drain worker failed"
    duplicates = len(ids) - len(set(ids))
    assert len(ids) == n and duplicates == 0, (len(ids), duplicates)
    return {"tasks": n, "processes": procs, "claims_per_second": n / elapsed,
            "duplicates": duplicates}


def svg_plot(lat: dict[str, dict[str, dict[int, float]]], path: Path) -> None:
    """Latency (ms, log scale) against backlog size (log scale), one line per series."""
    import math
    series = [(f"{impl} {metric}", pts) for impl, res in lat.items()
              for metric, pts in res.items()]
    colors = ["#1b6ac9", "#2e9d4f", "#d1495b", "#8f5bb5", "#e08e0b", "#4b4b4b"]
    dashes = {"agent_backlog": "", "handwritten": "6,4"}
    w, h, left, right, top, bottom = 760, 440, 70, 250, 30, 50
    xs = sorted({x for _, pts in series for x in pts})
    ys = [v * 1e3 for _, pts in series for v in pts.values()]
    lx0, lx1 = math.log10(xs[0]), math.log10(xs[-1]) if xs[-1] > xs[0] else math.log10(xs[0]) + 1
    ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    if ly1 == ly0:
        ly1 += 1

    def px(x: float) -> float:
        return left + (math.log10(x) - lx0) / (lx1 - lx0) * (w - left - right)

    def py(y: float) -> float:
        return top + (ly1 - math.log10(y)) / (ly1 - ly0) * (h - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{left}" y="18" font-size="14">List page (50) and summary latency '
             f'against backlog size</text>']
    for e in range(ly0, ly1 + 1):
        y = py(10.0 ** e)
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{10.0 ** e:g} ms</text>')
    for x in xs:
        parts.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{h - bottom}" stroke="#eee"/>')
        parts.append(f'<text x="{px(x):.1f}" y="{h - bottom + 18}" text-anchor="middle">{x:,}</text>')
    parts.append(f'<text x="{(left + w - right) / 2}" y="{h - 10}" text-anchor="middle">tasks in the backlog</text>')
    for i, (label, pts) in enumerate(series):
        color = colors[i % 3] if label.startswith("agent_backlog") else colors[3 + i % 3]
        dash = dashes["handwritten" if label.startswith("handwritten") else "agent_backlog"]
        coords = " ".join(f"{px(x):.1f},{py(v * 1e3):.1f}" for x, v in sorted(pts.items()))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                     f'stroke-dasharray="{dash}" points="{coords}"/>')
        for x, v in pts.items():
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(v * 1e3):.1f}" r="3" fill="{color}"/>')
        ly = top + 20 + i * 20
        parts.append(f'<line x1="{w - right + 15}" x2="{w - right + 40}" y1="{ly}" y2="{ly}" '
                     f'stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>')
        parts.append(f'<text x="{w - right + 46}" y="{ly + 4}">{label}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer rounds")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "bench-latency.svg"))
    parser.add_argument("--json", default=str(ROOT / "target" / "bench" / "python.json"))
    args = parser.parse_args()
    n, rounds, calls = (300, 3, 50) if args.quick else (2000, 5, 300)
    sizes = [1_000, 10_000] if args.quick else [10_000, 200_000, 1_000_000]
    work = Workdir()
    try:
        print(f"agent_backlog {agent_backlog.__version__}, Python {platform.python_version()}, "
              f"{platform.machine()}, {os.cpu_count()} cores", flush=True)
        print(f"throughput: {n} operations per round, median of {rounds} rounds", flush=True)
        thr = throughput(work, n, rounds)
        print(f"latency: median of {calls} calls at {', '.join(f'{s:,}' for s in sizes)} tasks",
              flush=True)
        lat = latencies(work, sizes, calls)
        dr = drain(work, 1000 if args.quick else 8000, 4)
    finally:
        work.cleanup()

    lib, hand = thr["agent_backlog"], thr["handwritten"]
    print("\n| workload | agent_backlog | handwritten sqlite3 | litequeue | agent_backlog / handwritten |")
    print("|---|---:|---:|---:|---:|")
    for key, label in [("create", "create (one per transaction), ops/s"),
                       ("claim_complete", "claim + complete, cycles/s"),
                       ("create_batch_100_rows", "create_tasks of 100, tasks/s")]:
        lq = thr.get("litequeue", {}).get(key)
        print(f"| {label} | {lib[key]:,.0f} | {hand[key]:,.0f} | "
              f"{'' if lq is None else f'{lq:,.0f}'} | {lib[key] / hand[key]:.2f}× |")
    for metric, label in [("list_page", "first page of 50"), ("list_queued_page", "first 50 queued"),
                          ("summary", "summary")]:
        for size in sizes:
            a, b = lat["agent_backlog"][metric][size], lat["handwritten"][metric][size]
            print(f"| {label} at {size:,} tasks, ms | {a * 1e3:.3f} | {b * 1e3:.3f} | | "
                  f"{a / b:.2f}× the time |")
    for size in sizes:
        a = lat["agent_backlog"]["list_queued_page"][size]
        b = lat["handwritten"]["list_queued_page_no_total"][size]
        print(f"| first 50 queued at {size:,} tasks, handwritten without its total, ms | "
              f"{a * 1e3:.3f} | {b * 1e3:.3f} | | {a / b:.2f}× the time |")
    print(f"\nbatch of 100 vs. single creates (agent_backlog): "
          f"{lib['create_batch_100_rows'] / lib['create']:.1f}×")
    for metric in ("list_page", "list_queued_page", "summary"):
        pts = lat["agent_backlog"][metric]
        print(f"flatness of {metric} (largest / smallest size): "
              f"{pts[sizes[-1]] / pts[sizes[0]]:.2f}×")
    print(f"4-process drain: {dr['tasks']:,} tasks, {dr['claims_per_second']:,.0f} claims/s, "
          f"{dr['duplicates']} duplicates")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"throughput": thr, "latency": lat, "drain": dr},
                                          indent=2, default=str))
    svg_plot(lat, Path(args.plot))
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
