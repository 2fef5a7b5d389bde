"""AsyncStore (SPEC §18): the loop keeps running while calls wait, waits are
cancellable and leave nothing behind, and the async forms of the tools and the lease
helper. The conformance cases run through AsyncStore in test_conformance.py.

Nothing here asserts how long something took, beyond bounds that only a call that
blocked or never ended would cross; the lag and throughput figures are measured by
bench/python/async_bench.py (`make bench`).
"""

from __future__ import annotations

import ast
import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, TypeVar

import pytest

import agent_backlog
from agent_backlog import AsyncStore, LeaseLostError, NotFoundError, StorageError, Store, tools

PACKAGE = Path(agent_backlog.__file__).parent
AGENT = "ops"
T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


class Hops:
    """Counts the calls an AsyncStore sends to a thread, by name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: List[str] = []
        original = AsyncStore._on_thread  # type: ignore[attr-defined]

        async def counted(store: AsyncStore, name: str, args: Any, kwargs: Any) -> Any:
            self.names.append(name)
            return await original(store, name, args, kwargs)

        monkeypatch.setattr(AsyncStore, "_on_thread", counted)


class Ticker:
    """A coroutine that sleeps 2 ms in a loop and counts its wake-ups: it runs only
    while the loop is free."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task: Optional["asyncio.Task[None]"] = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.002)
            self.ticks += 1

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> int:
        assert self.task is not None
        self.task.cancel()
        await asyncio.wait([self.task])
        return self.ticks


def wait_threads_gone(prefix: str, timeout: float = 10.0) -> List[str]:
    """The names of the threads starting with prefix still alive after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


# --- the same methods as Store ---------------------------------------------------


def stub_methods(path: Path, cls: str) -> Dict[str, str]:
    """The methods of class cls in a stub: name -> its arguments and return type."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: Dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_"):
                    found[item.name] = f"({ast.unparse(item.args)}) -> {ast.unparse(item.returns or ast.Constant(None))}"
    return found


def test_asyncstore_has_every_method_of_store_with_its_arguments_and_results() -> None:
    blocking = stub_methods(PACKAGE / "_native.pyi", "Store")
    asynchronous = stub_methods(PACKAGE / "_async.pyi", "AsyncStore")
    del blocking["close"]
    assert asynchronous.pop("aclose") == "(self) -> None"
    assert asynchronous.pop("store") == "(self) -> Store"
    assert asynchronous == blocking
    runtime = {n for n in dir(AsyncStore) if not n.startswith("_") and callable(getattr(AsyncStore, n))}
    assert runtime - {"aclose"} == set(blocking)
    for name in blocking:
        assert asyncio.iscoroutinefunction(getattr(AsyncStore, name)), name
        assert getattr(AsyncStore, name).__doc__ == getattr(Store, name).__doc__


def test_results_and_errors_are_those_of_store(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncStore(tmp_path / "a.db", actor="release-bot") as store:
            assert repr(store).startswith("<agent_backlog.AsyncStore path=")
            task = await store.create_task(AGENT, "Rotate keys", priority=2)
            same = store.store.get_task(AGENT, task["id"])
            assert list(task.items()) == list(same.items())
            with pytest.raises(NotFoundError) as raised:
                await store.get_task(AGENT, "OPS-404")
            with pytest.raises(NotFoundError) as blocking:
                store.store.get_task(AGENT, "OPS-404")
            assert str(raised.value) == str(blocking.value)
            with pytest.raises(TypeError):
                await store.summary()  # type: ignore[call-arg]
            history = await store.task_history(AGENT, task["id"])
            assert history["events"][0]["actor"] == "release-bot"

    run(main)


# --- the loop keeps running -------------------------------------------------------

HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def test_writers_waiting_for_another_process_lock_leave_the_loop_running(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    Store(db).close()
    async def main() -> List[str]:
        async with AsyncStore(db, busy_timeout=20) as store:
            ticker = Ticker()
            ticker.start()
            writers = [asyncio.create_task(store.create_task(AGENT, f"w{i}")) for i in range(4)]
            await asyncio.sleep(0.5)
            # The lock is still held: the writers wait, and the loop runs.
            assert not any(w.done() for w in writers)
            assert ticker.ticks >= 20, ticker.ticks
            created = [t["id"] for t in await asyncio.gather(*writers)]
            await ticker.stop()
            return created

    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db), "1.0"], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        created = run(main)
        assert holder.wait(timeout=30) == 0
    assert sorted(created) == ["OPS-001", "OPS-002", "OPS-003", "OPS-004"]


def test_full_durability_writes_leave_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hops = Hops(monkeypatch)

    async def main() -> None:
        async with AsyncStore(tmp_path / "f.db", durability="full") as store:
            ids = [(await store.create_task(AGENT, f"t{i}"))["id"] for i in range(3)]
            assert ids == ["OPS-001", "OPS-002", "OPS-003"]
            assert (await store.summary(AGENT))["queued"] == 3

    run(main)
    # The writes ran on the store's threads (their commits wait for the disk); the
    # read ran on the loop.
    assert hops.names == ["create_task"] * 3


def test_calls_that_cannot_wait_stay_on_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hops = Hops(monkeypatch)

    async def main() -> None:
        async with AsyncStore(tmp_path / "n.db") as store:
            await store.create_task(AGENT, "a")
            claim = await store.claim_lease(AGENT, "w1")
            assert claim is not None
            await store.finish_lease(claim["lease"]["token"], "complete")
            await store.list_tasks(AGENT)
            await store.events(after=0, wait_seconds=5)   # there are events: no wait

    run(main)
    assert hops.names == []


def test_a_run_of_calls_that_never_wait_still_lets_other_coroutines_in() -> None:
    async def main() -> int:
        async with AsyncStore(":memory:") as store:
            ticker = Ticker()
            ticker.start()
            await asyncio.sleep(0)
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                await store.create_task(AGENT, "busy")
            return await ticker.stop()

    assert run(main) >= 10


# --- waits --------------------------------------------------------------------------


def test_a_wait_is_woken_by_another_process_while_the_loop_runs(tmp_path: Path) -> None:
    db = tmp_path / "w.db"

    async def main() -> None:
        async with AsyncStore(db) as store:
            ticker = Ticker()
            ticker.start()
            wait = asyncio.create_task(store.wait_for_task(AGENT, "w1", 60))
            await asyncio.sleep(0.2)
            assert not wait.done()
            code = f"import agent_backlog; agent_backlog.Store({str(db)!r}).create_task('ops', 'from afar')"
            child = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
            assert await child.wait() == 0
            claim = await wait
            assert claim is not None and claim["task"]["title"] == "from afar"
            assert await ticker.stop() >= 50

    run(main)


def test_a_task_already_ready_is_claimed_without_leaving_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    hops = Hops(monkeypatch)

    async def main() -> None:
        async with AsyncStore(":memory:") as store:
            await store.create_task(AGENT, "a")
            claim = await store.wait_for_task(AGENT, "w1", 60)
            assert claim is not None and claim["lease"]["attempt"] == 1
            assert await store.wait_for_task(AGENT, "w1", 0) is None
            assert hops.names == []
            # Nothing ready and a timeout: that one waits, on a thread.
            assert await store.wait_for_task(AGENT, "w1", 0.05) is None
            assert hops.names == ["wait_for_task"]

    run(main)


def test_cancelling_a_wait_returns_at_once_and_leaves_no_thread_or_claim(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncStore(tmp_path / "c.db") as store:
            waits = [asyncio.create_task(store.wait_for_task(AGENT, f"w{i}", 120)) for i in range(4)]
            follow = asyncio.create_task(store.events(after=0, wait_seconds=60))
            await asyncio.sleep(0.2)
            assert wait_threads_gone("agent-backlog wait_for_task", timeout=0) != []
            started = time.monotonic()
            for w in [*waits, follow]:
                w.cancel()
            results = await asyncio.gather(*waits, follow, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            assert time.monotonic() - started < 5  # not the 60-120 s of the waits
            assert wait_threads_gone("agent-backlog wait_for_task") == []
            assert wait_threads_gone("agent-backlog events") == []
            # No wait is left to take new work.
            await store.create_task(AGENT, "later")
            await asyncio.sleep(0.2)
            assert (await store.summary(AGENT))["queued"] == 1

    run(main)


def test_a_task_granted_to_a_cancelled_wait_goes_back_with_its_attempt_not_counted(tmp_path: Path) -> None:
    """Cancels waits at every moment around the claim that a create wakes: whichever
    wins, the task is handed over or back in the queue at once, never left leased."""
    db = tmp_path / "g.db"

    async def main() -> None:
        async with AsyncStore(db) as store:
            for round in range(60):
                wait = asyncio.create_task(store.wait_for_task(AGENT, "w1", 30))
                await asyncio.sleep(0.01)
                created = await asyncio.to_thread(store.store.create_task, AGENT, f"t{round}")
                await asyncio.sleep((round % 12) * 0.0005)
                wait.cancel()
                try:
                    claim = await wait
                except asyncio.CancelledError:
                    claim = None
                if claim is not None:
                    await store.finish_lease(claim["lease"]["token"], "complete")
                    continue
                # Once the wait's thread has ended, the task is queued or about to be.
                assert await asyncio.to_thread(wait_threads_gone, "agent-backlog wait_for_task") == []
                deadline = time.monotonic() + 10
                while (await store.get_task(AGENT, created["id"]))["status"] != "queued":
                    assert time.monotonic() < deadline, f"{created['id']} stayed leased"
                    await asyncio.sleep(0.005)
                again = await store.claim_lease(AGENT, "w2")
                assert again is not None and again["task"]["id"] == created["id"]
                assert again["lease"]["attempt"] == 1
                await store.finish_lease(again["lease"]["token"], "complete")
            assert (await store.summary(AGENT))["complete"] == 60

    run(main)


def test_a_claim_cancelled_before_it_was_handed_over_goes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The give-back path, made certain: the wait's thread is held between its claim
    and handing it over while the coroutine is cancelled."""
    import importlib

    impl: Any = importlib.import_module("agent_backlog._async")
    claimed = threading.Event()
    original = impl._claimed_token

    def slow_handover(result: Any) -> Optional[str]:
        token: Optional[str] = original(result)
        if token is not None:
            claimed.set()
            time.sleep(0.3)
        return token

    monkeypatch.setattr(impl, "_claimed_token", slow_handover)

    async def main() -> None:
        async with AsyncStore(":memory:") as store:
            wait = asyncio.create_task(store.wait_for_task(AGENT, "w1", 30))
            await asyncio.sleep(0.05)
            await asyncio.to_thread(store.store.create_task, AGENT, "a")
            assert await asyncio.to_thread(claimed.wait, 10)
            wait.cancel()
            await asyncio.wait([wait])
            assert wait.cancelled()
            deadline = time.monotonic() + 10
            while (await store.get_task(AGENT, "OPS-001"))["status"] != "queued":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            again = await store.claim_lease(AGENT, "w2")
            assert again is not None and again["lease"]["attempt"] == 1 and again["lease"]["fence"] == 2
            history = await store.task_history(AGENT, "OPS-001")
            assert [e["type"] for e in history["events"]] == ["created", "claimed", "finished", "claimed"]

    run(main)


def test_closing_ends_a_wait_with_storage_error() -> None:
    async def main() -> None:
        store = AsyncStore(":memory:")
        wait = asyncio.create_task(store.wait_for_task(AGENT, "w1", 60))
        await asyncio.sleep(0.1)
        await store.aclose()
        with pytest.raises(StorageError):
            await wait
        with pytest.raises(StorageError):
            await store.summary(AGENT)
        await store.aclose()

    run(main)


def test_a_write_cancelled_before_its_thread_began_does_nothing(tmp_path: Path) -> None:
    """Eight writers wait for another process's lock on the store's 8 threads; a
    ninth is queued behind them and cancelled: it never runs."""
    db = tmp_path / "q.db"
    Store(db).close()

    async def main() -> None:
        async with AsyncStore(db, busy_timeout=20) as store:
            writers = [asyncio.create_task(store.create_task(AGENT, f"w{i}")) for i in range(8)]
            await asyncio.sleep(0.2)
            ninth = asyncio.create_task(store.create_task(AGENT, "cancelled"))
            await asyncio.sleep(0.2)
            ninth.cancel()
            await asyncio.wait([ninth])
            assert len(await asyncio.gather(*writers)) == 8
            await asyncio.sleep(0.2)
            titles = [t["title"] for t in (await store.list_tasks(AGENT))["tasks"]]
            assert "cancelled" not in titles and len(titles) == 8

    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db), "1.0"], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        run(main)
        assert holder.wait(timeout=30) == 0


def test_cancelling_a_wait_stuck_on_another_process_lock_ends_it(tmp_path: Path) -> None:
    """A wait whose claim waits for a lock another process holds (busy_timeout 20 s)
    ends at once when cancelled: its thread does not wait the lock out."""
    db = tmp_path / "l.db"
    Store(db).close()

    async def main() -> None:
        async with AsyncStore(db, busy_timeout=20) as store:
            wait = asyncio.create_task(store.wait_for_task(AGENT, "w1", 60))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            wait.cancel()
            await asyncio.wait([wait])
            gone = await asyncio.to_thread(wait_threads_gone, "agent-backlog wait_for_task", 10.0)
            assert gone == [] and time.monotonic() - started < 5  # not the holder's 8 s

    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db), "8.0"], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        run(main)
        holder.kill()


def test_many_coroutines_on_one_store_claim_each_task_once(tmp_path: Path) -> None:
    async def main() -> List[str]:
        async with AsyncStore(tmp_path / "m.db") as store:
            await store.create_tasks(AGENT, [{"title": f"t{i}"} for i in range(200)])

            async def worker(name: str) -> List[str]:
                done = []
                while (claim := await store.wait_for_task(AGENT, name, 0)) is not None:
                    done.append(claim["task"]["id"])
                    await store.finish_lease(claim["lease"]["token"], "complete")
                return done

            per_worker = await asyncio.gather(*(worker(f"w{i}") for i in range(8)))
            return [t for done in per_worker for t in done]

    done = run(main)
    assert sorted(done) == [f"OPS-{i:03}" for i in range(1, 201)]


# --- tools.acall ---------------------------------------------------------------------


def test_acall_answers_as_call_does(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncStore(tmp_path / "t.db") as store:
            created = await tools.acall(store, "create_task", {"agent_id": AGENT, "title": "a"})
            assert created == store.store.get_task(AGENT, "OPS-001")
            assert await tools.acall(store, "get_task", '{"agent_id": "ops", "task_id": "OPS-404"}') == tools.call(
                store.store, "get_task", {"agent_id": "ops", "task_id": "OPS-404"}
            )
            wrong: Any = store.store
            refused = await tools.acall(wrong, "summary", {"agent_id": AGENT})
            assert refused["error"]["code"] == "invalid_argument" and "AsyncStore" in refused["error"]["message"]
            bound = await tools.acall(store, "summary", {}, agent_id=AGENT)
            assert bound["queued"] == 1
            assert await tools.acall(store, "summary", "[") == tools.call(store.store, "summary", "[")

            # A waiting tool leaves the loop, and cancelling it leaves nothing leased.
            wait = asyncio.create_task(
                tools.acall(store, "wait_for_task", {"agent_id": "idle", "worker": "w", "timeout_seconds": 60})
            )
            await asyncio.sleep(0.1)
            wait.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait
            assert wait_threads_gone("agent-backlog _call_tool") == []
            claimed = await tools.acall(store, "wait_for_task", {"agent_id": AGENT, "worker": "w", "timeout_seconds": 5})
            assert claimed["task"]["id"] == "OPS-001"

    run(main)


# --- the async lease helper -----------------------------------------------------------


def test_hold_lease_async_renews_on_the_loop_and_completes() -> None:
    async def main() -> None:
        async with AsyncStore(":memory:") as store:
            await store.create_task(AGENT, "long work")
            claim = await store.claim_lease(AGENT, "w1", lease_seconds=1)
            assert claim is not None
            async with agent_backlog.hold_lease_async(store, claim, renew_every=0.2) as held:
                await asyncio.sleep(1.5)  # past the first expiry: renewed meanwhile
                assert (await store.reap_expired(AGENT)) == {"requeued": [], "blocked": []}
                held.check()
                held.result = "done"
            assert held.finished is not None and held.finished["result"] == "done"
            assert held.finished["status"] == "complete"

    run(main)


def test_hold_lease_async_keeps_renewing_after_a_refused_finish_and_takes_the_work_s_own() -> None:
    async def main() -> None:
        async with AsyncStore(":memory:") as store:
            await store.create_tasks(AGENT, [{"title": "a"}, {"title": "b"}])
            claim = await store.claim_lease(AGENT, "w1", lease_seconds=1)
            assert claim is not None
            async with agent_backlog.hold_lease_async(store, claim, renew_every=0.2) as held:
                with pytest.raises(agent_backlog.ValidationError):
                    await held.block("")  # refused: the lease is still held and renewed
                await asyncio.sleep(1.5)
                assert (await store.reap_expired(AGENT)) == {"requeued": [], "blocked": []}
                held.result = "done"
            assert held.finished is not None and held.finished["result"] == "done"

            claim = await store.claim_lease(AGENT, "w1", lease_seconds=1)
            assert claim is not None
            async with agent_backlog.hold_lease_async(store, claim, renew_every=0.1) as held:
                await store.finish_lease(held.token, "complete", result="by the work")
                await asyncio.sleep(0.3)  # a renewal finds it finished, not lost
                assert not held.lost
            assert held.finished is not None and held.finished["result"] == "by the work"

    run(main)


def test_hold_lease_async_releases_on_an_exception_and_shows_a_lost_lease() -> None:
    async def main() -> None:
        async with AsyncStore(":memory:") as store:
            await store.create_tasks(AGENT, [{"title": "a"}, {"title": "b"}])
            claim = await store.claim_lease(AGENT, "w1")
            assert claim is not None
            with pytest.raises(KeyError):
                async with agent_backlog.hold_lease_async(store, claim):
                    raise KeyError("the work failed")
            assert (await store.get_task(AGENT, "OPS-001"))["status"] == "queued"

            claim = await store.claim_lease(AGENT, "w1", lease_seconds=1)
            assert claim is not None
            taken = claim["task"]["id"]
            with pytest.raises(LeaseLostError):
                # Leaving the block completes the task, which the lost lease refuses.
                async with agent_backlog.hold_lease_async(store, claim, renew_every=0.3) as held:
                    # Someone moves the task: the next renewal sees the lease lost.
                    await store.update_task(AGENT, taken, status="queued")
                    await asyncio.sleep(0.8)
                    assert held.lost
                    with pytest.raises(LeaseLostError):
                        held.check()
                    held.result = "too late"
            assert held.finished is None
            assert (await store.get_task(AGENT, taken))["status"] == "queued"

    run(main)


def test_the_async_worker_example_runs(tmp_path: Path) -> None:
    from conftest import run_example

    db = tmp_path / "ex.db"
    with Store(db) as store:
        store.create_tasks("marketing-lead", [{"title": f"post {i}"} for i in range(5)])
    out = subprocess.run(run_example("async_worker.py", str(db), "--idle", "0.5"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with Store(db) as store:
        assert store.summary("marketing-lead")["complete"] == 5
    assert sqlite3.connect(db).execute("SELECT count(*) FROM tasks WHERE status = 'complete'").fetchone() == (5,)
