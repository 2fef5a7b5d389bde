"""Benchmarks of agent_backlog on PostgreSQL (SPEC §16) against a careful hand-written
psycopg 3 version of the same operations, and against agent_backlog on an SQLite file.

- Claim + complete cycles per second with 1, 4 and 8 worker processes draining one
  backlog of the same number of tasks (mixed priorities), for
  (a) ``Store(url)``: ``claim_next`` + ``update_task(status="complete")``, two calls;
  (b) ``Store(url)``: a ``finish_and_claim`` loop with leases, one call per task;
  (c) hand-written psycopg 3: a tasks table with the index a claim needs; a claim is
      one ``UPDATE ... WHERE pk = (SELECT pk ... ORDER BY priority, pk LIMIT 1 FOR
      UPDATE SKIP LOCKED) RETURNING ...``, a completion one ``UPDATE ... RETURNING``;
      autocommit (each statement its own transaction), statements prepared from their
      first use (``prepare_threshold=0``), rows as dicts;
  (d) ``Store(path)`` on an SQLite file: as (a).
  Each run has a fresh schema (a fresh file for SQLite); the workers connect before
  the clock starts; the median of the runs, with the ratio to psycopg's.
- Latency of the first page (``list_tasks(limit=20)``, with its total) and of
  ``summary`` at 10k and 100k tasks (and 1M with ``--full``) on PostgreSQL, against
  the hand-written page (``ORDER BY priority, pk LIMIT 20`` and a ``count(*)`` for the
  total) and summary (``count(*) ... GROUP BY status``); both after VACUUM ANALYZE.

The server: ``--url``, else AGENT_BACKLOG_TEST_PG (``make bench`` starts the private
test server of scripts/pg.sh and sets it). Schemas are dropped after use. The private
server runs with ``fsync=off``; ``--fsync`` turns it on for the run (``ALTER SYSTEM``,
reset at the end; a superuser's URL, as the private server's is), so that each commit
waits for its flush as on a production server. The header says which it was.

    .venv/bin/python bench/python/pg_bench.py [--quick | --full] [--fsync] [--url URL]
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
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import psycopg
from psycopg.rows import dict_row

import agent_backlog

sys.path.insert(0, str(Path(__file__).parent))
from bench import median_latency  # noqa: E402

AGENT = "bench-agent"
ROOT = Path(__file__).resolve().parents[2]
WORKERS = (1, 4, 8)

HAND_COLUMNS = "id, title, description, priority, status, created, started, completed, result, blocker"

HAND_SCHEMA = """
CREATE TABLE tasks (
    pk bigserial PRIMARY KEY,
    id text NOT NULL,
    agent_id text NOT NULL,
    title text NOT NULL,
    description text,
    priority smallint NOT NULL CHECK (priority BETWEEN 1 AND 10),
    status text NOT NULL CHECK (status IN ('queued', 'in_progress', 'complete', 'blocked')),
    created timestamptz NOT NULL DEFAULT now(),
    started timestamptz,
    completed timestamptz,
    result text,
    blocker text,
    UNIQUE (agent_id, id)
);
CREATE INDEX tasks_by_agent ON tasks (agent_id, status, priority, pk);
"""

HAND_CLAIM = f"""
UPDATE tasks SET status = 'in_progress', started = now()
WHERE pk = (SELECT pk FROM tasks WHERE agent_id = %s AND status = 'queued'
            ORDER BY priority, pk LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING {HAND_COLUMNS}"""

HAND_COMPLETE = f"""
UPDATE tasks SET status = 'complete', completed = now(), result = %s
WHERE agent_id = %s AND id = %s AND status = 'in_progress'
RETURNING {HAND_COLUMNS}"""


# --- where the stores live -----------------------------------------------------------


class Place:
    """The server's URL, fresh schemas on it (dropped at the end), and a folder for
    the SQLite files."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.schemas: list[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix="ab-pg-bench-"))
        self.files = 0

    def schema(self) -> str:
        name = f"bench_{uuid.uuid4().hex[:12]}"
        self.schemas.append(name)
        return name

    def store_url(self, schema: str) -> str:
        """The store's URL: the first schema of search_path holds the store."""
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}options=-csearch_path%3D{schema}"

    def sqlite(self) -> str:
        self.files += 1
        return str(self.dir / f"b{self.files}.db")

    def drop(self, schema: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        if schema in self.schemas:
            self.schemas.remove(schema)

    def cleanup(self) -> None:
        for schema in list(self.schemas):
            try:
                self.drop(schema)
            except psycopg.Error as err:
                print(f"could not drop schema {schema}: {err}", file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)


def hand_connect(url: str, schema: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row,
                           options=f"-c search_path={schema}")


def vacuum(place: Place, schema: str) -> None:
    """VACUUM ANALYZE of every table of the schema, as autovacuum would have done by
    the time a backlog is read (index-only scans need the visibility map)."""
    with psycopg.connect(place.url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
        for table in tables:
            conn.execute(f'VACUUM ANALYZE "{schema}"."{table}"')


def tasks_of(start: int, end: int) -> list[agent_backlog.NewTask]:
    return [{"title": f"task {i}", "priority": 1 + (i * 7) % 10} for i in range(start, end)]


def fill_store(store: agent_backlog.Store, n: int) -> None:
    for start in range(0, n, 10_000):
        store.create_tasks(AGENT, tasks_of(start, min(n, start + 10_000)))


def fill_hand(conn: psycopg.Connection[dict[str, Any]], n: int) -> None:
    for statement in HAND_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement, prepare=False)
    conn.execute(
        "INSERT INTO tasks (id, agent_id, title, priority, status) "
        "SELECT 'BEN-' || CASE WHEN g < 1000 THEN lpad(g::text, 3, '0') ELSE g::text END, %s, 'task ' || (g - 1), 1 + ((g - 1) * 7) %% 10, "
        "'queued' FROM generate_series(1, %s) AS g ORDER BY g", (AGENT, n))
    conn.execute("ANALYZE tasks")


# --- the drains ----------------------------------------------------------------------


def drain_two_calls(store: agent_backlog.Store) -> int:
    done = 0
    while (task := store.claim_next(AGENT)) is not None:
        store.update_task(AGENT, task["id"], status="complete", result="done")
        done += 1
    return done


def drain_finish_and_claim(store: agent_backlog.Store, worker: str) -> int:
    done = 0
    claim = store.claim_lease(AGENT, worker)
    while claim is not None:
        claim = store.finish_and_claim(claim["lease"]["token"], "complete", result="done")["next"]
        done += 1
    return done


def drain_hand(conn: psycopg.Connection[dict[str, Any]]) -> int:
    done = 0
    while (task := conn.execute(HAND_CLAIM, (AGENT,)).fetchone()) is not None:
        finished = conn.execute(HAND_COMPLETE, ("done", AGENT, task["id"])).fetchone()
        assert finished is not None and finished["status"] == "complete"
        done += 1
    return done


def worker(kind: str, target: str, schema: str, index: int, ready: Any, go: Any,
           out: "multiprocessing.Queue[tuple[int, float]]") -> None:
    """Connects, waits for the start, drains, reports (tasks done, end time)."""
    if kind == "hand":
        conn = hand_connect(target, schema)
        ready.wait()
        go.wait()
        done = drain_hand(conn)
        conn.close()
    else:
        store = agent_backlog.Store(target)
        store.summary(AGENT)  # a connection open before the start
        ready.wait()
        go.wait()
        done = drain_finish_and_claim(store, f"w{index}") if kind == "finish_and_claim" \
            else drain_two_calls(store)
        store.close()
    out.put((done, time.monotonic()))


VARIANTS = {
    "hand": "psycopg 3 hand-written: claim + complete, cycles/s",
    "pg_two_calls": "agent_backlog on PostgreSQL: claim_next + update_task, cycles/s",
    "pg_finish_and_claim": "agent_backlog on PostgreSQL: finish_and_claim loop, tasks/s",
    "sqlite_two_calls": "agent_backlog on an SQLite file: claim_next + update_task, cycles/s",
}


def one_run(place: Place, variant: str, n: int, procs: int) -> float:
    """Fills a fresh store with n tasks, drains it with `procs` processes; cycles/s."""
    schema = "" if variant == "sqlite_two_calls" else place.schema()
    if variant == "hand":
        with hand_connect(place.url, "public") as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        with hand_connect(place.url, schema) as conn:
            fill_hand(conn, n)
        kind, target = "hand", place.url
    else:
        target = place.sqlite() if variant == "sqlite_two_calls" else place.store_url(schema)
        with agent_backlog.Store(target) as store:
            fill_store(store, n)
        kind = "finish_and_claim" if variant == "pg_finish_and_claim" else "two_calls"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(procs + 1)
    go = ctx.Event()
    out: "multiprocessing.Queue[tuple[int, float]]" = ctx.Queue()
    workers = [ctx.Process(target=worker, args=(kind, target, schema, i, ready, go, out))
               for i in range(procs)]
    for w in workers:
        w.start()
    ready.wait(timeout=120)
    start = time.monotonic()
    go.set()
    results = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
        assert w.exitcode == 0, f"a {variant} worker failed"
    elapsed = max(end for _, end in results) - start
    done = sum(d for d, _ in results)
    assert done == n, f"{variant}: {done} cycles for {n} tasks"
    # Every task complete, none twice (checked by the counts).
    if variant == "hand":
        with hand_connect(place.url, schema) as conn:
            row = conn.execute("SELECT count(*) AS n FROM tasks WHERE status = 'complete'").fetchone()
            assert row is not None and row["n"] == n
    else:
        with agent_backlog.Store(target) as store:
            assert store.summary(AGENT)["complete"] == n
    if variant != "sqlite_two_calls":
        place.drop(schema)
    return n / elapsed


def throughput(place: Place, n: int, runs: int) -> dict[str, dict[int, float]]:
    samples: dict[str, dict[int, list[float]]] = {v: {p: [] for p in WORKERS} for v in VARIANTS}
    # Interleaved, so that a slow moment of the machine hits every variant alike.
    for run in range(runs):
        for procs in WORKERS:
            for variant in VARIANTS:
                rate = one_run(place, variant, n, procs)
                samples[variant][procs].append(rate)
                print(f"  run {run + 1}/{runs}, {procs} workers, {variant}: {rate:,.0f}/s", flush=True)
    return {v: {p: statistics.median(r) for p, r in by.items()} for v, by in samples.items()}


# --- read latency --------------------------------------------------------------------


def spread(claim: Callable[[], Any], complete: Callable[[Any], Any]) -> None:
    """A few hundred tasks in progress and complete, as a backlog at work has."""
    for i in range(200):
        task = claim()
        if i % 2 == 0:
            complete(task)


def latencies(place: Place, sizes: list[int], calls: int) -> dict[str, dict[str, dict[int, float]]]:
    out: dict[str, dict[str, dict[int, float]]] = {
        "agent_backlog": {"first_page": {}, "summary": {}},
        "hand": {"first_page": {}, "summary": {}},
    }
    for size in sizes:
        schema = place.schema()
        with agent_backlog.Store(place.store_url(schema)) as store:
            fill_store(store, size)
            spread(lambda: store.claim_next(AGENT),
                   lambda t: store.update_task(AGENT, t["id"], status="complete", result="done"))
            vacuum(place, schema)
            page = store.list_tasks(AGENT, limit=20)
            assert len(page["tasks"]) == 20 and page["total"] == size
            out["agent_backlog"]["first_page"][size] = median_latency(
                calls, lambda: store.list_tasks(AGENT, limit=20))
            out["agent_backlog"]["summary"][size] = median_latency(calls, lambda: store.summary(AGENT))
        place.drop(schema)

        schema = place.schema()
        with hand_connect(place.url, "public") as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        with hand_connect(place.url, schema) as conn:
            fill_hand(conn, size)
            spread(lambda: conn.execute(HAND_CLAIM, (AGENT,)).fetchone(),
                   lambda t: conn.execute(HAND_COMPLETE, ("done", AGENT, t["id"])))
            vacuum(place, schema)

            def hand_page() -> dict[str, Any]:
                rows = conn.execute(
                    f"SELECT {HAND_COLUMNS} FROM tasks WHERE agent_id = %s "
                    "ORDER BY priority, pk LIMIT 20", (AGENT,)).fetchall()
                total = conn.execute("SELECT count(*) AS n FROM tasks WHERE agent_id = %s",
                                     (AGENT,)).fetchone()
                assert total is not None
                return {"agent_id": AGENT, "tasks": rows, "total": total["n"]}

            def hand_summary() -> dict[str, int]:
                counts = {"queued": 0, "in_progress": 0, "complete": 0, "blocked": 0}
                for row in conn.execute("SELECT status, count(*) AS n FROM tasks "
                                        "WHERE agent_id = %s GROUP BY status", (AGENT,)):
                    counts[row["status"]] = row["n"]
                return {**counts, "total": sum(counts.values())}

            assert hand_page()["total"] == size and hand_summary()["total"] == size
            out["hand"]["first_page"][size] = median_latency(calls, hand_page)
            out["hand"]["summary"][size] = median_latency(calls, hand_summary)
        place.drop(schema)
        print(f"  at {size:,} tasks: first page {out['agent_backlog']['first_page'][size] * 1e3:.3f} ms "
              f"(psycopg {out['hand']['first_page'][size] * 1e3:.3f}), summary "
              f"{out['agent_backlog']['summary'][size] * 1e3:.3f} ms "
              f"(psycopg {out['hand']['summary'][size] * 1e3:.3f})", flush=True)
    return out


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def server_fsync(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW fsync").fetchone()
        return str(row[0]) if row else "?"


def set_fsync(url: str, on: bool) -> None:
    """Turns the server's fsync on (or back to its configured value)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET fsync = on" if on else "ALTER SYSTEM RESET fsync")
        conn.execute("SELECT pg_reload_conf()")
    for _ in range(100):
        if not on or server_fsync(url) == "on":
            break
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sizing = parser.add_mutually_exclusive_group()
    sizing.add_argument("--quick", action="store_true", help="small sizes, one run: a smoke run")
    sizing.add_argument("--full", action="store_true", help="latency at 1M tasks too")
    parser.add_argument("--url", default=os.environ.get("AGENT_BACKLOG_TEST_PG"),
                        help="the PostgreSQL server (default: $AGENT_BACKLOG_TEST_PG)")
    parser.add_argument("--json", default=str(ROOT / "target" / "bench" / "pg.json"))
    parser.add_argument("--fsync", action="store_true",
                        help="turn the server's fsync on for the run (needs a superuser)")
    args = parser.parse_args()
    if not args.url:
        parser.error("no server: give --url postgresql://... or set AGENT_BACKLOG_TEST_PG "
                     "(`bash scripts/pg.sh start` prints one)")
    if args.fsync:
        try:
            set_fsync(args.url, True)
        except psycopg.Error as err:
            parser.error(f"--fsync could not turn the server's fsync on ({err}); give the URL "
                         "of a superuser, or leave --fsync out")
    n, runs, calls = (400, 1, 50) if args.quick else (1500, 3, 200)
    sizes = [10_000] if args.quick else [10_000, 100_000] + ([1_000_000] if args.full else [])
    place = Place(args.url)
    try:
        print(f"agent_backlog {agent_backlog.__version__}, psycopg {psycopg.__version__} "
              f"({psycopg.pq.__impl__}), PostgreSQL {server_version(args.url)}, Python "
              f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, "
              f"fsync {server_fsync(args.url)}",
              flush=True)
        print(f"throughput: {n:,} tasks drained by {', '.join(map(str, WORKERS))} processes, "
              f"median of {runs} interleaved runs", flush=True)
        started = time.monotonic()
        thr = throughput(place, n, runs)
        print(f"latency: median of {calls} calls at {', '.join(f'{s:,}' for s in sizes)} tasks",
              flush=True)
        lat = latencies(place, sizes, calls)
        took = time.monotonic() - started
    finally:
        place.cleanup()
        if args.fsync:
            set_fsync(args.url, False)

    hand = thr["hand"]
    print(f"\n| workload ({n:,} tasks) | " + " | ".join(f"{p} worker{'s' if p > 1 else ''}" for p in WORKERS)
          + " |")
    print("|---|" + "---:|" * len(WORKERS))
    for variant, label in VARIANTS.items():
        cells = [f"{thr[variant][p]:,.0f}" + ("" if variant == "hand" else f" ({thr[variant][p] / hand[p]:.2f}×)")
                 for p in WORKERS]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n(× : the ratio to psycopg hand-written with as many workers; above 1 is faster)")
    print("\n| read on PostgreSQL | tasks | agent_backlog, ms | psycopg hand-written, ms | agent_backlog / psycopg |")
    print("|---|---:|---:|---:|---:|")
    for metric, label in [("first_page", "first page of 20 (with total)"), ("summary", "summary")]:
        for size in sizes:
            a, b = lat["agent_backlog"][metric][size], lat["hand"][metric][size]
            print(f"| {label} | {size:,} | {a * 1e3:.3f} | {b * 1e3:.3f} | {a / b:.2g}× the time |")
    print(f"\n({took:.0f} s)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"tasks": n, "runs": runs, "throughput": thr, "latency": lat},
                                          indent=2))


if __name__ == "__main__":
    main()
