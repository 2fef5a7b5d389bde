"""Leases and waiting (SPEC §10-§11) through the Python module, and ``hold_lease``.

Expiry is real time (one-second leases and a sleep past them); nothing here asserts
how long anything took beyond generous bounds that only a hang would break.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import agent_backlog
from agent_backlog import LeaseLostError, Store

AGENT = "marketing-lead"


def outlive_lease() -> None:
    time.sleep(1.15)


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    s.create_task(AGENT, "a")
    s.create_task(AGENT, "b", priority=1)
    return s


def test_a_leased_claim_and_its_lease(store: Store) -> None:
    claim = store.claim_lease(AGENT, "writer-7", lease_seconds=30, max_attempts=5)
    assert claim is not None
    assert list(claim) == ["task", "lease"]
    assert claim["task"]["id"] == "MKT-002" and claim["task"]["status"] == "in_progress"
    lease = claim["lease"]
    assert list(lease) == ["token", "agent_id", "task_id", "worker", "fence", "attempt",
                           "max_attempts", "granted", "expires"]
    assert (lease["fence"], lease["attempt"], lease["max_attempts"]) == (1, 1, 5)
    assert store.get_lease(AGENT, "MKT-002") == lease
    assert store.get_lease(AGENT, "MKT-001") is None
    renewed = store.renew_lease(lease["token"], lease_seconds=60)
    assert renewed["expires"] > lease["expires"]
    step = store.finish_and_claim(lease["token"], "complete", result="done", lease_seconds=30)
    assert step["finished"]["result"] == "done"
    assert step["next"] is not None and step["next"]["task"]["id"] == "MKT-001"
    task = store.finish_lease(step["next"]["lease"]["token"], "blocked", blocker="needs a human")
    assert (task["status"], task["blocker"]) == ("blocked", "needs a human")
    assert store.claim_lease(AGENT, "w") is None
    assert store.reap_expired() == {"requeued": [], "blocked": []}


def test_lease_lost_is_a_conflict_error_with_its_code(store: Store) -> None:
    assert issubclass(LeaseLostError, agent_backlog.ConflictError)
    assert LeaseLostError.code == "lease_lost"
    claim = store.claim_lease(AGENT, "w1")
    assert claim is not None
    store.update_task(AGENT, claim["task"]["id"], status="queued")
    with pytest.raises(LeaseLostError) as lost:
        store.finish_lease(claim["lease"]["token"], "complete", result="late")
    assert lost.value.code == "lease_lost"
    assert "fence 2" in str(lost.value)
    with pytest.raises(agent_backlog.NotFoundError):
        store.renew_lease("MKT-001.9.0123456789abcdef")
    with pytest.raises(agent_backlog.ValidationError, match="token"):
        store.renew_lease("nonsense")
    with pytest.raises(agent_backlog.ValidationError, match="lease_seconds"):
        store.claim_lease(AGENT, "w1", lease_seconds=True)
    with pytest.raises(agent_backlog.ValidationError, match="timeout_seconds"):
        store.wait_for_task(AGENT, "w1", "5")  # type: ignore[arg-type]


def test_an_expired_lease_goes_back_and_the_stale_worker_is_told(store: Store) -> None:
    first = store.claim_lease(AGENT, "slow", lease_seconds=1, max_attempts=2)
    assert first is not None
    outlive_lease()
    second = store.claim_lease(AGENT, "fast")
    assert second is not None and second["task"]["id"] == first["task"]["id"]
    assert second["lease"]["attempt"] == 2
    with pytest.raises(LeaseLostError, match="fast"):
        store.finish_lease(first["lease"]["token"], "complete", result="stale")
    done = store.finish_lease(second["lease"]["token"], "complete", result="fresh")
    assert done["result"] == "fresh"


def test_wait_for_task_wakes_on_a_task_made_by_another_thread(tmp_path: Path) -> None:
    with Store(tmp_path / "b.db") as store:
        assert store.wait_for_task("ops", "w", 0.1) is None

        def produce() -> None:
            time.sleep(0.2)
            with Store(tmp_path / "b.db") as other:
                other.create_task("ops", "wake up")

        t = threading.Thread(target=produce)
        t.start()
        claim = store.wait_for_task("ops", "w", 60)
        t.join()
        assert claim is not None and claim["task"]["title"] == "wake up"


def test_wait_for_task_wakes_on_a_task_made_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    with Store(db) as store:
        code = (
            "import time, agent_backlog\n"
            "time.sleep(0.3)\n"
            f"agent_backlog.Store({str(db)!r}).create_task('ops', 'from afar')\n"
        )
        child = subprocess.Popen([sys.executable, "-c", code])
        claim = store.wait_for_task("ops", "w", 60)
        assert child.wait(timeout=60) == 0
        assert claim is not None and claim["task"]["title"] == "from afar"


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_interrupts_a_wait(tmp_path: Path) -> None:
    with Store(tmp_path / "b.db") as store:
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            store.wait_for_task("ops", "w", 120)
        # Far below the 120 s it would otherwise wait.
        assert time.monotonic() - started < 60
        timer.join()
        # Nothing was claimed or left behind.
        assert store.summary("ops")["in_progress"] == 0


def test_other_threads_run_while_a_thread_waits(tmp_path: Path) -> None:
    with Store(tmp_path / "b.db") as store:
        t = threading.Thread(target=store.wait_for_task, args=("ops", "w", 1.0))
        t.start()
        counted = 0
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            counted += 1
        t.join()
        assert counted > 1000


def test_hold_lease_completes_on_success_and_renews_meanwhile(store: Store) -> None:
    claim = store.claim_lease(AGENT, "w", lease_seconds=1)
    assert claim is not None
    with agent_backlog.hold_lease(store, claim, renew_every=0.2) as held:
        time.sleep(1.6)  # past the first expiry: the renewals keep it
        assert not held.lost
        other = store.claim_lease(AGENT, "thief")
        assert other is not None and other["task"]["id"] != claim["task"]["id"]
        held.result = "done while renewed"
    assert held.finished is not None
    assert held.finished["status"] == "complete"
    assert held.finished["result"] == "done while renewed"


def test_hold_lease_finishes_once(store: Store) -> None:
    claim = store.claim_lease(AGENT, "w")
    assert claim is not None
    with agent_backlog.hold_lease(store, claim) as held:
        blocked = held.block("needs a human")
        with pytest.raises(ValueError, match="already finished"):
            held.complete("again")
    # Leaving the block did not finish it a second time.
    assert held.finished == blocked
    assert store.get_task(AGENT, claim["task"]["id"])["status"] == "blocked"


def test_hold_lease_leaves_a_finish_of_the_work_s_own_as_it_is(store: Store) -> None:
    # The work finishes the lease itself, with the store and the held token; a renewal
    # comes after it. The lease was not lost, and leaving the block raises nothing.
    claim = store.claim_lease(AGENT, "w", lease_seconds=1)
    assert claim is not None
    with agent_backlog.hold_lease(store, claim, renew_every=0.1) as held:
        handed_on = store.finish_and_claim(held.token, "complete", result="done by the work")
        time.sleep(0.3)
        assert not held.lost
        held.check()
    assert held.finished is not None
    assert (held.finished["status"], held.finished["result"]) == ("complete", "done by the work")
    assert handed_on["next"] is not None  # the next task, untouched by the helper
    assert store.get_task(AGENT, handed_on["next"]["task"]["id"])["status"] == "in_progress"
    # The same without a renewal in between: the exit's own finish finds it finished.
    store.create_task(AGENT, "c")
    claim = store.claim_lease(AGENT, "w")
    assert claim is not None
    with agent_backlog.hold_lease(store, claim) as held:
        store.finish_lease(held.token, "blocked", blocker="the work blocked it")
    assert held.finished is not None and held.finished["blocker"] == "the work blocked it"
    assert not held.lost


def test_hold_lease_keeps_renewing_after_a_refused_finish(store: Store) -> None:
    claim = store.claim_lease(AGENT, "w", lease_seconds=1)
    assert claim is not None
    with agent_backlog.hold_lease(store, claim, renew_every=0.2) as held:
        with pytest.raises(agent_backlog.ValidationError):
            held.block("")  # an empty blocker: refused, the lease still held
        time.sleep(1.5)  # past the first expiry: only renewals keep it
        assert store.reap_expired(AGENT) == {"requeued": [], "blocked": []}
        assert not held.lost
        held.result = "done after all"
    assert held.finished is not None and held.finished["result"] == "done after all"


def test_hold_lease_releases_on_an_exception(store: Store) -> None:
    claim = store.claim_lease(AGENT, "w")
    assert claim is not None
    with pytest.raises(RuntimeError):
        with agent_backlog.hold_lease(store, claim):
            raise RuntimeError("the work failed")
    task = store.get_task(AGENT, claim["task"]["id"])
    assert task["status"] == "queued"
    assert store.get_lease(AGENT, task["id"]) is None


def test_hold_lease_makes_a_lost_lease_visible(store: Store) -> None:
    claim = store.claim_lease(AGENT, "stalled", lease_seconds=1)
    assert claim is not None
    with pytest.raises(LeaseLostError):
        with agent_backlog.hold_lease(store, claim, renew_every=0.5) as held:
            # Another worker takes the task while no renewal reaches it in time.
            store.update_task(AGENT, claim["task"]["id"], status="queued")
            winner = store.claim_lease(AGENT, "winner")
            assert winner is not None
            time.sleep(0.8)
            assert held.lost
            with pytest.raises(LeaseLostError):
                held.check()
            held.result = "stale"
    final = store.get_task(AGENT, claim["task"]["id"])
    assert final["status"] == "in_progress" and final["result"] is None
    assert winner is not None
    assert store.get_lease(AGENT, final["id"]) == winner["lease"]


STALLED_WORKER = """
import sys, agent_backlog
store = agent_backlog.Store(sys.argv[1])
claim = store.claim_lease("ops", "stalled", lease_seconds=1)
print(claim["lease"]["token"], flush=True)
sys.stdin.readline()   # stopped here by SIGSTOP, resumed after the lease expired
try:
    store.finish_lease(claim["lease"]["token"], "complete", result="stale")
    print("finished")
except agent_backlog.LeaseLostError as e:
    print("lost", e.code)
"""


def test_a_stopped_worker_resumed_after_expiry_gets_lease_lost(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    with Store(db) as store:
        store.create_task("ops", "the task")
        worker = subprocess.Popen([sys.executable, "-c", STALLED_WORKER, str(db)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert worker.stdout is not None and worker.stdin is not None
        token = worker.stdout.readline().strip()
        worker.send_signal(signal.SIGSTOP)
        outlive_lease()
        second = store.wait_for_task("ops", "second", 30)
        assert second is not None
        store.finish_lease(second["lease"]["token"], "complete", result="fresh")
        worker.send_signal(signal.SIGCONT)
        worker.stdin.write("go\n")
        worker.stdin.flush()
        out, _ = worker.communicate(timeout=60)
        assert out.strip() == "lost lease_lost"
        assert token.startswith("OPS-001.1.")
        task = store.get_task("ops", "OPS-001")
        assert (task["status"], task["result"]) == ("complete", "fresh")
