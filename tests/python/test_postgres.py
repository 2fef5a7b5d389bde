"""The reliability promises on PostgreSQL (SPEC §16): many machines on one database.

Three tests, each on a schema of its own on the test server (``pgserver.fresh_url``):

1. **Two servers, many clients.** Two ``agent-backlog serve`` processes on one schema
   stand for two machines. Client processes (this file run as a script), each with
   several threads, claim over REST (``POST /api/backlogs/{agent}/claim``) and complete
   (``PATCH /api/backlogs/{agent}/{task}``), every request going to the other server
   than the one before, until nothing is queued; each thread logs its claims. Then:
   every task was claimed exactly once, is complete with the result of the thread that
   logged it, each thread's claims came in priority, then creation order, the summary
   is exact (on both servers too), and the change feed, tailed while the race ran,
   missed no event (its seqs grow with commit order) and holds one ``claimed`` and one
   ``updated`` event per task, made by the thread that logged the claim.
2. **The lease kill loop.** Worker processes on ``Store(url)`` loop on ``claim_lease``
   (two-second leases) and ``finish_lease``, logging each finish only after it
   returned; the harness SIGKILLs one at random every so often (mostly one at work on
   a task, else any) and starts another in its place, until every task is complete. Then nothing acknowledged is lost (every
   logged finish is in the store, with its lease's token as the result), no task was
   finished twice (exactly one ``finished`` event per task, and every claim of a task
   but its last ended by expiry), and some kills did land on workers at work.
3. **The server restarts** (``scripts/pg.sh restart``) while workers create, claim and
   complete through ``Store(url)`` and a waiter waits in ``wait_for_task``. While it is
   down, calls fail with ``StorageError`` (code ``storage``) and nothing else; the
   workers retry, and carry on by themselves once it is back (the pools reconnect, the
   waiter's listener too). Then every acknowledged create exists and every
   acknowledged completion is complete. It disturbs every other user of the test
   server, so it runs only under ``AGENT_BACKLOG_STRESS=1`` (``make stress``).

``make test``: 400 tasks, 4 processes x 2 threads; 100 tasks and 4 leased workers.
``make stress`` (``AGENT_BACKLOG_STRESS=1``): 5,000 tasks, 8 processes x 2 threads;
600 tasks and 6 leased workers (100 to 300 kills); the restart. All of it is skipped
without ``AGENT_BACKLOG_TEST_PG``.

Nothing here passes or fails by time: children are bounded by a generous deadline only
to turn a hang into a failure. Set AGENT_BACKLOG_SEED to repeat a run's random choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pytest

import agent_backlog
import pgserver
from conftest import ROOT, serving

pytestmark = pytest.mark.skipif(
    pgserver.URL is None,
    reason="AGENT_BACKLOG_TEST_PG is not set: these tests need a PostgreSQL server "
    "(make test and make stress start one with scripts/pg.sh)",
)

TIMEOUT = 600.0  # seconds; only ever reached when something hangs
AGENT = "pg-fleet"


def stress() -> bool:
    return os.environ.get("AGENT_BACKLOG_STRESS", "") not in ("", "0")


def seeded(what: str) -> tuple[int, random.Random]:
    seed = int(os.environ.get("AGENT_BACKLOG_SEED", random.randrange(1 << 30)))
    print(f"{what}: AGENT_BACKLOG_SEED={seed}")
    return seed, random.Random(seed)


def number(task_id: str) -> int:
    """The creation order of a task: the number of its ID."""
    return int(task_id.rsplit("-", 1)[1])


def create(store: agent_backlog.Store, agent: str, n: int, rng: random.Random) -> None:
    """n tasks at random priorities, in batches of 1,000."""
    for start in range(0, n, 1000):
        store.create_tasks(agent, [{"title": f"task {i}", "priority": rng.randint(1, 10)}
                                   for i in range(start, min(n, start + 1000))])


def all_events(store: agent_backlog.Store, agent: Optional[str] = None) -> list[agent_backlog.Event]:
    """The whole feed, oldest first."""
    out: list[agent_backlog.Event] = []
    after = 0
    while True:
        page = store.events(after=after, limit=1000, agent_id=agent)
        if not page["events"]:
            return out
        out.extend(page["events"])
        after = page["next"]


def check_counts(store: agent_backlog.Store, agent: str) -> dict[str, int]:
    """The summary, checked against the statuses of the listing (the counts kept by
    triggers against the rows themselves)."""
    summary = store.summary(agent)
    listed = store.list_tasks(agent)
    counted = {status: 0 for status in ("queued", "in_progress", "complete", "blocked")}
    for task in listed["tasks"]:
        counted[task["status"]] += 1
    got = {"queued": summary["queued"], "in_progress": summary["in_progress"],
           "complete": summary["complete"], "blocked": summary["blocked"], "total": summary["total"]}
    assert got == {**counted, "total": len(listed["tasks"])}, (summary, counted)
    assert listed["total"] == len(listed["tasks"])
    return got


def start_children(args: list[list[str]]) -> list["subprocess.Popen[str]"]:
    """Runs this file as a script once per argument list; each says `ready`."""
    children = [
        subprocess.Popen([sys.executable, __file__, *a], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
        for a in args
    ]
    for proc in children:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", "a child did not start"
    return children


def reap(children: list["subprocess.Popen[str]"]) -> None:
    for proc in children:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


# --- 1. two servers, many REST clients -------------------------------------------------


class Rest:
    """One keep-alive HTTP connection to a server."""

    def __init__(self, base: str, actor: str) -> None:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        self.actor = actor

    def call(self, method: str, path: str, body: Optional[dict[str, Any]] = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Agent-Backlog-Actor": self.actor}
        if data is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)


def rest_thread(bases: list[str], name: str, log: Path, errors: list[str]) -> None:
    """Claims and completes until nothing is queued, alternating servers at every
    request, logging each claim."""
    servers = [Rest(base, name) for base in bases]
    turn = 0

    def next_server() -> Rest:
        nonlocal turn
        turn += 1
        return servers[turn % len(servers)]

    try:
        with log.open("w") as out:
            while True:
                status, task = next_server().call("POST", f"/api/backlogs/{AGENT}/claim")
                if status == 204:
                    break
                assert status == 200 and task["status"] == "in_progress", (status, task)
                out.write(f"{task['priority']} {number(task['id'])} {task['id']}\n")
                status, done = next_server().call(
                    "PATCH", f"/api/backlogs/{AGENT}/{task['id']}",
                    {"status": "complete", "result": name})
                assert status == 200 and done["status"] == "complete", (status, done)
            out.flush()
            os.fsync(out.fileno())
    except BaseException as err:  # reported by the child's exit status
        errors.append(f"{name}: {type(err).__name__}: {err}")
    finally:
        for server in servers:
            server.conn.close()


def rest_child(bases: str, logs: str, index: int, threads: int) -> int:
    """A REST client process: says it is ready, waits for its stdin to close, runs its
    threads. Exits non-zero if any request failed."""
    print("ready", flush=True)
    sys.stdin.read()
    errors: list[str] = []
    workers = [
        threading.Thread(target=rest_thread, args=(bases.split(","), f"p{index}t{t}",
                                                   Path(logs) / f"p{index}t{t}.log", errors))
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


class FeedTail:
    """Reads the change feed as it grows, in a thread, as a consumer would: each page
    after the last seq read. A seq that becomes visible below one already read would
    be missed, and show as missing at the end."""

    def __init__(self, store: agent_backlog.Store) -> None:
        self.store = store
        self.seqs: list[int] = []
        self.after = 0
        self.done = threading.Event()
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.done.is_set():
                page = self.store.events(after=self.after, limit=1000, wait_seconds=0.5)
                for event in page["events"]:
                    assert event["seq"] > self.after, (event["seq"], self.after)
                    self.seqs.append(event["seq"])
                    self.after = event["seq"]
        except BaseException as err:
            self.error = err

    def finish(self, last: int) -> None:
        """Reads on until seq `last`, then stops."""
        deadline = time.monotonic() + 60
        while self.after < last and self.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.done.set()
        self.thread.join(60)
        assert self.error is None, f"the feed's reader failed: {self.error!r}"


def test_two_servers_many_rest_clients_claim_each_task_once(tmp_path: Path) -> None:
    tasks, processes, threads = (5000, 8, 2) if stress() else (400, 4, 2)
    url = pgserver.fresh_url()
    seed, rng = seeded("two servers")
    logs = tmp_path / "logs"
    logs.mkdir()
    with agent_backlog.Store(url) as store, \
            serving(url, log=tmp_path / "a.serve.log") as (a, _), \
            serving(url, log=tmp_path / "b.serve.log") as (b, _):
        create(store, AGENT, tasks, rng)
        tail = FeedTail(store)
        children: list[subprocess.Popen[str]] = []
        try:
            children = start_children(
                [["rest", f"{a},{b}", str(logs), str(i), str(threads)] for i in range(processes)])
            started = time.monotonic()
            for proc in children:
                assert proc.stdin is not None
                proc.stdin.close()
            for proc in children:
                proc.wait(TIMEOUT)
                assert proc.returncode == 0, f"a REST client failed (seed {seed})"
            elapsed = time.monotonic() - started
        finally:
            reap(children)
            if not tail.done.is_set():
                tail.done.set()

        owner: dict[str, str] = {}
        priority_of: dict[str, int] = {}
        per_worker: list[int] = []
        for log in sorted(logs.iterdir()):
            got = [line.split() for line in log.read_text().splitlines()]
            per_worker.append(len(got))
            keys = [(int(p), int(n)) for p, n, _ in got]
            # Nothing is added during the race, and a claim takes the first queued task
            # that no other claim holds: each thread's claims only go up.
            assert keys == sorted(keys), f"{log.stem} claimed out of priority order (seed {seed})"
            for p, _, task_id in got:
                assert task_id not in owner, f"{task_id} claimed by {owner[task_id]} and {log.stem}"
                owner[task_id] = log.stem
                priority_of[task_id] = int(p)
        assert len(per_worker) == processes * threads
        assert len(owner) == tasks, "the union of the claims is not every task"

        full = {"queued": 0, "in_progress": 0, "complete": tasks, "blocked": 0, "total": tasks}
        assert check_counts(store, AGENT) == full
        for base in (a, b):
            check = Rest(base, "check")
            assert check.call("GET", f"/api/backlogs/{AGENT}/summary") == (200, full)
            check.conn.close()
        for task in store.list_tasks(AGENT)["tasks"]:
            assert task["status"] == "complete" and task["completed"] is not None
            assert task["result"] == owner[task["id"]], f"{task['id']} completed by another thread"
            assert task["priority"] == priority_of[task["id"]]

        events = all_events(store)
        tail.finish(events[-1]["seq"])
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), "the feed's seqs do not grow"
    missed = sorted(set(seqs) - set(tail.seqs))
    assert not missed, f"the feed's reader missed {len(missed)} events committed below a seq " \
        f"it had read: {missed[:20]} (seed {seed})"
    per_task: dict[str, list[tuple[str, Optional[str]]]] = {}
    for e in events:
        assert e["task_id"] is not None
        per_task.setdefault(e["task_id"], []).append((e["type"], e["actor"]))
    for task_id, got_events in per_task.items():
        who = owner[task_id]
        assert got_events == [("created", None), ("claimed", who), ("updated", who)], \
            (task_id, got_events)
    assert len(per_task) == tasks
    print(f"two servers (PostgreSQL): {tasks} tasks, {processes} processes x {threads} threads "
          f"over REST: {len(owner)} claims, 0 duplicates, per thread "
          f"{min(per_worker)}..{max(per_worker)}, {elapsed:.1f} s; feed tail read "
          f"{len(tail.seqs)} events, missed none")


# --- 2. the lease kill loop ------------------------------------------------------------

LEASE_SECONDS = 2


def lease_child(url: str, log: str, name: str, seed: int) -> int:
    """A leased worker: claims, works a moment, finishes, and logs `done ID TOKEN`
    once the finish returned; runs until it is killed."""
    rng = random.Random(seed)
    store = agent_backlog.Store(url)
    with open(log, "a", buffering=1) as out:
        while True:
            claim = store.claim_lease(AGENT, name, lease_seconds=LEASE_SECONDS, max_attempts=1000)
            if claim is None:
                time.sleep(0.05)
                continue
            token = claim["lease"]["token"]
            out.write(f"claim {claim['task']['id']} {token}\n")
            time.sleep(0.02 + rng.random() * 0.15)
            try:
                task = store.finish_lease(token, "complete", result=token)
            except agent_backlog.LeaseLostError:
                out.write(f"lost {claim['task']['id']} {token}\n")
                continue
            assert task["status"] == "complete" and task["result"] == token
            out.write(f"done {task['id']} {token}\n")


def test_killed_leased_workers_lose_nothing_acknowledged(tmp_path: Path) -> None:
    tasks, workers, kill_every = (600, 6, 0.2) if stress() else (100, 4, 0.5)
    url = pgserver.fresh_url()
    seed, rng = seeded("lease kill loop")
    logs = tmp_path / "logs"
    logs.mkdir()
    everyone: list[subprocess.Popen[str]] = []

    log_of: dict[int, Path] = {}

    def spawn() -> subprocess.Popen[str]:
        name = f"w{len(everyone)}"
        log_of[len(everyone)] = logs / f"{name}.log"
        # Not waiting for it to start: a kill may land while it starts, too.
        proc = subprocess.Popen([sys.executable, __file__, "lease", url, str(logs / f"{name}.log"),
                                 name, str(rng.randrange(1 << 30))],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, text=True)
        everyone.append(proc)
        return proc

    def last_word(proc: subprocess.Popen[str]) -> str:
        log = log_of[everyone.index(proc)]
        text = log.read_text() if log.exists() else ""
        return text.rsplit("\n", 2)[-2].split(" ", 1)[0] if text.count("\n") else ""

    with agent_backlog.Store(url) as store:
        create(store, AGENT, tasks, rng)
        kills = 0
        try:
            running = [spawn() for _ in range(workers)]
            deadline = time.monotonic() + TIMEOUT
            while store.summary(AGENT)["complete"] < tasks:
                assert time.monotonic() < deadline, f"not done in {TIMEOUT} s (seed {seed})"
                time.sleep(kill_every * (0.5 + rng.random()))
                # Mostly a worker at work (its last line a claim), so that kills land
                # on leases; now and then any worker, wherever it is.
                at_work = [i for i, proc in enumerate(running) if last_word(proc) == "claim"]
                victim = rng.choice(at_work) if at_work and rng.random() < 0.7 \
                    else rng.randrange(len(running))
                running[victim].send_signal(signal.SIGKILL)
                running[victim].wait(60)
                kills += 1
                running[victim] = spawn()
        finally:
            reap(everyone)

        assert check_counts(store, AGENT) == {
            "queued": 0, "in_progress": 0, "complete": tasks, "blocked": 0, "total": tasks}
        acked: dict[str, list[str]] = {}
        for log in logs.iterdir():
            for line in log.read_text().splitlines():
                word, task_id, token = line.split()
                if word == "done":
                    acked.setdefault(task_id, []).append(token)
        twice = {task_id: tokens for task_id, tokens in acked.items() if len(tokens) > 1}
        assert not twice, f"finished twice: {twice} (seed {seed})"
        stored = {task["id"]: task for task in store.list_tasks(AGENT)["tasks"]}
        for task_id, (token,) in acked.items():
            task = stored[task_id]
            assert task["status"] == "complete" and task["result"] == token, \
                f"acknowledged finish lost: {task_id} by {token}, stored {task} (seed {seed})"
        for task in stored.values():
            assert task["result"] is not None and task["result"].startswith(task["id"] + ".")

        kinds: dict[str, list[str]] = {}
        for event in all_events(store, AGENT):
            assert event["task_id"] is not None
            kinds.setdefault(event["task_id"], []).append(event["type"])
            if event["type"] == "finished":
                assert event["data"] == {"to": "complete"}, event
            if event["type"] == "lease_expired":
                assert event["data"]["to"] == "queued", event
        for task_id, types in kinds.items():
            assert types.count("finished") == 1, (task_id, types)
            # Every claim of a task ends by its expiry, but the last, by its finish.
            assert types.count("claimed") == types.count("lease_expired") + 1, (task_id, types)
            assert types[0] == "created" and types[-1] == "finished", (task_id, types)
        assert len(kinds) == tasks
        fences = [int((task["result"] or "").split(".")[1]) for task in stored.values()]
        taken_over = len([fence for fence in fences if fence > 1])
        assert taken_over > 0, f"no kill landed on a worker at work (seed {seed})"
    print(f"lease kill loop (PostgreSQL): {tasks} tasks, {kills} kills, {len(everyone)} "
          f"workers, {len(acked)} finishes acknowledged, {taken_over} tasks finished after "
          f"a killed worker's lease expired, seed {seed}")


# --- 3. the server restarts --------------------------------------------------------------

RESTART_AGENT = "pg-restart"
WAKE_AGENT = "pg-wake"


def restart_child(url: str, log: str, stop_file: str, name: str) -> int:
    """Creates a task, claims one, completes it, in a loop, until `stop_file` exists;
    logs every acknowledged write (`created ID T`, `completed ID T`) and every
    StorageError (`storage - T`) with its time. Any other error fails the child."""
    store = agent_backlog.Store(url, busy_timeout=5.0)
    with open(log, "a", buffering=1) as out:
        print("ready", flush=True)

        def attempt(what: Any) -> Any:
            """Runs what() until it does not raise StorageError."""
            while True:
                try:
                    return what()
                except agent_backlog.StorageError as err:
                    assert err.code == "storage"
                    out.write(f"storage - {time.time()}\n")
                    time.sleep(0.02)
                    if os.path.exists(stop_file):
                        raise SystemExit(0) from err

        i = 0
        while not os.path.exists(stop_file):
            i += 1
            task = attempt(lambda: store.create_task(RESTART_AGENT, f"{name} {i}"))
            out.write(f"created {task['id']} {time.time()}\n")
            claimed = attempt(lambda: store.claim_next(RESTART_AGENT))
            if claimed is None:
                continue

            def complete(task_id: str = claimed["id"]) -> agent_backlog.Task:
                try:
                    return store.update_task(RESTART_AGENT, task_id, status="complete",
                                             result=name)
                except agent_backlog.TransitionError:
                    # A completion that failed as the server went away may have
                    # committed: it is acknowledged once it reads back as ours.
                    now = store.get_task(RESTART_AGENT, task_id)
                    assert now["status"] == "complete" and now["result"] == name, now
                    return now

            done = attempt(complete)
            assert done is not None and done["status"] == "complete"
            out.write(f"completed {done['id']} {time.time()}\n")
    return 0


def waiter_child(url: str, log: str, stop_file: str) -> int:
    """Waits for tasks of WAKE_AGENT, finishes each, logs `woke ID T`."""
    store = agent_backlog.Store(url)
    with open(log, "a", buffering=1) as out:
        print("ready", flush=True)
        while not os.path.exists(stop_file):
            try:
                claim = store.wait_for_task(WAKE_AGENT, "waiter", 1.0, lease_seconds=60)
                if claim is None:
                    continue
                out.write(f"woke {claim['task']['id']} {time.time()}\n")
                store.finish_lease(claim["lease"]["token"], "complete")
            except agent_backlog.StorageError:
                out.write(f"storage - {time.time()}\n")
                time.sleep(0.02)
    return 0


def pg_sh(command: str) -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "pg.sh"), command],
                          stdout=subprocess.PIPE, text=True, timeout=300, check=True)
    return done.stdout.strip()


def test_a_dump_of_the_store_restores_it_with_its_rules(tmp_path: Path) -> None:
    """Backups by the database's own tools (docs/POSTGRES.md): `pg_dump --schema` of a
    store, the schema dropped, the dump restored with psql. The store opens and reads
    as before, carries on, and its schema still refuses an impossible task (the rules'
    CHECK calls a function of the table's row type, which the dump must order)."""
    url = pgserver.fresh_url()
    schema = url.rsplit("%3D", 1)[1]
    with agent_backlog.Store(url, actor="backup-bot") as store:
        store.create_tasks("ops", [{"title": f"t{i}", "priority": 1 + i % 3} for i in range(5)])
        leased = store.claim_lease("ops", "w1")
        assert leased is not None
        done = store.claim_next("ops")
        assert done is not None
        store.update_task("ops", done["id"], status="complete", result="r")
        before = (store.list_tasks("ops"), store.summary("ops"), all_events(store),
                  store.get_lease("ops", leased["task"]["id"]))
    bindir = Path(pg_sh("bindir"))
    dump = tmp_path / "dump.sql"
    subprocess.run([str(bindir / "pg_dump"), "--dbname", str(pgserver.URL), "--schema", schema,
                    "--file", str(dump)], check=True, timeout=120)
    psql = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", str(pgserver.URL)]
    subprocess.run(psql + ["-c", f'DROP SCHEMA "{schema}" CASCADE'], check=True, timeout=60)
    subprocess.run(psql + ["-f", str(dump)], check=True, timeout=120, stdout=subprocess.DEVNULL)
    with agent_backlog.Store(url) as store:
        assert (store.list_tasks("ops"), store.summary("ops"), all_events(store),
                store.get_lease("ops", leased["task"]["id"])) == before
        store.finish_lease(leased["lease"]["token"], "complete", result="after the restore")
        assert store.summary("ops")["complete"] == 2
    refused = subprocess.run(
        psql + ["-c", f"UPDATE \"{schema}\".tasks SET status = 'complete' WHERE status = 'queued'"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert refused.returncode != 0 and "tasks_valid" in refused.stderr, refused.stderr


def test_a_url_s_password_is_never_shown() -> None:
    """repr shows where a store lives, without the password of its URL (the test server
    trusts loopback, so any password connects)."""
    url = pgserver.fresh_url().replace("://agent_backlog@", "://agent_backlog:s3cret-pw@", 1)
    assert "s3cret-pw" in url
    with agent_backlog.Store(url) as store:
        shown = repr(store)
        assert "s3cret-pw" not in shown and "agent_backlog:***@" in shown, shown
        shown = repr(agent_backlog.AsyncStore(url))
        assert "s3cret-pw" not in shown and shown.startswith("<agent_backlog.AsyncStore"), shown


def test_async_store_on_postgresql() -> None:
    """AsyncStore on PostgreSQL (SPEC §16, §18): the results of Store, a wait woken by
    another store's commit (LISTEN/NOTIFY), and a cancelled wait that leaves nothing
    claimed. Every call on a server waits for the network, so each goes to a thread."""
    url = pgserver.fresh_url()

    async def main() -> None:
        async with agent_backlog.AsyncStore(url, actor="async-bot") as store:
            created = await store.create_task("ops", "first", priority=2)
            with agent_backlog.Store(url) as blocking:
                assert await store.get_task("ops", created["id"]) == blocking.get_task("ops", created["id"])
                claimed = await store.claim_next("ops")
                assert claimed is not None and claimed["id"] == created["id"]

                def later() -> None:
                    time.sleep(0.3)
                    blocking.create_task("ops", "woken")

                producer = threading.Thread(target=later)
                producer.start()
                woken = await store.wait_for_task("ops", "w1", 30)
                producer.join()
                assert woken is not None and woken["task"]["title"] == "woken"
                # A wait cancelled while nothing is ready claims nothing.
                waiting = asyncio.ensure_future(store.wait_for_task("ops", "w2", 30))
                await asyncio.sleep(0.2)
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
                assert blocking.summary("ops") == {
                    "queued": 0, "in_progress": 2, "complete": 0, "blocked": 0, "total": 2}
                history = await store.task_history("ops", created["id"])
                assert [e["actor"] for e in history["events"]] == ["async-bot", "async-bot"]

    asyncio.run(main())


@pytest.mark.skipif(not stress(), reason="restarts the shared test server: make stress only "
                    "(AGENT_BACKLOG_STRESS=1)")
def test_workers_carry_on_across_a_server_restart(tmp_path: Path) -> None:
    workers, ops_before, ops_after = 4, 200, 200
    url = pgserver.fresh_url()
    logs = tmp_path / "logs"
    logs.mkdir()
    stop_file = tmp_path / "stop"

    def lines(name: str) -> list[list[str]]:
        path = logs / f"{name}.log"
        # A line being written may be cut; whole lines only.
        return [line.split() for line in path.read_text().split("\n")[:-1]] if path.exists() else []

    def acked_since(name: str, since: float) -> int:
        return len([x for x in lines(name) if x[0] in ("created", "completed", "woke")
                    and float(x[2]) > since])

    def wait_until(what: str, ok: Any) -> None:
        deadline = time.monotonic() + 120
        while not ok():
            assert time.monotonic() < deadline, f"waited 120 s for {what}"
            time.sleep(0.05)

    names = [f"r{i}" for i in range(workers)]
    children: list[subprocess.Popen[str]] = []
    with agent_backlog.Store(url) as store:
        store.create_task(RESTART_AGENT, "first")  # the schema, before the children race
        wakes_before: list[str] = []
        wakes_after: list[str] = []
        try:
            children = start_children(
                [["restart", url, str(logs / f"{n}.log"), str(stop_file), n] for n in names]
                + [["waiter", url, str(logs / "waiter.log"), str(stop_file)]])
            for proc in children:
                assert proc.stdin is not None
                proc.stdin.close()
            wait_until("work before the restart",
                       lambda: all(acked_since(n, 0) >= ops_before for n in names))
            wakes_before.append(store.create_task(WAKE_AGENT, "before")["id"])
            wait_until("the waiter before the restart", lambda: acked_since("waiter", 0) >= 1)

            began = time.time()
            assert url.startswith(pg_sh("restart") + "?"), "the server came back elsewhere"
            back = time.time()

            # The harness's own store carries on too, after at most a few storage errors.
            for _ in range(20):
                try:
                    wakes_after.append(store.create_task(WAKE_AGENT, "after")["id"])
                    break
                except agent_backlog.StorageError:
                    time.sleep(0.1)
            assert wakes_after, "the harness's store did not reconnect"
            wait_until("work after the restart",
                       lambda: all(acked_since(n, back) >= ops_after for n in names))
            wait_until("the waiter after the restart", lambda: acked_since("waiter", back) >= 1)
            stop_file.touch()
            for proc in children:
                proc.wait(TIMEOUT)
                assert proc.returncode == 0, "a worker failed: a call raised something other " \
                    "than StorageError"
        finally:
            stop_file.touch()
            reap(children)
            with contextlib.suppress(Exception):
                pg_sh("start")

        errors = 0
        acked_created: set[str] = set()
        acked_completed: dict[str, str] = {}
        first_error, last_error = float("inf"), 0.0
        for name in names + ["waiter"]:
            for word, task_id, at in lines(name):
                if word == "storage":
                    errors += 1
                    first_error, last_error = min(first_error, float(at)), max(last_error, float(at))
                elif word == "created":
                    acked_created.add(task_id)
                elif word == "completed":
                    assert task_id not in acked_completed, f"{task_id} completed twice"
                    acked_completed[task_id] = name
        summary = check_counts(store, RESTART_AGENT)
        stored = {task["id"]: task for task in store.list_tasks(RESTART_AGENT)["tasks"]}
        lost = sorted(acked_created - set(stored))
        assert not lost, f"acknowledged creates lost: {lost[:20]}"
        for task_id, name in acked_completed.items():
            assert stored[task_id]["status"] == "complete" and stored[task_id]["result"] == name, \
                f"acknowledged completion lost: {stored[task_id]}"
        # A claim that failed as the server went away may have committed, and then its
        # task stays in progress (claim_next takes no lease): a few at most.
        stranded = [t for t in stored.values() if t["status"] == "in_progress"]
        assert len(stranded) <= errors
        woke = {x[1] for x in lines("waiter") if x[0] == "woke"}
        assert set(wakes_before + wakes_after) <= woke
        # A restart too quick for any call to see it is not a failure; workers that
        # carried on after it (checked above) are the point.
        print(f"restart (PostgreSQL): {workers} workers + a waiter; restart took "
              f"{back - began:.2f} s; {errors} StorageErrors"
              + (f" from {first_error - began:+.2f} s to {last_error - began:+.2f} s of the "
                 "restart" if errors else "")
              + f"; {len(acked_created)} creates and {len(acked_completed)} completions "
              f"acknowledged, none lost; {summary['total']} tasks, {len(stranded)} left in "
              "progress by an ambiguous claim")


def main(argv: list[str]) -> int:
    mode, args = argv[0], argv[1:]
    if mode == "rest":
        return rest_child(args[0], args[1], int(args[2]), int(args[3]))
    if mode == "lease":
        return lease_child(args[0], args[1], args[2], int(args[3]))
    if mode == "restart":
        return restart_child(args[0], args[1], args[2], args[3])
    if mode == "waiter":
        return waiter_child(args[0], args[1], args[2])
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
