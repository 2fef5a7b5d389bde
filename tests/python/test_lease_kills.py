"""The lease kill loop (SPEC §10): leased workers are SIGKILLed at random while the
rest keep working, and every task still ends complete, completed exactly once.

Worker processes loop on ``wait_for_task`` (one-second leases, so that a killed
worker's task comes back quickly) and ``finish_lease``. Each prints ``done ID TOKEN``
only after its finish returned. The harness kills a random worker every so often and
starts a new one in its place, until every task is complete. Then:

- every task is complete, and ``summary`` says so;
- no task was acknowledged as finished twice (a stale worker's late finish is
  ``lease_lost``, never a second completion);
- a task's stored result names the lease that finished it, and when that finish was
  acknowledged, it was acknowledged for that very lease;
- some tasks were finished by a later lease after a killed worker's expired (the kills
  did land on workers at work).

``make test``: 40 tasks, 4 workers, about 10 kills. ``make stress``
(``AGENT_BACKLOG_STRESS=1``): 600 tasks, 6 workers, about 150 kills.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import agent_backlog

WORKER = """
import random, sys, time, agent_backlog
db, name = sys.argv[1], sys.argv[2]
store = agent_backlog.Store(db, busy_timeout=30.0)
while True:
    claim = store.wait_for_task("fleet", name, 5, lease_seconds=1, max_attempts=1000)
    if claim is None:
        continue
    token = claim["lease"]["token"]
    time.sleep(0.05 + random.random() * 0.25)
    try:
        store.finish_lease(token, "complete", result=token)
    except agent_backlog.LeaseLostError:
        print("lost", claim["task"]["id"], token, flush=True)
        continue
    print("done", claim["task"]["id"], token, flush=True)
"""


def stress() -> bool:
    return os.environ.get("AGENT_BACKLOG_STRESS", "") not in ("", "0")


class Worker:
    def __init__(self, db: Path, name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), name],
            stdout=subprocess.PIPE, text=True,
        )
        self.lines: list[list[str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.split())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.reader.join(timeout=60)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def test_killed_leased_workers_never_lose_or_double_a_task(tmp_path: Path) -> None:
    tasks, workers, kill_every = (600, 6, 0.15) if stress() else (40, 4, 0.3)
    seed = int(os.environ.get("AGENT_BACKLOG_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    db = tmp_path / "fleet.db"
    with agent_backlog.Store(db) as store:
        store.create_tasks("fleet", [{"title": f"task {i}"} for i in range(tasks)])
        running = [Worker(db, f"w{i}") for i in range(workers)]
        everyone = list(running)
        kills = 0
        deadline = time.monotonic() + 600
        while store.summary("fleet")["complete"] < tasks:
            assert time.monotonic() < deadline, f"not done in 600 s (seed {seed})"
            time.sleep(kill_every * (0.5 + rng.random()))
            victim = rng.randrange(len(running))
            running[victim].kill()
            kills += 1
            running[victim] = Worker(db, f"w{len(everyone)}")
            everyone.append(running[victim])
        for w in running:
            w.kill()

        summary = store.summary("fleet")
        assert summary == {"queued": 0, "in_progress": 0, "complete": tasks, "blocked": 0,
                           "total": tasks}, seed
        acked: dict[str, list[str]] = {}
        for w in everyone:
            for line in w.lines:
                if line and line[0] == "done":
                    acked.setdefault(line[1], []).append(line[2])
        twice = {task: tokens for task, tokens in acked.items() if len(tokens) > 1}
        assert not twice, f"finished twice: {twice} (seed {seed})"
        listed = store.list_tasks("fleet")["tasks"]
        for task in listed:
            assert task["result"] is not None and task["result"].startswith(task["id"] + ".")
            if task["id"] in acked:
                assert acked[task["id"]] == [task["result"]], (task, seed)
        # A result's token holds the fence of the lease that finished it: above 1, the
        # task was taken over after a killed worker's lease expired.
        fences = [int((task["result"] or "").split(".")[1]) for task in listed]
        taken_over = len([fence for fence in fences if fence > 1])
        assert taken_over > 0, f"no kill landed on a worker at work (seed {seed})"
        print(f"lease kill loop: {tasks} tasks, {kills} kills, {len(everyone)} workers, "
              f"{len(acked)} finishes acknowledged, {taken_over} tasks finished after a "
              f"killed worker's lease expired, seed {seed}")
